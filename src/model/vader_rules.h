// The scoring rules of VADER as a pure function of the token list: per-token valence (lexicon,
// negation, boosters, ALL CAPS, "least", "kind of", "no", idioms), the contrastive "but" rule,
// punctuation emphasis, normalization and rounding. Each step follows the reference
// implementation (vaderSentiment 3.3.2) operation for operation, so that the doubles come out the
// same bit for bit; the reference's quirks are kept and marked NOTE.
// No state, no I/O, no allocation for inputs of up to 64 tokens (vader.h builds the tokens).
#pragma once

#include <cstddef>
#include <string_view>

#include "absl/container/inlined_vector.h"
#include "absl/types/span.h"
#include "model/vader.h"
#include "model/vader_lexicon.h"

namespace galley::model::vader {

// One word of the text after tokenization.
struct Token {
  std::string_view lower;               // the token, lower-cased (vader_text::LowerInPlace)
  const VaderWordInfo* info = nullptr;  // lexicon data for `lower`; nullptr when there is none
  bool is_upper = false;                // Python's str.isupper() of the token as written
  bool negates = false;                 // a NEGATE word, or contains "n't"

  bool in_lexicon() const { return info != nullptr && info->in_lexicon; }
  bool is_booster() const { return info != nullptr && info->is_booster; }
};

// Python's str.isupper() over the tokens: true when some, but not all, tokens are ALL CAPS.
bool AllCapsDifferential(absl::Span<const Token> tokens);

// Token counts up to which Sentiments (and vader.cc's token list) stay off the heap.
inline constexpr size_t kInlineTokens = 64;
using Sentiments = absl::InlinedVector<double, kInlineTokens>;

// The sentiment of every token, before the "but" rule: element i for tokens[i].
Sentiments TokenSentiments(absl::Span<const Token> tokens);

// The contrastive-conjunction rule: when a token is "but", sentiments before the first "but" are
// halved and those after it grow by half.
// NOTE: as in the reference, each step finds its target with list.index(value), the first
// position holding an equal value, so equal values can make a step change an earlier position.
// Rewrites `sentiments` in place. Precondition: sentiments.size() == tokens.size().
void ApplyButRule(absl::Span<const Token> tokens, absl::Span<double> sentiments);

// The "but" rule given the position of the first "but"; two strategies with the same result, a
// quadratic scan for short inputs and an indexed one for long inputs. Exposed for tests.
void ApplyButRuleScan(size_t but_index, absl::Span<double> sentiments);
void ApplyButRuleIndexed(size_t but_index, absl::Span<double> sentiments);

// Final scores from the token sentiments and the number of '!' and '?' in the text (after emoji
// replacement): compound = normalize(sum + emphasis), proportions of positive, negative and
// neutral weight; rounded as Python's round() does (3 digits, 4 for compound).
VaderScores ScoreValence(absl::Span<const double> sentiments, size_t exclamations,
                         size_t questions);

// Python's round(x, digits) for a double: the double nearest to x correctly rounded to `digits`
// decimals, ties (exact binary values only) to even. 0 <= digits <= 9.
double PythonRound(double x, int digits);

}  // namespace galley::model::vader
