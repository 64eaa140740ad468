#include "metrics/exposition_parser.h"

#include <charconv>
#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "common/strings.h"

namespace galley::metrics {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t'; }
bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

// A cursor over one line.
struct Line {
  std::string_view s;
  size_t pos = 0;

  bool AtEnd() const { return pos >= s.size(); }
  char Peek() const { return AtEnd() ? '\0' : s[pos]; }
  // Skips blanks; returns how many.
  size_t SkipSpace() {
    const size_t start = pos;
    while (!AtEnd() && IsSpace(s[pos])) ++pos;
    return pos - start;
  }
  // A metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or, without colons, a label name; empty if none.
  std::string_view Name(bool colons) {
    const size_t start = pos;
    auto first = [&](char c) { return IsNameStart(c) || (colons && c == ':'); };
    auto rest = [&](char c) { return IsNameChar(c) || (colons && c == ':'); };
    if (AtEnd() || !first(s[pos])) return {};
    ++pos;
    while (!AtEnd() && rest(s[pos])) ++pos;
    return s.substr(start, pos - start);
  }
  // Everything up to the next blank.
  std::string_view Token() {
    const size_t start = pos;
    while (!AtEnd() && !IsSpace(s[pos])) ++pos;
    return s.substr(start, pos - start);
  }
};

absl::Status Bad(int line_no, std::string_view what) {
  return absl::InvalidArgumentError(StrCat("exposition line ", line_no, ": ", what));
}

// Go's strconv.ParseFloat spellings that Prometheus accepts: decimals and exponents, NaN, Inf,
// +Inf, -Inf (any case).
std::optional<double> ParseValue(std::string_view t) {
  if (t.empty()) return std::nullopt;
  bool negative = false;
  std::string_view body = t;
  if (body.front() == '+' || body.front() == '-') {
    negative = body.front() == '-';
    body.remove_prefix(1);
  }
  if (EqualsIgnoreCase(body, "inf") || EqualsIgnoreCase(body, "infinity")) {
    return negative ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
  }
  if (EqualsIgnoreCase(body, "nan")) return std::numeric_limits<double>::quiet_NaN();
  if (body.empty() || body.front() == '+' || body.front() == '-') return std::nullopt;
  double v = 0;
  const auto r = std::from_chars(body.data(), body.data() + body.size(), v);
  if (r.ec != std::errc() || r.ptr != body.data() + body.size()) return std::nullopt;
  return negative ? -v : v;
}

// Reads a quoted label value after its opening quote; unescapes \\, \" and \n.
absl::StatusOr<std::string> QuotedValue(Line& l, int line_no) {
  std::string out;
  while (!l.AtEnd()) {
    const char c = l.s[l.pos++];
    if (c == '"') return out;
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (l.AtEnd()) break;
    const char e = l.s[l.pos++];
    if (e == '\\' || e == '"') {
      out.push_back(e);
    } else if (e == 'n') {
      out.push_back('\n');
    } else {
      return Bad(line_no, StrCat("invalid escape \\", e, " in a label value"));
    }
  }
  return Bad(line_no, "unterminated label value");
}

absl::Status ParseLabels(Line& l, int line_no, ParsedSample& sample) {
  ++l.pos;  // '{'
  while (true) {
    l.SkipSpace();
    if (l.Peek() == '}') break;
    const std::string_view name = l.Name(/*colons=*/false);
    if (name.empty()) return Bad(line_no, "expected a label name or '}'");
    l.SkipSpace();
    if (l.Peek() != '=') return Bad(line_no, StrCat("expected '=' after label ", name));
    ++l.pos;
    l.SkipSpace();
    if (l.Peek() != '"') {
      return Bad(line_no, StrCat("expected '\"' to open label ", name, "'s value"));
    }
    ++l.pos;
    absl::StatusOr<std::string> value = QuotedValue(l, line_no);
    if (!value.ok()) return value.status();
    if (sample.Label(name) != nullptr) return Bad(line_no, StrCat("duplicate label ", name));
    sample.labels.emplace_back(std::string(name), *std::move(value));
    l.SkipSpace();
    if (l.Peek() == ',') {
      ++l.pos;
      continue;
    }
    if (l.Peek() != '}') return Bad(line_no, "expected ',' or '}' after a label value");
    break;
  }
  ++l.pos;  // '}'
  return absl::OkStatus();
}

absl::Status ParseSample(std::string_view text, int line_no, ParsedExposition& out) {
  Line l{text};
  ParsedSample sample;
  const std::string_view name = l.Name(/*colons=*/true);
  if (name.empty()) return Bad(line_no, "expected a metric name");
  sample.name = std::string(name);
  const size_t blanks = l.SkipSpace();
  if (l.Peek() == '{') {
    if (absl::Status st = ParseLabels(l, line_no, sample); !st.ok()) return st;
    l.SkipSpace();
  } else if (l.AtEnd()) {
    return Bad(line_no, StrCat("no value after metric name ", name));
  } else if (blanks == 0) {
    return Bad(line_no, StrCat("unexpected character after metric name ", name));
  }
  const std::string_view value_text = l.Token();
  const std::optional<double> value = ParseValue(value_text);
  if (!value) return Bad(line_no, StrCat("value '", value_text, "' is not a number"));
  sample.value = *value;
  l.SkipSpace();
  if (!l.AtEnd()) {
    const std::string_view ts = l.Token();
    int64_t ms = 0;
    const auto r = std::from_chars(ts.data(), ts.data() + ts.size(), ms);
    if (ts.empty() || r.ec != std::errc() || r.ptr != ts.data() + ts.size()) {
      return Bad(line_no, StrCat("timestamp '", ts, "' is not an integer"));
    }
    sample.timestamp_ms = ms;
    l.SkipSpace();
    if (!l.AtEnd()) return Bad(line_no, "unexpected text after the timestamp");
  }
  out.samples.push_back(std::move(sample));
  return absl::OkStatus();
}

std::string UnescapeHelp(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '\\' || s[i + 1] == 'n')) {
      out.push_back(s[i + 1] == 'n' ? '\n' : '\\');
      ++i;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// "# HELP name doc" or "# TYPE name type"; any other comment is ignored.
absl::Status ParseComment(std::string_view text, int line_no, ParsedExposition& out) {
  Line l{text};
  ++l.pos;  // '#'
  l.SkipSpace();
  const std::string_view keyword = l.Token();
  if (keyword != "HELP" && keyword != "TYPE") return absl::OkStatus();
  if (l.SkipSpace() == 0) return absl::OkStatus();  // "# HELP" alone: a plain comment
  const std::string_view name = l.Name(/*colons=*/true);
  if (name.empty() || (!l.AtEnd() && !IsSpace(l.Peek()))) {
    return Bad(line_no, StrCat("invalid metric name in ", keyword, " line"));
  }
  l.SkipSpace();
  const std::string_view rest = l.s.substr(l.pos);
  if (keyword == "HELP") {
    if (!out.help.emplace(std::string(name), UnescapeHelp(rest)).second) {
      return Bad(line_no, StrCat("second HELP line for ", name));
    }
    return absl::OkStatus();
  }
  const std::string_view type = StripWhitespace(rest);
  if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" &&
      type != "untyped") {
    return Bad(line_no, StrCat("unknown metric type '", type, "'"));
  }
  if (!out.types.emplace(std::string(name), std::string(type)).second) {
    return Bad(line_no, StrCat("second TYPE line for ", name));
  }
  return absl::OkStatus();
}

}  // namespace

const std::string* ParsedSample::Label(std::string_view label) const {
  for (const auto& [k, v] : labels) {
    if (k == label) return &v;
  }
  return nullptr;
}

absl::StatusOr<ParsedExposition> ParseExposition(std::string_view text) {
  ParsedExposition out;
  int line_no = 0;
  for (std::string_view line : Split(text, '\n')) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    Line l{line};
    l.SkipSpace();
    if (l.AtEnd()) continue;
    const std::string_view body = line.substr(l.pos);
    absl::Status st =
        body.front() == '#' ? ParseComment(body, line_no, out) : ParseSample(body, line_no, out);
    if (!st.ok()) return st;
  }
  return out;
}

std::optional<double> SumSamples(const ParsedExposition& exposition, std::string_view name) {
  std::optional<double> sum;
  for (const ParsedSample& s : exposition.samples) {
    if (s.name != name) continue;
    if (!sum) sum = 0;
    if (!std::isnan(s.value)) *sum += s.value;
  }
  return sum;
}

}  // namespace galley::metrics
