// Implementation of vader_lexicon.h.
#include "model/vader_lexicon.h"

#include <charconv>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "model/vader_constants.h"
#include "model/vader_text.h"

namespace galley::model {
namespace {

// Shortens a line for an error message.
std::string_view Excerpt(std::string_view line) { return line.substr(0, 80); }

// Calls `fn(line_number, first_field, second_field)` for each non-blank line of `text`, split the
// way the reference splits it: text.rstrip('\n').split('\n'), then line.strip().split('\t')[0:2].
// The first field is never empty: a stripped line cannot start with a tab.
absl::Status ForEachEntry(
    std::string_view name, std::string_view text,
    const std::function<absl::Status(size_t, std::string_view, std::string_view)>& fn) {
  if (!vader_text::IsValidUtf8(text)) {
    return absl::InvalidArgumentError(StrCat(name, " is not valid UTF-8"));
  }
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  size_t line_number = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t newline = text.find('\n', pos);
    if (newline == std::string_view::npos) newline = text.size();
    const std::string_view line = vader_text::StripSpace(text.substr(pos, newline - pos));
    pos = newline + 1;
    ++line_number;
    if (line.empty()) continue;
    const size_t tab = line.find('\t');
    if (tab == std::string_view::npos) {
      return absl::InvalidArgumentError(StrCat(name, " line ", line_number,
                                               ": expected two tab-separated fields, got \"",
                                               Excerpt(line), "\""));
    }
    std::string_view second = line.substr(tab + 1);
    second = second.substr(0, second.find('\t'));
    RETURN_IF_ERROR(fn(line_number, line.substr(0, tab), second));
  }
  return absl::OkStatus();
}

// Python's float() for the numbers the lexicon holds (see the NOTE in the header).
std::optional<double> ParseNumber(std::string_view text) {
  text = vader_text::StripSpace(text);
  if (!text.empty() && text.front() == '+') {
    text.remove_prefix(1);
    if (!text.empty() && text.front() == '-') return std::nullopt;
  }
  double value = 0.0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value, std::chars_format::general);
  if (ec != std::errc() || ptr != end || !std::isfinite(value)) return std::nullopt;
  return value;
}

}  // namespace

absl::StatusOr<VaderLexicon> VaderLexicon::Parse(std::string_view lexicon, std::string_view emoji) {
  VaderLexicon out;
  RETURN_IF_ERROR(ForEachEntry(
      "VADER lexicon", lexicon,
      [&out](size_t line_number, std::string_view word, std::string_view measure) {
        const std::optional<double> valence = ParseNumber(measure);
        if (!valence.has_value()) {
          return absl::InvalidArgumentError(StrCat("VADER lexicon line ", line_number, ": \"",
                                                   Excerpt(measure), "\" is not a number"));
        }
        VaderWordInfo& info = out.words_[std::string(word)];
        if (!info.in_lexicon) ++out.lexicon_size_;
        info.in_lexicon = true;
        info.valence = *valence;
        return absl::OkStatus();
      }));
  RETURN_IF_ERROR(
      ForEachEntry("VADER emoji lexicon", emoji,
                   [&out](size_t, std::string_view key, std::string_view description) {
                     const vader_text::Char c = vader_text::DecodeAt(key, 0);  // key is never empty
                     if (c.length != key.size())
                       return absl::OkStatus();  // several code points: never used
                     out.emojis_.insert_or_assign(c.code_point, std::string(description));
                     if (c.code_point < 0x80) out.ascii_emoji_.set(c.code_point);
                     return absl::OkStatus();
                   }));
  out.AddReferenceWordLists();
  return out;
}

void VaderLexicon::AddReferenceWordLists() {
  for (const vader::WeightedPhrase& booster : vader::kBoosters) {
    if (booster.text.find(' ') != std::string_view::npos) continue;  // phrases: see vader_rules
    VaderWordInfo& info = words_[std::string(booster.text)];
    info.is_booster = true;
    info.booster = booster.value;
  }
  for (std::string_view negation : vader::kNegations) {
    words_[std::string(negation)].is_negation = true;
  }
  for (const auto& table :
       {absl::MakeConstSpan(vader::kSpecialCases), absl::MakeConstSpan(vader::kBoosters)}) {
    for (const vader::WeightedPhrase& phrase : table) {
      if (phrase.text.find(' ') == std::string_view::npos) continue;
      for (std::string_view word : Split(phrase.text, ' ')) {
        words_[std::string(word)].in_phrase = true;
      }
    }
  }
}

}  // namespace galley::model
