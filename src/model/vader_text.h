// Text primitives for the VADER port (vader.h), each matching what the reference Python
// implementation (vaderSentiment 3.3.2) gets from Python's str: UTF-8 decoding, str.split()
// whitespace, string.punctuation, and str.lower() / str.isupper().
//
// Bytes that are not valid UTF-8 are treated the way Python treats text decoded with
// errors="surrogateescape": each such byte is one character that is not whitespace, not
// punctuation and not cased.
//
// NOTE: case follows Python exactly for U+0000..U+00FF (ASCII and Latin-1 Supplement) only. Other
// cased letters (Latin Extended, Greek, Cyrillic, fullwidth forms, ...) count as uncased and are
// not lower-cased. All lexicon keys the reference can match are ASCII, so lexicon lookups are
// unaffected except that U+212A KELVIN SIGN, which Python lower-cases to "k", is not folded; but
// str.isupper() of a word such as "ПРИВЕТ" differs, which can change the ALL-CAPS differential
// when such words sit beside ALL-CAPS English sentiment words.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace galley::model::vader_text {

// One decoded character: a code point, or a single byte that is not valid UTF-8.
struct Char {
  char32_t code_point = 0;  // meaningful only when valid
  uint8_t length = 1;       // bytes it occupies, 1..4
  bool valid = false;       // false: a lone byte that is not (part of) valid UTF-8
};

// Decodes the character at `pos` (< text.size()) with strict UTF-8 rules (no overlong forms, no
// surrogates, nothing above U+10FFFF).
Char DecodeNonAsciiAt(std::string_view text, size_t pos);
inline Char DecodeAt(std::string_view text, size_t pos) {
  const auto b = static_cast<unsigned char>(text[pos]);
  return b < 0x80 ? Char{b, 1, true} : DecodeNonAsciiAt(text, pos);
}

// True when every byte of `text` is part of valid UTF-8.
bool IsValidUtf8(std::string_view text);

// Number of characters, counting each invalid byte as one.
size_t CharCount(std::string_view text);

// Python's str.isspace() for one code point (what str.split() and str.strip() split on).
bool IsPythonSpace(char32_t code_point);

// Length in bytes of the whitespace character at `pos` (< text.size()), or 0 if there is none.
size_t NonAsciiSpaceLengthAt(std::string_view text, size_t pos);
inline size_t SpaceLengthAt(std::string_view text, size_t pos) {
  const auto b = static_cast<unsigned char>(text[pos]);
  if (b < 0x80) return (b >= 0x09 && b <= 0x0D) || (b >= 0x1C && b <= 0x20) ? 1 : 0;
  return NonAsciiSpaceLengthAt(text, pos);
}

// Python's str.strip() with no argument.
std::string_view StripSpace(std::string_view text);

// Membership in Python's string.punctuation (the 32 ASCII punctuation characters).
bool IsAsciiPunctuation(char c);

// Python's str.isupper(): at least one cased character and no lower-case or title-case one.
bool IsUpper(std::string_view word);

// Python's str.lower(), in place. Length-preserving: only letters up to U+00FF change.
void LowerInPlace(char* data, size_t size);

}  // namespace galley::model::vader_text
