#include "gateway/backoff.h"

#include <algorithm>
#include <cmath>

namespace galley::gateway {

absl::Status ValidateBackoffOptions(const BackoffOptions& o) {
  if (o.base <= Duration::zero()) return absl::InvalidArgumentError("back-off: base must be > 0");
  if (o.cap < o.base) return absl::InvalidArgumentError("back-off: cap must be >= base");
  return absl::OkStatus();
}

Duration BackoffCeiling(const BackoffOptions& options, int attempt) {
  if (options.base <= Duration::zero()) return Duration::zero();
  const Duration cap = std::max(Duration::zero(), options.cap);
  Duration d = options.base;
  for (int i = 1; i < attempt && d < cap; ++i) {
    d = d > cap / 2 ? cap : d * 2;  // doubling stops at the cap: no overflow
  }
  return std::min(d, cap);
}

Duration FullJitterBackoff(const BackoffOptions& options, int attempt, double u01) {
  if (std::isnan(u01)) u01 = 0;
  u01 = std::clamp(u01, 0.0, 1.0);
  const Duration ceiling = BackoffCeiling(options, attempt);
  const auto scaled = static_cast<Duration::rep>(static_cast<double>(ceiling.count()) * u01);
  return std::clamp(Duration(scaled), Duration::zero(), ceiling);
}

bool FitsDeadline(TimePoint now, Duration backoff, TimePoint deadline, Duration min_attempt_time) {
  if (deadline == TimePoint::max()) return true;
  if (deadline < now) return false;
  backoff = std::max(Duration::zero(), backoff);
  min_attempt_time = std::max(Duration::zero(), min_attempt_time);
  const Duration left = deadline - now;
  return backoff <= left && min_attempt_time <= left - backoff;
}

}  // namespace galley::gateway
