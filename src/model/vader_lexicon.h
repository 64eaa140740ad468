// The VADER word and emoji lexicons, parsed, plus the reference's fixed word lists (booster and
// dampener words, negations), merged so that one hash lookup per token answers every question the
// rules ask about a word. Immutable after Parse(), so any number of threads may read it.
#pragma once

#include <bitset>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace galley::model {

// What VADER knows about one lower-case word.
struct VaderWordInfo {
  bool in_lexicon = false;   // a key of vader_lexicon.txt
  double valence = 0.0;      // its mean rating, when in_lexicon
  bool is_booster = false;   // a one-word key of the reference's BOOSTER_DICT
  double booster = 0.0;      // its scalar (+0.293 booster, -0.293 dampener), when is_booster
  bool is_negation = false;  // in the reference's NEGATE list
  bool in_phrase = false;    // a word of a multi-word special case or booster phrase
};

class VaderLexicon {
 public:
  // Parses the two lexicons the way the reference does: lines split on '\n', trailing '\n's
  // ignored, each line stripped of Python whitespace and split on tabs; a word line needs
  // "token<TAB>number", an emoji line "emoji<TAB>description"; extra fields are ignored, and a
  // later duplicate key replaces an earlier one.
  // NOTE: empty and all-whitespace lines are skipped (the reference fails on some of them), and
  // the number must be a finite decimal in std::from_chars form, optionally with a leading '+'.
  // Errors: InvalidArgument naming the lexicon and line for a malformed line, or for text that is
  // not valid UTF-8.
  static absl::StatusOr<VaderLexicon> Parse(std::string_view lexicon, std::string_view emoji);

  // Information about `lower_word`, or nullptr when it is in no lexicon or list.
  const VaderWordInfo* Find(std::string_view lower_word) const {
    // Debian's abseil has its own string_view type, which is what heterogeneous lookup takes.
    auto it = words_.find(absl::string_view(lower_word.data(), lower_word.size()));
    return it == words_.end() ? nullptr : &it->second;
  }

  // The description of the single-code-point emoji `code_point`, or nullptr. The reference
  // replaces text one code point at a time, so emoji keys of several code points (flags, skin-tone
  // and ZWJ sequences, keycaps) never match and are not kept.
  const std::string* FindEmoji(char32_t code_point) const {
    if (code_point < 0x80 && !ascii_emoji_[code_point]) return nullptr;
    auto it = emojis_.find(code_point);
    return it == emojis_.end() ? nullptr : &it->second;
  }

  // False when no emoji is a single ASCII character (true of the shipped lexicon).
  bool HasAsciiEmojis() const { return ascii_emoji_.any(); }

  size_t lexicon_size() const { return lexicon_size_; }
  size_t emoji_count() const { return emojis_.size(); }

 private:
  // Adds the reference's BOOSTER_DICT, NEGATE and phrase words to words_.
  void AddReferenceWordLists();

  absl::flat_hash_map<std::string, VaderWordInfo> words_;
  absl::flat_hash_map<char32_t, std::string> emojis_;
  std::bitset<128> ascii_emoji_;  // ASCII characters that are emoji keys (none in the shipped file)
  size_t lexicon_size_ = 0;       // distinct keys of the word lexicon
};

}  // namespace galley::model
