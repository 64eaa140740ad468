// The fixed numbers and word lists of VADER, as the reference implementation (vaderSentiment
// 3.3.2, vaderSentiment.py) defines them: the empirically derived increments, the negation words,
// the booster/dampener words and phrases, and the special-case idioms.
#pragma once

#include <array>
#include <string_view>

namespace galley::model::vader {

// Mean rating increase from a booster word (B_DECR is its negative, for dampeners).
inline constexpr double kBoosterIncrement = 0.293;
inline constexpr double kBoosterDecrement = -0.293;
// Mean rating increase from writing a sentiment word in ALL CAPS among other words.
inline constexpr double kCapsIncrement = 0.733;
// Factor applied to a negated valence.
inline constexpr double kNegationScalar = -0.74;
// Added per exclamation mark (at most 4 of them count).
inline constexpr double kExclamationIncrement = 0.292;
inline constexpr int kMaxExclamations = 4;
// Added per question mark when there are 2 or 3; 4 or more add kQuestionCap.
inline constexpr double kQuestionIncrement = 0.18;
inline constexpr double kQuestionCap = 0.96;
// normalize(): score / sqrt(score^2 + alpha).
inline constexpr double kNormalizationAlpha = 15.0;

// NEGATE: a word that negates a sentiment word up to three words after it. (Any word containing
// "n't" does too.)
inline constexpr std::array<std::string_view, 59> kNegations = {
    "aint",   "arent",    "cannot",  "cant",     "couldnt",  "darent",   "didnt",   "doesnt",
    "ain't",  "aren't",   "can't",   "couldn't", "daren't",  "didn't",   "doesn't", "dont",
    "hadnt",  "hasnt",    "havent",  "isnt",     "mightnt",  "mustnt",   "neither", "don't",
    "hadn't", "hasn't",   "haven't", "isn't",    "mightn't", "mustn't",  "neednt",  "needn't",
    "never",  "none",     "nope",    "nor",      "not",      "nothing",  "nowhere", "oughtnt",
    "shant",  "shouldnt", "uhuh",    "wasnt",    "werent",   "oughtn't", "shan't",  "shouldn't",
    "uh-uh",  "wasn't",   "weren't", "without",  "wont",     "wouldnt",  "won't",   "wouldn't",
    "rarely", "seldom",   "despite"};

struct WeightedPhrase {
  std::string_view text;  // lower-case words separated by single spaces
  double value;
};

// BOOSTER_DICT: degree adverbs that scale the sentiment word after them. Four entries are
// two-word phrases; they act only through the idiom check (a token never contains a space).
inline constexpr double kUp = kBoosterIncrement;
inline constexpr double kDown = kBoosterDecrement;
inline constexpr std::array<WeightedPhrase, 84> kBoosters = {{
    {"absolutely", kUp},    {"amazingly", kUp},      {"awfully", kUp},       {"completely", kUp},
    {"considerable", kUp},  {"considerably", kUp},   {"decidedly", kUp},     {"deeply", kUp},
    {"effing", kUp},        {"enormous", kUp},       {"enormously", kUp},    {"entirely", kUp},
    {"especially", kUp},    {"exceptional", kUp},    {"exceptionally", kUp}, {"extreme", kUp},
    {"extremely", kUp},     {"fabulously", kUp},     {"flipping", kUp},      {"flippin", kUp},
    {"frackin", kUp},       {"fracking", kUp},       {"fricking", kUp},      {"frickin", kUp},
    {"frigging", kUp},      {"friggin", kUp},        {"fully", kUp},         {"fuckin", kUp},
    {"fucking", kUp},       {"fuggin", kUp},         {"fugging", kUp},       {"greatly", kUp},
    {"hella", kUp},         {"highly", kUp},         {"hugely", kUp},        {"incredible", kUp},
    {"incredibly", kUp},    {"intensely", kUp},      {"major", kUp},         {"majorly", kUp},
    {"more", kUp},          {"most", kUp},           {"particularly", kUp},  {"purely", kUp},
    {"quite", kUp},         {"really", kUp},         {"remarkably", kUp},    {"so", kUp},
    {"substantially", kUp}, {"thoroughly", kUp},     {"total", kUp},         {"totally", kUp},
    {"tremendous", kUp},    {"tremendously", kUp},   {"uber", kUp},          {"unbelievably", kUp},
    {"unusually", kUp},     {"utter", kUp},          {"utterly", kUp},       {"very", kUp},
    {"almost", kDown},      {"barely", kDown},       {"hardly", kDown},      {"just enough", kDown},
    {"kind of", kDown},     {"kinda", kDown},        {"kindof", kDown},      {"kind-of", kDown},
    {"less", kDown},        {"little", kDown},       {"marginal", kDown},    {"marginally", kDown},
    {"occasional", kDown},  {"occasionally", kDown}, {"partly", kDown},      {"scarce", kDown},
    {"scarcely", kDown},    {"slight", kDown},       {"slightly", kDown},    {"somewhat", kDown},
    {"sort of", kDown},     {"sorta", kDown},        {"sortof", kDown},      {"sort-of", kDown},
}};

// SPECIAL_CASES: idioms whose valence replaces the computed one. ("badass" is one word and, as in
// the reference, never matches: only sequences of two or three tokens are compared.)
inline constexpr std::array<WeightedPhrase, 9> kSpecialCases = {{
    {"the shit", 3},
    {"the bomb", 3},
    {"bad ass", 1.5},
    {"badass", 1.5},
    {"bus stop", 0.0},
    {"yeah right", -2},
    {"kiss of death", -1.5},
    {"to die for", 3},
    {"beating heart", 3.5},
}};

}  // namespace galley::model::vader
