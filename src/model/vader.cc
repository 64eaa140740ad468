// Implementation of vader.h: text preparation (emoji replacement, tokenization) and the pipeline.
#include "model/vader.h"

#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "common/strings.h"
#include "model/vader_lexicon_data.h"
#include "model/vader_rules.h"
#include "model/vader_text.h"

namespace galley::model {
namespace {

// Inline capacities: typical requests fit, longer ones spill to the heap.
constexpr size_t kInlineBytes = 1024;

using TextBuffer = absl::InlinedVector<char, kInlineBytes>;
using Tokens = absl::InlinedVector<vader::Token, vader::kInlineTokens>;

// The text with each emoji replaced by its description, and its '!' and '?' counts (which the
// reference takes after the replacement: the descriptions "ON! arrow" and "UP! button" count).
struct PreparedText {
  TextBuffer text;
  size_t exclamations = 0;
  size_t questions = 0;
};

// Appends `bytes` to `buffer` with one memcpy (InlinedVector::insert copies byte by byte).
void Append(TextBuffer& buffer, std::string_view bytes) {
  const size_t size = buffer.size();
  buffer.resize(size + bytes.size());
  std::memcpy(buffer.data() + size, bytes.data(), bytes.size());
}

PreparedText ReplaceEmojis(const VaderLexicon& lexicon, std::string_view input) {
  PreparedText out;
  out.text.reserve(input.size());
  const auto count_marks = [&out](std::string_view text) {
    for (char c : text) {
      out.exclamations += c == '!';
      out.questions += c == '?';
    }
  };
  size_t run_start = 0;  // input[run_start, pos) is copied as it is; before it, an emoji
  const bool ascii_emojis = lexicon.HasAsciiEmojis();
  for (size_t pos = 0; pos < input.size();) {
    if (static_cast<unsigned char>(input[pos]) < 0x80 && !ascii_emojis) {
      ++pos;
      continue;
    }
    const vader_text::Char c = vader_text::DecodeAt(input, pos);
    const std::string* description = c.valid ? lexicon.FindEmoji(c.code_point) : nullptr;
    if (description == nullptr) {
      pos += c.length;
      continue;
    }
    Append(out.text, input.substr(run_start, pos - run_start));
    count_marks(input.substr(run_start, pos - run_start));
    // The reference puts a space before a description unless the previous character was ' ' (or
    // there was none), and never one after it.
    const bool previous_is_space = pos > run_start ? input[pos - 1] == ' ' : pos == 0;
    if (!previous_is_space) out.text.push_back(' ');
    Append(out.text, *description);
    count_marks(*description);
    pos += c.length;
    run_start = pos;
  }
  Append(out.text, input.substr(run_start));
  count_marks(input.substr(run_start));
  return out;
}

// _strip_punc_if_word(): strips string.punctuation from both ends of text[begin, end), unless
// two characters or fewer would remain. Returns the kept range.
std::pair<size_t, size_t> StripPunctuation(std::string_view text, size_t begin, size_t end) {
  size_t b = begin, e = end;
  while (b < e && vader_text::IsAsciiPunctuation(text[b])) ++b;
  while (e > b && vader_text::IsAsciiPunctuation(text[e - 1])) --e;
  if (b == begin && e == end) return {begin, end};  // nothing to strip
  const size_t bytes = e - b;
  // A character is 1 to 4 bytes: only 3 to 8 bytes need counting.
  const bool short_word =
      bytes <= 2 || (bytes <= 8 && vader_text::CharCount(text.substr(b, bytes)) <= 2);
  return short_word ? std::pair(begin, end) : std::pair(b, e);
}

// Splits `text` as Python's str.split() does, strips punctuation, records each token's case and
// lower-cases it in place, and looks it up. The tokens point into `text`.
Tokens Tokenize(const VaderLexicon& lexicon, absl::Span<char> text) {
  const std::string_view view(text.data(), text.size());
  Tokens tokens;
  size_t pos = 0;
  while (pos < view.size()) {
    // Byte steps are safe: no byte inside a multi-byte character can start a space.
    if (const size_t space = vader_text::SpaceLengthAt(view, pos); space > 0) {
      pos += space;
      continue;
    }
    const size_t start = pos;
    while (pos < view.size() && vader_text::SpaceLengthAt(view, pos) == 0) ++pos;
    const auto [b, e] = StripPunctuation(view, start, pos);
    vader::Token token;
    token.is_upper = vader_text::IsUpper(view.substr(b, e - b));
    vader_text::LowerInPlace(text.data() + b, e - b);
    token.lower = view.substr(b, e - b);
    token.info = lexicon.Find(token.lower);
    token.negates = (token.info != nullptr && token.info->is_negation) ||
                    token.lower.find("n't") != std::string_view::npos;
    tokens.push_back(token);
  }
  return tokens;
}

}  // namespace

absl::StatusOr<std::unique_ptr<VaderAnalyzer>> VaderAnalyzer::Create() {
  absl::StatusOr<std::unique_ptr<VaderAnalyzer>> analyzer =
      FromText(VaderLexiconText(), EmojiLexiconText());
  if (!analyzer.ok()) {
    return absl::InternalError(StrCat("embedded VADER lexicon: ", analyzer.status().message()));
  }
  return analyzer;
}

absl::StatusOr<std::unique_ptr<VaderAnalyzer>> VaderAnalyzer::FromText(
    std::string_view lexicon, std::string_view emoji_lexicon) {
  absl::StatusOr<VaderLexicon> parsed = VaderLexicon::Parse(lexicon, emoji_lexicon);
  if (!parsed.ok()) return parsed.status();
  return std::unique_ptr<VaderAnalyzer>(new VaderAnalyzer(*std::move(parsed)));
}

VaderScores VaderAnalyzer::PolarityScores(std::string_view text) const {
  PreparedText prepared = ReplaceEmojis(lexicon_, text);
  const Tokens tokens = Tokenize(lexicon_, absl::MakeSpan(prepared.text));
  vader::Sentiments sentiments = vader::TokenSentiments(tokens);
  vader::ApplyButRule(tokens, absl::MakeSpan(sentiments));
  return vader::ScoreValence(sentiments, prepared.exclamations, prepared.questions);
}

}  // namespace galley::model
