#include "grpc/conn_acceptor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/strings.h"
#include "common/thread_name.h"

namespace galley::rpc {
namespace {

// epoll data for the two fds that are not connections.
constexpr uint64_t kListenTag = ~uint64_t{0};
constexpr uint64_t kWakeTag = ~uint64_t{0} - 1;

uint64_t InodeOf(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return 0;
  return static_cast<uint64_t>(st.st_ino);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ConnectionAcceptor>> ConnectionAcceptor::Listen(
    AcceptorOptions options) {
  std::unique_ptr<ConnectionAcceptor> a(new ConnectionAcceptor(std::move(options)));
  const std::string& host = a->options_.host;
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_INET;
  if (auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
      inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(a->options_.port));
    len = sizeof(sockaddr_in);
  } else if (auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
             inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    family = AF_INET6;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(a->options_.port));
    len = sizeof(sockaddr_in6);
  } else {
    return absl::UnavailableError(
        StrCat("cannot listen for gRPC on '", host, "': not an IP address"));
  }
  a->listen_fd_ = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  if (a->listen_fd_ < 0 ||
      setsockopt(a->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      bind(a->listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      listen(a->listen_fd_, SOMAXCONN) != 0) {
    return absl::UnavailableError(StrCat("cannot listen for gRPC on ", host, ":", a->options_.port,
                                         ": ", std::strerror(errno)));
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof(bound);
  getsockname(a->listen_fd_, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  a->port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                     : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  a->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  a->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (a->epoll_fd_ < 0 || a->wake_fd_ < 0) {
    return absl::UnavailableError(StrCat("gRPC acceptor: ", std::strerror(errno)));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  epoll_ctl(a->epoll_fd_, EPOLL_CTL_ADD, a->listen_fd_, &ev);
  ev.data.u64 = kWakeTag;
  epoll_ctl(a->epoll_fd_, EPOLL_CTL_ADD, a->wake_fd_, &ev);
  return a;
}

ConnectionAcceptor::~ConnectionAcceptor() {
  Stop();
  for (int fd : {epoll_fd_, wake_fd_}) {
    if (fd >= 0) close(fd);
  }
}

void ConnectionAcceptor::Start(std::function<void(int fd)> adopt) {
  adopt_ = std::move(adopt);
  thread_ = std::thread([this] {
    SetThreadName("grpc-accept");
    Run();
  });
}

void ConnectionAcceptor::Stop() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  // New connections are refused from now on (not left in the backlog).
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    listen_fd_ = -1;
  }
}

void ConnectionAcceptor::Forget(const std::string& peer) {
  if (auto it = per_peer_.find(peer); it != per_peer_.end() && --it->second == 0)
    per_peer_.erase(it);
}

size_t ConnectionAcceptor::CountOpen() {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_count_ < options_.recount_interval) return handed_.size() + pending_.size();
  last_count_ = now;
  handed_.erase(std::remove_if(handed_.begin(), handed_.end(),
                               [this](const Handed& h) {
                                 if (InodeOf(h.fd) == h.inode) return false;
                                 Forget(h.peer);
                                 return true;
                               }),
                handed_.end());
  return handed_.size() + pending_.size();
}

void ConnectionAcceptor::AcceptAll() {
  while (true) {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    const int fd =
        accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: the listener stays readable, so stop watching it for a moment
        // rather than spin (the connection waits in the backlog).
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
        listen_paused_until_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
      }
      return;  // EAGAIN: none left
    }
    char host[INET6_ADDRSTRLEN] = {};
    const void* raw =
        addr.ss_family == AF_INET6
            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&addr)->sin6_addr)
            : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&addr)->sin_addr);
    inet_ntop(addr.ss_family, raw, host, sizeof(host));
    std::string peer(host);
    auto from_peer = [&] {
      auto it = per_peer_.find(peer);
      return it == per_peer_.end() ? size_t{0} : it->second;
    };
    const bool full = handed_.size() + pending_.size() >= options_.max_connections ||
                      from_peer() >= options_.max_connections_per_peer;
    if (full && (CountOpen() >= options_.max_connections ||
                 from_peer() >= options_.max_connections_per_peer)) {
      stats_.refused.fetch_add(1, std::memory_order_relaxed);  // counted before the peer can see it
      close(fd);
      continue;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = static_cast<uint64_t>(fd);
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    ++per_peer_[peer];
    pending_.push_back({fd, std::chrono::steady_clock::now() + options_.first_byte_timeout, peer});
  }
}

void ConnectionAcceptor::Run() {
  std::vector<epoll_event> events(64);
  while (true) {
    int timeout_ms = -1;
    const auto now = std::chrono::steady_clock::now();
    if (listen_paused_until_) {
      if (now >= *listen_paused_until_) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = kListenTag;
        epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
        listen_paused_until_.reset();
      } else {
        timeout_ms = static_cast<int>(
            std::chrono::ceil<std::chrono::milliseconds>(*listen_paused_until_ - now).count());
      }
    }
    for (const Pending& p : pending_) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(p.deadline - now).count();
      const int wait = static_cast<int>(std::max<int64_t>(0, left));
      timeout_ms = timeout_ms < 0 ? wait : std::min(timeout_ms, wait);
    }
    const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kWakeTag) {
        for (const Pending& p : pending_) {
          close(p.fd);
          Forget(p.peer);
        }
        pending_.clear();
        return;
      }
      if (tag == kListenTag) {
        AcceptAll();
        continue;
      }
      // A waiting connection sent its first bytes (or closed): gRPC takes it from here.
      const int fd = static_cast<int>(tag);
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      auto it = std::find_if(pending_.begin(), pending_.end(),
                             [fd](const Pending& p) { return p.fd == fd; });
      if (it == pending_.end()) continue;  // closed at its deadline in an earlier round
      handed_.push_back({fd, InodeOf(fd), std::move(it->peer)});
      pending_.erase(it);
      stats_.accepted.fetch_add(1, std::memory_order_relaxed);
      adopt_(fd);
    }
    // Connections silent past their first-byte deadline are closed.
    const auto after = std::chrono::steady_clock::now();
    pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                  [&](const Pending& p) {
                                    if (p.deadline > after) return false;
                                    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, p.fd, nullptr);
                                    stats_.timed_out.fetch_add(1, std::memory_order_relaxed);
                                    close(p.fd);
                                    Forget(p.peer);
                                    return true;
                                  }),
                   pending_.end());
  }
}

}  // namespace galley::rpc
