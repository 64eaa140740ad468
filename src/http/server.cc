// Session: one connection, its TLS handshake, reading and parsing requests, answering and
// draining (see server_impl.h; the acceptor and the lifecycle are ServerImpl, in server_impl.cc).
#include "http/server.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "boost/asio/dispatch.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl/stream.hpp"
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
#include "http/parser_limits.h"
#include "http/server_impl.h"

namespace galley::http {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

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

namespace {

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

}  // namespace

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

absl::StatusOr<std::unique_ptr<Server>> Server::Create(const ServerOptions& options,
                                                       Handler handler, RejectHook on_rejected) {
  if (options.io_threads < 1) return absl::InvalidArgumentError("io_threads must be at least 1");
  auto server = std::make_unique<ServerImpl>(options, std::move(handler), std::move(on_rejected));
  if (auto st = server->Listen(); !st.ok()) return st;
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace galley::http
