#include "http/server.h"

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <thread>
#include <unordered_set>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl/stream.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core/bind_handler.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/core/string.hpp"
#include "boost/beast/http/empty_body.hpp"
#include "boost/beast/http/error.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/write.hpp"
#include "common/log.h"
#include "common/strings.h"
#include "common/sync.h"
#include "common/thread_name.h"
#include "http/parser_limits.h"
#include "http/tls.h"

namespace galley::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
// Each I/O thread runs its own io_context, and a connection lives on one of them for its whole
// life, so its handlers never run concurrently and need no strand. The concrete executor type
// (instead of any_io_executor) keeps every asynchronous operation free of type erasure.
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;

class ServerImpl;
int64_t NowNs();

// One connection. Lives on one I/O thread's io_context; every member is touched only there.
class Session : public std::enable_shared_from_this<Session> {
 public:
  // With `tls` set, the connection starts with a TLS handshake and every byte goes through it.
  Session(Socket&& socket, ServerImpl* server, std::shared_ptr<asio::ssl::context> tls);
  ~Session();
  void Run();
  // Posted by the server when draining starts: close if idle, else close after this response.
  void Drain();
  // Writes a canned response and closes (used to refuse over-limit connections).
  void Refuse(Response&& res);
  // Closes this connection if it is still idle between requests (posted at the connection cap).
  void EvictIfIdle();
  // When this connection started waiting for a request (steady ns), 0 while a request is in
  // progress. Read by the acceptor under the server's lock.
  int64_t idle_since_ns() const { return idle_since_ns_.load(std::memory_order_relaxed); }
  const asio::ip::address& peer() const { return peer_; }
  void ClaimForEviction() { idle_since_ns_.store(0, std::memory_order_relaxed); }

 private:
  void WaitForRequest();
  void OnFirstBytes(error_code ec, size_t n);
  void ReadRequest();
  void OnHeader(error_code ec, size_t n);
  void ReadBody();
  void OnRead(error_code ec, size_t n);
  // Feeds the buffered bytes to the parser until `done` holds or it needs more bytes (ec is then
  // bhttp::error::need_more); saves a round through the io_context when the request is already
  // here, as it nearly always is.
  template <typename Done>
  void ParseBuffered(Done done, error_code& ec);
  void Dispatch();
  void Write(Response&& res, bool close_after);
  void OnWrite(bool close, error_code ec, size_t n);
  void Close();

  void Reject(Status status, std::string_view message);

  // Runs `f` with the stream the HTTP bytes go through: the TLS stream, else the socket.
  template <typename F>
  void WithStream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(socket_);
    }
  }
  void Handshake();

  Socket socket_;
  ServerImpl* server_;
  std::shared_ptr<asio::ssl::context> tls_context_;  // outlives tls_
  std::optional<asio::ssl::stream<Socket&>> tls_;
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
  // Acts on an expired deadline, on the session's thread.
  void Expire();
  void PostExpire() {
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->Expire(); });
  }

 private:
  void SetPhase(Phase phase, std::chrono::milliseconds timeout);
  asio::ip::address peer_;
  std::atomic<int64_t> idle_since_ns_{0};
  bool first_request_ = true;  // no request yet: the first-byte timeout applies
  std::atomic<int> phase_{static_cast<int>(Phase::kNone)};
  std::atomic<int64_t> deadline_ns_{INT64_MAX};
  bool request_timed_out_ = false;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  // The response being written: status line and header block (and a small body), then a large
  // body on its own. Kept between requests so that their capacity is reused.
  std::string head_;
  std::string body_;
  bool idle_ = false;  // waiting for the first byte of the next request
  bool draining_ = false;
  bool closed_ = false;
  bool request_keep_alive_ = true;
};

class ServerImpl final : public Server {
 public:
  ServerImpl(const ServerOptions& options, Handler handler, RejectHook on_rejected)
      : options_(options), handler_(std::move(handler)), on_rejected_(std::move(on_rejected)) {
    for (int i = 0; i < options_.io_threads; ++i) {
      contexts_.push_back(std::make_unique<asio::io_context>(1));
    }
    acceptor_.emplace(contexts_.front()->get_executor());
    sweep_timer_.emplace(contexts_.front()->get_executor());
  }

  ~ServerImpl() override { Stop(); }

  absl::Status Listen() {
    error_code ec;
    auto address = asio::ip::make_address(options_.host, ec);
    if (ec)
      return absl::InvalidArgumentError(
          StrCat("bad listen host '", options_.host, "': ", ec.message()));
    tcp::endpoint endpoint(address, options_.port);
    acceptor_->open(endpoint.protocol(), ec);
    if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_->bind(endpoint, ec);
    if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(
          StrCat("cannot listen on ", options_.host, ":", options_.port, ": ", ec.message()));
    }
    port_ = acceptor_->local_endpoint().port();
    return absl::OkStatus();
  }

  uint16_t port() const override { return port_; }

  absl::Status Start() override {
    // Keeps run() going while sessions wait on model callbacks with no I/O pending (e.g. after
    // the acceptor closes during a drain); released by Stop().
    for (auto& ioc : contexts_) work_.emplace_back(ioc->get_executor());
    Accept();
    Sweep();
    threads_.reserve(contexts_.size());
    for (auto& ioc : contexts_) {
      threads_.emplace_back([ioc = ioc.get(), i = threads_.size()] {
        SetThreadName("http-io-", StrCat(i));
        ioc->run();
      });
    }
    return absl::OkStatus();
  }

  void CloseAfterEachAnswer() override { close_after_answer_.store(true); }

  void StopAccepting() override {
    close_after_answer_.store(true);
    if (accepting_stopped_.exchange(true)) return;
    asio::post(acceptor_->get_executor(), [this] {
      error_code ec;
      acceptor_->close(ec);
    });
    std::vector<std::shared_ptr<Session>> sessions;
    {
      absl::MutexLock lock(&mu_);
      for (auto* s : sessions_) {
        if (auto sp = s->weak_from_this().lock()) sessions.push_back(std::move(sp));
      }
    }
    for (auto& s : sessions) s->Drain();
  }

  bool WaitForConnectionsClosed(std::chrono::steady_clock::time_point deadline) override {
    absl::MutexLock lock(&mu_);
    while (!sessions_.empty() && WaitUntil(cv_, mu_, deadline)) {
    }
    return sessions_.empty();
  }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    StopAccepting();
    asio::post(sweep_timer_->get_executor(), [this] { sweep_timer_->cancel(); });
    work_.clear();
    for (auto& ioc : contexts_) ioc->stop();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }

  const ServerStats& stats() const override { return stats_; }

  const ServerOptions& options() const { return options_; }
  bool draining() const { return accepting_stopped_.load(); }
  bool close_after_answer() const { return close_after_answer_.load(std::memory_order_relaxed); }
  void Rejected(Status status) {
    if (on_rejected_) on_rejected_(status);
  }
  void Handle(Request&& req, Responder respond) {
    stats_.requests.fetch_add(1, std::memory_order_relaxed);
    handler_(std::move(req), std::move(respond));
  }

  void Register(Session* s) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    sessions_.insert(s);
    ++per_peer_[s->peer()];
    stats_.open_connections.store(static_cast<int64_t>(sessions_.size()));
  }
  void Unregister(Session* s) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    sessions_.erase(s);
    if (auto it = per_peer_.find(s->peer()); it != per_peer_.end() && --it->second == 0) {
      per_peer_.erase(it);
    }
    stats_.open_connections.store(static_cast<int64_t>(sessions_.size()));
    if (sessions_.empty()) cv_.SignalAll();
  }

 private:
  // Connections are dealt to the I/O threads in turn.
  Executor NextExecutor() {
    const size_t i = next_context_++ % contexts_.size();
    return contexts_[i]->get_executor();
  }

  void Accept() {
    acceptor_->async_accept(NextExecutor(), [this](error_code ec, Socket socket) {
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_->is_open()) return;
        log::Warn("accept_failed", {{"error", ec.message()}});
      } else {
        OnAccept(std::move(socket));
      }
      if (acceptor_->is_open()) Accept();
    });
  }

  // Every tick, finds sessions whose phase deadline has passed and has each act on its thread.
  void Sweep() {
    sweep_timer_->expires_after(SweepTick());
    sweep_timer_->async_wait([this](error_code ec) {
      if (ec || stopped_.load()) return;
      const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::steady_clock::now().time_since_epoch())
                              .count();
      std::vector<std::shared_ptr<Session>> expired;
      {
        absl::MutexLock lock(&mu_);
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
    auto shortest = std::min({options_.first_byte_timeout, options_.idle_timeout,
                              options_.request_timeout, options_.write_timeout});
    return std::clamp(shortest / 4, std::chrono::milliseconds(5), std::chrono::milliseconds(250));
  }

  void OnAccept(Socket&& socket) {
    error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    // Counted before this connection registers itself.
    size_t open, from_peer;
    std::shared_ptr<Session> evict;
    const auto peer = socket.remote_endpoint(ec).address();
    {
      absl::MutexLock lock(&mu_);
      open = sessions_.size();
      auto it = per_peer_.find(peer);
      from_peer = it == per_peer_.end() ? 0 : it->second;
      // At the cap a new client takes the place of the connection idle the longest (one that
      // sent nothing yet counts as idle), as a keep-alive connection may be closed at any time
      // between requests (RFC 9112 §9.8); only when none is idle is the newcomer refused.
      if (open >= options_.max_connections && from_peer < options_.max_connections_per_peer) {
        Session* oldest = nullptr;
        for (Session* s : sessions_) {
          const int64_t since = s->idle_since_ns();
          if (since != 0 && (oldest == nullptr || since < oldest->idle_since_ns())) oldest = s;
        }
        if (oldest != nullptr) {
          evict = oldest->weak_from_this().lock();
          oldest->ClaimForEviction();  // the next newcomer picks another
        }
      }
    }
    auto session = std::make_shared<Session>(std::move(socket), this,
                                             options_.tls ? options_.tls->Current() : nullptr);
    const bool peer_full = from_peer >= options_.max_connections_per_peer;
    if (peer_full || (open >= options_.max_connections && !evict)) {
      stats_.rejected_connections.fetch_add(1, std::memory_order_relaxed);
      Rejected(Status::service_unavailable);
      session->Refuse(JsonError(
          Status::service_unavailable,
          peer_full ? "too many open connections from this address" : "too many open connections"));
      return;
    }
    if (evict) {
      stats_.evicted_connections.fetch_add(1, std::memory_order_relaxed);
      evict->EvictIfIdle();
    }
    stats_.accepted_connections.fetch_add(1, std::memory_order_relaxed);
    session->Run();
  }

  ServerOptions options_;
  Handler handler_;
  RejectHook on_rejected_;
  ServerStats stats_;
  std::atomic<bool> accepting_stopped_{false};
  std::atomic<bool> close_after_answer_{false};
  std::atomic<bool> stopped_{false};
  // Declared before contexts_: sessions destroyed with the contexts' pending handlers unregister
  // here.
  absl::Mutex mu_;
  absl::CondVar cv_;
  std::unordered_set<Session*> sessions_ ABSL_GUARDED_BY(mu_);
  // Open connections per client address.
  std::map<asio::ip::address, size_t> per_peer_ ABSL_GUARDED_BY(mu_);
  // One per I/O thread (concurrency hint 1: one thread runs each).
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  size_t next_context_ = 0;  // touched by the acceptor's handler only
  // On the first context; destroyed before the contexts.
  std::optional<asio::basic_socket_acceptor<tcp, Executor>> acceptor_;
  std::optional<asio::basic_waitable_timer<std::chrono::steady_clock,
                                           asio::wait_traits<std::chrono::steady_clock>, Executor>>
      sweep_timer_;
  std::vector<asio::executor_work_guard<Executor>> work_;
  uint16_t port_ = 0;
  std::vector<std::thread> threads_;
};

Session::Session(Socket&& socket, ServerImpl* server, std::shared_ptr<asio::ssl::context> tls)
    : socket_(std::move(socket)), server_(server), tls_context_(std::move(tls)) {
  if (tls_context_) tls_.emplace(socket_, *tls_context_);
  error_code ec;
  peer_ = socket_.remote_endpoint(ec).address();
  idle_since_ns_.store(NowNs(), std::memory_order_relaxed);  // idle until its first byte
  server_->Register(this);
}

void Session::EvictIfIdle() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    // Idle between requests, or no request yet (a TLS handshake in progress included).
    if (self->idle_ || self->first_request_) self->Close();
  });
}

Session::~Session() { server_->Unregister(this); }

void Session::Run() {
  asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
    if (self->server_->draining()) {
      self->draining_ = true;
    }
    if (self->tls_) return self->Handshake();
    self->WaitForRequest();
  });
}

// The TLS handshake, within the first-byte timeout (a client that never completes it holds the
// connection no longer than one that never sends a byte).
void Session::Handshake() {
  const ServerOptions& o = server_->options();
  SetPhase(Phase::kIdle, std::min(o.first_byte_timeout, o.idle_timeout));
  tls_->async_handshake(asio::ssl::stream_base::server, [self = shared_from_this()](error_code ec) {
    self->SetPhase(Phase::kNone, {});
    if (ec) {
      log::Debug("tls_handshake_failed", {{"error", ec.message()}});
      return self->Close();
    }
    self->WaitForRequest();
  });
}

void Session::Refuse(Response&& res) {
  idle_since_ns_.store(0, std::memory_order_relaxed);  // refused: never a candidate to evict
  asio::dispatch(socket_.get_executor(),
                 [self = shared_from_this(), res = std::move(res)]() mutable {
                   // A TLS client would read a plain answer as garbage: it is only closed.
                   if (self->tls_) return self->Close();
                   self->Write(std::move(res), /*close_after=*/true);
                 });
}

void Session::Drain() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    self->draining_ = true;
    if (!self->idle_) return;  // closes after its answer
    // A request already on the wire is read and answered (with Connection: close) rather than
    // cut off; only a connection with nothing pending closes now.
    error_code ec;
    if (self->socket_.available(ec) > 0 && !ec) return;
    self->Close();
  });
}

void Session::WaitForRequest() {
  if (draining_ && buffer_.size() == 0) return Close();
  parser_.emplace();
  ConfigureParser(*parser_, server_->options().max_header_bytes, server_->options().max_body_bytes);
  if (buffer_.size() > 0) return ReadRequest();  // pipelined bytes already here
  idle_ = true;
  idle_since_ns_.store(NowNs(), std::memory_order_relaxed);
  const ServerOptions& o = server_->options();
  SetPhase(Phase::kIdle,
           first_request_ ? std::min(o.first_byte_timeout, o.idle_timeout) : o.idle_timeout);
  WithStream([this](auto& stream) {
    stream.async_read_some(buffer_.prepare(4096),
                           beast::bind_front_handler(&Session::OnFirstBytes, shared_from_this()));
  });
}

void Session::OnFirstBytes(error_code ec, size_t n) {
  idle_ = false;
  idle_since_ns_.store(0, std::memory_order_relaxed);
  first_request_ = false;
  if (ec) return Close();  // idle timeout, peer closed, or drained
  buffer_.commit(n);
  ReadRequest();
}

template <typename Done>
void Session::ParseBuffered(Done done, error_code& ec) {
  while (!done()) {
    if (buffer_.size() == 0) {
      ec = bhttp::error::need_more;
      return;
    }
    const size_t used = parser_->put(buffer_.data(), ec);
    buffer_.consume(used);
    if (ec) return;
  }
}

void Session::ReadRequest() {
  request_timed_out_ = false;
  SetPhase(Phase::kRequest, server_->options().request_timeout);
  error_code ec;
  ParseBuffered([this] { return parser_->is_header_done(); }, ec);
  if (!ec) return OnHeader(ec, 0);
  if (ec != bhttp::error::need_more) return OnRead(ec, 0);
  WithStream([this](auto& stream) {
    bhttp::async_read_header(stream, buffer_, *parser_,
                             beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  });
}

void Session::OnHeader(error_code ec, size_t n) {
  if (ec) return OnRead(ec, n);
  const auto& req = parser_->get();
  auto expect = req.find(bhttp::field::expect);
  if (expect != req.end() && beast::iequals(expect->value(), "100-continue")) {
    // The client waits for this before sending the body (curl does for bodies over 1 KiB).
    auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_, 11);
    WithStream([&](auto& stream) {
      bhttp::async_write(stream, *cont, [self = shared_from_this(), cont](error_code wec, size_t) {
        if (wec) return self->Close();
        self->ReadBody();
      });
    });
    return;
  }
  ReadBody();
}

void Session::ReadBody() {
  error_code ec;
  ParseBuffered([this] { return parser_->is_done(); }, ec);
  if (!ec) return OnRead(ec, 0);
  if (ec != bhttp::error::need_more) return OnRead(ec, 0);
  WithStream([this](auto& stream) {
    bhttp::async_read(stream, buffer_, *parser_,
                      beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  });
}

void Session::Reject(Status status, std::string_view message) {
  server_->Rejected(status);
  Write(JsonError(status, message), /*close_after=*/true);
}

void Session::OnRead(error_code ec, size_t) {
  SetPhase(Phase::kNone, {});
  const ServerOptions& o = server_->options();
  if (request_timed_out_) {
    return Reject(Status::request_timeout,
                  StrCat("request not received within ", o.request_timeout.count(), " ms"));
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
  // Methods no route implements (RFC 9110 §15.6.2: 501 for a method the server does not
  // implement), and OPTIONS for the server as a whole (RFC 9110 §9.3.7), answered here.
  const auto& req = parser_->get();
  const Verb method = req.method();
  if (method == Verb::connect || method == Verb::trace || method == Verb::unknown) {
    return Reject(
        Status::not_implemented,
        StrCat("method ", std::string_view(req.method_string().data(), req.method_string().size()),
               " is not implemented"));
  }
  if (method == Verb::options && req.target() == "*") {
    Response res =
        JsonError(Status::method_not_allowed, "OPTIONS * is not supported; use GET or POST");
    res.set(bhttp::field::allow, "GET, POST");
    server_->Rejected(Status::method_not_allowed);
    request_keep_alive_ = req.keep_alive();
    return Write(std::move(res), /*close_after=*/false);
  }
  Dispatch();
}

void Session::Dispatch() {
  Request req = parser_->release();
  request_keep_alive_ = req.keep_alive();
  SetPhase(Phase::kNone, {});  // the handler may take as long as its own deadline allows
  // An answer given on this thread (a quick route, a rejection) is written at once; one from
  // another thread (a model worker) is posted here.
  server_->Handle(std::move(req), [self = shared_from_this()](Response&& res) {
    asio::dispatch(self->socket_.get_executor(),
                   [self, res = std::move(res)]() mutable { self->Write(std::move(res), false); });
  });
}

// Bodies up to this size are copied behind the header block and sent as one buffer.
constexpr size_t kInlineBodyBytes = 4096;

// The status line and the header block of `res` with Server and Date set as the server sets them,
// as Beast's serializer would write them.
void SerializeHead(const Response& res, std::string& out) {
  out.clear();
  AppendHttpVersion(res.version(), out);
  const unsigned code = res.result_int();
  const char status[] = {' ', static_cast<char>('0' + code / 100 % 10),
                         static_cast<char>('0' + code / 10 % 10),
                         static_cast<char>('0' + code % 10), ' '};
  out.append(status, sizeof(status))
      .append(res.reason().data(), res.reason().size())
      .append("\r\n");
  AppendFields(res.base(), out, bhttp::field::server, bhttp::field::date);
  out.append("Server: galley\r\nDate: ").append(HttpDateNow()).append("\r\n\r\n");
}

void Session::Write(Response&& res, bool close_after) {
  if (closed_) return;
  const bool close =
      close_after || draining_ || !request_keep_alive_ || server_->close_after_answer();
  res.keep_alive(!close);
  SerializeHead(res, head_);
  body_.clear();
  if (res.body().size() <= kInlineBodyBytes) {
    head_.append(res.body());
  } else {
    body_ = std::move(res.body());
  }
  SetPhase(Phase::kWrite, server_->options().write_timeout);
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(body_)};
  WithStream([&](auto& stream) {
    asio::async_write(stream, buffers,
                      beast::bind_front_handler(&Session::OnWrite, shared_from_this(), close));
  });
}

void Session::OnWrite(bool close, error_code ec, size_t) {
  if (ec || close) return Close();
  WaitForRequest();
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void Session::SetPhase(Phase phase, std::chrono::milliseconds timeout) {
  if (phase != Phase::kNone) {
    deadline_ns_.store(
        NowNs() + std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count(),
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
    socket_.cancel(ignored);  // OnRead answers 408
    return;
  }
  Close();  // idle keep-alive connection, or a client that does not read its response
}

void Session::Close() {
  if (closed_) return;
  closed_ = true;
  SetPhase(Phase::kNone, {});
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  socket_.close(ec);
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
