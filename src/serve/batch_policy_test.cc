#include "serve/batch_policy.h"

#include <chrono>

#include "gtest/gtest.h"

namespace galley::serve {
namespace {

using std::chrono::milliseconds;

struct Case {
  const char* name;
  std::vector<QueuedView> queue;
  int max_batch_size;
  std::vector<size_t> expired;
  size_t take;
};

TEST(FormBatchTest, Table) {
  const TimePoint now = TimePoint{} + milliseconds(1000);
  const TimePoint past = now - milliseconds(1);
  const TimePoint future = now + milliseconds(1);
  const TimePoint none = TimePoint::max();
  const std::vector<Case> cases = {
      {"empty queue", {}, 8, {}, 0},
      {"one request", {{1, none}}, 8, {}, 1},
      {"takes all that fit", {{1, none}, {1, none}, {1, none}}, 8, {}, 3},
      {"stops at max rows", {{3, none}, {3, none}, {3, none}}, 8, {}, 2},
      {"exact fit", {{4, none}, {4, none}, {1, none}}, 8, {}, 2},
      {"oversized first is taken alone", {{20, none}, {1, none}}, 8, {}, 1},
      {"batching off takes one", {{1, none}, {1, none}}, 1, {}, 1},
      {"expired skipped and reported", {{1, past}, {1, future}, {1, past}}, 8, {0, 2}, 1},
      {"deadline equal to now is expired", {{1, now}}, 8, {0}, 0},
      {"all expired", {{1, past}, {1, past}}, 8, {0, 1}, 0},
      {"expired rows do not count", {{6, past}, {6, future}}, 8, {0}, 1},
      {"fifo order, no skipping ahead", {{2, none}, {7, none}, {1, none}}, 8, {}, 1},
  };
  for (const Case& c : cases) {
    BatchPolicy policy;
    policy.max_batch_size = c.max_batch_size;
    const BatchDecision d = FormBatch(c.queue, policy, now);
    EXPECT_EQ(d.expired, c.expired) << c.name;
    EXPECT_EQ(d.take, c.take) << c.name;
  }
}

}  // namespace
}  // namespace galley::serve
