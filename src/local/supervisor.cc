// The public side of the Supervisor: creation, lifecycle, scaling and views. The supervisor
// thread's side is in supervisor_loop.cc.
#include "local/supervisor.h"

#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "common/strings.h"
#include "common/sync.h"
#include "common/thread_name.h"
#include "local/child_process.h"

extern char** environ;

namespace galley::local {
namespace {

TimePoint Now() { return SteadyClock::Get().Now(); }

absl::StatusOr<std::string> ResolveBinary(const std::string& binary) {
  std::string path = binary;
  if (path.empty()) {
    char buf[PATH_MAX];
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0) return absl::NotFoundError("cannot resolve /proc/self/exe");
    path.assign(buf, static_cast<size_t>(n));
  }
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || access(path.c_str(), X_OK) != 0) {
    return absl::NotFoundError(StrCat("replica binary '", path, "' is not an executable file"));
  }
  return path;
}

std::string ListenAddress(const std::string& host) {
  return host.find(':') != std::string::npos ? StrCat("[", host, "]:0") : StrCat(host, ":0");
}

std::vector<std::string> ChildArgv(const SupervisorOptions& o) {
  std::vector<std::string> argv = {o.binary,
                                   "serve",
                                   "--listen",
                                   ListenAddress(o.host),
                                   "--log-level",
                                   "info",
                                   "--drain-delay-ms",
                                   StrCat(o.drain_delay.count()),
                                   "--grace-period-ms",
                                   StrCat(o.grace_period.count())};
  argv.insert(argv.end(), o.serve_args.begin(), o.serve_args.end());
  return argv;
}

// Sort key for picking replicas to remove: smaller goes first.
int RemovalRank(bool has_process, bool ready) { return !has_process ? 0 : (!ready ? 1 : 2); }

}  // namespace

absl::StatusOr<std::unique_ptr<Supervisor>> Supervisor::Create(SupervisorOptions options) {
  if (options.replicas < 0) return absl::InvalidArgumentError("replica count must be >= 0");
  if (options.host.empty()) return absl::InvalidArgumentError("host must not be empty");
  const RestartBackoffPolicy& b = options.restart_backoff;
  if (b.initial <= std::chrono::milliseconds(0) || b.max < b.initial) {
    return absl::InvalidArgumentError("restart back-off needs 0 < initial <= max");
  }
  absl::StatusOr<std::string> binary = ResolveBinary(options.binary);
  if (!binary.ok()) return binary.status();
  options.binary = *std::move(binary);
  const int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) return absl::InternalError(StrCat("eventfd: ", std::strerror(errno)));
  return std::unique_ptr<Supervisor>(new Supervisor(std::move(options), wake_fd));
}

Supervisor::Supervisor(SupervisorOptions options, int wake_fd)
    : options_(std::move(options)), argv_(ChildArgv(options_)), wake_fd_(wake_fd) {
  absl::MutexLock lock(&mu_);
  desired_ = options_.replicas;
  const TimePoint now = Now();
  for (int i = 0; i < desired_; ++i) AddReplicaLocked(now);
}

Supervisor::~Supervisor() {
  Stop();
  close(wake_fd_);
}

absl::Status Supervisor::Start() {
  absl::MutexLock lifecycle(&lifecycle_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (started_) return absl::FailedPreconditionError("supervisor already started");
    if (draining_) return absl::FailedPreconditionError("supervisor drained or stopped");
    started_ = true;
    LogLocked(log::Level::kInfo, "supervisor_started",
              {{"replicas", desired_}, {"binary", options_.binary}});
  }
  try {
    thread_ = std::thread([this] {
      SetThreadName("supervisor");
      Run();
    });
  } catch (const std::system_error& e) {
    absl::MutexLock lock(&mu_);
    started_ = false;
    return absl::InternalError(StrCat("cannot start the supervisor thread: ", e.what()));
  }
  return absl::OkStatus();
}

bool Supervisor::Drain(TimePoint deadline) {
  {
    absl::MutexLock lock(&mu_);
    if (!draining_) {
      draining_ = true;
      desired_ = 0;
      LogLocked(log::Level::kInfo, "supervisor_draining", {{"replicas", replicas_.size()}});
    }
    drain_deadline_ = std::min(drain_deadline_, deadline);
    for (auto& [index, r] : replicas_) {
      if (r->stop != StopReason::kRemove) MarkStoppingLocked(*r, StopReason::kRemove);
    }
    if (!started_ || quitting_) {
      // No supervisor thread: there is no process either (only that thread makes them).
      replicas_.clear();
    }
  }
  Wake();
  FlushOutput();
  absl::MutexLock lock(&mu_);
  while (!replicas_.empty()) changed_.Wait(&mu_);
  return true;
}

void Supervisor::Stop() {
  absl::MutexLock lifecycle(&lifecycle_mu_);
  Drain(Now());
  {
    absl::MutexLock lock(&mu_);
    quitting_ = true;
  }
  Wake();
  if (thread_.joinable()) thread_.join();
  FlushOutput();
}

std::vector<fleet::ReplicaEndpoint> Supervisor::Replicas() const {
  absl::MutexLock lock(&mu_);
  std::vector<fleet::ReplicaEndpoint> out;
  out.reserve(replicas_.size());
  for (const auto& [index, r] : replicas_) {
    if (r->child == nullptr || r->port == 0) continue;
    out.push_back({r->id, options_.host, r->port, r->ready && r->stop == StopReason::kNone, {}});
  }
  return out;
}

absl::Status Supervisor::SetReplicas(int replicas) {
  if (replicas < 0) return absl::InvalidArgumentError("replica count must be >= 0");
  {
    absl::MutexLock lock(&mu_);
    if (draining_) return absl::FailedPreconditionError("supervisor is draining");
    if (replicas != desired_) {
      LogLocked(log::Level::kInfo, "replicas_scaled", {{"from", desired_}, {"to", replicas}});
    }
    desired_ = replicas;
    std::vector<Replica*> members;  // replicas that are staying, as far as we know
    for (auto& [index, r] : replicas_) {
      if (r->stop != StopReason::kRemove) members.push_back(r.get());
    }
    const TimePoint now = Now();
    for (int i = static_cast<int>(members.size()); i < replicas; ++i) AddReplicaLocked(now);
    if (static_cast<int>(members.size()) > replicas) {
      // No process first (free to drop), then not ready, then the newest.
      std::sort(members.begin(), members.end(), [](const Replica* a, const Replica* b) {
        const int ra = RemovalRank(a->child != nullptr || a->spawning, a->ready);
        const int rb = RemovalRank(b->child != nullptr || b->spawning, b->ready);
        return ra != rb ? ra < rb : a->index > b->index;
      });
      for (size_t i = 0; i < members.size() - static_cast<size_t>(replicas); ++i) {
        MarkStoppingLocked(*members[i], StopReason::kRemove);
      }
    }
    changed_.SignalAll();
  }
  Wake();
  FlushOutput();
  return absl::OkStatus();
}

int Supervisor::desired_replicas() const {
  absl::MutexLock lock(&mu_);
  return desired_;
}

int Supervisor::running_replicas() const {
  absl::MutexLock lock(&mu_);
  int n = 0;
  for (const auto& [index, r] : replicas_) {
    if (r->child != nullptr && r->stop != StopReason::kRemove) ++n;
  }
  return n;
}

std::vector<ReplicaInfo> Supervisor::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return SnapshotLocked();
}

bool Supervisor::WaitFor(const std::function<bool(const std::vector<ReplicaInfo>&)>& predicate,
                         Duration timeout) const {
  const TimePoint deadline = Now() + timeout;
  absl::MutexLock lock(&mu_);
  while (true) {
    if (predicate(SnapshotLocked())) return true;
    if (!galley::WaitUntil(changed_, mu_, deadline)) {
      return predicate(SnapshotLocked());
    }
  }
}

std::vector<ReplicaInfo> Supervisor::SnapshotLocked() const {
  std::vector<ReplicaInfo> out;
  out.reserve(replicas_.size());
  for (const auto& [index, r] : replicas_) {
    ReplicaInfo info;
    info.id = r->id;
    if (r->child != nullptr) {
      info.pid = r->child->pid();
      info.port = r->port;
      info.phase = r->stop != StopReason::kNone ? ReplicaInfo::Phase::kStopping
                   : r->ready                   ? ReplicaInfo::Phase::kReady
                                                : ReplicaInfo::Phase::kStarting;
    } else {
      info.phase = r->spawning ? ReplicaInfo::Phase::kStarting : ReplicaInfo::Phase::kWaiting;
    }
    info.restarts = std::max(0, r->starts - 1);
    info.last_exit = r->last_exit;
    out.push_back(std::move(info));
  }
  return out;
}

void Supervisor::Wake() {
  const uint64_t one = 1;
  ssize_t unused = write(wake_fd_, &one, sizeof(one));  // EAGAIN: a wake-up is pending anyway
  (void)unused;
}

void Supervisor::AddReplicaLocked(TimePoint now) {
  auto r = std::make_unique<Replica>();
  r->index = next_index_++;
  r->id = StrCat("replica-", r->index);
  r->start_at = now;
  replicas_.emplace(r->index, std::move(r));
}

void Supervisor::MarkStoppingLocked(Replica& r, StopReason reason) {
  // Readiness falls first, here and now; the supervisor thread then sends SIGTERM.
  r.ready = false;
  r.stop = reason;
}

void Supervisor::LogLocked(log::Level level, std::string_view event, boost::json::object fields) {
  if (!log::Enabled(level)) return;
  pending_output_.push_back(OutputLine{{}, level, std::string(event), std::move(fields)});
}

void Supervisor::FlushOutput() {
  absl::MutexLock order(&flush_mu_);
  std::vector<OutputLine> lines;
  {
    absl::MutexLock lock(&mu_);
    lines.swap(pending_output_);
  }
  if (lines.empty()) return;
  bool raw_written = false;
  for (const OutputLine& line : lines) {
    if (!line.raw.empty()) {
      std::fwrite(line.raw.data(), 1, line.raw.size(), stdout);  // one line per call: whole
      raw_written = true;
    } else {
      log::Write(line.level, line.event, line.fields);
    }
  }
  if (raw_written) std::fflush(stdout);
}

std::vector<std::string> Supervisor::ChildEnvironment() const {
  std::vector<std::string> env;
  const auto name_of = [](std::string_view kv) { return kv.substr(0, kv.find('=')); };
  if (options_.inherit_environment) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      const std::string_view kv(*e);
      const bool overridden =
          std::any_of(options_.environment.begin(), options_.environment.end(),
                      [&](const std::string& o) { return name_of(o) == name_of(kv); });
      if (!overridden) env.emplace_back(kv);
    }
  }
  env.insert(env.end(), options_.environment.begin(), options_.environment.end());
  return env;
}

}  // namespace galley::local
