// Deciding which queued requests form the next batch: a pure function of the queue's state, the
// policy and `now`, so that it can be table-tested with a manual clock.
//
// Semantics follow Triton's dynamic batcher (docs: "Dynamic Batcher" in Triton's model
// configuration guide): a batch is sent at once when it reaches the maximum batch size or one of
// the preferred batch sizes; otherwise the batcher holds the requests until the oldest one has
// waited `max_queue_delay`, then sends what it has. Galley adds length buckets: text models pad
// to the longest sequence in a batch, so a batch only mixes requests of one length bucket, unless
// the policy lets a batch that its bucket leaves short take texts of similar length from other
// buckets (`length_fill_ratio`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "common/clock.h"

namespace galley::inference {

struct BatchPolicy {
  int max_batch_size = 64;                 // rows (sum of requests' batch dimensions); <= 1: off
  std::vector<int> preferred_batch_sizes;  // ascending; a batch of one of these is sent at once
  Duration max_queue_delay{0};             // how long the oldest request may wait for company
  // Upper bounds (inclusive, ascending) of the length buckets, e.g. {8, 16, 32, 64}; lengths
  // above the last bound share one more bucket. Empty: no bucketing.
  std::vector<int64_t> length_buckets;
  // Filling across buckets (off unless length_fill_ratio > 0; only with length_buckets). When
  // the oldest request's bucket leaves a batch under length_fill_rows rows, texts of other
  // buckets join it, oldest first, up to that many rows, while each joining text and the
  // bucket's own longest text stay at least length_fill_ratio (in (0, 1]) of the batch's padded
  // length: no joined row, and not the bucket's longest, is more than (1 - ratio) padding. For a
  // model whose cost per row falls steeply over the first rows of a batch and then flattens (an
  // LSTM on a CPU core: 2-3x per text alone, flat by 12-16 rows), so that tiny batches are the
  // waste and padding is not free.
  double length_fill_ratio = 0;
  int length_fill_rows = 0;  // fill up to this many rows; 0: max_batch_size

  bool batching() const { return max_batch_size > 1; }
};

// What the batcher sees of one queued request.
struct QueuedView {
  int rows = 1;  // the request's batch dimension
  TimePoint deadline = TimePoint::max();
  TimePoint enqueued{};
  int64_t length = 0;  // e.g. token count; for bucketing and filling
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
//  3. With length_fill_ratio r > 0, the oldest live request's group, if its prefix is neither
//     full nor at a preferred size and has fewer rows than the fill target (length_fill_rows,
//     else max_batch_size), is filled from the other groups' live requests in queue order: a
//     request joins when its rows fit under the target and, with L the batch's padded length
//     once it has joined (the longest length taken) and S the shortest of the joined lengths and
//     of the group's own longest length, r * L <= S (a joined request never pushes an earlier
//     one, or the group's longest, under r of the padded length). The filled batch is then cut at
//     the largest preferred size its running rows hit exactly, unless it is full.
//  4. The oldest live request's (filled) group is sent when it reaches max_batch_size or exactly
//     one of the preferred sizes (the largest such; the prefix is cut there), or once the oldest
//     request has waited max_queue_delay (at once when the delay is 0).
//  5. Otherwise another group whose prefix is full or preferred is sent (oldest group first; not
//     filled).
//  6. Otherwise nothing runs; `wake_at` is the oldest request's enqueue time plus the delay, or
//     the earliest live deadline if that comes first.
// With batching off every batch is one request, in FIFO order, without waiting.
BatchDecision FormBatch(const std::vector<QueuedView>& queue, const BatchPolicy& policy,
                        TimePoint now);

}  // namespace galley::inference
