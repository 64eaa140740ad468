#include "local/restart_backoff.h"

#include <vector>

#include "gtest/gtest.h"

namespace galley::local {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(RestartBackoffTest, KubeletSequenceWithDefaults) {
  // Crashing at once, again and again: 0 s, 10 s, 20 s, 40 s, 80 s, 160 s, 300 s, 300 s.
  const RestartBackoffPolicy policy;
  const std::vector<milliseconds> want = {seconds(0),  seconds(10),  seconds(20),  seconds(40),
                                          seconds(80), seconds(160), seconds(300), seconds(300)};
  RestartBackoffState state;
  for (size_t i = 0; i < want.size(); ++i) {
    const RestartDecision d = NextRestart(policy, state, seconds(1));
    EXPECT_EQ(d.delay, want[i]) << "crash " << i;
    state = d.next;
  }
}

struct Case {
  const char* name;
  int crashes;
  milliseconds ran_for;
  milliseconds want_delay;
  int want_crashes;
};

TEST(RestartBackoffTest, Table) {
  const RestartBackoffPolicy policy{milliseconds(100), milliseconds(2'000), seconds(10)};
  const Case cases[] = {
      {"first crash restarts at once", 0, milliseconds(5), milliseconds(0), 1},
      {"second crash waits initial", 1, milliseconds(5), milliseconds(100), 2},
      {"third doubles", 2, milliseconds(5), milliseconds(200), 3},
      {"fifth", 4, milliseconds(5), milliseconds(800), 5},
      {"capped", 6, milliseconds(5), milliseconds(2'000), 7},
      {"far past the cap does not overflow", 1'000'000, milliseconds(5), milliseconds(2'000),
       1'000'001},
      {"long run resets", 6, seconds(10), milliseconds(0), 1},
      {"just short of reset", 3, seconds(10) - milliseconds(1), milliseconds(400), 4},
  };
  for (const Case& c : cases) {
    const RestartDecision d = NextRestart(policy, RestartBackoffState{c.crashes}, c.ran_for);
    EXPECT_EQ(d.delay, c.want_delay) << c.name;
    EXPECT_EQ(d.next.crashes, c.want_crashes) << c.name;
  }
}

}  // namespace
}  // namespace galley::local
