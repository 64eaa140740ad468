#include "inference/batch_policy.h"

#include <algorithm>

namespace galley::inference {

size_t LengthBucket(const BatchPolicy& policy, int64_t length) {
  const auto& b = policy.length_buckets;
  return static_cast<size_t>(std::lower_bound(b.begin(), b.end(), length) - b.begin());
}

namespace {

// A batch being formed: which indices (in the order taken), and how many rows they add up to.
struct Candidate {
  std::vector<size_t> indices;
  std::vector<int> prefix_rows;  // rows of each prefix of `indices`
  int rows = 0;
  bool full = false;       // reached max_batch_size
  bool preferred = false;  // stopped at a preferred size

  void Add(size_t idx, int r) {
    indices.push_back(idx);
    rows += r;
    prefix_rows.push_back(rows);
  }
};

int Limit(const BatchPolicy& policy) { return policy.batching() ? policy.max_batch_size : 1; }
int RowsOf(const QueuedView& q, const BatchPolicy& policy) {
  return policy.batching() ? q.rows : 1;
}

// Cuts `c` (not full) at the largest preferred size that a prefix of it reaches exactly.
void CutAtPreferred(Candidate& c, const BatchPolicy& policy) {
  for (auto p = policy.preferred_batch_sizes.rbegin(); p != policy.preferred_batch_sizes.rend();
       ++p) {
    auto hit = std::find(c.prefix_rows.begin(), c.prefix_rows.end(), *p);
    if (hit != c.prefix_rows.end()) {
      const size_t n = static_cast<size_t>(hit - c.prefix_rows.begin()) + 1;
      c.indices.resize(n);
      c.prefix_rows.resize(n);
      c.rows = *p;
      c.preferred = true;
      return;
    }
  }
}

// Takes `members` (indices into queue, FIFO) while they fit; stops early at the largest
// preferred size reachable by a prefix when the whole group cannot reach the maximum.
Candidate TakePrefix(const std::vector<QueuedView>& queue, const std::vector<size_t>& members,
                     const BatchPolicy& policy) {
  const int limit = Limit(policy);
  Candidate c;
  for (size_t idx : members) {
    const int r = RowsOf(queue[idx], policy);
    if (!c.indices.empty() && c.rows + r > limit) {
      c.full = true;
      break;
    }
    c.Add(idx, r);
    if (c.rows >= limit) {
      c.full = true;
      break;
    }
  }
  if (c.full || !policy.batching()) return c;
  CutAtPreferred(c, policy);
  return c;
}

// The rows rule 3 fills a batch up to.
int FillTarget(const BatchPolicy& policy) {
  const int max_rows = Limit(policy);
  return policy.length_fill_rows > 0 ? std::min(policy.length_fill_rows, max_rows) : max_rows;
}

// Rule 3: fills `c`, the whole prefix of the group of bucket `bucket` (neither full nor
// preferred, under the fill target), from `live` (every live index, FIFO) of other buckets up to
// the target, then cuts it at a preferred size. The length check is r * padded <= shortest.
void FillAcrossBuckets(const std::vector<QueuedView>& queue, const std::vector<size_t>& live,
                       size_t bucket, const BatchPolicy& policy, Candidate& c) {
  const int limit = FillTarget(policy);
  const double ratio = policy.length_fill_ratio;
  int64_t padded = 0;  // the longest length taken
  for (size_t idx : c.indices) padded = std::max(padded, queue[idx].length);
  int64_t shortest = padded;  // the group's longest and every joined length
  for (size_t idx : live) {
    if (c.rows >= limit) break;
    const QueuedView& q = queue[idx];
    if (LengthBucket(policy, q.length) == bucket || c.rows + q.rows > limit) continue;
    const int64_t new_padded = std::max(padded, q.length);
    const int64_t new_shortest = std::min(shortest, q.length);
    if (ratio * static_cast<double>(new_padded) > static_cast<double>(new_shortest)) continue;
    c.Add(idx, q.rows);
    padded = new_padded;
    shortest = new_shortest;
  }
  if (c.rows >= Limit(policy)) c.full = true;
  if (!c.full) CutAtPreferred(c, policy);
}

}  // namespace

BatchDecision FormBatch(const std::vector<QueuedView>& queue, const BatchPolicy& policy,
                        TimePoint now) {
  BatchDecision d;
  // Live requests grouped by bucket; groups ordered by their oldest (first) member.
  std::vector<std::vector<size_t>> groups;
  std::vector<size_t> group_of_bucket;  // bucket -> position in groups + 1 (0: none yet)
  const bool bucketing = policy.batching() && !policy.length_buckets.empty();
  const bool filling = bucketing && policy.length_fill_ratio > 0;
  std::optional<TimePoint> earliest_deadline;
  std::vector<size_t> live;  // every live index, FIFO (only collected for filling)
  for (size_t i = 0; i < queue.size(); ++i) {
    const QueuedView& q = queue[i];
    if (q.deadline <= now) {
      d.expired.push_back(i);
      continue;
    }
    if (!earliest_deadline || q.deadline < *earliest_deadline) earliest_deadline = q.deadline;
    if (filling) live.push_back(i);
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
  // The oldest request's group (filled, rule 3) goes first: when it is full or preferred, or has
  // waited long enough. Then any other group that is full or preferred. Otherwise wait.
  const size_t oldest = groups.front().front();
  const TimePoint send_at = queue[oldest].enqueued + policy.max_queue_delay;
  Candidate first = TakePrefix(queue, groups.front(), policy);
  if (filling && !first.full && !first.preferred && first.rows < FillTarget(policy) &&
      groups.size() > 1) {
    FillAcrossBuckets(queue, live, LengthBucket(policy, queue[oldest].length), policy, first);
    std::sort(first.indices.begin(), first.indices.end());
  }
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

}  // namespace galley::inference
