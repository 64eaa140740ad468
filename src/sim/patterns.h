// Synthetic load patterns for the autoscaling simulator (autoscale_sim.h): shapes that stress an
// autoscaler in ways one trace does not. Each pattern is a relative rate per whole second in
// [0, 1] (1 = the peak, held for at least 10 s so a 10-s window sees it), made from a seed;
// RateArrivals (arrivals.h) turns rates into Poisson arrivals. Pure and deterministic for a seed.
// docs/autoscale-sim.md ("Synthetic patterns") gives each shape's numbers.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace galley::sim {

enum class Pattern {
  kDiurnal,  // a day compressed: cosine from 10% to the peak and back, one period
  kBursts,   // 10% base, a 30-s burst at the peak every 5 min (seeded phase)
  kClimb,    // a slow linear climb from 5% to the peak over the whole run
  kFlash,    // 15% base, a jump to the peak at a seeded instant, then an exponential decay
  kQuiet,    // 1% base, rare 20-s spikes at the peak at seeded exponential gaps (mean 10 min)
};

// "diurnal", "bursts", "climb", "flash", "quiet"; InvalidArgument naming the unknown name.
absl::StatusOr<Pattern> ParsePattern(std::string_view name);
std::string_view PatternName(Pattern p);

// The pattern's relative rate for each second of [0, duration_s), peak exactly 1.
std::vector<double> PatternShape(Pattern p, int duration_s, uint64_t seed);

}  // namespace galley::sim
