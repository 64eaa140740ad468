// Arrival processes for the autoscaling simulator (autoscale_sim.h): a real request trace, scaled
// in rate, a synthetic step from idle to a high rate, and Poisson arrivals at given per-second
// rates (the synthetic patterns of patterns.h). Everything here is pure and
// deterministic given its seed; reading files is the caller's business (sim/trace.h ReadFile).
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace galley::sim {

// Uniform in [0, 1) from 53 random bits: the same on every platform for a seed (unlike
// std::uniform_real_distribution, whose algorithm the standard leaves open).
double Uniform01(std::mt19937_64& rng);

// Parses a request trace in the schema of Azure/AzurePublicDataset's AzureLLMInferenceTrace_*.csv:
// a header naming a TIMESTAMP column (other columns ignored), then one request per line with
// TIMESTAMP as "YYYY-MM-DD HH:MM:SS[.fraction]" (UTC). Returns each request's offset in seconds
// from the earliest one, sorted. `origin` names the input in errors. InvalidArgument, naming the
// line, on a missing TIMESTAMP column, a line with too few fields or an unparsable time; on no
// requests at all.
absl::StatusOr<std::vector<double>> ParseAzureTrace(std::string_view text, std::string_view origin);

// The highest arrival rate (requests per second) over any window of `window_s` seconds starting at
// an arrival (a sliding window over sorted `offsets`).
double PeakRate(const std::vector<double>& offsets, double window_s);

// A stream of arrival instants (seconds from the start of the simulation), non-decreasing.
class ArrivalStream {
 public:
  virtual ~ArrivalStream() = default;
  // The next arrival, or nullopt when the stream has ended (then always nullopt).
  virtual std::optional<double> Next() = 0;
};

// Replays a given list of instants (sorted by the constructor).
class ListArrivals : public ArrivalStream {
 public:
  explicit ListArrivals(std::vector<double> times);
  std::optional<double> Next() override;

 private:
  std::vector<double> times_;
  size_t next_ = 0;
};

// A trace multiplied in rate by replicating its arrivals: each original request at offset t
// becomes floor(factor) copies, plus one more with probability frac(factor), each at an instant
// drawn uniformly from the original's one-second bin [floor(t), floor(t) + 1). The rate per
// second is then `factor` times the trace's (in expectation), its shape over seconds and minutes
// is the trace's, and within a second arrivals are uniform (Poisson-like). Lazy: one second of
// arrivals in memory at a time. Deterministic for a seed.
class ScaledTraceArrivals : public ArrivalStream {
 public:
  // `offsets` sorted, non-negative; factor > 0.
  ScaledTraceArrivals(std::vector<double> offsets, double factor, uint64_t seed);
  std::optional<double> Next() override;

 private:
  bool FillNextBin();

  std::vector<double> offsets_;
  double factor_;
  std::mt19937_64 rng_;
  size_t next_original_ = 0;
  std::vector<double> bin_;  // this bin's arrivals, sorted
  size_t next_in_bin_ = 0;
};

// Poisson arrivals at `idle_rate` per second on [0, step_at), then at `peak_rate` on
// [step_at, end). A rate of 0 gives no arrivals in that phase. Deterministic for a seed.
class StepArrivals : public ArrivalStream {
 public:
  StepArrivals(double idle_rate, double peak_rate, double step_at, double end, uint64_t seed);
  std::optional<double> Next() override;

 private:
  double idle_rate_, peak_rate_, step_at_, end_;
  std::mt19937_64 rng_;
  double t_ = 0;
};

// Poisson arrivals with a rate constant within each whole second: `rates[s]` requests per second
// on [s, s + 1). Deterministic for a seed.
class RateArrivals : public ArrivalStream {
 public:
  RateArrivals(std::vector<double> rates, uint64_t seed);
  std::optional<double> Next() override;

 private:
  std::vector<double> rates_;
  std::mt19937_64 rng_;
  double t_ = 0;
};

}  // namespace galley::sim
