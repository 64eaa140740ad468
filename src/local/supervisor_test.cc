// The supervisor against real child processes (fake_replica, a stand-in for `galley serve`) on
// real sockets. No sleeps: every wait is Supervisor::WaitFor (woken by state changes) or a
// bounded wait on a pidfd/pipe.
#include "local/supervisor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#ifndef GALLEY_FAKE_REPLICA
#error "GALLEY_FAKE_REPLICA must name the fake_replica binary"
#endif

namespace galley::local {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Phase = ReplicaInfo::Phase;
using Infos = std::vector<ReplicaInfo>;

constexpr Duration kWait = seconds(20);  // generous bound for slow (sanitizer) builds

// Records every child the supervisor starts, with when.
struct Started {
  absl::Mutex mu;
  std::vector<std::pair<std::string, pid_t>> children ABSL_GUARDED_BY(mu);
  std::vector<TimePoint> times ABSL_GUARDED_BY(mu);

  std::vector<pid_t> pids() {
    absl::MutexLock lock(&mu);
    std::vector<pid_t> out;
    for (const auto& c : children) out.push_back(c.second);
    return out;
  }
};

SupervisorOptions Options(int replicas, std::vector<std::string> args, Started* started) {
  SupervisorOptions o;
  o.binary = GALLEY_FAKE_REPLICA;
  o.serve_args = std::move(args);
  o.replicas = replicas;
  o.restart_backoff = {milliseconds(100), milliseconds(2'000), seconds(600)};
  o.readiness_timeout = seconds(60);
  o.drain_delay = milliseconds(0);
  o.grace_period = seconds(5);
  o.kill_margin = milliseconds(500);
  o.on_child_started = [started](std::string_view id, pid_t pid) {
    absl::MutexLock lock(&started->mu);
    started->children.emplace_back(std::string(id), pid);
    started->times.push_back(SteadyClock::Get().Now());
  };
  return o;
}

std::unique_ptr<Supervisor> MustCreate(SupervisorOptions o) {
  auto s = Supervisor::Create(std::move(o));
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

int CountPhase(const Infos& infos, Phase phase) {
  return static_cast<int>(std::count_if(
      infos.begin(), infos.end(), [phase](const ReplicaInfo& r) { return r.phase == phase; }));
}

// One replica, ready after exactly `restarts` restarts.
auto ReadyAfterRestarts(int restarts) {
  return [restarts](const Infos& i) {
    return i.size() == 1 && i[0].restarts == restarts && i[0].phase == Phase::kReady;
  };
}

auto Restarted(int at_least) {
  return [at_least](const Infos& i) { return i.size() == 1 && i[0].restarts >= at_least; };
}

auto AllReady(int n) {
  return [n](const Infos& infos) {
    return static_cast<int>(infos.size()) == n && CountPhase(infos, Phase::kReady) == n;
  };
}

bool Gone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

void ExpectAllGone(const std::vector<pid_t>& pids) {
  for (pid_t pid : pids) EXPECT_TRUE(Gone(pid)) << "child " << pid << " still exists";
}

bool CanConnect(const std::string& host, uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

TEST(SupervisorTest, TwoReplicasBecomeReadyOnDistinctPortsAndStopLeavesNoChild) {
  Started started;
  auto sup = MustCreate(Options(2, {"--ready-after-ms", "50"}, &started));
  ASSERT_NE(sup, nullptr);
  EXPECT_EQ(sup->desired_replicas(), 2);
  EXPECT_TRUE(sup->Replicas().empty());  // nothing runs before Start
  ASSERT_TRUE(sup->Start().ok());
  ASSERT_TRUE(sup->WaitFor(AllReady(2), kWait));

  const auto endpoints = sup->Replicas();
  ASSERT_EQ(endpoints.size(), 2u);
  EXPECT_EQ(endpoints[0].id, "replica-0");
  EXPECT_EQ(endpoints[1].id, "replica-1");
  EXPECT_NE(endpoints[0].port, endpoints[1].port);
  for (const auto& ep : endpoints) {
    EXPECT_TRUE(ep.ready);
    EXPECT_EQ(ep.host, "127.0.0.1");
    EXPECT_TRUE(CanConnect(ep.host, ep.port)) << ep.id << " port " << ep.port;
  }
  EXPECT_EQ(sup->running_replicas(), 2);
  EXPECT_FALSE(sup->Start().ok());  // twice

  sup->Drain(SteadyClock::Get().Now() + seconds(10));
  EXPECT_TRUE(sup->Replicas().empty());
  EXPECT_TRUE(sup->Snapshot().empty());
  EXPECT_EQ(sup->running_replicas(), 0);
  EXPECT_EQ(absl::StatusCode::kFailedPrecondition, sup->SetReplicas(3).code());
  sup->Stop();
  ASSERT_EQ(started.pids().size(), 2u);
  ExpectAllGone(started.pids());
}

TEST(SupervisorTest, KilledReplicaIsRestartedWithBackoff) {
  Started started;
  SupervisorOptions o = Options(1, {}, &started);
  o.restart_backoff.initial = milliseconds(1'000);  // wide enough to observe the waiting
  auto sup = MustCreate(std::move(o));
  ASSERT_TRUE(sup->Start().ok());
  ASSERT_TRUE(sup->WaitFor(AllReady(1), kWait));
  const pid_t first = sup->Snapshot()[0].pid;

  // First crash: the kubelet restarts at once.
  ASSERT_EQ(kill(first, SIGKILL), 0);
  ASSERT_TRUE(sup->WaitFor(ReadyAfterRestarts(1), kWait));
  const ReplicaInfo second = sup->Snapshot()[0];
  EXPECT_NE(second.pid, first);
  EXPECT_EQ(second.id, "replica-0");
  EXPECT_EQ(second.last_exit, "killed by signal 9 (KILL)");
  ASSERT_EQ(sup->Replicas().size(), 1u);
  EXPECT_EQ(sup->Replicas()[0].port, second.port);
  EXPECT_TRUE(CanConnect("127.0.0.1", second.port));

  // Second crash in a row: waits the initial back-off first, and is not ready meanwhile.
  const TimePoint killed_at = SteadyClock::Get().Now();
  ASSERT_EQ(kill(second.pid, SIGKILL), 0);
  ASSERT_TRUE(sup->WaitFor(
      [](const Infos& i) { return i.size() == 1 && i[0].phase == Phase::kWaiting; }, kWait));
  EXPECT_TRUE(sup->Replicas().empty());  // no process: nothing to route to
  ASSERT_TRUE(sup->WaitFor(ReadyAfterRestarts(2), kWait));
  TimePoint restarted_at;
  {
    absl::MutexLock lock(&started.mu);
    ASSERT_EQ(started.times.size(), 3u);
    restarted_at = started.times[2];
  }
  EXPECT_GE(restarted_at - killed_at, milliseconds(1'000));
  sup->Stop();
  ExpectAllGone(started.pids());
}

TEST(SupervisorTest, CrashingReplicaReportsExitCode) {
  Started started;
  auto sup = MustCreate(Options(1, {"--never-ready", "--crash-after-ms", "20"}, &started));
  ASSERT_TRUE(sup->Start().ok());
  ASSERT_TRUE(sup->WaitFor(Restarted(2), kWait));
  EXPECT_EQ(sup->Snapshot()[0].last_exit, "exited with code 3");
  sup->Stop();
  ExpectAllGone(started.pids());
}

TEST(SupervisorTest, ScalesUpAndDownStoppingTheNewestAfterMarkingThemNotReady) {
  Started started;
  auto sup = MustCreate(Options(2, {}, &started));
  ASSERT_TRUE(sup->Start().ok());
  ASSERT_TRUE(sup->WaitFor(AllReady(2), kWait));

  ASSERT_TRUE(sup->SetReplicas(3).ok());
  EXPECT_EQ(sup->desired_replicas(), 3);
  ASSERT_TRUE(sup->WaitFor(AllReady(3), kWait));
  std::set<uint16_t> ports;
  for (const auto& ep : sup->Replicas()) ports.insert(ep.port);
  EXPECT_EQ(ports.size(), 3u);

  const Infos before = sup->Snapshot();
  ASSERT_TRUE(sup->SetReplicas(1).ok());
  // Readiness falls before SetReplicas returns, so the gateway stops routing at once.
  int ready = 0;
  for (const auto& ep : sup->Replicas()) ready += ep.ready ? 1 : 0;
  EXPECT_EQ(ready, 1);
  EXPECT_EQ(sup->running_replicas(), 1);
  ASSERT_TRUE(sup->WaitFor(AllReady(1), kWait));
  const Infos after = sup->Snapshot();
  EXPECT_EQ(after[0].id, "replica-0");  // the oldest stays
  for (const ReplicaInfo& r : before) {
    if (r.id != "replica-0") {
      EXPECT_TRUE(Gone(r.pid)) << r.id;
    }
  }
  EXPECT_EQ(sup->Replicas().size(), 1u);
  sup->Stop();
  ExpectAllGone(started.pids());
}

TEST(SupervisorTest, ScaleDownPrefersReplicasThatAreNotReady) {
  Started started;
  SupervisorOptions o = Options(2, {}, &started);
  o.drain_delay = seconds(30);  // a replica told to stop stays up, not ready, for a long while
  auto sup = MustCreate(std::move(o));
  ASSERT_TRUE(sup->Start().ok());
  ASSERT_TRUE(sup->WaitFor(AllReady(2), kWait));
  // Someone else stops replica-0: it logs `draining` and is no longer ready, but still runs.
  ASSERT_EQ(kill(sup->Snapshot()[0].pid, SIGTERM), 0);
  ASSERT_TRUE(sup->WaitFor(
      [](const Infos& i) { return i.size() == 2 && i[0].phase == Phase::kStarting; }, kWait));
  EXPECT_FALSE(sup->Replicas()[0].ready);

  ASSERT_TRUE(sup->SetReplicas(1).ok());  // not the newest: the one that is not ready
  const Infos infos = sup->Snapshot();
  ASSERT_EQ(infos.size(), 2u);
  EXPECT_EQ(infos[0].phase, Phase::kStopping);
  EXPECT_EQ(infos[1].phase, Phase::kReady);
  EXPECT_EQ(sup->running_replicas(), 1);
  sup->Stop();  // SIGKILLs replica-0, still in its drain delay
  ExpectAllGone(started.pids());
}

TEST(SupervisorTest, NeverReadyReplicaIsReportedNotReady) {
  Started started;
  auto sup = MustCreate(Options(1, {"--never-ready"}, &started));
  ASSERT_TRUE(sup->Start().ok());
  ASSERT_TRUE(sup->WaitFor([](const Infos& i) { return i.size() == 1 && i[0].port != 0; }, kWait));
  const auto endpoints = sup->Replicas();
  ASSERT_EQ(endpoints.size(), 1u);
  EXPECT_FALSE(endpoints[0].ready);
  EXPECT_EQ(sup->Snapshot()[0].phase, Phase::kStarting);
  EXPECT_EQ(sup->running_replicas(), 1);
  EXPECT_TRUE(CanConnect("127.0.0.1", endpoints[0].port));  // live, just not ready
  sup->Stop();
  ExpectAllGone(started.pids());
}

TEST(SupervisorTest, ReadinessTimeoutRestartsTheReplica) {
  Started started;
  SupervisorOptions o = Options(1, {"--never-ready"}, &started);
  o.readiness_timeout = milliseconds(200);
  auto sup = MustCreate(std::move(o));
  ASSERT_TRUE(sup->Start().ok());
  ASSERT_TRUE(sup->WaitFor(Restarted(1), kWait));
  // It took the SIGTERM (killed by it if it came before the fake blocked it, on a slow machine).
  EXPECT_THAT(sup->Snapshot()[0].last_exit,
              testing::AnyOf("exited with code 0", "killed by signal 15 (TERM)"));
  sup->Stop();
  ExpectAllGone(started.pids());
}

TEST(SupervisorTest, ChildIgnoringSigtermIsKilledAtTheDrainDeadline) {
  Started started;
  auto sup = MustCreate(Options(1, {"--ignore-sigterm"}, &started));  // grace period 5 s
  ASSERT_TRUE(sup->Start().ok());
  ASSERT_TRUE(sup->WaitFor(AllReady(1), kWait));
  const TimePoint t0 = SteadyClock::Get().Now();
  sup->Drain(t0 + milliseconds(200));
  const Duration took = SteadyClock::Get().Now() - t0;
  EXPECT_GE(took, milliseconds(200));
  EXPECT_LT(took, seconds(4));  // the deadline, not the grace period
  sup->Stop();
  ExpectAllGone(started.pids());
}

TEST(SupervisorTest, ChildIgnoringSigtermIsKilledAfterGraceOnScaleDown) {
  Started started;
  SupervisorOptions o = Options(2, {"--ignore-sigterm"}, &started);
  o.grace_period = milliseconds(200);
  o.kill_margin = milliseconds(100);
  auto sup = MustCreate(std::move(o));
  ASSERT_TRUE(sup->Start().ok());
  ASSERT_TRUE(sup->WaitFor(AllReady(2), kWait));
  const pid_t victim = sup->Snapshot()[1].pid;
  ASSERT_TRUE(sup->SetReplicas(1).ok());
  ASSERT_TRUE(sup->WaitFor(AllReady(1), kWait));
  EXPECT_TRUE(Gone(victim));
  sup->Stop();  // Stop without Drain: SIGKILL at once for one that ignores SIGTERM
  ExpectAllGone(started.pids());
}

TEST(SupervisorTest, ChildGetsEnvironmentAndNoLeakedDescriptors) {
  Started started;
  int leaky[2];
  ASSERT_EQ(pipe(leaky), 0);  // inheritable on purpose: the child must not see it
  SupervisorOptions o = Options(
      1, {"--expect-env", "FAKE_MARK=42", "--fail-on-leaked-fds", "--print-plain"}, &started);
  o.environment = {"FAKE_MARK=42"};
  auto sup = MustCreate(std::move(o));
  ASSERT_TRUE(sup->Start().ok());
  ASSERT_TRUE(sup->WaitFor(AllReady(1), kWait));
  EXPECT_EQ(sup->Snapshot()[0].restarts, 0);
  sup->Stop();
  close(leaky[0]);
  close(leaky[1]);
  ExpectAllGone(started.pids());
}

TEST(SupervisorTest, InvalidOptionsAndArguments) {
  Started started;
  SupervisorOptions o = Options(-1, {}, &started);
  EXPECT_EQ(Supervisor::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = Options(1, {}, &started);
  o.binary = "/nonexistent/galley";
  EXPECT_EQ(Supervisor::Create(o).status().code(), absl::StatusCode::kNotFound);
  o = Options(1, {}, &started);
  o.restart_backoff.initial = milliseconds(0);
  EXPECT_EQ(Supervisor::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  auto sup = MustCreate(Options(0, {}, &started));
  EXPECT_EQ(sup->SetReplicas(-1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(sup->SetReplicas(2).ok());  // before Start: remembered
  EXPECT_EQ(sup->desired_replicas(), 2);
  EXPECT_EQ(sup->running_replicas(), 0);
  sup->Stop();  // never started
  EXPECT_TRUE(started.pids().empty());
}

// --- A SIGKILLed supervisor process leaves no replica behind (PR_SET_PDEATHSIG). ---

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

// Waits up to `timeout` for `fd` to be readable.
bool WaitReadable(int fd, Duration timeout) {
  pollfd p{fd, POLLIN, 0};
  const auto ms = std::chrono::duration_cast<milliseconds>(timeout).count();
  return poll(&p, 1, static_cast<int>(ms)) == 1;
}

TEST(SupervisorTest, KilledSupervisorProcessLeavesNoOrphans) {
  // Orphaned grandchildren become our children, so we can reap them and see that they exited.
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int report[2];
  ASSERT_EQ(pipe2(report, O_CLOEXEC), 0);
  const pid_t mini = fork();
  ASSERT_GE(mini, 0);
  if (mini == 0) {
    // The "galley up" process: a supervisor with 2 replicas that reports each child's pid.
    close(report[0]);
    Started started;
    SupervisorOptions o = Options(2, {}, &started);
    o.forward_logs = false;
    const int out = report[1];
    o.on_child_started = [out](std::string_view, pid_t pid) {
      ssize_t unused = write(out, &pid, sizeof(pid));
      (void)unused;
    };
    auto sup = Supervisor::Create(std::move(o));
    if (!sup.ok() || !(*sup)->Start().ok()) _exit(1);
    (*sup)->WaitFor(AllReady(2), kWait);
    pause();  // until SIGKILL
    _exit(0);
  }
  close(report[1]);
  std::vector<pid_t> children;
  while (children.size() < 2 && WaitReadable(report[0], kWait)) {
    pid_t pid = 0;
    if (read(report[0], &pid, sizeof(pid)) != sizeof(pid)) break;
    children.push_back(pid);
  }
  close(report[0]);
  ASSERT_EQ(children.size(), 2u);
  std::vector<int> pidfds;
  for (pid_t pid : children) pidfds.push_back(PidfdOpen(pid));

  ASSERT_EQ(kill(mini, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(mini, &status, 0), mini);
  for (size_t i = 0; i < children.size(); ++i) {
    ASSERT_GE(pidfds[i], 0);
    EXPECT_TRUE(WaitReadable(pidfds[i], kWait))
        << "replica " << children[i] << " outlived its supervisor";
    close(pidfds[i]);
    EXPECT_EQ(waitpid(children[i], &status, 0), children[i]);  // reparented to us; reap it
  }
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
  ExpectAllGone(children);
}

}  // namespace
}  // namespace galley::local
