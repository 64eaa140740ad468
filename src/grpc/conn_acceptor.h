// Accepts the gRPC front-end's TCP connections itself, so that it can hold the limits gRPC 1.51
// has no setting for: at most `max_connections` open at once and `max_connections_per_peer` from
// one client address (a newcomer beyond either is closed at once), and a connection that sends
// nothing within `first_byte_timeout` is closed before gRPC ever sees it. Each connection that
// passes both is handed to gRPC (AddInsecureChannelFromFd), which owns it from then on. A
// handed-over connection counts until gRPC has closed it; that is seen from its file descriptor
// (fstat: closed, or reused for another file), checked when the count reaches the cap.
//
// One thread (`grpc-accept`) on epoll; POSIX only.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace galley::rpc {

struct AcceptorOptions {
  std::string host = "127.0.0.1";  // an IPv6 host without brackets
  int port = 0;                    // 0 picks a free port
  size_t max_connections = 4096;
  size_t max_connections_per_peer = 1024;
  std::chrono::milliseconds first_byte_timeout{5'000};
  // How often, at most, a full acceptor re-checks which handed-over connections gRPC closed (an
  // fstat each): a client hammering it cannot make the accept thread do that per attempt.
  std::chrono::milliseconds recount_interval{100};
};

struct AcceptorStats {
  std::atomic<int64_t> accepted{0};   // handed to gRPC
  std::atomic<int64_t> refused{0};    // closed at the cap
  std::atomic<int64_t> timed_out{0};  // closed before their first byte
};

class ConnectionAcceptor {
 public:
  // Binds and listens. Unavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<ConnectionAcceptor>> Listen(AcceptorOptions options);
  ~ConnectionAcceptor();  // Stop()
  ConnectionAcceptor(const ConnectionAcceptor&) = delete;
  ConnectionAcceptor& operator=(const ConnectionAcceptor&) = delete;

  int port() const { return port_; }
  // Starts accepting; `adopt(fd)` takes each admitted connection (on the accept thread).
  void Start(std::function<void(int fd)> adopt);
  // Stops accepting, closes the listener and the connections still waiting for a first byte,
  // and joins the thread. Idempotent.
  void Stop();
  const AcceptorStats& stats() const { return stats_; }

 private:
  explicit ConnectionAcceptor(AcceptorOptions options) : options_(std::move(options)) {}
  void Run();
  void AcceptAll();
  size_t CountOpen();  // refreshes the handed-over list

  struct Pending {
    int fd;
    std::chrono::steady_clock::time_point deadline;
    std::string peer;
  };
  struct Handed {
    int fd;
    uint64_t inode;
    std::string peer;
  };
  void Forget(const std::string& peer);

  const AcceptorOptions options_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int port_ = 0;
  std::function<void(int)> adopt_;
  std::thread thread_;
  std::vector<Pending> pending_;            // the accept thread's
  std::vector<Handed> handed_;              // the accept thread's
  std::map<std::string, size_t> per_peer_;  // open (pending or handed) per client address
  std::chrono::steady_clock::time_point last_count_{};
  std::optional<std::chrono::steady_clock::time_point> listen_paused_until_;  // out of fds
  AcceptorStats stats_;
};

}  // namespace galley::rpc
