#include "inference/batch_policy.h"

#include <chrono>
#include <optional>

#include "gtest/gtest.h"

namespace galley::inference {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

const TimePoint kNow = TimePoint{} + milliseconds(1000);
const TimePoint kNone = TimePoint::max();

QueuedView Q(int rows, TimePoint deadline = kNone, TimePoint enqueued = kNow, int64_t length = 0) {
  return QueuedView{rows, deadline, enqueued, length};
}

struct Case {
  const char* name;
  std::vector<QueuedView> queue;
  BatchPolicy policy;
  std::vector<size_t> expired;
  std::vector<size_t> take;
  std::optional<TimePoint> wake_at = std::nullopt;
};

BatchPolicy Max(int max, std::vector<int> preferred = {}, Duration delay = Duration::zero(),
                std::vector<int64_t> buckets = {}) {
  BatchPolicy p;
  p.max_batch_size = max;
  p.preferred_batch_sizes = std::move(preferred);
  p.max_queue_delay = delay;
  p.length_buckets = std::move(buckets);
  return p;
}

void CheckAll(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    const BatchDecision d = FormBatch(c.queue, c.policy, kNow);
    EXPECT_EQ(d.expired, c.expired) << c.name;
    EXPECT_EQ(d.take, c.take) << c.name;
    EXPECT_EQ(d.wake_at, c.wake_at) << c.name;
  }
}

TEST(FormBatchTest, MaxSizeAndDeadlines) {
  const TimePoint past = kNow - milliseconds(1);
  const TimePoint future = kNow + milliseconds(1);
  const std::vector<Case> cases = {
      {"empty queue", {}, Max(8), {}, {}},
      {"one request", {Q(1)}, Max(8), {}, {0}},
      {"takes all that fit", {Q(1), Q(1), Q(1)}, Max(8), {}, {0, 1, 2}},
      {"stops at max rows", {Q(3), Q(3), Q(3)}, Max(8), {}, {0, 1}},
      {"exact fit", {Q(4), Q(4), Q(1)}, Max(8), {}, {0, 1}},
      {"oversized first is taken alone", {Q(20), Q(1)}, Max(8), {}, {0}},
      {"batching off takes one", {Q(1), Q(1)}, Max(1), {}, {0}},
      {"expired skipped and reported", {Q(1, past), Q(1, future), Q(1, past)}, Max(8), {0, 2}, {1}},
      {"deadline equal to now is expired", {Q(1, kNow)}, Max(8), {0}, {}},
      {"all expired", {Q(1, past), Q(1, past)}, Max(8), {0, 1}, {}},
      {"expired rows do not count", {Q(6, past), Q(6, future)}, Max(8), {0}, {1}},
      {"fifo order, no skipping ahead", {Q(2), Q(7), Q(1)}, Max(8), {}, {0}},
  };
  CheckAll(cases);
}

TEST(FormBatchTest, PreferredSizesAndQueueDelay) {
  const Duration delay = microseconds(500);
  const TimePoint fresh = kNow;                       // just arrived
  const TimePoint waited = kNow - microseconds(500);  // waited exactly the delay
  const TimePoint half = kNow - microseconds(200);    // waited part of it
  const TimePoint deadline_soon = kNow + microseconds(100);
  const std::vector<Case> cases = {
      {"no delay: send what there is", {Q(1), Q(1), Q(1)}, Max(8, {4}), {}, {0, 1, 2}},
      {"no delay: cut at the largest preferred size",
       {Q(1), Q(1), Q(1), Q(1), Q(1)},
       Max(8, {2, 4}),
       {},
       {0, 1, 2, 3}},
      {"delay: hold a small batch",
       {Q(1, kNone, half), Q(1)},
       Max(8, {}, delay),
       {},
       {},
       half + delay},
      {"delay: a full batch goes at once",
       {Q(4, kNone, fresh), Q(4, kNone, fresh)},
       Max(8, {}, delay),
       {},
       {0, 1}},
      {"delay: a preferred batch goes at once",
       {Q(1), Q(1), Q(1), Q(1), Q(1)},
       Max(8, {4}, delay),
       {},
       {0, 1, 2, 3}},
      {"delay: preferred size must be hit exactly",
       {Q(3), Q(2)},
       Max(8, {4}, delay),
       {},
       {},
       fresh + delay},
      {"delay: preferred size of rows", {Q(2), Q(2), Q(1)}, Max(8, {4}, delay), {}, {0, 1}},
      {"delay: sent as is once the oldest has waited",
       {Q(1, kNone, waited), Q(1)},
       Max(8, {4}, delay),
       {},
       {0, 1}},
      {"delay: wake for an earlier deadline",
       {Q(1, deadline_soon, half)},
       Max(8, {}, delay),
       {},
       {},
       deadline_soon},
      {"delay: batching off never waits", {Q(1), Q(1)}, Max(1, {}, delay), {}, {0}},
  };
  CheckAll(cases);
}

TEST(FormBatchTest, LengthBuckets) {
  const Duration delay = microseconds(500);
  const TimePoint waited = kNow - delay;
  const std::vector<int64_t> buckets = {8, 16, 32};
  const std::vector<Case> cases = {
      {"one bucket per batch, the oldest's first",
       {Q(1, kNone, kNow, 5), Q(1, kNone, kNow, 30), Q(1, kNone, kNow, 7), Q(1, kNone, kNow, 12)},
       Max(8, {}, Duration::zero(), buckets),
       {},
       {0, 2}},
      {"bounds are inclusive",
       {Q(1, kNone, kNow, 8), Q(1, kNone, kNow, 9)},
       Max(8, {}, Duration::zero(), buckets),
       {},
       {0}},
      {"lengths beyond the last bound share a bucket",
       {Q(1, kNone, kNow, 40), Q(1, kNone, kNow, 500)},
       Max(8, {}, Duration::zero(), buckets),
       {},
       {0, 1}},
      {"a full later bucket goes while the oldest waits",
       {Q(1, kNone, kNow, 5), Q(1, kNone, kNow, 20), Q(1, kNone, kNow, 20)},
       Max(2, {}, delay, buckets),
       {},
       {1, 2}},
      {"the oldest's bucket goes first once it has waited",
       {Q(1, kNone, waited, 5), Q(1, kNone, kNow, 20), Q(1, kNone, kNow, 20)},
       Max(2, {}, delay, buckets),
       {},
       {0}},
      {"no bucketing without batching",
       {Q(1, kNone, kNow, 30), Q(1, kNone, kNow, 5)},
       Max(1, {}, Duration::zero(), buckets),
       {},
       {0}},
  };
  CheckAll(cases);
}

BatchPolicy Fill(int max, double ratio, std::vector<int64_t> buckets,
                 std::vector<int> preferred = {}, Duration delay = Duration::zero(),
                 int fill_rows = 0) {
  BatchPolicy p = Max(max, std::move(preferred), delay, std::move(buckets));
  p.length_fill_ratio = ratio;
  p.length_fill_rows = fill_rows;
  return p;
}

// A request of one row and `length` tokens, enqueued at `enqueued`.
QueuedView L(int64_t length, TimePoint enqueued = kNow, int rows = 1, TimePoint deadline = kNone) {
  return QueuedView{rows, deadline, enqueued, length};
}

TEST(FormBatchTest, FillAcrossBuckets) {
  const Duration delay = microseconds(500);
  const TimePoint past = kNow - milliseconds(1);
  // One bucket per length up to 24 (every length <= 24 its own group); longer ones share one.
  std::vector<int64_t> buckets;
  for (int64_t b = 1; b <= 24; ++b) buckets.push_back(b);
  const std::vector<Case> cases = {
      {"off by default: the oldest's bucket alone",
       {L(10), L(8), L(10), L(9)},
       Max(8, {}, Duration::zero(), buckets),
       {},
       {0, 2}},
      {"shorter texts join down to the ratio, oldest first",
       {L(12), L(9), L(8), L(10)},
       Fill(8, 0.75, buckets),
       {},
       {0, 1, 3}},
      {"boundary: exactly ratio x padded joins", {L(12), L(9)}, Fill(8, 0.75, buckets), {}, {0, 1}},
      {"boundary: just under the ratio stays", {L(16), L(11)}, Fill(8, 0.75, buckets), {}, {0}},
      {"a longer text joins while the group's longest stays within the ratio",
       {L(12), L(16), L(17)},
       Fill(8, 0.75, buckets),
       {},
       {0, 1}},
      {"joined texts bound later growth",
       {L(16), L(12), L(17)},
       Fill(8, 0.75, buckets),
       {},
       {0, 1}},
      {"the bound is the group's longest, not its shortest (beyond the last bound: one group)",
       {L(26), L(40), L(50), L(20)},
       Fill(8, 0.75, buckets),
       {},
       {0, 1, 2}},
      {"oldest first until max_batch_size",
       {L(12), L(10), L(11), L(9), L(10)},
       Fill(3, 0.75, buckets),
       {},
       {0, 1, 2}},
      {"a request whose rows do not fit is skipped, a later one joins",
       {L(12), L(10, kNow, 3), L(11)},
       Fill(3, 0.75, buckets),
       {},
       {0, 2}},
      {"expired requests never join",
       {L(12), L(10, kNow, 1, past), L(11)},
       Fill(8, 0.75, buckets),
       {1},
       {0, 2}},
      {"a full group is not filled", {L(12), L(12), L(10)}, Fill(2, 0.75, buckets), {}, {0, 1}},
      {"a group at a preferred size is not filled",
       {L(12), L(12), L(10)},
       Fill(8, 0.75, buckets, {2}),
       {},
       {0, 1}},
      {"a filled batch is cut at a preferred size",
       {L(12), L(10), L(11), L(9)},
       Fill(8, 0.75, buckets, {2}),
       {},
       {0, 1}},
      {"ratio 1: other buckets never join",
       {L(12), L(11), L(13), L(12)},
       Fill(8, 1.0, buckets),
       {},
       {0, 3}},
      {"a small ratio takes every bucket",
       {L(4), L(24), L(13)},
       Fill(8, 0.1, buckets),
       {},
       {0, 1, 2}},
      {"delay: a batch filled to the maximum goes at once",
       {L(12), L(10)},
       Fill(2, 0.75, buckets, {}, delay),
       {},
       {0, 1}},
      {"delay: a batch filled short of the maximum waits",
       {L(12), L(10)},
       Fill(4, 0.75, buckets, {}, delay),
       {},
       {},
       kNow + delay},
      {"no fill without batching", {L(12), L(10)}, Fill(1, 0.75, buckets), {}, {0}},
      {"fill target: the group's rows and the joined ones up to length_fill_rows",
       {L(12), L(10), L(11), L(9), L(12)},
       Fill(8, 0.75, buckets, {}, Duration::zero(), 3),
       {},
       {0, 1, 4}},
      {"fill target: a group at the target is not filled",
       {L(12), L(12), L(10)},
       Fill(8, 0.75, buckets, {}, Duration::zero(), 2),
       {},
       {0, 1}},
      {"fill target: a group above the target is sent whole, unfilled",
       {L(12), L(12), L(10), L(12)},
       Fill(8, 0.75, buckets, {}, Duration::zero(), 2),
       {},
       {0, 1, 3}},
      {"fill target: a multi-row request that would pass it is skipped",
       {L(12), L(10, kNow, 2), L(11)},
       Fill(8, 0.75, buckets, {}, Duration::zero(), 2),
       {},
       {0, 2}},
      {"fill target above max_batch_size: max_batch_size",
       {L(12), L(10), L(11)},
       Fill(2, 0.75, buckets, {}, Duration::zero(), 4),
       {},
       {0, 1}},
      {"delay: a batch filled to the target (not the maximum) waits",
       {L(12), L(10)},
       Fill(4, 0.75, buckets, {}, delay, 2),
       {},
       {},
       kNow + delay},
  };
  CheckAll(cases);
}

TEST(FormBatchTest, LengthBucketIndex) {
  BatchPolicy p = Max(8, {}, Duration::zero(), {8, 16});
  EXPECT_EQ(LengthBucket(p, 0), 0u);
  EXPECT_EQ(LengthBucket(p, 8), 0u);
  EXPECT_EQ(LengthBucket(p, 9), 1u);
  EXPECT_EQ(LengthBucket(p, 16), 1u);
  EXPECT_EQ(LengthBucket(p, 17), 2u);
  EXPECT_EQ(LengthBucket(Max(8), 1000), 0u);
}

}  // namespace
}  // namespace galley::inference
