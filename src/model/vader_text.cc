// Implementation of vader_text.h.
#include "model/vader_text.h"

#include <algorithm>

namespace galley::model::vader_text {
namespace {

bool IsContinuation(unsigned char b) { return (b & 0xC0) == 0x80; }

// Case of one character as Python's unicodedata sees it, for U+0000..U+00FF.
enum class Case { kNone, kUpper, kLower };

Case CaseOfLatin1(char32_t cp) {
  if ((cp >= 'A' && cp <= 'Z') || (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7)) return Case::kUpper;
  if ((cp >= 'a' && cp <= 'z') || (cp >= 0xDF && cp <= 0xFF && cp != 0xF7) || cp == 0xAA ||
      cp == 0xB5 || cp == 0xBA) {
    return Case::kLower;
  }
  return Case::kNone;
}

}  // namespace

Char DecodeNonAsciiAt(std::string_view text, size_t pos) {
  const auto b0 = static_cast<unsigned char>(text[pos]);
  size_t length;
  char32_t cp;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return {};
  }
  if (text.size() - pos < length) return {};
  const auto b1 = static_cast<unsigned char>(text[pos + 1]);
  if (b1 < lo || b1 > hi) return {};
  cp = (cp << 6) | (b1 & 0x3F);
  for (size_t i = 2; i < length; ++i) {
    const auto b = static_cast<unsigned char>(text[pos + i]);
    if (!IsContinuation(b)) return {};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, static_cast<uint8_t>(length), true};
}

bool IsValidUtf8(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    const Char c = DecodeAt(text, pos);
    if (!c.valid) return false;
    pos += c.length;
  }
  return true;
}

size_t CharCount(std::string_view text) {
  if (std::all_of(text.begin(), text.end(), [](char c) { return (c & 0x80) == 0; })) {
    return text.size();
  }
  size_t count = 0;
  for (size_t pos = 0; pos < text.size(); pos += DecodeAt(text, pos).length) ++count;
  return count;
}

bool IsPythonSpace(char32_t cp) {
  if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

size_t NonAsciiSpaceLengthAt(std::string_view text, size_t pos) {
  const auto b0 = static_cast<unsigned char>(text[pos]);
  // Every non-ASCII space starts with one of these bytes; skip decoding for everything else.
  if (b0 != 0xC2 && b0 != 0xE1 && b0 != 0xE2 && b0 != 0xE3) return 0;
  const Char c = DecodeAt(text, pos);
  return c.valid && IsPythonSpace(c.code_point) ? c.length : 0;
}

std::string_view StripSpace(std::string_view text) {
  size_t begin = text.size(), end = 0;
  for (size_t pos = 0; pos < text.size();) {
    const size_t space = SpaceLengthAt(text, pos);
    if (space > 0) {
      pos += space;
      continue;
    }
    const size_t length = DecodeAt(text, pos).length;
    if (begin == text.size()) begin = pos;
    pos += length;
    end = pos;
  }
  return begin < end ? text.substr(begin, end - begin) : std::string_view();
}

bool IsAsciiPunctuation(char c) {
  return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
         (c >= '{' && c <= '~');
}

bool IsUpper(std::string_view word) {
  bool cased = false;
  for (size_t pos = 0; pos < word.size();) {
    const auto b0 = static_cast<unsigned char>(word[pos]);
    char32_t cp = b0;
    size_t length = 1;
    // Only U+0000..U+00FF have a case here: ASCII, or 0xC2/0xC3 and a continuation byte (always
    // valid UTF-8, and 0xC2/0xC3 never continue another sequence).
    if ((b0 == 0xC2 || b0 == 0xC3) && pos + 1 < word.size() &&
        IsContinuation(static_cast<unsigned char>(word[pos + 1]))) {
      cp = ((b0 & 0x1F) << 6) | (static_cast<unsigned char>(word[pos + 1]) & 0x3F);
      length = 2;
    } else if (b0 >= 0x80) {
      cp = 0;  // uncased (see the NOTE in the header)
    }
    switch (CaseOfLatin1(cp)) {
      case Case::kLower:
        return false;
      case Case::kUpper:
        cased = true;
        break;
      case Case::kNone:
        break;
    }
    pos += length;
  }
  return cased;
}

void LowerInPlace(char* data, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    const auto b = static_cast<unsigned char>(data[i]);
    if (b >= 'A' && b <= 'Z') {
      data[i] = static_cast<char>(b + 0x20);
    } else if (b == 0xC3 && i + 1 < size &&
               IsContinuation(static_cast<unsigned char>(data[i + 1]))) {
      // U+00C0..U+00DE except U+00D7 are C3 80..C3 9E; their lower case is 0x20 further on.
      const auto b1 = static_cast<unsigned char>(data[i + 1]);
      if (b1 <= 0x9E && b1 != 0x97) data[i + 1] = static_cast<char>(b1 + 0x20);
      ++i;
    }
  }
}

}  // namespace galley::model::vader_text
