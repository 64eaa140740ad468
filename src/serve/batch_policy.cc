#include "serve/batch_policy.h"

namespace galley::serve {

BatchDecision FormBatch(const std::vector<QueuedView>& queue, const BatchPolicy& policy,
                        TimePoint now) {
  BatchDecision d;
  const int limit = policy.max_batch_size <= 1 ? 1 : policy.max_batch_size;
  const bool count_rows = policy.max_batch_size > 1;
  int rows = 0;
  for (size_t i = 0; i < queue.size(); ++i) {
    const QueuedView& q = queue[i];
    if (q.deadline <= now) {
      d.expired.push_back(i);
      continue;
    }
    const int r = count_rows ? q.rows : 1;
    if (d.take > 0 && rows + r > limit) break;
    rows += r;
    ++d.take;
    if (rows >= limit) break;
  }
  return d;
}

}  // namespace galley::serve
