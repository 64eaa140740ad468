// Deciding which queued requests form the next batch: a pure function of the queue's state, the
// policy and `now`, so that it can be table-tested with a manual clock.
//
// Semantics follow Triton's dynamic batcher (docs: "Dynamic Batcher" in Triton's model
// configuration guide): a batch is sent at once when it reaches the maximum batch size or one of
// the preferred batch sizes; otherwise the batcher holds the requests until the oldest one has
// waited `max_queue_delay`, then sends what it has. Galley adds length buckets: text models pad
// to the longest sequence in a batch, so a batch only mixes requests of one length bucket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "common/clock.h"

namespace galley::serve {

struct BatchPolicy {
  int max_batch_size = 64;                 // rows (sum of requests' batch dimensions); <= 1: off
  std::vector<int> preferred_batch_sizes;  // ascending; a batch of one of these is sent at once
  Duration max_queue_delay{0};             // how long the oldest request may wait for company
  // Upper bounds (inclusive, ascending) of the length buckets, e.g. {8, 16, 32, 64}; lengths
  // above the last bound share one more bucket. Empty: no bucketing.
  std::vector<int64_t> length_buckets;

  bool batching() const { return max_batch_size > 1; }
};

// What the batcher sees of one queued request.
struct QueuedView {
  int rows = 1;                        // the request's batch dimension
  TimePoint deadline = TimePoint::max();
  TimePoint enqueued{};
  int64_t length = 0;                  // e.g. token count; only used for bucketing
};

struct BatchDecision {
  std::vector<size_t> expired;  // indices (ascending) whose deadline has passed: answer 504
  std::vector<size_t> take;     // indices (ascending) to run now as one batch; may be empty
  // When `take` is empty but live requests wait: decide again no later than this.
  std::optional<TimePoint> wake_at;
};

// The bucket of `length` under `policy` (0 when bucketing is off).
size_t LengthBucket(const BatchPolicy& policy, int64_t length);

// The rules, in order:
//  1. Requests whose deadline is at or before `now` are expired (never run).
//  2. Live requests are grouped by length bucket; groups are visited in the order of their oldest
//     request. Within a group, requests are taken in queue (FIFO) order while their rows fit
//     max_batch_size; the first one is always taken even if it alone exceeds the limit (the
//     model's own check rejects it).
//  3. The oldest live request's group is sent when its prefix reaches max_batch_size or exactly
//     one of the preferred sizes (the largest such; the prefix is cut there), or once the oldest
//     request has waited max_queue_delay (at once when the delay is 0).
//  4. Otherwise another group whose prefix is full or preferred is sent (oldest group first).
//  5. Otherwise nothing runs; `wake_at` is the oldest request's enqueue time plus the delay, or
//     the earliest live deadline if that comes first.
// With batching off every batch is one request, in FIFO order, without waiting.
BatchDecision FormBatch(const std::vector<QueuedView>& queue, const BatchPolicy& policy,
                        TimePoint now);

}  // namespace galley::serve
