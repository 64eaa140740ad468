#include "sim/patterns.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>

#include "common/strings.h"
#include "sim/arrivals.h"

namespace galley::sim {
namespace {

constexpr std::pair<std::string_view, Pattern> kPatterns[] = {{"diurnal", Pattern::kDiurnal},
                                                              {"bursts", Pattern::kBursts},
                                                              {"climb", Pattern::kClimb},
                                                              {"flash", Pattern::kFlash},
                                                              {"quiet", Pattern::kQuiet}};

// Holds `level` on [from, to) (clipped to the run).
void Plateau(std::vector<double>& r, double from, double to, double level) {
  const auto n = static_cast<double>(r.size());
  for (auto s = static_cast<size_t>(std::clamp(std::floor(from), 0.0, n));
       s < static_cast<size_t>(std::clamp(std::ceil(to), 0.0, n)); ++s) {
    r[s] = std::max(r[s], level);
  }
}

}  // namespace

absl::StatusOr<Pattern> ParsePattern(std::string_view name) {
  for (const auto& [n, p] : kPatterns) {
    if (n == name) return p;
  }
  return absl::InvalidArgumentError(
      StrCat("unknown pattern '", name, "' (want diurnal, bursts, climb, flash or quiet)"));
}

std::string_view PatternName(Pattern p) {
  for (const auto& [n, q] : kPatterns) {
    if (q == p) return n;
  }
  return "?";
}

std::vector<double> PatternShape(Pattern p, int duration_s, uint64_t seed) {
  const auto n = static_cast<size_t>(std::max(duration_s, 1));
  const double d = static_cast<double>(n);
  std::mt19937_64 rng(seed);
  std::vector<double> r(n, 0.0);
  switch (p) {
    case Pattern::kDiurnal: {
      // One period over the run, trough at the start; the crest moves by up to +-5% per seed.
      const double shift = (Uniform01(rng) - 0.5) * 0.1 * d;
      for (size_t s = 0; s < n; ++s) {
        const double x = 2 * std::numbers::pi * (static_cast<double>(s) + 0.5 - shift) / d;
        r[s] = 0.1 + 0.9 * (1 - std::cos(x)) / 2;
      }
      // The crest held for 10 s, so a 10-s window sees the peak.
      const double crest = d / 2 + shift;
      Plateau(r, crest - 5, crest + 5, 1.0);
      break;
    }
    case Pattern::kBursts: {
      std::fill(r.begin(), r.end(), 0.1);
      for (double t = Uniform01(rng) * 300; t < d; t += 300) Plateau(r, t, t + 30, 1.0);
      break;
    }
    case Pattern::kClimb: {
      // Linear from 5% to the peak at 95% of the run, then held.
      for (size_t s = 0; s < n; ++s) {
        r[s] = std::min(1.0, 0.05 + 0.95 * static_cast<double>(s) / (0.95 * d));
      }
      break;
    }
    case Pattern::kFlash: {
      // 15% until a seeded instant in [25%, 50%) of the run, then the peak for 60 s, then back
      // towards 15% with a 5-minute time constant.
      std::fill(r.begin(), r.end(), 0.15);
      const double t0 = std::floor((0.25 + 0.25 * Uniform01(rng)) * d);
      for (size_t s = 0; s < n; ++s) {
        const double t = static_cast<double>(s);
        if (t >= t0 + 60) r[s] = 0.15 + 0.85 * std::exp(-(t - t0 - 60) / 300);
      }
      Plateau(r, t0, t0 + 60, 1.0);
      break;
    }
    case Pattern::kQuiet: {
      // 1%, with 20-s spikes to the peak at exponential gaps of mean 10 minutes (at least one).
      std::fill(r.begin(), r.end(), 0.01);
      bool any = false;
      for (double t = -std::log1p(-Uniform01(rng)) * 600; t + 20 <= d;
           t += 20 - std::log1p(-Uniform01(rng)) * 600) {
        Plateau(r, t, t + 20, 1.0);
        any = true;
      }
      if (!any) Plateau(r, d / 2 - 10, d / 2 + 10, 1.0);
      break;
    }
  }
  const double peak = *std::max_element(r.begin(), r.end());
  for (double& x : r) x /= peak;
  return r;
}

}  // namespace galley::sim
