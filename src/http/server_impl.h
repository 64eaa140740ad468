// Private to galley_http: the server's two halves, shared by server.cc (Session: one
// connection, its parsing, answering and draining) and server_impl.cc (ServerImpl: the acceptor,
// the connection caps, the timeout sweeper and the lifecycle).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl/stream.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/string_body.hpp"
#include "http/message.h"
#include "http/server.h"

namespace galley::http {

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

  absl::Status Listen();

  uint16_t port() const override { return port_; }

  absl::Status Start() override;

  void CloseAfterEachAnswer() override { close_after_answer_.store(true); }

  void StopAccepting() override;

  bool WaitForConnectionsClosed(std::chrono::steady_clock::time_point deadline) override;

  void Stop() override;

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

  void Accept();

  // Every tick, finds sessions whose phase deadline has passed and has each act on its thread.
  void Sweep();

  // A quarter of the shortest timeout, between 5 ms and 250 ms.
  std::chrono::milliseconds SweepTick() const;

  void OnAccept(Socket&& socket);

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

}  // namespace galley::http
