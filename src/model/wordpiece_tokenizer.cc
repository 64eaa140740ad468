#include "model/wordpiece_tokenizer.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>
#include <unicode/utf8.h>

#include <fstream>

#include "common/strings.h"

namespace galley::model {
namespace {

constexpr std::string_view kSpecials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

bool IsCjk(UChar32 c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool IsWhitespace(UChar32 c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || (c >= 0x80 && u_isUWhiteSpace(c));
}

// Control, format, private-use and unassigned characters, except the three white-space
// controls.
bool IsControl(UChar32 c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  if (c < 0x80) return c < 0x20 || c == 0x7F;
  const int8_t t = u_charType(c);
  return t == U_CONTROL_CHAR || t == U_FORMAT_CHAR || t == U_PRIVATE_USE_CHAR ||
         t == U_UNASSIGNED || t == U_SURROGATE;
}

bool IsPunctuation(UChar32 c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
      (c >= 123 && c <= 126)) {
    return true;
  }
  return c >= 0x80 && u_ispunct(c);
}

// Appends `c` lowercased on its own (full case mapping, root locale) to `out`.
void AppendLower(UChar32 c, icu::UnicodeString& out) {
  if (c < 0x80) {
    out.append(static_cast<UChar32>(c >= 'A' && c <= 'Z' ? c + 32 : c));
    return;
  }
  UChar src[2];
  int32_t n = 0;
  U16_APPEND_UNSAFE(src, n, c);
  UChar dst[8];
  UErrorCode err = U_ZERO_ERROR;
  const int32_t len = u_strToLower(dst, 8, src, n, "", &err);
  if (U_FAILURE(err) || len > 8) {
    out.append(c);
    return;
  }
  out.append(dst, len);
}

}  // namespace

absl::StatusOr<WordpieceTokenizer> WordpieceTokenizer::FromFile(const std::string& path,
                                                                int max_length) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot open vocabulary file ", path));
  std::vector<std::string> vocab;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    vocab.push_back(std::move(line));
  }
  auto t = FromVocab(std::move(vocab), max_length);
  if (!t.ok()) return absl::InvalidArgumentError(StrCat(path, ": ", t.status().message()));
  return t;
}

absl::StatusOr<WordpieceTokenizer> WordpieceTokenizer::FromVocab(std::vector<std::string> vocab,
                                                                 int max_length) {
  if (max_length < 3) return absl::InvalidArgumentError("max_length must be at least 3");
  absl::flat_hash_map<std::string_view, size_t, std::hash<std::string_view>> seen;
  for (size_t i = 0; i < vocab.size(); ++i) {
    if (vocab[i].empty()) return absl::InvalidArgumentError(StrCat("line ", i + 1, " is empty"));
    if (auto [it, fresh] = seen.emplace(vocab[i], i); !fresh) {
      return absl::InvalidArgumentError(
          StrCat("line ", i + 1, " repeats '", vocab[i], "' of line ", it->second + 1));
    }
  }
  for (std::string_view s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]"}) {
    if (!seen.contains(s)) {
      return absl::InvalidArgumentError(StrCat("the vocabulary has no ", s, " token"));
    }
  }
  return WordpieceTokenizer(std::move(vocab), max_length);
}

WordpieceTokenizer::WordpieceTokenizer(std::vector<std::string> vocab, int max_length)
    : vocab_(std::move(vocab)), max_length_(max_length) {
  ids_.reserve(vocab_.size());
  for (size_t i = 0; i < vocab_.size(); ++i)
    ids_.emplace(std::string_view(vocab_[i]), static_cast<int64_t>(i));
  pad_id_ = Find("[PAD]");
  unk_id_ = Find("[UNK]");
  cls_id_ = Find("[CLS]");
  sep_id_ = Find("[SEP]");
  for (std::string_view s : kSpecials) {
    if (int64_t id = Find(s); id >= 0) specials_.emplace_back(std::string(s), id);
  }
}

int64_t WordpieceTokenizer::Find(std::string_view token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

void WordpieceTokenizer::Encode(std::string_view text, std::vector<int64_t>& ids) const {
  std::vector<int64_t> pieces;
  size_t plain_from = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '[') continue;
    for (const auto& [token, id] : specials_) {
      if (text.substr(i, token.size()) != token) continue;
      EncodePlain(text.substr(plain_from, i - plain_from), pieces);
      pieces.push_back(id);
      i += token.size() - 1;
      plain_from = i + 1;
      break;
    }
  }
  EncodePlain(text.substr(plain_from), pieces);
  const size_t keep = std::min(pieces.size(), static_cast<size_t>(max_length_ - 2));
  ids.push_back(cls_id_);
  ids.insert(ids.end(), pieces.begin(), pieces.begin() + static_cast<std::ptrdiff_t>(keep));
  ids.push_back(sep_id_);
}

void WordpieceTokenizer::EncodePlain(std::string_view text, std::vector<int64_t>& pieces) const {
  if (text.empty()) return;
  // Rule 2: clean, and space out CJK ideographs.
  icu::UnicodeString cleaned;
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const auto length = static_cast<int32_t>(text.size());
  for (int32_t i = 0; i < length;) {
    UChar32 c;
    U8_NEXT(bytes, i, length, c);
    if (c < 0 || c == 0 || c == 0xFFFD || IsControl(c)) continue;
    if (IsWhitespace(c)) {
      cleaned.append(static_cast<UChar32>(' '));
    } else if (IsCjk(c)) {
      cleaned.append(static_cast<UChar32>(' ')).append(c).append(static_cast<UChar32>(' '));
    } else {
      cleaned.append(c);
    }
  }
  // Rule 3: NFD, drop nonspacing marks, lowercase each character.
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* nfd = icu::Normalizer2::getNFDInstance(err);
  icu::UnicodeString decomposed = U_SUCCESS(err) ? nfd->normalize(cleaned, err) : cleaned;
  if (U_FAILURE(err)) decomposed = cleaned;
  icu::UnicodeString lowered;
  for (int32_t i = 0; i < decomposed.length();) {
    const UChar32 c = decomposed.char32At(i);
    i += U16_LENGTH(c);
    if (c >= 0x80 && u_charType(c) == U_NON_SPACING_MARK) continue;
    AppendLower(c, lowered);
  }
  // Rule 4: words; rule 5 on each.
  std::string word;
  size_t chars = 0;
  auto flush = [&] {
    if (chars > 0) EncodeWord(word, chars, pieces);
    word.clear();
    chars = 0;
  };
  for (int32_t i = 0; i < lowered.length();) {
    const UChar32 c = lowered.char32At(i);
    i += U16_LENGTH(c);
    if (IsWhitespace(c)) {
      flush();
      continue;
    }
    char buf[4];
    int32_t n = 0;
    U8_APPEND_UNSAFE(buf, n, c);
    if (IsPunctuation(c)) {
      flush();
      word.assign(buf, static_cast<size_t>(n));
      chars = 1;
      flush();
    } else {
      word.append(buf, static_cast<size_t>(n));
      ++chars;
    }
  }
  flush();
}

void WordpieceTokenizer::EncodeWord(std::string_view word, size_t chars,
                                    std::vector<int64_t>& pieces) const {
  if (chars > kMaxWordChars) {
    pieces.push_back(unk_id_);
    return;
  }
  // Byte offset of each character, and one past the end.
  std::vector<size_t> at;
  at.reserve(chars + 1);
  for (size_t i = 0; i < word.size(); ++i) {
    if ((static_cast<uint8_t>(word[i]) & 0xC0) != 0x80) at.push_back(i);
  }
  at.push_back(word.size());
  const size_t before = pieces.size();
  std::string candidate;
  for (size_t start = 0; start + 1 < at.size();) {
    int64_t found = -1;
    size_t end = at.size() - 1;
    for (; end > start; --end) {
      candidate.assign(start == 0 ? "" : "##");
      candidate.append(word.substr(at[start], at[end] - at[start]));
      found = Find(candidate);
      if (found >= 0) break;
    }
    if (found < 0) {
      pieces.resize(before);
      pieces.push_back(unk_id_);
      return;
    }
    pieces.push_back(found);
    start = end;
  }
}

}  // namespace galley::model
