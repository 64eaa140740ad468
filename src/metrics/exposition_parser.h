// A parser for the Prometheus text exposition format 0.0.4 (what every `/metrics` in Galley
// serves, and what the autoscaler scrapes). It reads HELP and TYPE lines, samples with or without
// labels (label values with \\, \" and \n escapes), the special values NaN, +Inf and -Inf, and
// optional millisecond timestamps; other comment lines and blank lines are skipped.
// Format: https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace galley::metrics {

struct ParsedSample {
  std::string name;  // as written, including _bucket/_sum/_count/_total suffixes
  std::vector<std::pair<std::string, std::string>> labels;  // in order, values unescaped
  double value = 0;
  std::optional<int64_t> timestamp_ms;

  // The value of label `name`, or nullptr.
  const std::string* Label(std::string_view label) const;
};

struct ParsedExposition {
  std::vector<ParsedSample> samples;         // in order
  std::map<std::string, std::string> types;  // metric family -> "counter", "gauge", ...
  std::map<std::string, std::string> help;   // metric family -> docstring, unescaped
};

// Parses a whole exposition. Pure. InvalidArgument, naming the 1-based line and what is wrong, for
// a malformed sample (bad metric or label name, unterminated or badly escaped label value, a
// duplicate label, a value or timestamp that is not a number, trailing garbage), a TYPE line with
// an unknown type, or a second TYPE or HELP line for the same family.
absl::StatusOr<ParsedExposition> ParseExposition(std::string_view text);

// The sum of the samples named `name` whose value is a number (NaN is skipped; an infinity makes
// the sum infinite), or nullopt when there is no such sample.
std::optional<double> SumSamples(const ParsedExposition& exposition, std::string_view name);

}  // namespace galley::metrics
