// Deciding which queued requests form the next batch: a pure function of the queue's state, the
// policy and `now`, so that it can be table-tested with a manual clock.
#pragma once

#include <cstddef>
#include <vector>

#include "common/clock.h"

namespace galley::serve {

struct BatchPolicy {
  int max_batch_size = 64;   // rows (sum of requests' batch dimensions); 0 or 1: no batching
};

// What the batcher sees of one queued request.
struct QueuedView {
  int rows = 1;              // the request's batch dimension
  TimePoint deadline = TimePoint::max();
};

struct BatchDecision {
  std::vector<size_t> expired;  // indices (ascending) whose deadline has passed: answer 504
  size_t take = 0;              // then run the first `take` live requests, in queue order
};

// Requests are considered in queue (FIFO) order. Expired ones are dropped from consideration;
// live ones are taken while their rows fit max_batch_size. The first live request is always
// taken, even if it alone exceeds the limit (the model's own check rejects it).
BatchDecision FormBatch(const std::vector<QueuedView>& queue, const BatchPolicy& policy,
                        TimePoint now);

}  // namespace galley::serve
