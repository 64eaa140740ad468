#include "gateway/retry_budget.h"

#include <algorithm>
#include <cmath>

#include "common/strings.h"

namespace galley::gateway {
namespace {

// As in Finagle: credit units per request, so ratios other than 1/n need no floating point.
constexpr int64_t kScale = 1000;
constexpr double kMaxRatio = 1000;

RetryBudgetOptions Clamp(RetryBudgetOptions o) {
  o.ttl = std::clamp<Duration>(o.ttl, std::chrono::seconds(1), std::chrono::seconds(60));
  o.min_retries_per_second = std::max(0, o.min_retries_per_second);
  if (std::isnan(o.retry_ratio)) o.retry_ratio = RetryBudgetOptions{}.retry_ratio;
  o.retry_ratio = std::clamp(o.retry_ratio, 0.0, kMaxRatio);
  o.buckets = std::max(1, o.buckets);
  return o;
}

}  // namespace

absl::Status ValidateRetryBudgetOptions(const RetryBudgetOptions& o) {
  auto bad = [](std::string_view field, std::string_view rule) {
    return absl::InvalidArgumentError(StrCat("retry budget: ", field, " must be ", rule));
  };
  if (o.ttl < std::chrono::seconds(1) || o.ttl > std::chrono::seconds(60)) {
    return bad("ttl", "in [1s, 60s]");
  }
  if (o.min_retries_per_second < 0) return bad("min_retries_per_second", ">= 0");
  if (!(o.retry_ratio >= 0 && o.retry_ratio <= kMaxRatio)) {
    return bad("retry_ratio", "in [0, 1000]");
  }
  if (o.buckets < 1) return bad("buckets", ">= 1");
  return absl::OkStatus();
}

RetryBudget::RetryBudget(RetryBudgetOptions options)
    : options_(Clamp(options)),
      bucket_width_(options_.ttl / options_.buckets),
      // Ratio 0: requests earn nothing and a retry costs 1, so only the reserve pays (Finagle).
      deposit_units_(options_.retry_ratio == 0 ? 0 : kScale),
      withdrawal_units_(options_.retry_ratio == 0
                            ? 1
                            : std::max<int64_t>(1, std::llround(kScale / options_.retry_ratio))),
      reserve_units_(static_cast<int64_t>(options_.min_retries_per_second) *
                     std::chrono::duration_cast<std::chrono::seconds>(options_.ttl).count() *
                     withdrawal_units_),
      buckets_(static_cast<size_t>(options_.buckets)) {}

void RetryBudget::Deposit(TimePoint now) { ++Current(now).counts.requests; }

bool RetryBudget::TryWithdraw(TimePoint now) {
  if (Units(now) < withdrawal_units_) return false;
  ++Current(now).counts.retries;
  return true;
}

int64_t RetryBudget::Balance(TimePoint now) const {
  return std::max<int64_t>(0, Units(now)) / withdrawal_units_;
}

RetryBudgetWindow RetryBudget::Window(TimePoint now) const {
  const int64_t current = BucketIndex(now);
  const int64_t oldest = current - options_.buckets + 1;
  RetryBudgetWindow sum;
  for (const Bucket& b : buckets_) {
    if (b.index < oldest || b.index > current) continue;
    sum.requests += b.counts.requests;
    sum.retries += b.counts.retries;
  }
  return sum;
}

// NOTE: as in Finagle's windowed adder, the window is a ring of buckets: a deposit or withdrawal
// counts for between (buckets - 1) and `buckets` bucket widths, not exactly ttl.
RetryBudget::Bucket& RetryBudget::Current(TimePoint now) {
  const int64_t index = BucketIndex(now);
  const int64_t n = options_.buckets;
  Bucket& b = buckets_[static_cast<size_t>(((index % n) + n) % n)];
  if (b.index != index) {
    b.index = index;
    b.counts = {};
  }
  return b;
}

int64_t RetryBudget::BucketIndex(TimePoint t) const {
  const int64_t ticks = t.time_since_epoch().count();
  const int64_t width = bucket_width_.count();
  int64_t q = ticks / width;
  if (ticks % width != 0 && ticks < 0) --q;  // floor, also before the epoch
  return q;
}

int64_t RetryBudget::Units(TimePoint now) const {
  const RetryBudgetWindow w = Window(now);
  return w.requests * deposit_units_ - w.retries * withdrawal_units_ + reserve_units_;
}

}  // namespace galley::gateway
