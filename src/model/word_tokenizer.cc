// Implementation of word_tokenizer.h.
#include "model/word_tokenizer.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>

#include "absl/status/status.h"
#include "common/strings.h"

namespace galley::model {
namespace {

// What a byte is to the tokenizer.
enum ByteClass : uint8_t { kSeparator = 0, kWord = 1, kUpper = 2, kApostrophe = 3 };

constexpr std::array<uint8_t, 256> MakeByteClasses() {
  std::array<uint8_t, 256> classes{};
  for (int b = 0; b < 256; ++b) {
    if ((b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b >= 0x80) {
      classes[b] = kWord;
    } else if (b >= 'A' && b <= 'Z') {
      classes[b] = kUpper;
    } else if (b == '\'') {
      classes[b] = kApostrophe;
    }
  }
  return classes;
}
constexpr std::array<uint8_t, 256> kByteClasses = MakeByteClasses();

inline uint8_t ClassOf(char c) { return kByteClasses[static_cast<unsigned char>(c)]; }

// Tokens up to this long are lowercased in a stack buffer.
constexpr size_t kStackTokenBytes = 64;

// `token` for an error message: quoted, at most 40 bytes, control bytes as \xNN.
std::string Quote(std::string_view token) {
  std::string out = "\"";
  for (char c : token.substr(0, 40)) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      out += StrCat("\\x", kHex[b >> 4], kHex[b & 15]);
    } else {
      out.push_back(c);
    }
  }
  if (token.size() > 40) out += "...";
  return out + "\"";
}

// Why the tokenizer can never produce `token`, or "" when it can.
std::string_view WhyUnproducible(std::string_view token) {
  if (token.empty()) return "the line is empty";
  for (char c : token) {
    const uint8_t cls = ClassOf(c);
    if (cls == kSeparator) {
      return "it holds a separator byte (tokens hold only a-z, 0-9, ' and bytes >= 0x80)";
    }
    if (cls == kUpper) return "it holds an uppercase letter (the tokenizer lowercases A-Z)";
  }
  if (token.front() == '\'' || token.back() == '\'') {
    return "it starts or ends with an apostrophe (the tokenizer strips those)";
  }
  return "";
}

}  // namespace

WordTokenizer::WordTokenizer(std::vector<std::string> vocab, int max_length)
    : vocab_(std::move(vocab)), max_length_(max_length) {}

absl::StatusOr<WordTokenizer> WordTokenizer::FromFile(const std::string& path, int max_length) {
  std::ifstream file(path, std::ios::binary);
  if (!file.is_open()) {
    return absl::NotFoundError(StrCat("cannot open vocab file ", path, ": ", std::strerror(errno)));
  }
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad()) return absl::DataLossError(StrCat("cannot read vocab file ", path));
  if (text.empty()) {
    return absl::InvalidArgumentError(
        StrCat("vocab file ", path, " is empty: line 1 must be \"[PAD]\" and line 2 \"[UNK]\""));
  }
  if (text.back() == '\n') text.pop_back();
  std::vector<std::string> lines;
  for (size_t pos = 0; pos <= text.size();) {
    size_t newline = text.find('\n', pos);
    if (newline == std::string::npos) newline = text.size();
    std::string_view line(text.data() + pos, newline - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.emplace_back(line);
    pos = newline + 1;
  }
  absl::StatusOr<WordTokenizer> tokenizer = FromVocab(std::move(lines), max_length);
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        StrCat("vocab file ", path, ": ", ToStd(tokenizer.status().message())));
  }
  return tokenizer;
}

absl::StatusOr<WordTokenizer> WordTokenizer::FromVocab(std::vector<std::string> vocab,
                                                       int max_length) {
  if (max_length < 1) {
    return absl::InvalidArgumentError(StrCat("max_length must be at least 1, got ", max_length));
  }
  if (vocab.size() < 2) {
    return absl::InvalidArgumentError(
        StrCat("the vocabulary needs at least two lines, \"[PAD]\" (id 0) and \"[UNK]\" "
               "(id 1); it has ",
               vocab.size()));
  }
  if (vocab[0] != kPadToken) {
    return absl::InvalidArgumentError(
        StrCat("line 1 (id 0) must be \"[PAD]\", got ", Quote(vocab[0])));
  }
  if (vocab[1] != kUnkToken) {
    return absl::InvalidArgumentError(
        StrCat("line 2 (id 1) must be \"[UNK]\", got ", Quote(vocab[1])));
  }
  WordTokenizer tokenizer(std::move(vocab), max_length);
  tokenizer.ids_.reserve(tokenizer.vocab_.size());
  for (size_t id = 2; id < tokenizer.vocab_.size(); ++id) {
    const std::string_view token = tokenizer.vocab_[id];
    if (const std::string_view why = WhyUnproducible(token); !why.empty()) {
      return absl::InvalidArgumentError(StrCat("line ", id + 1, " (id ", id, "): token ",
                                               Quote(token), " can never match: ", why));
    }
    const auto [it, inserted] = tokenizer.ids_.emplace(token, static_cast<int64_t>(id));
    if (!inserted) {
      return absl::InvalidArgumentError(StrCat("line ", id + 1, " (id ", id, "): duplicate token ",
                                               Quote(token), " (first on line ", it->second + 1,
                                               ")"));
    }
    tokenizer.longest_token_ = std::max(tokenizer.longest_token_, token.size());
  }
  return tokenizer;
}

int64_t WordTokenizer::Lookup(std::string_view token) const {
  const auto it = ids_.find(token);
  return it == ids_.end() ? kUnkId : it->second;
}

void WordTokenizer::Encode(std::string_view text, std::vector<int64_t>& ids) const {
  const size_t first = ids.size();
  const size_t limit = first + static_cast<size_t>(max_length_);
  char stack_buffer[kStackTokenBytes];
  std::string heap_buffer;  // only for uppercase tokens longer than kStackTokenBytes
  const size_t n = text.size();
  size_t i = 0;
  while (ids.size() < limit) {
    while (i < n && ClassOf(text[i]) == kSeparator) ++i;
    if (i == n) break;
    size_t start = i;
    bool has_upper = false;
    for (; i < n; ++i) {
      const uint8_t cls = ClassOf(text[i]);
      if (cls == kSeparator) break;
      has_upper |= cls == kUpper;
    }
    size_t end = i;
    while (start < end && text[start] == '\'') ++start;
    while (end > start && text[end - 1] == '\'') --end;
    if (start == end) continue;
    std::string_view token = text.substr(start, end - start);
    if (token.size() > longest_token_) {
      ids.push_back(kUnkId);  // longer than every vocabulary token: no need to look
      continue;
    }
    if (has_upper) {
      char* out = stack_buffer;
      if (token.size() > kStackTokenBytes) {
        heap_buffer.resize(token.size());
        out = heap_buffer.data();
      }
      for (size_t k = 0; k < token.size(); ++k) {
        const char c = token[k];
        out[k] = ClassOf(c) == kUpper ? static_cast<char>(c + ('a' - 'A')) : c;
      }
      token = std::string_view(out, token.size());
    }
    ids.push_back(Lookup(token));
  }
  if (ids.size() == first) ids.push_back(kUnkId);
}

}  // namespace galley::model
