// The supervisor thread: one poll() loop over every child's stdout pipe and pidfd plus a wake-up
// eventfd. It alone forks, signals and reaps children, so no global SIGCHLD handler is needed.
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <csignal>

#include "common/strings.h"
#include "local/child_output.h"
#include "local/child_process.h"
#include "local/supervisor.h"

namespace galley::local {
namespace {

TimePoint Now() { return SteadyClock::Get().Now(); }

double Seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

// Without pidfds (Linux < 5.3) exits are found by polling waitpid this often.
constexpr Duration kReapPollInterval = std::chrono::milliseconds(100);
// Bytes read from one child per wake-up, so that one chatty child cannot starve the others.
constexpr size_t kReadBudget = 256 * 1024;
// Bytes read from an exited child's pipe before it is closed.
constexpr size_t kExitReadBudget = 1024 * 1024;

}  // namespace

void Supervisor::Run() {
  std::vector<pollfd> fds;
  std::vector<Watch> watches;
  std::vector<Replica*> to_spawn;
  mu_.Lock();
  while (true) {
    TimePoint now = Now();
    to_spawn.clear();
    const TimePoint next = ReconcileLocked(now, &to_spawn);
    changed_.SignalAll();
    if (quitting_ && replicas_.empty()) break;
    if (!to_spawn.empty()) {
      mu_.Unlock();
      FlushOutput();
      SpawnAll(to_spawn);
      mu_.Lock();
      continue;  // reconcile again: the new children may already need a signal
    }
    const bool must_poll_reap = BuildPollSetLocked(&fds, &watches);
    mu_.Unlock();
    FlushOutput();
    now = Now();
    Duration wait = next == TimePoint::max() ? std::chrono::hours(1) : next - now;
    if (must_poll_reap) wait = std::min(wait, kReapPollInterval);
    wait = std::max(wait, Duration::zero());
    // Round up, so that a timer is never polled for a few microseconds early, again and again.
    const auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
    const int timeout_ms = static_cast<int>(std::min<int64_t>(wait_ms, INT32_MAX));
    const int n = poll(fds.data(), fds.size(), timeout_ms);
    mu_.Lock();
    now = Now();
    if (n < 0) continue;  // EINTR
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      Replica* r = watches[i].replica;
      if (r == nullptr) {
        uint64_t count;
        ssize_t unused = read(wake_fd_, &count, sizeof(count));
        (void)unused;
      } else if (r->child == nullptr) {
        continue;  // exited earlier in this round
      } else if (!watches[i].is_exit_fd) {
        HandleOutputLocked(*r, kReadBudget);
      } else {
        ReapLocked(*r, now);
      }
    }
    if (must_poll_reap) {
      for (auto& [index, r] : replicas_) {
        if (r->child != nullptr && r->child->exit_fd() < 0) ReapLocked(*r, now);
      }
    }
  }
  mu_.Unlock();
  FlushOutput();
}

TimePoint Supervisor::ReconcileLocked(TimePoint now, std::vector<Replica*>* to_spawn) {
  TimePoint next = TimePoint::max();
  for (auto it = replicas_.begin(); it != replicas_.end();) {
    Replica& r = *it->second;
    if (r.child == nullptr) {
      if (r.stop == StopReason::kRemove) {
        LogLocked(log::Level::kInfo, "replica_removed", {{"replica", r.id}});
        it = replicas_.erase(it);
        continue;
      }
      if (now >= r.start_at) {
        r.spawning = true;
        to_spawn->push_back(&r);
      } else {
        next = std::min(next, r.start_at);
      }
      ++it;
      continue;
    }
    // A process is running.
    if (r.stop == StopReason::kNone && !r.ready && options_.readiness_timeout.count() > 0) {
      if (now >= r.ready_deadline) {
        LogLocked(log::Level::kWarn, "replica_not_ready_in_time",
                  {{"replica", r.id},
                   {"pid", r.child->pid()},
                   {"readiness_timeout_s", Seconds(options_.readiness_timeout)}});
        MarkStoppingLocked(r, StopReason::kRestart);
      } else {
        next = std::min(next, r.ready_deadline);
      }
    }
    if (r.stop != StopReason::kNone) {
      if (!r.term_sent) SignalLocked(r, SIGTERM, now);
      if (draining_) r.kill_at = std::min(r.kill_at, drain_deadline_);
      if (!r.kill_sent && now >= r.kill_at) SignalLocked(r, SIGKILL, now);
      if (!r.kill_sent) next = std::min(next, r.kill_at);
    }
    ++it;
  }
  return next;
}

void Supervisor::SignalLocked(Replica& r, int sig, TimePoint now) {
  r.child->Signal(sig);
  if (sig == SIGTERM) {
    r.term_sent = true;
    r.kill_at = now + options_.grace_period + options_.kill_margin;
    LogLocked(log::Level::kInfo, "replica_stopping",
              {{"replica", r.id},
               {"pid", r.child->pid()},
               {"reason", r.stop == StopReason::kRestart ? "restart"
                          : draining_                    ? "shutdown"
                                                         : "scale_down"}});
  } else {
    r.kill_sent = true;
    LogLocked(log::Level::kWarn, "replica_killed",
              {{"replica", r.id}, {"pid", r.child->pid()}, {"signal", "SIGKILL"}});
  }
}

void Supervisor::SpawnAll(const std::vector<Replica*>& to_spawn) {
  const std::vector<std::string> env = ChildEnvironment();
  for (Replica* r : to_spawn) {
    // Each child learns its replica id (GALLEY_REPLICA_ID), e.g. to name its queue consumer
    // after it, so a replica restarted in the same slot takes back its own unfinished messages.
    SpawnSpec spec{options_.binary, argv_, env};
    spec.env.push_back(StrCat("GALLEY_REPLICA_ID=", r->id));
    // Fork without the lock: Replicas() must stay cheap. `r` stays valid: only this thread
    // erases replicas, and others see `spawning` meanwhile.
    absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Spawn(spec);
    pid_t pid = 0;
    std::string id;
    {
      absl::MutexLock lock(&mu_);
      const TimePoint now = Now();
      r->spawning = false;
      if (!child.ok()) {
        StartFailedLocked(*r, ToStd(child.status().message()), now);
        continue;
      }
      r->child = *std::move(child);
      pid = r->child->pid();
      id = r->id;
      r->ready = false;
      r->port = 0;
      r->term_sent = r->kill_sent = false;
      r->started_at = now;
      r->ready_deadline = now + options_.readiness_timeout;
      ++r->starts;
      LogLocked(log::Level::kInfo, "replica_starting",
                {{"replica", r->id}, {"pid", pid}, {"restarts", std::max(0, r->starts - 1)}});
    }
    if (options_.on_child_started) options_.on_child_started(id, pid);
  }
}

void Supervisor::StartFailedLocked(Replica& r, std::string_view error, TimePoint now) {
  const RestartDecision d = NextRestart(options_.restart_backoff, r.backoff, {});
  r.backoff = d.next;
  r.start_at = now + d.delay;
  LogLocked(log::Level::kError, "replica_start_failed",
            {{"replica", r.id}, {"error", error}, {"restart_in_s", Seconds(d.delay)}});
}

bool Supervisor::BuildPollSetLocked(std::vector<pollfd>* fds, std::vector<Watch>* watches) const {
  fds->clear();
  watches->clear();
  fds->push_back({wake_fd_, POLLIN, 0});
  watches->push_back({nullptr, false});
  bool must_poll_reap = false;
  for (const auto& [index, r] : replicas_) {
    if (r->child == nullptr) continue;
    if (r->child->stdout_fd() >= 0) {
      fds->push_back({r->child->stdout_fd(), POLLIN, 0});
      watches->push_back({r.get(), false});
    }
    if (r->child->exit_fd() >= 0) {
      fds->push_back({r->child->exit_fd(), POLLIN, 0});
      watches->push_back({r.get(), true});
    } else {
      must_poll_reap = true;
    }
  }
  return must_poll_reap;
}

void Supervisor::HandleOutputLocked(Replica& r, size_t max_bytes) {
  std::vector<std::string> lines;
  r.child->ReadLines(&lines, max_bytes);
  for (const std::string& text : lines) {
    const ChildLine line = ParseChildLine(text, r.id);
    // Forward first, so that the child's own line precedes what the supervisor makes of it.
    if (options_.forward_logs && line.is_json && log::Enabled(line.level)) {
      pending_output_.push_back(OutputLine{line.forwarded, line.level, {}, {}});
    } else if (options_.forward_logs && !line.is_json && !text.empty()) {
      LogLocked(log::Level::kInfo, "replica_output", {{"replica", r.id}, {"line", text}});
    }
    HandleLineLocked(r, line);
  }
}

void Supervisor::HandleLineLocked(Replica& r, const ChildLine& line) {
  if (line.event == "listening" && line.port.has_value()) {
    r.port = *line.port;
  } else if (line.event == "ready") {
    if (r.stop != StopReason::kNone || r.ready) return;
    r.ready = true;
    LogLocked(log::Level::kInfo, "replica_ready",
              {{"replica", r.id},
               {"pid", r.child->pid()},
               {"port", r.port},
               {"startup_s", Seconds(Now() - r.started_at)}});
  } else if (line.event == "draining") {
    r.ready = false;  // someone else sent it SIGTERM; it is on its way out
  }
}

void Supervisor::ReapLocked(Replica& r, TimePoint now) {
  const std::optional<int> status = r.child->TryReap();
  if (status.has_value()) HandleExitLocked(r, *status, now);
}

void Supervisor::HandleExitLocked(Replica& r, int wait_status, TimePoint now) {
  HandleOutputLocked(r, kExitReadBudget);  // its last words
  const pid_t pid = r.child->pid();
  r.child.reset();
  r.ready = false;
  r.port = 0;
  r.last_exit = DescribeWaitStatus(wait_status);
  const Duration ran = now - r.started_at;
  if (r.stop == StopReason::kRemove) {
    LogLocked(log::Level::kInfo, "replica_exited",
              {{"replica", r.id}, {"pid", pid}, {"status", r.last_exit}, {"ran_s", Seconds(ran)}});
    return;  // ReconcileLocked erases it
  }
  // Unplanned exit (or a restart after the readiness timeout): restartPolicy Always.
  const RestartDecision d = NextRestart(options_.restart_backoff, r.backoff,
                                        std::chrono::duration_cast<std::chrono::milliseconds>(ran));
  r.backoff = d.next;
  r.start_at = now + d.delay;
  r.stop = StopReason::kNone;
  LogLocked(log::Level::kWarn, "replica_exited",
            {{"replica", r.id},
             {"pid", pid},
             {"status", r.last_exit},
             {"ran_s", Seconds(ran)},
             {"restarts", std::max(0, r.starts - 1)},
             {"restart_in_s", Seconds(d.delay)}});
}

}  // namespace galley::local
