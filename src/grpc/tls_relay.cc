#include "grpc/tls_relay.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <set>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/bind_executor.hpp"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/local/connect_pair.hpp"
#include "boost/asio/local/stream_protocol.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "boost/asio/write.hpp"
#include "common/log.h"
#include "common/strings.h"
#include "common/thread_name.h"

namespace galley::rpc {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;

class TlsRelay::Impl {
 public:
  class Session;

  Impl(TlsRelayOptions o, std::shared_ptr<http::TlsServerContext> tls)
      : options_(std::move(o)), tls_(std::move(tls)), work_(asio::make_work_guard(io_)) {
    for (int i = 0; i < std::max(1, options_.threads); ++i) {
      threads_.emplace_back([this, i] {
        SetThreadName("grpc-tls-", StrCat(i));
        io_.run();
      });
    }
  }
  ~Impl() { Stop(); }

  void Relay(int fd, std::function<void(int)> adopt) ABSL_LOCKS_EXCLUDED(mu_);
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  void Add(const std::shared_ptr<Session>& s) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    sessions_.insert(s);
  }
  void Remove(const std::shared_ptr<Session>& s) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    sessions_.erase(s);
  }

  const TlsRelayOptions options_;
  const std::shared_ptr<http::TlsServerContext> tls_;
  asio::io_context io_;

 private:
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  absl::Mutex mu_;
  // Live ones, so Stop() can close them.
  std::set<std::shared_ptr<Session>> sessions_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

// One connection: the TLS side and the plaintext side gRPC reads, with a copy each way. Every
// handler runs on the session's strand, so Close() never races a copy.
class TlsRelay::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Impl& relay, tcp::socket socket, std::shared_ptr<ssl::context> ctx)
      : relay_(relay),
        strand_(asio::make_strand(relay.io_)),
        ctx_(std::move(ctx)),
        tls_(std::move(socket), *ctx_),
        plain_(strand_),
        timer_(strand_) {}

  void Start(std::function<void(int)> adopt) {
    auto self = shared_from_this();
    asio::dispatch(strand_, [this, self, adopt = std::move(adopt)]() mutable {
      timer_.expires_after(relay_.options_.handshake_timeout);
      timer_.async_wait([this, self](boost::system::error_code ec) {
        if (!ec && !handshaken_) Close();  // too slow: the acceptor's slot is freed
      });
      tls_.async_handshake(ssl::stream_base::server,
                           asio::bind_executor(strand_, [this, self, adopt = std::move(adopt)](
                                                            boost::system::error_code ec) {
                             if (ec || closed_) return Close();
                             handshaken_ = true;
                             timer_.cancel();
                             local::socket grpc_end(relay_.io_);
                             asio::local::connect_pair(plain_, grpc_end, ec);
                             if (ec) return Close();
                             const int fd = grpc_end.release();
                             ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
                             adopt(fd);
                             Copy(/*from_tls=*/true);
                             Copy(/*from_tls=*/false);
                           }));
    });
  }

  // Closes both sides (idempotent, on the strand).
  void Close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    timer_.cancel();
    tls_.lowest_layer().shutdown(tcp::socket::shutdown_both, ec);
    tls_.lowest_layer().close(ec);
    plain_.close(ec);
    relay_.Remove(shared_from_this());
  }

  void CloseLater() {
    auto self = shared_from_this();
    asio::dispatch(strand_, [this, self] { Close(); });
  }

 private:
  void Copy(bool from_tls) {
    auto self = shared_from_this();
    auto& buf = from_tls ? from_tls_ : from_grpc_;
    auto on_read = asio::bind_executor(
        strand_, [this, self, from_tls, &buf](boost::system::error_code ec, size_t n) {
          if (ec || closed_) return Close();
          auto on_written = asio::bind_executor(
              strand_, [this, self, from_tls](boost::system::error_code ec, size_t) {
                if (ec || closed_) return Close();
                Copy(from_tls);
              });
          if (from_tls) {
            asio::async_write(plain_, asio::buffer(buf.data(), n), std::move(on_written));
          } else {
            asio::async_write(tls_, asio::buffer(buf.data(), n), std::move(on_written));
          }
        });
    if (from_tls) {
      tls_.async_read_some(asio::buffer(buf), std::move(on_read));
    } else {
      plain_.async_read_some(asio::buffer(buf), std::move(on_read));
    }
  }

  Impl& relay_;
  asio::strand<asio::io_context::executor_type> strand_;
  std::shared_ptr<ssl::context> ctx_;  // the context of this connection (files reload)
  ssl::stream<tcp::socket> tls_;
  local::socket plain_;
  asio::steady_timer timer_;
  std::array<char, 16384> from_tls_{}, from_grpc_{};
  bool handshaken_ = false;
  bool closed_ = false;
};

void TlsRelay::Impl::Relay(int fd, std::function<void(int)> adopt) {
  boost::system::error_code ec;
  tcp::socket socket(io_);
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  socket.assign(addr.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
  if (ec) {
    ::close(fd);
    return;
  }
  std::shared_ptr<Session> s;
  {
    absl::MutexLock l(&mu_);
    if (stopped_) return;  // `socket` closes the connection
    s = std::make_shared<Session>(*this, std::move(socket), tls_->Current());
    sessions_.insert(s);
  }
  s->Start(std::move(adopt));
}

void TlsRelay::Impl::Stop() {
  std::set<std::shared_ptr<Session>> open;
  {
    absl::MutexLock l(&mu_);
    if (stopped_) return;
    stopped_ = true;
    open = sessions_;
  }
  for (const auto& s : open) s->CloseLater();
  work_.reset();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

absl::StatusOr<std::unique_ptr<TlsRelay>> TlsRelay::Create(TlsRelayOptions options) {
  options.files.alpn_h2 = true;
  auto tls = http::TlsServerContext::Load(options.files);
  if (!tls.ok()) return tls.status();
  return std::unique_ptr<TlsRelay>(
      new TlsRelay(std::make_unique<Impl>(std::move(options), std::move(tls).value())));
}

TlsRelay::TlsRelay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsRelay::~TlsRelay() { Stop(); }
void TlsRelay::Relay(int tcp_fd, std::function<void(int)> adopt) {
  impl_->Relay(tcp_fd, std::move(adopt));
}
void TlsRelay::Stop() { impl_->Stop(); }

}  // namespace galley::rpc
