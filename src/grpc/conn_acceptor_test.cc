#include "grpc/conn_acceptor.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/sync.h"
#include "gtest/gtest.h"

namespace galley::rpc {
namespace {

using namespace std::chrono_literals;

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  timeval tv{10, 0};  // a bound on a wait that must end much sooner
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

// True once the peer has closed `fd` (recv sees the end of the stream or a reset).
bool ClosedByPeer(int fd) {
  char c;
  const ssize_t n = recv(fd, &c, 1, 0);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

class Adopted {
 public:
  void Add(int fd) {
    absl::MutexLock l(&mu_);
    fds_.push_back(fd);
    cv_.SignalAll();
  }
  // Waits for the n-th adopted connection and returns its fd.
  int Wait(size_t n) {
    absl::MutexLock l(&mu_);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (fds_.size() < n && WaitUntil(cv_, mu_, deadline)) {
    }
    EXPECT_TRUE(fds_.size() >= n);
    return fds_.size() >= n ? fds_[n - 1] : -1;
  }
  size_t size() {
    absl::MutexLock l(&mu_);
    return fds_.size();
  }

 private:
  absl::Mutex mu_;
  absl::CondVar cv_;
  std::vector<int> fds_ ABSL_GUARDED_BY(mu_);
};

TEST(ConnectionAcceptorTest, NewcomersBeyondTheCapAreClosedUntilOneCloses) {
  auto acceptor = ConnectionAcceptor::Listen({.host = "127.0.0.1",
                                              .port = 0,
                                              .max_connections = 2,
                                              .first_byte_timeout = 20s,
                                              .recount_interval = 0ms});
  ASSERT_TRUE(acceptor.ok()) << acceptor.status();
  Adopted adopted;
  (*acceptor)->Start([&](int fd) { adopted.Add(fd); });
  const int port = (*acceptor)->port();
  std::vector<int> clients;
  for (size_t i = 1; i <= 2; ++i) {
    clients.push_back(Connect(port));
    ASSERT_EQ(send(clients.back(), "x", 1, 0), 1);
    ASSERT_GE(adopted.Wait(i), 0);
  }
  const int third = Connect(port);
  EXPECT_TRUE(ClosedByPeer(third));
  close(third);
  EXPECT_EQ((*acceptor)->stats().refused.load(), 1);
  EXPECT_EQ(adopted.size(), 2u);
  // The owner (gRPC) closes one connection: there is room again.
  close(adopted.Wait(1));
  const int fourth = Connect(port);
  ASSERT_EQ(send(fourth, "y", 1, 0), 1);
  const int handed = adopted.Wait(3);
  char c = 0;
  ASSERT_EQ(recv(handed, &c, 1, 0), 1);  // the first byte is left for the owner to read
  EXPECT_EQ(c, 'y');
  (*acceptor)->Stop();
  for (int fd : clients) close(fd);
  close(fourth);
  close(adopted.Wait(2));
  close(handed);
}

TEST(ConnectionAcceptorTest, OneClientAddressCannotTakeEveryConnection) {
  auto acceptor = ConnectionAcceptor::Listen({.host = "127.0.0.1",
                                              .port = 0,
                                              .max_connections = 100,
                                              .max_connections_per_peer = 2,
                                              .first_byte_timeout = 20s,
                                              .recount_interval = 0ms});
  ASSERT_TRUE(acceptor.ok()) << acceptor.status();
  Adopted adopted;
  (*acceptor)->Start([&](int fd) { adopted.Add(fd); });
  const int port = (*acceptor)->port();
  // Two from 127.0.0.1: one handed over, one still silent (pending counts too).
  const int first = Connect(port);
  ASSERT_EQ(send(first, "x", 1, 0), 1);
  const int handed = adopted.Wait(1);
  ASSERT_GE(handed, 0);
  const int silent = Connect(port);
  const int third = Connect(port);
  EXPECT_TRUE(ClosedByPeer(third));
  close(third);
  EXPECT_EQ((*acceptor)->stats().refused.load(), 1);
  // The owner closes the handed-over one: the address may connect again.
  close(handed);
  const int again = Connect(port);
  ASSERT_EQ(send(again, "y", 1, 0), 1);
  EXPECT_GE(adopted.Wait(2), 0);
  (*acceptor)->Stop();
  for (int fd : {first, silent, again}) close(fd);
  close(adopted.Wait(2));
}

TEST(ConnectionAcceptorTest, SilentConnectionIsClosedAfterTheFirstByteTimeout) {
  auto acceptor = ConnectionAcceptor::Listen(
      {.host = "127.0.0.1", .port = 0, .max_connections = 8, .first_byte_timeout = 100ms});
  ASSERT_TRUE(acceptor.ok()) << acceptor.status();
  Adopted adopted;
  (*acceptor)->Start([&](int fd) { adopted.Add(fd); });
  const int silent = Connect((*acceptor)->port());
  EXPECT_TRUE(ClosedByPeer(silent));
  close(silent);
  EXPECT_EQ((*acceptor)->stats().timed_out.load(), 1);
  EXPECT_EQ(adopted.size(), 0u);
  (*acceptor)->Stop();
  // Stopped: nothing listens any more.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>((*acceptor)->port()));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_NE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  close(fd);
}

TEST(ConnectionAcceptorTest, AnAddressThatCannotBeBoundIsAnError) {
  EXPECT_FALSE(ConnectionAcceptor::Listen({.host = "not-an-ip"}).ok());
  auto first = ConnectionAcceptor::Listen({.host = "127.0.0.1", .port = 0});
  ASSERT_TRUE(first.ok());
  auto second = ConnectionAcceptor::Listen({.host = "127.0.0.1", .port = (*first)->port()});
  ASSERT_FALSE(second.ok());
  EXPECT_NE(std::string(second.status().message()).find("in use"), std::string::npos);
}

}  // namespace
}  // namespace galley::rpc
