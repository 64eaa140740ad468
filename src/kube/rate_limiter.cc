#include "kube/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace galley::kube {

TokenBucket::TokenBucket(RateLimit limit, TimePoint start)
    : limit_(limit), tokens_(std::max(1, limit.burst)), last_(start) {}

double TokenBucket::TokensAtLocked(TimePoint now) const {
  if (now <= last_) return tokens_;
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  return std::min(static_cast<double>(std::max(1, limit_.burst)), tokens_ + elapsed * limit_.qps);
}

double TokenBucket::Tokens(TimePoint now) const {
  absl::MutexLock lock(&mu_);
  return TokensAtLocked(now);
}

Duration TokenBucket::Reserve(TimePoint now) {
  if (limit_.qps <= 0) return Duration::zero();
  absl::MutexLock lock(&mu_);
  // Time never runs backwards for the bucket: a caller with an older `now` is treated as now.
  tokens_ = TokensAtLocked(now);
  if (now > last_) last_ = now;
  tokens_ -= 1.0;
  if (tokens_ >= 0) return Duration::zero();
  // A deficit of d tokens is repaid after d / qps seconds (x/time/rate's durationFromTokens).
  const double wait_s = -tokens_ / limit_.qps;
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(wait_s)) +
         (now < last_ ? last_ - now : Duration::zero());
}

}  // namespace galley::kube
