// WordpieceTokenizer: text to token ids for BERT-family models with an uncased WordPiece
// vocabulary (models-retrieval/minilm). It gives the ids that the model's reference tokenizer
// (Hugging Face `tokenizers` with the model's tokenizer.json) gives; tests/data/
// wordpiece_golden.jsonl, written by models/training/minilm_golden.py, holds the cases the test
// checks. The rules, in the order they apply (Devlin et al., 2019, and the BERT reference code):
//   1. special tokens written in the text ([PAD] [UNK] [CLS] [SEP] [MASK], exact and
//      case-sensitive) are taken as themselves; the text between them goes through 2-5;
//   2. clean: U+0000, U+FFFD and control and format characters (categories Cc, Cf, Co, Cn;
//      tab, newline and carriage return excepted) are dropped; white space (the Unicode
//      White_Space property) becomes a space; each CJK ideograph gets a space on either side;
//   3. accents: the text is decomposed (NFD) and nonspacing marks (Mn) dropped, then every
//      character lowercased on its own (full case mapping, no context);
//   4. words: split on white space, and every punctuation character (ASCII !-/ :-@ [-` {-~ and
//      the Unicode categories P*) is a word of its own;
//   5. pieces: each word is matched greedily, longest first, against the vocabulary, pieces
//      after the first with the "##" prefix; a word that cannot be matched, or that is longer
//      than 100 characters, is the single id of [UNK];
// then [CLS] + pieces + [SEP], with the pieces cut so that the whole is at most max_length ids.
// Needs valid UTF-8 (the server rejects anything else before); invalid bytes are dropped.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace galley::model {

class WordpieceTokenizer {
 public:
  static constexpr int kDefaultMaxLength = 256;
  static constexpr size_t kMaxWordChars = 100;

  // Reads a vocabulary file: one token per line, line i (0-based) is id i; it must hold [PAD],
  // [UNK], [CLS] and [SEP]. Errors: NotFound when the file cannot be opened; InvalidArgument
  // (naming the file and line) for an empty line, a repeated token or a missing special token,
  // and when max_length < 3.
  static absl::StatusOr<WordpieceTokenizer> FromFile(const std::string& path,
                                                     int max_length = kDefaultMaxLength);
  static absl::StatusOr<WordpieceTokenizer> FromVocab(std::vector<std::string> vocab,
                                                      int max_length = kDefaultMaxLength);

  // Move-only: the lookup table points into the vocabulary the object owns.
  WordpieceTokenizer(WordpieceTokenizer&&) = default;
  WordpieceTokenizer& operator=(WordpieceTokenizer&&) = default;
  WordpieceTokenizer(const WordpieceTokenizer&) = delete;
  WordpieceTokenizer& operator=(const WordpieceTokenizer&) = delete;

  // Appends the ids of `text` ([CLS] ... [SEP], 2 to max_length ids) to `ids`. Thread-safe.
  void Encode(std::string_view text, std::vector<int64_t>& ids) const;

  int max_length() const { return max_length_; }
  size_t vocab_size() const { return vocab_.size(); }
  int64_t pad_id() const { return pad_id_; }

 private:
  WordpieceTokenizer(std::vector<std::string> vocab, int max_length);
  // Rules 2-5 on a span with no special token; appends piece ids (no [CLS]/[SEP]).
  void EncodePlain(std::string_view text, std::vector<int64_t>& pieces) const;
  void EncodeWord(std::string_view word, size_t chars, std::vector<int64_t>& pieces) const;
  int64_t Find(std::string_view token) const;  // -1 when absent

  // Owns the tokens; ids_ keys view into them (a moved vector keeps its buffer, so the views
  // survive moving the tokenizer).
  std::vector<std::string> vocab_;
  absl::flat_hash_map<std::string_view, int64_t, std::hash<std::string_view>> ids_;
  int max_length_;
  int64_t pad_id_ = 0, unk_id_ = 0, cls_id_ = 0, sep_id_ = 0;
  std::vector<std::pair<std::string, int64_t>> specials_;  // the special tokens in the vocab
};

}  // namespace galley::model
