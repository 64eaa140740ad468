// WordTokenizer: text to token ids for the neural sentiment models (models/sentiment,
// models/sentiment_transformer). It matches tokenize()/encode() in
// models/training/train_sentiment.py byte for byte; tests/data/tokenizer_golden.jsonl, written by
// that script, holds the cases the test checks.
//
// The rules, on the UTF-8 bytes of the text:
//   * a token is a maximal run of word bytes: ASCII letters and digits, the apostrophe ('), and
//     every byte >= 0x80 (so a multi-byte UTF-8 character, accented letters, emoji and curly
//     quotes included, is always part of a word); every other byte separates;
//   * ASCII A-Z are lowercased (nothing else is);
//   * leading and trailing apostrophes are stripped from a token, and a token left empty dropped;
//   * a token's id is its line in the vocabulary file (0-based); a token not in it gets 1
//     ([UNK]);
//   * at most max_length ids; a text with no tokens gives the single id 1.
// Invalid UTF-8 is not the tokenizer's concern (the server rejects it before): any bytes give ids.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace galley::model {

class WordTokenizer {
 public:
  static constexpr int64_t kPadId = 0;
  static constexpr int64_t kUnkId = 1;
  static constexpr std::string_view kPadToken = "[PAD]";
  static constexpr std::string_view kUnkToken = "[UNK]";
  static constexpr int kDefaultMaxLength = 128;

  // Reads a vocabulary file: one token per line ("\n", or "\r\n"), line i (0-based) is id i;
  // line 0 must be "[PAD]" and line 1 "[UNK]"; the final newline is optional. Errors: NotFound
  // when the file cannot be opened; InvalidArgument (naming the file and line) when it is empty,
  // its first lines are wrong, a line is empty or repeats an earlier token, or a token is one
  // the tokenizer can never produce (a separator byte, A-Z, or a leading/trailing apostrophe).
  static absl::StatusOr<WordTokenizer> FromFile(const std::string& path,
                                                int max_length = kDefaultMaxLength);
  // The same from the lines themselves (no newlines). InvalidArgument as above, and when
  // max_length < 1.
  static absl::StatusOr<WordTokenizer> FromVocab(std::vector<std::string> vocab,
                                                 int max_length = kDefaultMaxLength);

  // Move-only: the lookup table points into the vocabulary the object owns.
  WordTokenizer(WordTokenizer&&) = default;
  WordTokenizer& operator=(WordTokenizer&&) = default;
  WordTokenizer(const WordTokenizer&) = delete;
  WordTokenizer& operator=(const WordTokenizer&) = delete;

  // Appends the ids of `text` to `ids` (whatever it already holds stays): between 1 and
  // max_length() ids. Allocates nothing per token (at most `ids` growing, and one buffer per call
  // for an uppercase token longer than 64 bytes). Thread-safe: const and stateless.
  void Encode(std::string_view text, std::vector<int64_t>& ids) const;

  int max_length() const { return max_length_; }
  size_t vocab_size() const { return vocab_.size(); }
  // The token of `id`; precondition: 0 <= id < vocab_size().
  const std::string& token(int64_t id) const { return vocab_[static_cast<size_t>(id)]; }

 private:
  WordTokenizer(std::vector<std::string> vocab, int max_length);

  // The id of `token` (already lowercased), or kUnkId.
  int64_t Lookup(std::string_view token) const;

  // Owns the tokens; ids_ keys view into them. A moved std::vector keeps its buffer, so the
  // views survive moving the tokenizer.
  std::vector<std::string> vocab_;
  absl::flat_hash_map<std::string_view, int64_t, std::hash<std::string_view>> ids_;
  size_t longest_token_ = 0;
  int max_length_;
};

}  // namespace galley::model
