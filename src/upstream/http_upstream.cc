#include "upstream/http_upstream.h"

#include <optional>

#include "boost/asio/connect.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl/host_name_verification.hpp"
#include "boost/asio/ssl/stream.hpp"
#include "boost/asio/strand.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/http/write.hpp"
#include "common/strings.h"
#include "common/thread_name.h"
#include "http/response_reader.h"

namespace galley::upstream {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

}  // namespace

struct HttpUpstream::Connection {
  explicit Connection(asio::io_context& io) : stream(asio::make_strand(io)) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  std::unique_ptr<asio::ssl::stream<beast::tcp_stream&>> tls;  // over `stream`, when TLS is on
};

struct HttpUpstream::WorkGuard {
  explicit WorkGuard(asio::io_context& io) : guard(io.get_executor()) {}
  asio::executor_work_guard<asio::io_context::executor_type> guard;
};

namespace {

// One request/response exchange; owns its connection while it runs.
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(HttpUpstream* owner, std::string host, uint16_t port, http::Request request,
           TimePoint deadline, UpstreamCallback done)
      : owner_(owner),
        host_(std::move(host)),
        port_(port),
        key_(StrCat(host_, ":", port_)),
        request_(std::move(request)),
        deadline_(deadline),
        done_(std::move(done)),
        start_(std::chrono::steady_clock::now()) {
    // Hop-by-hop fields are this hop's own (an Expect: 100-continue forwarded would draw an interim
    // answer from the replica); the body goes with a Content-Length.
    http::RemoveHopByHopFields(request_.base());
    request_.set(bhttp::field::host, key_);
    request_.keep_alive(true);
    request_.prepare_payload();
    // The whole request as one buffer (sent again as is if a stale connection is replaced):
    // cheaper than Beast's serializer, which walks the header fields buffer by buffer.
    wire_.reserve(256 + request_.body().size());
    wire_.append(request_.method_string().data(), request_.method_string().size())
        .append(" ")
        .append(request_.target().data(), request_.target().size())
        .append(" ");
    http::AppendHttpVersion(request_.version(), wire_);
    wire_.append("\r\n");
    http::AppendFields(request_.base(), wire_);
    wire_.append("\r\n").append(request_.body());
  }

  void Start() {
    conn_ = owner_->TakeIdle(key_);
    if (conn_) {
      reused_ = true;
      return Write();
    }
    Connect();
  }

 private:
  void Arm() {
    if (deadline_ == TimePoint::max()) {
      conn_->stream.expires_never();
    } else {
      conn_->stream.expires_at(deadline_);
    }
  }

  void Connect() {
    reused_ = false;
    conn_ = std::make_unique<HttpUpstream::Connection>(owner_->io());
    error_code ec;
    const auto address = asio::ip::make_address(host_, ec);
    if (ec) return Fail(StrCat("bad replica address '", host_, "'"), false, true);
    Arm();
    conn_->stream.async_connect(
        tcp::endpoint(address, port_), [self = shared_from_this()](error_code ec) {
          if (ec) return self->FailFrom(ec, "connect", true);
          error_code ignored;
          self->conn_->stream.socket().set_option(tcp::no_delay(true), ignored);
          if (self->owner_->options().tls) return self->Handshake();
          self->Write();
        });
  }

  // TLS to the replica: its certificate must chain to the configured CA and name its address.
  void Handshake() {
    conn_->tls = std::make_unique<asio::ssl::stream<beast::tcp_stream&>>(conn_->stream,
                                                                         *owner_->options().tls);
    conn_->tls->set_verify_callback(asio::ssl::host_name_verification(host_));
    conn_->tls->async_handshake(asio::ssl::stream_base::client,
                                [self = shared_from_this()](error_code ec) {
                                  if (ec) return self->FailFrom(ec, "tls handshake", true);
                                  self->Write();
                                });
  }

  // Runs `f` with the stream the HTTP bytes go through: TLS over the TCP stream, or the latter.
  template <typename F>
  void WithStream(F&& f) {
    if (conn_->tls) {
      f(*conn_->tls);
    } else {
      f(conn_->stream);
    }
  }

  void Write() {
    Arm();
    WithStream([&](auto& stream) {
      asio::async_write(stream, asio::buffer(wire_),
                        [self = shared_from_this()](error_code ec, size_t) {
                          if (ec) return self->OnStaleOrFail(ec, "write");
                          self->Read();
                        });
    });
  }

  void Read() {
    reader_.emplace(owner_->options().max_response_bytes);
    Parse();
  }

  // Parses what has arrived; reads more until the final answer is complete.
  void Parse() {
    switch (reader_->Parse(conn_->buffer)) {
      case http::ResponseReader::State::kDone:
        return Finish();
      case http::ResponseReader::State::kError:
        return Fail(StrCat("read: ", reader_->error()), false, false);
      case http::ResponseReader::State::kNeedMore:
        break;
    }
    WithStream([&](auto& stream) {
      stream.async_read_some(
          conn_->buffer.prepare(kReadChunk), [self = shared_from_this()](error_code ec, size_t n) {
            self->conn_->buffer.commit(n);
            // (Over TLS only a clean close_notify reads as eof; a truncated
            // stream never completes an answer.)
            if (ec == asio::error::eof && self->reader_->got_some() &&
                self->reader_->OnEndOfStream() == http::ResponseReader::State::kDone) {
              self->closed_by_replica_ = true;
              return self->Finish();
            }
            if (ec) return self->OnStaleOrFail(ec, "read");
            self->Parse();
          });
    });
  }

  // A reused keep-alive connection may have been closed by the replica while idle: if nothing of
  // a response arrived, the replica never took the request; try once more on a new connection.
  void OnStaleOrFail(error_code ec, const char* step) {
    const bool nothing_received = !reader_ || !reader_->got_some();
    if (reused_ && nothing_received && ec != beast::error::timeout) {
      conn_.reset();
      return Connect();
    }
    FailFrom(ec, step, false);
  }

  void FailFrom(error_code ec, const char* step, bool not_sent) {
    const bool timeout = ec == beast::error::timeout;
    Fail(StrCat(step, ": ", timeout ? std::string("deadline passed") : ec.message()), timeout,
         not_sent);
  }

  void Fail(std::string error, bool timed_out, bool not_sent) {
    UpstreamResult r;
    r.transport_error = true;
    r.timed_out = timed_out;
    r.not_sent = not_sent;
    r.error = std::move(error);
    r.latency = std::chrono::steady_clock::now() - start_;
    conn_.reset();  // never pool a connection in an unknown state
    auto done = std::move(done_);
    done(std::move(r));
  }

  void Finish() {
    UpstreamResult r;
    r.response = std::move(reader_->response());
    r.latency = std::chrono::steady_clock::now() - start_;
    // Only a connection with nothing unread goes back to the pool: bytes after a complete answer
    // (a replica that answered twice) would become the next exchange's answer.
    if (r.response.keep_alive() && !closed_by_replica_ && conn_->buffer.size() == 0 && Quiet()) {
      conn_->stream.expires_never();
      owner_->GiveBack(key_, std::move(conn_));
    } else {
      error_code ignored;
      conn_->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      conn_.reset();
    }
    auto done = std::move(done_);
    done(std::move(r));
  }

  // True if no byte is waiting on the socket unread.
  bool Quiet() {
    error_code ec;
    const size_t pending = conn_->stream.socket().available(ec);
    if (ec || pending != 0) return false;
    if (!conn_->tls) return true;
    SSL* ssl = conn_->tls->native_handle();
    return SSL_pending(ssl) == 0 && BIO_ctrl_pending(SSL_get_rbio(ssl)) == 0;
  }

  static constexpr size_t kReadChunk = 64 << 10;
  HttpUpstream* owner_;
  const std::string host_;
  const uint16_t port_;
  const std::string key_;
  http::Request request_;
  std::string wire_;  // request_ as sent
  const TimePoint deadline_;
  UpstreamCallback done_;
  const TimePoint start_;
  std::unique_ptr<HttpUpstream::Connection> conn_;
  std::optional<http::ResponseReader> reader_;
  bool reused_ = false;
  bool closed_by_replica_ = false;  // the answer ended with the connection
};

}  // namespace

HttpUpstream::HttpUpstream(HttpUpstreamOptions options)
    : options_(options),
      io_(std::make_unique<asio::io_context>(options.io_threads)),
      work_(std::make_unique<WorkGuard>(*io_)) {
  for (int i = 0; i < std::max(1, options_.io_threads); ++i) {
    threads_.emplace_back([this, i] {
      SetThreadName("upstream-io-", StrCat(i));
      io_->run();
    });
  }
}

HttpUpstream::~HttpUpstream() { Shutdown(); }

void HttpUpstream::Shutdown() {
  work_.reset();
  io_->stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  absl::MutexLock lock(&mu_);
  idle_.clear();
}

asio::io_context& HttpUpstream::io() { return *io_; }

std::unique_ptr<HttpUpstream::Connection> HttpUpstream::TakeIdle(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = idle_.find(key);
  if (it == idle_.end() || it->second.empty()) return nullptr;
  auto conn = std::move(it->second.back());
  it->second.pop_back();
  return conn;
}

void HttpUpstream::GiveBack(const std::string& key, std::unique_ptr<Connection> conn) {
  absl::MutexLock lock(&mu_);
  auto& pool = idle_[key];
  if (pool.size() < options_.max_idle_per_replica) pool.push_back(std::move(conn));
}

void HttpUpstream::Send(const std::string& host, uint16_t port, http::Request request,
                        TimePoint deadline, UpstreamCallback done) {
  auto ex =
      std::make_shared<Exchange>(this, host, port, std::move(request), deadline, std::move(done));
  asio::post(*io_, [ex] { ex->Start(); });
}

}  // namespace galley::upstream
