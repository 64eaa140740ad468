// fake_replica: a stand-in for the `galley serve` CHILD in the supervisor's tests, so they need
// not build the real server. A real process on a real socket that takes the same command line
// (`serve --listen HOST:PORT --drain-delay-ms N ...`, unknown flags ignored) and logs the same
// JSON lines: {"event":"listening","port":N}, then {"event":"ready"}; on SIGTERM/SIGINT
// {"event":"draining"}, waits the drain delay, logs {"event":"stopped"} and exits 0.
//
// Test-only flags:
//   --never-ready            listen, but never log `ready`
//   --ready-after-ms N       log `ready` N ms after listening (default 0)
//   --crash-after-ms N       exit with code 3 N ms after start
//   --ignore-sigterm         ignore SIGTERM (the supervisor must SIGKILL it)
//   --expect-env NAME=VALUE  exit with code 4 unless the environment has it
//   --fail-on-leaked-fds     exit with code 5 if any descriptor other than 0, 1, 2 is open
//   --print-plain            also write one line that is not JSON
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "common/log.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  std::string host = "127.0.0.1";
  int drain_delay_ms = 0;
  bool never_ready = false;
  int ready_after_ms = 0;
  int crash_after_ms = -1;
  bool ignore_sigterm = false;
  std::string expect_env;
  bool fail_on_leaked_fds = false;
  bool print_plain = false;
};

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const char* next = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--listen") {
      const std::string_view hp = next;
      f.host = std::string(hp.substr(0, hp.rfind(':')));
      ++i;
    } else if (a == "--drain-delay-ms") {
      f.drain_delay_ms = std::atoi(next);
      ++i;
    } else if (a == "--never-ready") {
      f.never_ready = true;
    } else if (a == "--ready-after-ms") {
      f.ready_after_ms = std::atoi(next);
      ++i;
    } else if (a == "--crash-after-ms") {
      f.crash_after_ms = std::atoi(next);
      ++i;
    } else if (a == "--ignore-sigterm") {
      f.ignore_sigterm = true;
    } else if (a == "--expect-env") {
      f.expect_env = next;
      ++i;
    } else if (a == "--fail-on-leaked-fds") {
      f.fail_on_leaked_fds = true;
    } else if (a == "--print-plain") {
      f.print_plain = true;
    }
  }
  return f;
}

// Returns the first open descriptor above 2, or -1.
int LeakedFd() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int leaked = -1;
  while (dirent* e = readdir(dir)) {
    const int fd = std::atoi(e->d_name);
    if (e->d_name[0] != '.' && fd > 2 && fd != dirfd(dir)) leaked = fd;
  }
  closedir(dir);
  return leaked;
}

bool EnvMatches(const std::string& expect) {
  const size_t eq = expect.find('=');
  if (eq == std::string::npos) return false;
  const char* v = std::getenv(expect.substr(0, eq).c_str());
  return v != nullptr && expect.substr(eq + 1) == v;
}

int Listen(const std::string& host) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  if (fd < 0 || inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
      bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 64) != 0) {
    return -1;
  }
  return fd;
}

uint16_t PortOf(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

// Waits for SIGTERM/SIGINT until `until`; true when one came.
bool WaitForStopSignal(const sigset_t& set, std::optional<Clock::time_point> until) {
  while (true) {
    if (!until.has_value()) {
      int sig = 0;
      if (sigwait(&set, &sig) == 0) return true;
      continue;
    }
    const auto left = *until - Clock::now();
    if (left <= Clock::duration::zero()) return false;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    if (sigtimedwait(&set, nullptr, &ts) > 0) return true;
  }
}

}  // namespace

int main(int argc, char** argv) {
  namespace log = galley::log;
  const Clock::time_point start = Clock::now();
  const Flags flags = ParseFlags(argc, argv);
  if (flags.fail_on_leaked_fds) {
    if (const int fd = LeakedFd(); fd >= 0) {
      log::Error("leaked_fd", {{"fd", fd}});
      return 5;
    }
  }
  if (!flags.expect_env.empty() && !EnvMatches(flags.expect_env)) {
    log::Error("env_missing", {{"expected", flags.expect_env}});
    return 4;
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  if (flags.ignore_sigterm) {
    std::signal(SIGTERM, SIG_IGN);
  } else {
    sigaddset(&stop, SIGTERM);
  }
  sigprocmask(SIG_BLOCK, &stop, nullptr);

  log::Info("starting", {{"fake", true}});
  if (flags.print_plain) {
    std::printf("plain text from fake_replica\n");
    std::fflush(stdout);
  }
  const int listener = Listen(flags.host);
  if (listener < 0) {
    log::Error("start_failed", {{"error", std::strerror(errno)}});
    return 1;
  }
  log::Info("listening", {{"host", flags.host}, {"port", PortOf(listener)}});

  std::optional<Clock::time_point> crash_at;
  if (flags.crash_after_ms >= 0) crash_at = start + std::chrono::milliseconds(flags.crash_after_ms);
  std::optional<Clock::time_point> ready_at;
  if (!flags.never_ready) ready_at = Clock::now() + std::chrono::milliseconds(flags.ready_after_ms);

  while (true) {
    std::optional<Clock::time_point> until = crash_at;
    if (ready_at.has_value() && (!until.has_value() || *ready_at < *until)) until = ready_at;
    if (WaitForStopSignal(stop, until)) break;
    const auto now = Clock::now();
    if (crash_at.has_value() && now >= *crash_at) {
      log::Error("crashing", {});
      return 3;
    }
    if (ready_at.has_value() && now >= *ready_at) {
      log::Info("ready", {});
      ready_at.reset();
    }
  }
  log::Info("draining", {{"drain_delay_ms", flags.drain_delay_ms}});
  // The drain delay is a real wait in the server too, not a synchronisation.
  timespec ts{flags.drain_delay_ms / 1000, (flags.drain_delay_ms % 1000) * 1'000'000L};
  nanosleep(&ts, nullptr);
  close(listener);
  log::Info("stopped", {});
  return 0;
}
