#include "local/child_process.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string_view>

#include "absl/status/status.h"
#include "common/strings.h"

namespace galley::local {
namespace {

absl::Status ErrnoStatus(std::string_view what, int err) {
  return absl::InternalError(StrCat(what, ": ", std::strerror(err)));
}

int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  errno = ENOSYS;
  return -1;
#endif
}

// Makes `fd` the descriptor `target`, inheritable across exec. Async-signal-safe.
bool MoveTo(int fd, int target) {
  if (fd == target) return fcntl(fd, F_SETFD, 0) == 0;
  return dup2(fd, target) == target;
}

void WriteStderr(const char* s) {
  ssize_t unused = write(STDERR_FILENO, s, std::strlen(s));
  (void)unused;
}

// Runs in the child between fork and exec. The parent has other threads, so only
// async-signal-safe calls are allowed here: no allocation, no locks, no stdio.
[[noreturn]] void ExecChild(pid_t parent, int devnull, int out_write, const char* path,
                            char* const* argv, char* const* envp) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(1);  // the parent died before prctl: nobody would stop us
  setpgid(0, 0);
  for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);  // ignored signals survive exec
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // Move both descriptors out of 0..2 first, in case the parent had closed a standard stream.
  const int in_fd = fcntl(devnull, F_DUPFD_CLOEXEC, 3);
  const int out_fd = fcntl(out_write, F_DUPFD_CLOEXEC, 3);
  if (in_fd < 0 || out_fd < 0 || !MoveTo(in_fd, STDIN_FILENO) || !MoveTo(out_fd, STDOUT_FILENO)) {
    WriteStderr("galley: cannot set up a replica's stdin/stdout\n");
    _exit(127);
  }
  if (close_range(3, ~0U, 0) != 0) {
    for (int fd = 3; fd < 65536; ++fd) close(fd);
  }
  execve(path, argv, envp);
  WriteStderr("galley: cannot execute the replica binary: ");
  WriteStderr(path);
  WriteStderr("\n");
  _exit(127);
}

std::vector<char*> CStrings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const std::string& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(const SpawnSpec& spec) {
  // Everything the child needs is prepared before fork.
  std::vector<char*> argv = CStrings(spec.argv);
  std::vector<char*> envp = CStrings(spec.env);
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe2", errno);
  const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) {
    const int err = errno;
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return ErrnoStatus("open /dev/null", err);
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    ExecChild(parent, devnull, pipe_fds[1], spec.path.c_str(), argv.data(), envp.data());
  }
  const int fork_errno = errno;
  close(pipe_fds[1]);
  close(devnull);
  if (pid < 0) {
    close(pipe_fds[0]);
    return ErrnoStatus("fork", fork_errno);
  }
  fcntl(pipe_fds[0], F_SETFL, fcntl(pipe_fds[0], F_GETFL) | O_NONBLOCK);
  // The child cannot be reaped by anyone else, so its pid stays valid for pidfd_open.
  const int pidfd = PidfdOpen(pid);
  if (pidfd >= 0) fcntl(pidfd, F_SETFD, FD_CLOEXEC);
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, pipe_fds[0], pidfd));
}

ChildProcess::~ChildProcess() {
  if (!reaped_) {
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  CloseStdout();
  if (pidfd_ >= 0) close(pidfd_);
}

void ChildProcess::Signal(int sig) {
  if (!reaped_) kill(pid_, sig);
}

std::optional<int> ChildProcess::TryReap() {
  if (reaped_) return std::nullopt;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return std::nullopt;
  reaped_ = true;
  if (r < 0) return 0;  // ECHILD: someone else reaped it (a SIGCHLD set to SIG_IGN)
  return status;
}

void ChildProcess::CloseStdout() {
  if (out_fd_ >= 0) close(out_fd_);
  out_fd_ = -1;
}

void ChildProcess::ReadLines(std::vector<std::string>* lines, size_t max_bytes) {
  char buf[16 * 1024];
  size_t total = 0;
  while (out_fd_ >= 0 && total < max_bytes) {
    const ssize_t n = read(out_fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {  // EOF, or an error that ends the stream all the same
      if (!partial_.empty()) lines->push_back(std::move(partial_));
      partial_.clear();
      CloseStdout();
      return;
    }
    total += static_cast<size_t>(n);
    std::string_view rest(buf, static_cast<size_t>(n));
    while (!rest.empty()) {
      const size_t nl = rest.find('\n');
      const size_t room = kMaxLineBytes - partial_.size();
      if (nl != std::string_view::npos && nl <= room) {
        partial_.append(rest.substr(0, nl));
        rest.remove_prefix(nl + 1);
      } else if (rest.size() < room) {
        partial_.append(rest);
        break;
      } else {  // too long: cut here
        partial_.append(rest.substr(0, room));
        rest.remove_prefix(room);
      }
      lines->push_back(std::move(partial_));
      partial_.clear();
    }
  }
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return StrCat("exited with code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* abbrev = sigabbrev_np(sig);
    return StrCat("killed by signal ", sig, " (", abbrev != nullptr ? abbrev : "?", ")");
  }
  return StrCat("wait status ", status);
}

}  // namespace galley::local
