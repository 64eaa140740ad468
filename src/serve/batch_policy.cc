#include "serve/batch_policy.h"

#include <algorithm>

namespace galley::serve {

size_t LengthBucket(const BatchPolicy& policy, int64_t length) {
  const auto& b = policy.length_buckets;
  return static_cast<size_t>(std::lower_bound(b.begin(), b.end(), length) - b.begin());
}

namespace {

// A FIFO prefix of one bucket's requests: which indices, and how many rows they add up to.
struct Candidate {
  std::vector<size_t> indices;
  int rows = 0;
  bool full = false;       // reached max_batch_size
  bool preferred = false;  // stopped at a preferred size
};

// Takes `members` (indices into queue, FIFO) while they fit; stops early at the largest
// preferred size reachable by a prefix when the whole group cannot reach the maximum.
Candidate TakePrefix(const std::vector<QueuedView>& queue, const std::vector<size_t>& members,
                     const BatchPolicy& policy) {
  const int limit = policy.batching() ? policy.max_batch_size : 1;
  Candidate c;
  // Rows of each prefix, to find the largest preferred size a prefix lands on exactly.
  std::vector<int> prefix_rows;
  for (size_t idx : members) {
    const int r = policy.batching() ? queue[idx].rows : 1;
    if (!c.indices.empty() && c.rows + r > limit) {
      c.full = true;
      break;
    }
    c.indices.push_back(idx);
    c.rows += r;
    prefix_rows.push_back(c.rows);
    if (c.rows >= limit) {
      c.full = true;
      break;
    }
  }
  if (c.full || !policy.batching()) return c;
  for (auto p = policy.preferred_batch_sizes.rbegin(); p != policy.preferred_batch_sizes.rend(); ++p) {
    auto hit = std::find(prefix_rows.begin(), prefix_rows.end(), *p);
    if (hit != prefix_rows.end()) {
      c.indices.resize(static_cast<size_t>(hit - prefix_rows.begin()) + 1);
      c.rows = *p;
      c.preferred = true;
      break;
    }
  }
  return c;
}

}  // namespace

BatchDecision FormBatch(const std::vector<QueuedView>& queue, const BatchPolicy& policy,
                        TimePoint now) {
  BatchDecision d;
  // Live requests grouped by bucket; groups ordered by their oldest (first) member.
  std::vector<std::vector<size_t>> groups;
  std::vector<size_t> group_of_bucket;  // bucket -> position in groups + 1 (0: none yet)
  const bool bucketing = policy.batching() && !policy.length_buckets.empty();
  std::optional<TimePoint> earliest_deadline;
  for (size_t i = 0; i < queue.size(); ++i) {
    const QueuedView& q = queue[i];
    if (q.deadline <= now) {
      d.expired.push_back(i);
      continue;
    }
    if (!earliest_deadline || q.deadline < *earliest_deadline) earliest_deadline = q.deadline;
    const size_t bucket = bucketing ? LengthBucket(policy, q.length) : 0;
    if (bucket >= group_of_bucket.size()) group_of_bucket.resize(bucket + 1, 0);
    if (group_of_bucket[bucket] == 0) {
      groups.emplace_back();
      group_of_bucket[bucket] = groups.size();
    }
    groups[group_of_bucket[bucket] - 1].push_back(i);
  }
  if (groups.empty()) return d;

  if (!policy.batching()) {
    d.take = {groups.front().front()};
    return d;
  }
  // The oldest request's group goes first: when it is full or preferred, or has waited long
  // enough. Then any other group that is full or preferred. Otherwise wait.
  const size_t oldest = groups.front().front();
  const TimePoint send_at = queue[oldest].enqueued + policy.max_queue_delay;
  Candidate first = TakePrefix(queue, groups.front(), policy);
  if (first.full || first.preferred || policy.max_queue_delay <= Duration::zero() ||
      send_at <= now) {
    d.take = std::move(first.indices);
    return d;
  }
  for (size_t g = 1; g < groups.size(); ++g) {
    Candidate c = TakePrefix(queue, groups[g], policy);
    if (c.full || c.preferred) {
      d.take = std::move(c.indices);
      return d;
    }
  }
  d.wake_at = std::min(send_at, *earliest_deadline);
  return d;
}

}  // namespace galley::serve
