// VADER sentiment analysis (Hutto & Gilbert, "VADER: A Parsimonious Rule-based Model for
// Sentiment Analysis of Social Media Text", ICWSM 2014), ported from the authors' reference
// implementation, vaderSentiment 3.3.2 (MIT licence), whose scores it reproduces: see
// tests/data/vader_golden.tsv and scripts/vader_golden.py.
//
// Pipeline, as in the reference: replace each emoji with its description; split on whitespace;
// strip punctuation around words (unless that leaves two characters or fewer, as for ":)");
// score each word (vader_rules.h); apply the "but" rule; add '!'/'?' emphasis; normalize.
//
// Departures from the reference, all NOTE'd where they are made: letter case beyond U+00FF
// (vader_text.h); invalid UTF-8 is scored as Python scores surrogate-escaped text; lenient lexicon
// parsing (vader_lexicon.h). The golden scores come from CPython 3.11; CPython 3.12+ sums floats
// with compensation and can differ from it (and from us) in the last bit of a sum.
#pragma once

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "model/vader_lexicon.h"

namespace galley::model {

// The reference's polarity_scores() dict. neg, neu and pos are proportions of the text's
// sentiment weight, rounded to 3 decimals; compound is the normalized sum in [-1, 1], rounded to
// 4 decimals. Rounding is Python's round(): to the nearest, exact binary ties to even.
struct VaderScores {
  double neg;
  double neu;
  double pos;
  double compound;
};

class VaderAnalyzer {
 public:
  // An analyzer over the lexicons compiled into the binary (vader_lexicon_data.h).
  // Errors: InternalError if the embedded lexicons do not parse (a broken build).
  static absl::StatusOr<std::unique_ptr<VaderAnalyzer>> Create();

  // An analyzer over the given lexicon texts, in the formats of vader_lexicon.txt and
  // emoji_utf8_lexicon.txt. The texts are copied.
  // Errors: InvalidArgument naming the line, for a malformed line or invalid UTF-8.
  static absl::StatusOr<std::unique_ptr<VaderAnalyzer>> FromText(std::string_view lexicon,
                                                                 std::string_view emoji_lexicon);

  // Scores `text`: any bytes, any length (time and memory are linear in it; with a "but" in a
  // text of n words, O(n log n)). Invalid UTF-8 is allowed (see vader_text.h). Thread-safe: const
  // and without shared mutable state. Texts under 1 KiB and 64 words allocate nothing.
  VaderScores PolarityScores(std::string_view text) const;

  const VaderLexicon& lexicon() const { return lexicon_; }

 private:
  explicit VaderAnalyzer(VaderLexicon lexicon) : lexicon_(std::move(lexicon)) {}

  VaderLexicon lexicon_;
};

}  // namespace galley::model
