#include "sim/arrivals.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/time/time.h"
#include "common/strings.h"

namespace galley::sim {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '"'))
    s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '"')) {
    s.remove_suffix(1);
  }
  return s;
}

// One exponential gap at `rate` from t; true with t moved to the next arrival, or false with t
// moved to phase_end when the gap crosses it (the process is memoryless, so it restarts there).
bool PoissonStep(double& t, double rate, double phase_end, std::mt19937_64& rng) {
  const double next = t - std::log1p(-Uniform01(rng)) / rate;
  if (next >= phase_end) {
    t = phase_end;
    return false;
  }
  t = next;
  return true;
}

}  // namespace

double Uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

absl::StatusOr<std::vector<double>> ParseAzureTrace(std::string_view text,
                                                    std::string_view origin) {
  std::vector<absl::Time> times;
  int column = -1;
  size_t min_fields = 0;
  int line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (Trim(line).empty()) continue;
    const std::vector<std::string_view> fields = Split(line, ',');
    if (column < 0) {
      for (size_t i = 0; i < fields.size(); ++i) {
        if (Trim(fields[i]) == "TIMESTAMP") column = static_cast<int>(i);
      }
      if (column < 0) {
        return absl::InvalidArgumentError(
            StrCat(origin, ":", line_no,
                   ": no TIMESTAMP column in the header (expected the "
                   "Azure LLM inference trace schema TIMESTAMP,ContextTokens,GeneratedTokens)"));
      }
      min_fields = static_cast<size_t>(column) + 1;
      continue;
    }
    if (fields.size() < min_fields) {
      return absl::InvalidArgumentError(StrCat(origin, ":", line_no, ": ", fields.size(),
                                               " fields, TIMESTAMP is field ", min_fields));
    }
    const std::string_view value = Trim(fields[static_cast<size_t>(column)]);
    absl::Time t;
    std::string err;
    if (!absl::ParseTime("%Y-%m-%d %H:%M:%E*S", std::string(value), absl::UTCTimeZone(), &t,
                         &err)) {
      return absl::InvalidArgumentError(StrCat(origin, ":", line_no, ": bad TIMESTAMP '", value,
                                               "' (want YYYY-MM-DD HH:MM:SS.fraction): ", err));
    }
    times.push_back(t);
  }
  if (column < 0 || times.empty()) {
    return absl::InvalidArgumentError(StrCat(origin, ": no requests in the trace"));
  }
  std::sort(times.begin(), times.end());
  std::vector<double> offsets;
  offsets.reserve(times.size());
  for (const absl::Time t : times) offsets.push_back(absl::ToDoubleSeconds(t - times.front()));
  return offsets;
}

double PeakRate(const std::vector<double>& offsets, double window_s) {
  size_t lo = 0, best = 0;
  for (size_t hi = 0; hi < offsets.size(); ++hi) {
    while (offsets[hi] - offsets[lo] >= window_s) ++lo;
    best = std::max(best, hi - lo + 1);
  }
  return static_cast<double>(best) / window_s;
}

ListArrivals::ListArrivals(std::vector<double> times) : times_(std::move(times)) {
  std::sort(times_.begin(), times_.end());
}

std::optional<double> ListArrivals::Next() {
  if (next_ >= times_.size()) return std::nullopt;
  return times_[next_++];
}

ScaledTraceArrivals::ScaledTraceArrivals(std::vector<double> offsets, double factor, uint64_t seed)
    : offsets_(std::move(offsets)), factor_(factor), rng_(seed) {}

bool ScaledTraceArrivals::FillNextBin() {
  bin_.clear();
  next_in_bin_ = 0;
  while (bin_.empty() && next_original_ < offsets_.size()) {
    const double second = std::floor(offsets_[next_original_]);
    const double whole = std::floor(factor_);
    const double frac = factor_ - whole;
    int64_t copies = 0;
    while (next_original_ < offsets_.size() && std::floor(offsets_[next_original_]) == second) {
      copies += static_cast<int64_t>(whole) + (Uniform01(rng_) < frac ? 1 : 0);
      ++next_original_;
    }
    for (int64_t i = 0; i < copies; ++i) bin_.push_back(second + Uniform01(rng_));
  }
  std::sort(bin_.begin(), bin_.end());
  return !bin_.empty();
}

std::optional<double> ScaledTraceArrivals::Next() {
  if (next_in_bin_ >= bin_.size() && !FillNextBin()) return std::nullopt;
  return bin_[next_in_bin_++];
}

StepArrivals::StepArrivals(double idle_rate, double peak_rate, double step_at, double end,
                           uint64_t seed)
    : idle_rate_(idle_rate), peak_rate_(peak_rate), step_at_(step_at), end_(end), rng_(seed) {}

std::optional<double> StepArrivals::Next() {
  while (t_ < end_) {
    const bool idle = t_ < step_at_;
    const double rate = idle ? idle_rate_ : peak_rate_;
    const double phase_end = idle ? step_at_ : end_;
    if (rate <= 0) {
      t_ = phase_end;
      continue;
    }
    if (PoissonStep(t_, rate, phase_end, rng_)) return t_;
  }
  return std::nullopt;
}

RateArrivals::RateArrivals(std::vector<double> rates, uint64_t seed)
    : rates_(std::move(rates)), rng_(seed) {}

std::optional<double> RateArrivals::Next() {
  const double end = static_cast<double>(rates_.size());
  while (t_ < end) {
    const double second = std::floor(t_);
    const double rate = rates_[static_cast<size_t>(second)];
    if (rate <= 0) {
      t_ = second + 1;
      continue;
    }
    if (PoissonStep(t_, rate, second + 1, rng_)) return t_;
  }
  return std::nullopt;
}

}  // namespace galley::sim
