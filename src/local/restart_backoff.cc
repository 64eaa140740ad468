#include "local/restart_backoff.h"

#include <algorithm>
#include <limits>

namespace galley::local {

RestartDecision NextRestart(const RestartBackoffPolicy& policy, RestartBackoffState state,
                            std::chrono::milliseconds ran_for) {
  if (ran_for >= policy.reset_after) state.crashes = 0;
  std::chrono::milliseconds delay{0};
  if (state.crashes > 0) {
    // initial * 2^(crashes-1), doubling step by step so that it never overflows.
    delay = std::max(policy.initial, std::chrono::milliseconds(0));
    for (int i = 1; i < state.crashes && delay < policy.max; ++i) delay *= 2;
    delay = std::min(delay, policy.max);
  }
  const int next =
      state.crashes < std::numeric_limits<int>::max() ? state.crashes + 1 : state.crashes;
  return RestartDecision{delay, RestartBackoffState{next}};
}

}  // namespace galley::local
