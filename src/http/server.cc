#include "http/server.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>
#include <vector>

#include "common/strings.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/core/string.hpp"
#include "boost/beast/http/empty_body.hpp"
#include "boost/beast/http/error.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/write.hpp"
#include "common/log.h"
#include "common/strings.h"
#include "http/parser_limits.h"

namespace galley::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

class ServerImpl;

// One connection. Lives on its own strand; every member is touched only from that strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, ServerImpl* server);
  ~Session();
  void Run();
  // Posted by the server when draining starts: close if idle, else close after this response.
  void Drain();
  // Writes a canned response and closes (used to refuse over-limit connections).
  void Refuse(Response&& res);

 private:
  void WaitForRequest();
  void OnFirstBytes(error_code ec, size_t n);
  void ReadRequest();
  void OnHeader(error_code ec, size_t n);
  void ReadBody();
  void OnRead(error_code ec, size_t n);
  void Dispatch();
  void Write(Response&& res, bool close_after);
  void OnWrite(bool close, error_code ec, size_t n);
  void Close();

  void Reject(Status status, std::string_view message);

  beast::tcp_stream stream_;
  ServerImpl* server_;
  // Timeouts: each phase (idle, receiving a request, writing) sets a deadline that the server's
  // sweeper checks a few times per shortest timeout; one timer serves every connection, so a
  // request costs no timer syscalls. A late request is answered with 408 (the socket's pending
  // read is cancelled, not the socket closed).
 public:
  enum class Phase { kNone, kIdle, kRequest, kWrite };
  // Called by the sweeper (any thread): true if this session's deadline has passed.
  bool Expired(int64_t now_ns) const {
    return phase_.load(std::memory_order_relaxed) != static_cast<int>(Phase::kNone) &&
           now_ns >= deadline_ns_.load(std::memory_order_relaxed);
  }
  // Acts on an expired deadline, on the strand.
  void Expire();
  void PostExpire() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->Expire(); });
  }

 private:
  void SetPhase(Phase phase, std::chrono::milliseconds timeout);
  std::atomic<int> phase_{static_cast<int>(Phase::kNone)};
  std::atomic<int64_t> deadline_ns_{INT64_MAX};
  bool request_timed_out_ = false;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::shared_ptr<Response> pending_;
  bool idle_ = false;        // waiting for the first byte of the next request
  bool draining_ = false;
  bool closed_ = false;
  bool request_keep_alive_ = true;
};

class ServerImpl final : public Server {
 public:
  ServerImpl(const ServerOptions& options, Handler handler, RejectHook on_rejected)
      : options_(options), handler_(std::move(handler)), on_rejected_(std::move(on_rejected)),
        ioc_(options.io_threads),
        acceptor_(asio::make_strand(ioc_)) {}

  ~ServerImpl() override { Stop(); }

  absl::Status Listen() {
    error_code ec;
    auto address = asio::ip::make_address(options_.host, ec);
    if (ec) return absl::InvalidArgumentError(StrCat("bad listen host '", options_.host, "': ", ec.message()));
    tcp::endpoint endpoint(address, options_.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(StrCat("cannot listen on ", options_.host, ":",
                                                 options_.port, ": ", ec.message()));
    }
    port_ = acceptor_.local_endpoint().port();
    return absl::OkStatus();
  }

  uint16_t port() const override { return port_; }

  void Start() override {
    // Keeps run() going while sessions wait on model callbacks with no I/O pending (e.g. after
    // the acceptor closes during a drain); released by Stop().
    work_.emplace(ioc_.get_executor());
    Accept();
    Sweep();
    threads_.reserve(options_.io_threads);
    for (int i = 0; i < options_.io_threads; ++i) {
      threads_.emplace_back([this] { ioc_.run(); });
    }
  }

  void StopAccepting() override {
    if (accepting_stopped_.exchange(true)) return;
    asio::post(acceptor_.get_executor(), [this] {
      error_code ec;
      acceptor_.close(ec);
    });
    std::vector<std::shared_ptr<Session>> sessions;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto* s : sessions_) {
        if (auto sp = s->weak_from_this().lock()) sessions.push_back(std::move(sp));
      }
    }
    for (auto& s : sessions) s->Drain();
  }

  bool WaitForConnectionsClosed(std::chrono::steady_clock::time_point deadline) override {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, deadline, [this] { return sessions_.empty(); });
  }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    StopAccepting();
    asio::post(sweep_timer_.get_executor(), [this] { sweep_timer_.cancel(); });
    work_.reset();
    ioc_.stop();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }

  const ServerStats& stats() const override { return stats_; }

  const ServerOptions& options() const { return options_; }
  bool draining() const { return accepting_stopped_.load(); }
  void Rejected(Status status) {
    if (on_rejected_) on_rejected_(status);
  }
  void Handle(Request&& req, Responder respond) {
    stats_.requests.fetch_add(1, std::memory_order_relaxed);
    handler_(std::move(req), std::move(respond));
  }

  void Register(Session* s) {
    std::lock_guard<std::mutex> lock(mu_);
    sessions_.insert(s);
    stats_.open_connections.store(static_cast<int64_t>(sessions_.size()));
  }
  void Unregister(Session* s) {
    std::lock_guard<std::mutex> lock(mu_);
    sessions_.erase(s);
    stats_.open_connections.store(static_cast<int64_t>(sessions_.size()));
    if (sessions_.empty()) cv_.notify_all();
  }

 private:
  void Accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), [this](error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
        log::Warn("accept_failed", {{"error", ec.message()}});
      } else {
        OnAccept(std::move(socket));
      }
      if (acceptor_.is_open()) Accept();
    });
  }

  // Every tick, finds sessions whose phase deadline has passed and has each act on its strand.
  void Sweep() {
    sweep_timer_.expires_after(SweepTick());
    sweep_timer_.async_wait([this](error_code ec) {
      if (ec || stopped_.load()) return;
      const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::steady_clock::now().time_since_epoch()).count();
      std::vector<std::shared_ptr<Session>> expired;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (Session* s : sessions_) {
          if (!s->Expired(now)) continue;
          if (auto sp = s->weak_from_this().lock()) expired.push_back(std::move(sp));
        }
      }
      for (auto& s : expired) s->PostExpire();
      Sweep();
    });
  }

  // A quarter of the shortest timeout, between 5 ms and 250 ms.
  std::chrono::milliseconds SweepTick() const {
    auto shortest = std::min({options_.idle_timeout, options_.request_timeout, options_.write_timeout});
    return std::clamp(shortest / 4, std::chrono::milliseconds(5), std::chrono::milliseconds(250));
  }

  void OnAccept(tcp::socket&& socket) {
    error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    size_t open;
    {
      std::lock_guard<std::mutex> lock(mu_);
      open = sessions_.size();
    }
    auto session = std::make_shared<Session>(std::move(socket), this);
    if (open >= options_.max_connections) {
      stats_.rejected_connections.fetch_add(1, std::memory_order_relaxed);
      Rejected(Status::service_unavailable);
      session->Refuse(JsonError(Status::service_unavailable, "too many open connections"));
      return;
    }
    stats_.accepted_connections.fetch_add(1, std::memory_order_relaxed);
    session->Run();
  }

  ServerOptions options_;
  Handler handler_;
  RejectHook on_rejected_;
  ServerStats stats_;
  std::atomic<bool> accepting_stopped_{false};
  std::atomic<bool> stopped_{false};
  // Declared before ioc_: sessions destroyed with ioc_'s pending handlers unregister here.
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_set<Session*> sessions_;  // guarded by mu_
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::steady_timer sweep_timer_{asio::make_strand(ioc_)};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  uint16_t port_ = 0;
  std::vector<std::thread> threads_;
};

Session::Session(tcp::socket&& socket, ServerImpl* server)
    : stream_(std::move(socket)), server_(server) {
  server_->Register(this);
}

Session::~Session() { server_->Unregister(this); }

void Session::Run() {
  asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    if (self->server_->draining()) {
      self->draining_ = true;
    }
    self->WaitForRequest();
  });
}

void Session::Refuse(Response&& res) {
  asio::dispatch(stream_.get_executor(), [self = shared_from_this(), res = std::move(res)]() mutable {
    self->Write(std::move(res), /*close_after=*/true);
  });
}

void Session::Drain() {
  asio::post(stream_.get_executor(), [self = shared_from_this()] {
    self->draining_ = true;
    if (self->idle_) self->Close();
  });
}

void Session::WaitForRequest() {
  if (draining_ && buffer_.size() == 0) return Close();
  parser_.emplace();
  ConfigureParser(*parser_, server_->options().max_header_bytes, server_->options().max_body_bytes);
  if (buffer_.size() > 0) return ReadRequest();  // pipelined bytes already here
  idle_ = true;
  SetPhase(Phase::kIdle, server_->options().idle_timeout);
  stream_.async_read_some(buffer_.prepare(4096),
                          beast::bind_front_handler(&Session::OnFirstBytes, shared_from_this()));
}

void Session::OnFirstBytes(error_code ec, size_t n) {
  idle_ = false;
  if (ec) return Close();  // idle timeout, peer closed, or drained
  buffer_.commit(n);
  ReadRequest();
}

void Session::ReadRequest() {
  request_timed_out_ = false;
  SetPhase(Phase::kRequest, server_->options().request_timeout);
  bhttp::async_read_header(stream_, buffer_, *parser_,
                           beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
}

void Session::OnHeader(error_code ec, size_t n) {
  if (ec) return OnRead(ec, n);
  const auto& req = parser_->get();
  auto expect = req.find(bhttp::field::expect);
  if (expect != req.end() && beast::iequals(expect->value(), "100-continue")) {
    // The client waits for this before sending the body (curl does for bodies over 1 KiB).
    auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_, 11);
    bhttp::async_write(stream_, *cont, [self = shared_from_this(), cont](error_code wec, size_t) {
      if (wec) return self->Close();
      self->ReadBody();
    });
    return;
  }
  ReadBody();
}

void Session::ReadBody() {
  if (parser_->is_done()) return OnRead({}, 0);
  bhttp::async_read(stream_, buffer_, *parser_,
                    beast::bind_front_handler(&Session::OnRead, shared_from_this()));
}

void Session::Reject(Status status, std::string_view message) {
  server_->Rejected(status);
  Write(JsonError(status, message), /*close_after=*/true);
}

void Session::OnRead(error_code ec, size_t) {
  SetPhase(Phase::kNone, {});
  const ServerOptions& o = server_->options();
  if (request_timed_out_) {
    return Reject(Status::request_timeout, StrCat("request not received within ",
                                                  o.request_timeout.count(), " ms"));
  }
  if (ec == bhttp::error::body_limit) {
    return Reject(Status::payload_too_large,
                  StrCat("request body exceeds the limit of ", o.max_body_bytes, " bytes"));
  }
  if (ec == bhttp::error::header_limit) {
    return Reject(Status::request_header_fields_too_large,
                  StrCat("request header exceeds the limit of ", o.max_header_bytes, " bytes"));
  }
  if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
      ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
    return Close();
  }
  if (ec) return Reject(Status::bad_request, StrCat("malformed HTTP request: ", ec.message()));
  Dispatch();
}

void Session::Dispatch() {
  Request req = parser_->release();
  request_keep_alive_ = req.keep_alive();
  SetPhase(Phase::kNone, {});  // the handler may take as long as its own deadline allows
  auto self = shared_from_this();
  server_->Handle(std::move(req), [self](Response&& res) {
    auto shared = std::make_shared<Response>(std::move(res));
    asio::post(self->stream_.get_executor(), [self, shared] {
      self->Write(std::move(*shared), false);
    });
  });
}

void Session::Write(Response&& res, bool close_after) {
  if (closed_) return;
  const bool close = close_after || draining_ || !request_keep_alive_;
  res.keep_alive(!close);
  res.set(bhttp::field::server, "galley");
  res.set(bhttp::field::date, HttpDateNow());
  pending_ = std::make_shared<Response>(std::move(res));
  SetPhase(Phase::kWrite, server_->options().write_timeout);
  bhttp::async_write(stream_, *pending_,
                     beast::bind_front_handler(&Session::OnWrite, shared_from_this(), close));
}

void Session::OnWrite(bool close, error_code ec, size_t) {
  pending_.reset();
  if (ec || close) return Close();
  WaitForRequest();
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

void Session::SetPhase(Phase phase, std::chrono::milliseconds timeout) {
  if (phase != Phase::kNone) {
    deadline_ns_.store(NowNs() + std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count(),
                       std::memory_order_relaxed);
  }
  phase_.store(static_cast<int>(phase), std::memory_order_relaxed);
}

void Session::Expire() {
  if (closed_ || !Expired(NowNs())) return;  // the phase moved on meanwhile
  const auto phase = static_cast<Phase>(phase_.load());
  if (phase == Phase::kRequest) {
    request_timed_out_ = true;
    phase_.store(static_cast<int>(Phase::kNone));
    error_code ignored;
    stream_.socket().cancel(ignored);  // OnRead answers 408
    return;
  }
  Close();  // idle keep-alive connection, or a client that does not read its response
}

void Session::Close() {
  if (closed_) return;
  closed_ = true;
  SetPhase(Phase::kNone, {});
  error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream_.socket().close(ec);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Create(const ServerOptions& options,
                                                       Handler handler, RejectHook on_rejected) {
  if (options.io_threads < 1) return absl::InvalidArgumentError("io_threads must be at least 1");
  auto server = std::make_unique<ServerImpl>(options, std::move(handler), std::move(on_rejected));
  if (auto st = server->Listen(); !st.ok()) return st;
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace galley::http
