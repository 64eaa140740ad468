// One child process of the supervisor, started with fork + exec: stdin from /dev/null, stdout on
// a pipe that the parent reads line by line, stderr inherited, every other descriptor closed, its
// own process group (a Ctrl-C in the terminal reaches the supervisor, which then stops the
// children in order), default signal dispositions and an empty signal mask, and
// PR_SET_PDEATHSIG(SIGTERM) so that it is told to stop if its parent dies, even by SIGKILL.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace galley::local {

struct SpawnSpec {
  std::string path;               // the executable
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> env;   // "NAME=value": the child's whole environment
};

class ChildProcess {
 public:
  // Starts the child. Errors: Internal when a pipe, /dev/null or fork fails. A failing exec is
  // not an error here: the child writes a line on stderr and exits with code 127.
  // NOTE: PR_SET_PDEATHSIG fires when the *thread* that called Spawn exits, not the process;
  // call it from a thread that outlives the child (the supervisor's own thread).
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(const SpawnSpec& spec);

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // If the child has not been reaped: SIGKILL, then a blocking wait. No orphan, no zombie.
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // The read end of the child's stdout (non-blocking), or -1 once it reached EOF.
  int stdout_fd() const { return out_fd_; }
  // A pidfd that polls readable once the child has exited, or -1 where the kernel has none
  // (before Linux 5.3): then call TryReap from time to time.
  int exit_fd() const { return pidfd_; }
  bool reaped() const { return reaped_; }

  // Sends `sig`; a no-op once the child has been reaped (its pid may belong to another process).
  void Signal(int sig);
  // Reaps the child if it has exited: its wait status, or nullopt while it runs.
  std::optional<int> TryReap();
  // Reads what stdout has now, up to about `max_bytes`, and appends every complete line (without
  // the newline) to `lines`. A line longer than kMaxLineBytes is cut into pieces of that size. At
  // EOF, a last unterminated line is appended too and the descriptor is closed.
  void ReadLines(std::vector<std::string>* lines, size_t max_bytes = 256 * 1024);

  static constexpr size_t kMaxLineBytes = 64 * 1024;

 private:
  ChildProcess(pid_t pid, int out_fd, int pidfd) : pid_(pid), out_fd_(out_fd), pidfd_(pidfd) {}
  void CloseStdout();

  const pid_t pid_;
  int out_fd_;
  const int pidfd_;
  bool reaped_ = false;
  std::string partial_;  // bytes of a line not yet terminated
};

// "exited with code 1", "killed by signal 9 (KILL)".
std::string DescribeWaitStatus(int status);

}  // namespace galley::local
