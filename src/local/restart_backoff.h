// Restart back-off for crashed replicas: the kubelet's CrashLoopBackOff for `restartPolicy:
// Always`, as a pure function. The first crash restarts at once; every further crash waits an
// exponentially growing delay (10 s, 20 s, 40 s, ...) capped at 5 minutes; a replica that ran for
// 10 minutes without trouble starts over as if it had never crashed. See
// https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#restart-policy and
// https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#container-restarts
#pragma once

#include <chrono>

namespace galley::local {

struct RestartBackoffPolicy {
  std::chrono::milliseconds initial{10'000};       // delay before the second restart in a row
  std::chrono::milliseconds max{300'000};          // cap on the delay
  std::chrono::milliseconds reset_after{600'000};  // a run at least this long forgives the past
};

// Per-replica memory of recent crashes. A value type; the supervisor keeps one per replica.
struct RestartBackoffState {
  int crashes = 0;  // consecutive crashes counted against the back-off since the last reset
};

struct RestartDecision {
  std::chrono::milliseconds delay{0};  // wait this long after the exit, then start again
  RestartBackoffState next;            // the state to keep for the next exit
};

// The delay before restarting a replica that has just exited after running for `ran_for`, given
// its back-off `state`. Pure: no clock, no I/O. Delays: 0, initial, 2*initial, ... up to max.
RestartDecision NextRestart(const RestartBackoffPolicy& policy, RestartBackoffState state,
                            std::chrono::milliseconds ran_for);

}  // namespace galley::local
