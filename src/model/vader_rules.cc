// Implementation of vader_rules.h. Function names give the reference function each one ports.
#include "model/vader_rules.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <functional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "model/vader_constants.h"

namespace galley::model::vader {
namespace {

// Above this many tokens the "but" rule switches from scanning to an index.
constexpr size_t kButScanLimit = kInlineTokens;

// A multi-word entry of a phrase table, split into words at compile time.
struct Phrase {
  std::array<std::string_view, 3> words{};
  size_t size = 0;
  double value = 0.0;
};

template <size_t N>
constexpr size_t CountMultiWord(const std::array<WeightedPhrase, N>& table) {
  size_t n = 0;
  for (const WeightedPhrase& p : table) n += p.text.find(' ') != std::string_view::npos;
  return n;
}

// The multi-word entries of `table`; one-word entries never match a run of two or three tokens.
template <size_t M, size_t N>
constexpr std::array<Phrase, M> SplitMultiWord(const std::array<WeightedPhrase, N>& table) {
  std::array<Phrase, M> out{};
  size_t n = 0;
  for (const WeightedPhrase& entry : table) {
    std::string_view text = entry.text;
    if (text.find(' ') == std::string_view::npos) continue;
    Phrase& phrase = out[n++];
    phrase.value = entry.value;
    while (true) {
      const size_t space = text.find(' ');
      phrase.words[phrase.size++] = text.substr(0, space);
      if (space == std::string_view::npos) break;
      text.remove_prefix(space + 1);
    }
  }
  return out;
}

// SPECIAL_CASES and the BOOSTER_DICT phrases ("just enough", "kind of", "sort of").
constexpr auto kIdioms = SplitMultiWord<CountMultiWord(kSpecialCases)>(kSpecialCases);
constexpr auto kBoosterPhrases = SplitMultiWord<CountMultiWord(kBoosters)>(kBoosters);

bool Is(const Token& token, std::string_view word) { return token.lower == word; }
bool IsSoOrThis(const Token& token) { return Is(token, "so") || Is(token, "this"); }

// A run of tokens: tokens[first, first + count).
struct Run {
  size_t first;
  size_t count;
};

// The phrase the run spells, if any. Comparing words is what the reference's comparison of
// space-joined words amounts to, tokens having no spaces.
inline const Phrase* FindPhrase(absl::Span<const Phrase> table, absl::Span<const Token> w,
                                Run run) {
  // Every word of a phrase is marked in_phrase; most runs fail here.
  if (w[run.first].info == nullptr || !w[run.first].info->in_phrase) return nullptr;
  for (const Phrase& phrase : table) {
    if (phrase.size != run.count) continue;
    size_t k = 0;
    while (k < run.count && w[run.first + k].lower == phrase.words[k]) ++k;
    if (k == run.count) return &phrase;
  }
  return nullptr;
}

// scalar_inc_dec(): the scalar a booster or dampener adds to the valence after it.
double BoosterScalar(const Token& word, double valence, bool caps_differential) {
  if (!word.is_booster()) return 0.0;
  double scalar = word.info->booster;
  if (valence < 0) scalar *= -1;
  if (word.is_upper && caps_differential) {
    if (valence > 0) {
      scalar += kCapsIncrement;
    } else {
      scalar -= kCapsIncrement;
    }
  }
  return scalar;
}

// _negation_check(): `start` + 1 is the distance from the word checked back to token i.
double NegationCheck(double valence, absl::Span<const Token> w, size_t start, size_t i) {
  if (start == 0) {
    if (w[i - 1].negates) valence = valence * kNegationScalar;
  } else if (start == 1) {
    if (Is(w[i - 2], "never") && IsSoOrThis(w[i - 1])) {
      valence = valence * 1.25;
    } else if (Is(w[i - 2], "without") && Is(w[i - 1], "doubt")) {
      // unchanged
    } else if (w[i - 2].negates) {
      valence = valence * kNegationScalar;
    }
  } else if (start == 2) {
    // NOTE: the reference's "never so/this" test here is (never and so/this) or so/this: a "so"
    // or "this" right before the word boosts it on its own.
    if ((Is(w[i - 3], "never") && IsSoOrThis(w[i - 2])) || IsSoOrThis(w[i - 1])) {
      valence = valence * 1.25;
    } else if (Is(w[i - 3], "without") && (Is(w[i - 2], "doubt") || Is(w[i - 1], "doubt"))) {
      // unchanged
    } else if (w[i - 3].negates) {
      valence = valence * kNegationScalar;
    }
  }
  return valence;
}

// _special_idioms_check(), for i >= 3.
double SpecialIdiomsCheck(double valence, absl::Span<const Token> w, size_t i) {
  const size_t n = w.size();
  // onezero, twoonezero, twoone, threetwoone, threetwo: the first that is an idiom wins.
  for (Run run : {Run{i - 1, 2}, Run{i - 2, 3}, Run{i - 2, 2}, Run{i - 3, 3}, Run{i - 3, 2}}) {
    if (const Phrase* idiom = FindPhrase(kIdioms, w, run)) {
      valence = idiom->value;
      break;
    }
  }
  if (n - 1 > i) {
    if (const Phrase* idiom = FindPhrase(kIdioms, w, {i, 2})) valence = idiom->value;
  }
  if (n - 1 > i + 1) {
    if (const Phrase* idiom = FindPhrase(kIdioms, w, {i, 3})) valence = idiom->value;
  }
  // Booster/dampener phrases such as "kind of" before the word.
  for (Run run : {Run{i - 3, 3}, Run{i - 3, 2}, Run{i - 2, 2}}) {
    if (const Phrase* booster = FindPhrase(kBoosterPhrases, w, run)) {
      valence = valence + booster->value;
    }
  }
  return valence;
}

// _least_check(): "least" before a word negates it, unless it reads "at least" or "very least".
double LeastCheck(double valence, absl::Span<const Token> w, size_t i) {
  if (i > 1 && !w[i - 1].in_lexicon() && Is(w[i - 1], "least")) {
    if (!Is(w[i - 2], "at") && !Is(w[i - 2], "very")) valence = valence * kNegationScalar;
  } else if (i > 0 && !w[i - 1].in_lexicon() && Is(w[i - 1], "least")) {
    valence = valence * kNegationScalar;
  }
  return valence;
}

// sentiment_valence() for a token in the lexicon.
double LexiconValence(absl::Span<const Token> w, size_t i, bool caps_differential) {
  const Token& item = w[i];
  const double base = item.info->valence;
  double valence = base;
  // "no" before another lexicon word negates that word instead of counting itself.
  if (Is(item, "no") && i != w.size() - 1 && w[i + 1].in_lexicon()) valence = 0.0;
  if ((i > 0 && Is(w[i - 1], "no")) || (i > 1 && Is(w[i - 2], "no")) ||
      (i > 2 && Is(w[i - 3], "no") && (Is(w[i - 1], "or") || Is(w[i - 1], "nor")))) {
    valence = base * kNegationScalar;
  }
  if (item.is_upper && caps_differential) {
    if (valence > 0) {
      valence += kCapsIncrement;
    } else {
      valence -= kCapsIncrement;
    }
  }
  for (size_t start = 0; start < 3; ++start) {
    // Boosters, negations and idioms up to three words back. A word that is itself in the
    // lexicon is not read as a modifier (at distance 3 that also skips the idiom check).
    if (i > start && !w[i - (start + 1)].in_lexicon()) {
      double scalar = BoosterScalar(w[i - (start + 1)], valence, caps_differential);
      if (start == 1 && scalar != 0) scalar = scalar * 0.95;
      if (start == 2 && scalar != 0) scalar = scalar * 0.9;
      valence = valence + scalar;
      valence = NegationCheck(valence, w, start, i);
      if (start == 2) valence = SpecialIdiomsCheck(valence, w, i);
    }
  }
  return LeastCheck(valence, w, i);
}

// One step of the "but" rule: the value at `target` (before or after the "but") is scaled.
void ScaleForBut(size_t target, size_t but_index, double value, absl::Span<double> s) {
  if (target < but_index) {
    s[target] = value * 0.5;
  } else if (target > but_index) {
    s[target] = value * 1.5;
  }
}

// normalize(): maps a sum of valences into [-1, 1].
double Normalize(double score) {
  const double norm = score / std::sqrt((score * score) + kNormalizationAlpha);
  if (norm < -1.0) return -1.0;
  if (norm > 1.0) return 1.0;
  return norm;
}

// _punctuation_emphasis(): what '!' and '?' add to the magnitude.
double PunctuationEmphasis(size_t exclamations, size_t questions) {
  const double ep =
      static_cast<double>(std::min<size_t>(exclamations, kMaxExclamations)) * kExclamationIncrement;
  double qm = 0.0;
  if (questions > 1)
    qm = questions <= 3 ? static_cast<double>(questions) * kQuestionIncrement : kQuestionCap;
  return ep + qm;
}

}  // namespace

bool AllCapsDifferential(absl::Span<const Token> tokens) {
  const size_t upper =
      std::count_if(tokens.begin(), tokens.end(), [](const Token& t) { return t.is_upper; });
  const size_t differential = tokens.size() - upper;
  return differential > 0 && differential < tokens.size();
}

Sentiments TokenSentiments(absl::Span<const Token> tokens) {
  const bool caps_differential = AllCapsDifferential(tokens);
  Sentiments sentiments(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    const Token& token = tokens[i];
    if (token.is_booster()) {
      sentiments[i] = 0.0;  // boosters modify others and carry no valence themselves
    } else if (i + 1 < tokens.size() && Is(token, "kind") && Is(tokens[i + 1], "of")) {
      sentiments[i] = 0.0;  // "kind of" is a dampener, not the lexicon word "kind"
    } else if (token.in_lexicon()) {
      sentiments[i] = LexiconValence(tokens, i, caps_differential);
    } else {
      sentiments[i] = 0.0;
    }
  }
  return sentiments;
}

void ApplyButRule(absl::Span<const Token> tokens, absl::Span<double> sentiments) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!Is(tokens[i], "but")) continue;
    if (sentiments.size() <= kButScanLimit) {
      ApplyButRuleScan(i, sentiments);
    } else {
      ApplyButRuleIndexed(i, sentiments);
    }
    return;
  }
}

// The reference: for sentiment in sentiments: si = sentiments.index(sentiment); scale s[si].
// Step k reads s[k] as it is then; index() finds the first equal value, at k at the latest.
// A zero stays zero when scaled, so zeros are skipped.
void ApplyButRuleScan(size_t but_index, absl::Span<double> s) {
  for (size_t k = 0; k < s.size(); ++k) {
    const double value = s[k];
    if (value == 0) continue;
    size_t target = 0;
    while (s[target] != value) ++target;
    ScaleForBut(target, but_index, value, s);
  }
}

// As ApplyButRuleScan, with each nonzero value mapped to a min-heap of the positions holding it.
void ApplyButRuleIndexed(size_t but_index, absl::Span<double> s) {
  absl::flat_hash_map<double, std::vector<size_t>> positions;
  for (size_t j = 0; j < s.size(); ++j) {
    if (s[j] != 0) positions[s[j]].push_back(j);  // ascending order is a valid min-heap
  }
  for (size_t k = 0; k < s.size(); ++k) {
    const double value = s[k];
    if (value == 0) continue;
    std::vector<size_t>& heap = positions.find(value)->second;
    const size_t target = heap.front();
    if (target == but_index) continue;
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    heap.pop_back();
    ScaleForBut(target, but_index, value, s);
    if (s[target] != 0) {
      std::vector<size_t>& moved = positions[s[target]];
      moved.push_back(target);
      std::push_heap(moved.begin(), moved.end(), std::greater<>());
    }
  }
}

VaderScores ScoreValence(absl::Span<const double> sentiments, size_t exclamations,
                         size_t questions) {
  if (sentiments.empty()) return VaderScores{0.0, 0.0, 0.0, 0.0};
  double sum = 0.0;
  for (double s : sentiments) sum += s;
  const double emphasis = PunctuationEmphasis(exclamations, questions);
  if (sum > 0) {
    sum += emphasis;
  } else if (sum < 0) {
    sum -= emphasis;
  }
  const double compound = Normalize(sum);

  // _sift_sentiment_scores(): the +1/-1 compensate for neutral words counting 1.
  double pos_sum = 0.0, neg_sum = 0.0;
  size_t neutral = 0;
  for (double s : sentiments) {
    if (s > 0) pos_sum += (s + 1);
    if (s < 0) neg_sum += (s - 1);
    if (s == 0) ++neutral;
  }
  if (pos_sum > std::fabs(neg_sum)) {
    pos_sum += emphasis;
  } else if (pos_sum < std::fabs(neg_sum)) {
    neg_sum -= emphasis;
  }
  const double total = pos_sum + std::fabs(neg_sum) + static_cast<double>(neutral);
  const double pos = std::fabs(pos_sum / total);
  const double neg = std::fabs(neg_sum / total);
  const double neu = std::fabs(static_cast<double>(neutral) / total);
  return VaderScores{PythonRound(neg, 3), PythonRound(neu, 3), PythonRound(pos, 3),
                     PythonRound(compound, 4)};
}

double PythonRound(double x, int digits) {
  static constexpr double kScale[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
  const double scale = kScale[digits];
  const double scaled = x * scale;
  // Away from a tie the product's rounding error (relative 2^-53) cannot change the result, and
  // integer / power of ten is correctly rounded, as Python's decimal round trip is.
  if (std::fabs(std::fabs(scaled - std::trunc(scaled)) - 0.5) > 1e-6 && std::fabs(scaled) < 1e15) {
    return std::round(scaled) / scale;
  }
  // Near a tie: round the exact binary value in decimal (ties to even), as Python does.
  char buffer[400];
  const auto printed =
      std::to_chars(buffer, buffer + sizeof(buffer), x, std::chars_format::fixed, digits);
  if (printed.ec != std::errc()) return x;
  double rounded = x;
  std::from_chars(buffer, printed.ptr, rounded);
  return rounded;
}

}  // namespace galley::model::vader
