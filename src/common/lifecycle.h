#pragma once
// One lifecycle for every long-running part of a Galley process, and the runner that drives it
// from start to SIGTERM to exit, so each subcommand's main is a list of parts.
//
// The contract (what Kubernetes expects of a pod that is being terminated: stop being ready,
// keep serving while endpoints are updated, finish the work in hand within the grace period):
//   Start()            begin work (threads, listeners). On failure nothing of it runs.
//   BeginDrain()       the process is stopping: say not ready, stop taking work that no load
//                      balancer routes (a queue consumer stops fetching). Returns at once.
//   StopAccepting()    after the drain delay: stop accepting new connections. Returns at once.
//   Drain(deadline)    take no new work at all and finish what is held by `deadline`; true when
//                      everything held finished.
//   Stop()             release everything: threads joined, sockets closed. Called once, after
//                      Drain, or instead of it when the process fails to start. Idempotent.
// See docs/threading.md for which threads each part owns.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "common/clock.h"

namespace galley {

class Component {
 public:
  virtual ~Component() = default;
  virtual std::string_view component_name() const = 0;
  virtual absl::Status Start() = 0;
  virtual void BeginDrain() {}
  virtual void StopAccepting() {}
  // Default: true at once, for a part with nothing of its own to finish (its work ends with the
  // parts in front of it, or with its Stop()).
  virtual bool Drain(TimePoint deadline) { return true; }
  virtual void Stop() = 0;
};

struct ProcessOptions {
  // After the stop signal: every part has been told (BeginDrain) and keeps serving this long
  // before the drains start, so load balancers stop sending first.
  Duration drain_delay{};
  // The whole shutdown, drains included, ends by the signal + this.
  Duration grace_period = std::chrono::seconds(30);
};

// Starts parts in order, waits for SIGTERM or SIGINT, then: BeginDrain on every part, the drain
// delay, StopAccepting on every part (no listener takes a connection from here on, so no front
// door keeps accepting while another drains), Drain on each part in the reverse of the start order
// (the outermost, last started, first: a front door drains before what it calls), Stop on each in
// the same order, and the `stopped` log line. If a part fails to start, the parts already started
// are stopped (reverse order) and Run is not to be called. The runner does not own the parts. Once
// a part has started, the process ends through Run() or Abort(), which stop every part while it
// exists. The constructor blocks the stop signals (BlockStopSignals), so make the runner before any
// thread starts.
class ProcessRunner {
 public:
  ProcessRunner(ProcessOptions options, const Clock& clock);
  ProcessRunner(const ProcessRunner&) = delete;
  ProcessRunner& operator=(const ProcessRunner&) = delete;

  // Starts `part` after those started before it. On failure logs `start_failed` with the part's
  // name, stops the parts started so far, and returns the error.
  absl::Status Start(Component& part);
  // Blocks until the stop signal, shuts down as above, and returns the exit code (0).
  int Run();
  // The same as if `signal` had just arrived (tests; a process that stops on something else).
  int RunAfter(int signal);
  // A start step outside the runner failed: stops the parts started so far; returns 1, the exit
  // code of a failed start.
  int Abort();

 private:
  void StopAll();

  const ProcessOptions options_;
  const Clock& clock_;
  std::vector<Component*> started_;
};

}  // namespace galley
