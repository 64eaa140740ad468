// The local supervisor behind `galley up`: runs `galley serve` replicas as child processes on free
// local ports, learns each one's port and readiness from its JSON log lines, forwards those lines,
// restarts a replica that exits with the kubelet's CrashLoopBackOff (restartPolicy: Always), and
// scales up and down. The gateway reads it as a ReplicaSource, the autoscaler drives it as a
// ScaleTarget.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/lifecycle.h"
#include "common/log.h"
#include "fleet/replica_source.h"
#include "fleet/scale_target.h"
#include "local/restart_backoff.h"

namespace galley::local {

class ChildProcess;
struct ChildLine;

struct SupervisorOptions {
  // The `galley` executable to run; empty: this process's own (/proc/self/exe, resolved).
  std::string binary;
  // Each replica runs `binary serve --listen HOST:0 --log-level info --drain-delay-ms D
  // --grace-period-ms G` followed by these (model flags, --io-threads, ...).
  std::vector<std::string> serve_args;
  int replicas = 1;
  // Where replicas listen, and what Replicas() gives the gateway to connect to.
  std::string host = "127.0.0.1";
  // CrashLoopBackOff: 0, 10 s, 20 s, ... capped at 5 min, reset after 10 min of running.
  RestartBackoffPolicy restart_backoff;
  // From a replica's start to its `ready` line. A replica that takes longer is stopped and
  // restarted with back-off (like a failing startup probe). 0: wait for ever.
  std::chrono::milliseconds readiness_timeout{300'000};
  // Passed to each replica (--drain-delay-ms, --grace-period-ms): after SIGTERM it keeps
  // serving, not ready, for the drain delay, and exits within the grace period.
  std::chrono::milliseconds drain_delay{5'000};
  std::chrono::milliseconds grace_period{30'000};
  // SIGKILL a replica that is still running this long after its grace period.
  std::chrono::milliseconds kill_margin{1'000};
  // The children's environment: this process's own (when inherit_environment), with
  // `environment` ("NAME=value") added on top, replacing variables of the same name.
  bool inherit_environment = true;
  std::vector<std::string> environment;
  // Forward the replicas' log lines to stdout as {..., "replica":"replica-0", ...}, filtered by
  // this process's log level.
  bool forward_logs = true;
  // Called on the supervisor's thread, without its lock held, each time a replica process
  // starts. For tests and metrics; must be quick.
  std::function<void(std::string_view replica_id, pid_t pid)> on_child_started;
};

// One replica as the supervisor sees it.
struct ReplicaInfo {
  enum class Phase {
    kWaiting,   // no process: about to start, or waiting out its restart back-off
    kStarting,  // process running, not (yet) ready
    kReady,     // process logged `ready`
    kStopping,  // SIGTERM sent (scale-down, shutdown, or readiness timeout); not ready
  };
  std::string id;  // "replica-N", stable across restarts; never reused
  Phase phase = Phase::kWaiting;
  pid_t pid = 0;          // 0 without a process
  uint16_t port = 0;      // 0 until the process logged `listening`
  int restarts = 0;       // times the process was started again after the first start
  std::string last_exit;  // how the previous process ended ("exited with code 1", ...), or ""
};

// Thread-safe: every public method may be called from any thread, except that Start, Drain and
// Stop must not be called from `on_child_started`.
//
// Threads: one supervisor thread (started by Start) owns the children: it forks them, polls
// their stdout pipes and pidfds plus an eventfd for wake-ups, reaps them, sends signals and runs
// the timers (restart back-off, readiness timeout, SIGKILL after grace). Public methods only
// change the desired state under mu_ and wake it. NOTE: children get PR_SET_PDEATHSIG(SIGTERM),
// which the kernel ties to the thread that forked them; the supervisor thread therefore outlives
// every child, and a SIGKILLed `galley up` still leaves no replica behind.
class Supervisor final : public fleet::ReplicaSource, public fleet::ScaleTarget, public Component {
 public:
  // Validates `options`: InvalidArgument for a negative replica count, an empty host, or a
  // back-off whose initial delay is not positive or exceeds its cap; NotFound when the binary is
  // not an executable file; Internal when the wake-up eventfd cannot be made. Starts nothing.
  static absl::StatusOr<std::unique_ptr<Supervisor>> Create(SupervisorOptions options);
  ~Supervisor() override;  // Stop()

  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts the supervisor thread, which starts options.replicas replicas. FailedPrecondition
  // when called twice or after Drain/Stop; Internal if the thread cannot start.
  absl::Status Start() override;
  // Stops every replica gracefully and returns once all have been reaped: each is marked not
  // ready at once, then gets SIGTERM, and SIGKILL at the earlier of `deadline` and its grace
  // period plus kill_margin. No replica is restarted or added afterwards. Idempotent; blocks.
  // NOTE: returns only after the last child is reaped; a child in uninterruptible sleep can
  // delay that beyond `deadline` (SIGKILL takes effect when the kernel lets it go). True: every
  // replica has gone (the killed ones too).
  bool Drain(TimePoint deadline) override;
  // Drain(now) if Drain was not called (SIGTERM, then SIGKILL at once), then joins the
  // supervisor thread. Idempotent; blocks.
  void Stop() override;
  std::string_view component_name() const override { return "supervisor"; }

  // gateway::ReplicaSource: replicas with a process whose port is known; ready only while the
  // process has logged `ready` and is not being stopped. Cheap (copies under the lock).
  std::vector<fleet::ReplicaEndpoint> Replicas() const override;

  // ScaleTarget. SetReplicas returns at once. Scaling down picks replicas with no process first,
  // then not-ready ones, then the newest, and marks them not ready in Replicas() before
  // returning; the supervisor thread then sends SIGTERM. InvalidArgument for a negative count;
  // FailedPrecondition after Drain/Stop.
  absl::Status SetReplicas(int replicas) override;
  int desired_replicas() const override;
  // Replicas with a running process that are not being removed (ready or not).
  int running_replicas() const override;

  // Every replica, including those waiting to start and those being stopped, in id order.
  std::vector<ReplicaInfo> Snapshot() const;
  // Blocks until `predicate(Snapshot())` holds or `timeout` passes; returns the last result.
  // Wakes on every change of the supervisor's state, so callers need not poll. The predicate
  // runs with the supervisor's lock held: it must not call back into the Supervisor.
  bool WaitFor(const std::function<bool(const std::vector<ReplicaInfo>&)>& predicate,
               Duration timeout) const;

 private:
  enum class StopReason { kNone, kRemove, kRestart };

  struct Replica {
    int index = 0;
    std::string id;
    std::unique_ptr<ChildProcess> child;  // null: no process
    bool spawning = false;                // fork in progress on the supervisor thread
    bool ready = false;
    uint16_t port = 0;
    StopReason stop = StopReason::kNone;
    bool term_sent = false;
    bool kill_sent = false;
    TimePoint started_at{};
    TimePoint start_at{};        // when to start the next process (no process)
    TimePoint ready_deadline{};  // readiness timeout (process running, not ready)
    TimePoint kill_at{};         // SIGKILL (after SIGTERM)
    RestartBackoffState backoff;
    int starts = 0;
    std::string last_exit;
  };
  // A line for stdout, written once the lock is released: `raw` as it is (a forwarded JSON line,
  // newline included), or else a log::Write of the rest.
  struct OutputLine {
    std::string raw;
    log::Level level = log::Level::kInfo;
    std::string event;
    boost::json::object fields;
  };
  // One thing for poll() to watch.
  struct Watch {
    Replica* replica;  // null for the wake-up eventfd
    bool is_exit_fd;
  };

  Supervisor(SupervisorOptions options, int wake_fd);

  // --- supervisor.cc: the public side ---
  void Wake();
  void AddReplicaLocked(TimePoint now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkStoppingLocked(Replica& r, StopReason reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<ReplicaInfo> SnapshotLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- supervisor_loop.cc: the supervisor thread ---
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // Applies the desired state: starts due replicas (returned in `to_spawn`), signals, erases
  // stopped ones, fires timers. Returns when it next needs to run.
  TimePoint ReconcileLocked(TimePoint now, std::vector<Replica*>* to_spawn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SpawnAll(const std::vector<Replica*>& to_spawn) ABSL_LOCKS_EXCLUDED(mu_);
  void StartFailedLocked(Replica& r, std::string_view error, TimePoint now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool BuildPollSetLocked(std::vector<pollfd>* fds, std::vector<Watch>* watches) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleOutputLocked(Replica& r, size_t max_bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleLineLocked(Replica& r, const ChildLine& line) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReapLocked(Replica& r, TimePoint now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleExitLocked(Replica& r, int wait_status, TimePoint now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SignalLocked(Replica& r, int sig, TimePoint now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LogLocked(log::Level level, std::string_view event, boost::json::object fields)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FlushOutput() ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::string> ChildEnvironment() const;

  const SupervisorOptions options_;
  const std::vector<std::string> argv_;  // the children's command line
  const int wake_fd_;                    // eventfd; the supervisor thread polls it

  std::thread thread_ ABSL_GUARDED_BY(lifecycle_mu_);  // touched only by Start and Stop
  absl::Mutex lifecycle_mu_;

  mutable absl::Mutex mu_;
  mutable absl::CondVar changed_;  // signalled on every state change
  std::map<int, std::unique_ptr<Replica>> replicas_ ABSL_GUARDED_BY(mu_);  // by index
  int desired_ ABSL_GUARDED_BY(mu_) = 0;
  int next_index_ ABSL_GUARDED_BY(mu_) = 0;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool quitting_ ABSL_GUARDED_BY(mu_) = false;
  TimePoint drain_deadline_ ABSL_GUARDED_BY(mu_) = TimePoint::max();
  std::vector<OutputLine> pending_output_ ABSL_GUARDED_BY(mu_);  // see OutputLine
  absl::Mutex flush_mu_;  // keeps pending_output_ in order between flushing threads
};

}  // namespace galley::local
