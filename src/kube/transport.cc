#include "kube/transport.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/asio/ssl/error.hpp"
#include "boost/asio/ssl/stream.hpp"
#include "boost/beast/core/buffers_to_string.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/http/buffer_body.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/string_body.hpp"
#include "boost/beast/http/write.hpp"
#include "boost/beast/ssl/ssl_stream.hpp"
#include "common/status_macros.h"
#include "common/strings.h"
#include "kube/api_error.h"

namespace galley::kube::internal {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

absl::Status TransportError(std::string_view what, const error_code& ec) {
  if (ec == beast::error::timeout) {
    return absl::DeadlineExceededError(StrCat("kubernetes API: ", what, ": timed out"));
  }
  std::string detail = ec.message();
  if (ec.category() == asio::error::get_ssl_category()) {
    // The OpenSSL reason, e.g. "certificate verify failed".
    char buf[256];
    ERR_error_string_n(static_cast<unsigned long>(ec.value()), buf, sizeof(buf));
    detail = buf;
  }
  return absl::UnavailableError(StrCat("kubernetes API: ", what, ": ", detail));
}

// One TLS connection with its own io_context; its operations run on the calling thread.
struct Connection {
  explicit Connection(ssl::context& ctx) : stream(io, ctx) {}

  // Runs the io_context until the pending operation completes.
  void RunPending() {
    io.restart();
    io.run();
  }

  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream); }

  asio::io_context io;
  beast::ssl_stream<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
};

}  // namespace

std::string ServerUrl::HostHeader() const {
  const bool v6 = host.find(':') != std::string::npos;
  return StrCat(v6 ? "[" : "", host, v6 ? "]" : "", port == "443" ? "" : ":",
                port == "443" ? "" : port);
}

absl::StatusOr<ServerUrl> ParseServerUrl(std::string_view server) {
  constexpr std::string_view kScheme = "https://";
  if (!StartsWith(server, kScheme)) {
    return absl::InvalidArgumentError(
        StrCat("kubernetes API server '", server, "' must be an https:// URL"));
  }
  std::string_view rest = server.substr(kScheme.size());
  ServerUrl url;
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view prefix = rest.substr(slash);
    while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
    url.path_prefix = std::string(prefix);
  }
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError(StrCat("kubernetes API server '", server, "': bad IPv6"));
    }
    url.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() != ':') {
      return absl::InvalidArgumentError(StrCat("kubernetes API server '", server, "': bad port"));
    }
    url.port = authority.empty() ? "443" : std::string(authority.substr(1));
  } else {
    const size_t colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    url.port = colon == std::string_view::npos ? "443" : std::string(authority.substr(colon + 1));
  }
  if (url.host.empty() || url.port.empty() ||
      url.port.find_first_not_of("0123456789") != std::string::npos || url.port.size() > 5) {
    return absl::InvalidArgumentError(
        StrCat("kubernetes API server '", server, "': bad host or port"));
  }
  error_code ec;
  asio::ip::make_address(url.host, ec);
  url.host_is_ip = !ec;
  return url;
}

struct Transport::Impl {
  Impl(const KubeConfig& c, const ClientOptions& o, ServerUrl u)
      : config(c), options(o), url(std::move(u)), ctx(ssl::context::tls_client), token(c.token) {}

  absl::Status Init() {
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                    ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    error_code ec;
    if (config.insecure_skip_tls_verify) {
      ctx.set_verify_mode(ssl::verify_none);
    } else {
      ctx.set_verify_mode(ssl::verify_peer);
      if (!config.ca_pem.empty()) {
        ctx.add_certificate_authority(asio::buffer(config.ca_pem), ec);
        if (ec) return absl::InvalidArgumentError("kubernetes CA: not a PEM certificate bundle");
      } else {
        ctx.set_default_verify_paths(ec);
        if (ec) return absl::InvalidArgumentError("cannot load the system's trusted CAs");
      }
    }
    if (!config.client_cert_pem.empty()) {
      ctx.use_certificate_chain(asio::buffer(config.client_cert_pem), ec);
      if (ec) return absl::InvalidArgumentError("kubernetes client certificate: not valid PEM");
      ctx.use_private_key(asio::buffer(config.client_key_pem), ssl::context::pem, ec);
      if (ec) {
        return absl::InvalidArgumentError(
            "kubernetes client key: not valid PEM or does not match the certificate");
      }
    }
    return absl::OkStatus();
  }

  // The Authorization header value; a token file is re-read at most once a minute
  // (client-go's cachingTokenSource period).
  std::string Authorization() {
    absl::MutexLock lock(&token_mu);
    if (!config.token_file.empty()) {
      const TimePoint now = std::chrono::steady_clock::now();
      if (token_read == TimePoint{} || now - token_read > std::chrono::minutes(1)) {
        std::ifstream in(config.token_file);
        if (in) {
          std::ostringstream ss;
          ss << in.rdbuf();
          const std::string_view t = StripWhitespace(ss.str());
          if (!t.empty()) token = std::string(t);
        }
        token_read = now;  // an unreadable file keeps the last token (first: the config's)
      }
    }
    return token.empty() ? std::string() : StrCat("Bearer ", token);
  }

  absl::StatusOr<std::unique_ptr<Connection>> Connect(TimePoint deadline) {
    auto conn = std::make_unique<Connection>(ctx);
    tcp::resolver resolver(conn->io);
    error_code ec;
    const auto endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) return TransportError(StrCat("resolving ", url.host), ec);
    conn->tcp().expires_at(
        std::min(deadline, std::chrono::steady_clock::now() + options.connect_timeout));
    conn->tcp().async_connect(endpoints, [&](error_code e, const tcp::endpoint&) { ec = e; });
    conn->RunPending();
    if (ec) return TransportError(StrCat("connecting to ", url.HostHeader()), ec);
    SSL* ssl_handle = conn->stream.native_handle();
    const std::string& verify_name =
        config.tls_server_name.empty() ? url.host : config.tls_server_name;
    error_code parse_ec;
    asio::ip::make_address(verify_name, parse_ec);
    const bool verify_ip = !parse_ec;
    if (!verify_ip) SSL_set_tlsext_host_name(ssl_handle, verify_name.c_str());  // SNI
    if (!config.insecure_skip_tls_verify) {
      // The certificate must name the host (RFC 6125; for an IP address an iPAddress SAN).
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
      const int ok = verify_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, verify_name.c_str())
                               : X509_VERIFY_PARAM_set1_host(param, verify_name.c_str(), 0);
      if (ok != 1) return absl::InvalidArgumentError("cannot set the TLS host to verify");
    }
    conn->stream.async_handshake(ssl::stream_base::client, [&](error_code e) { ec = e; });
    conn->RunPending();
    if (ec) {
      absl::Status status = TransportError(StrCat("TLS handshake with ", url.HostHeader()), ec);
      // Say why verification failed ("hostname mismatch", "unable to get local issuer ...").
      const long verify = SSL_get_verify_result(ssl_handle);
      if (verify != X509_V_OK) {
        status = absl::UnavailableError(
            StrCat(ToStd(status.message()), " (", X509_verify_cert_error_string(verify), ")"));
      }
      return status;
    }
    return conn;
  }

  bhttp::request<bhttp::string_body> MakeRequest(std::string_view method, std::string_view target,
                                                 std::string_view body,
                                                 std::string_view content_type) {
    bhttp::request<bhttp::string_body> req;
    req.method_string(beast::string_view(method.data(), method.size()));
    req.target(StrCat(url.path_prefix, target));
    req.version(11);
    req.set(bhttp::field::host, url.HostHeader());
    req.set(bhttp::field::user_agent, options.user_agent);
    req.set(bhttp::field::accept, "application/json");
    if (const std::string auth = Authorization(); !auth.empty()) {
      req.set(bhttp::field::authorization, auth);
    }
    if (!body.empty()) {
      req.set(bhttp::field::content_type,
              beast::string_view(content_type.data(), content_type.size()));
      req.body() = std::string(body);
    }
    req.keep_alive(true);
    req.prepare_payload();
    return req;
  }

  std::unique_ptr<Connection> TakeIdle() {
    absl::MutexLock lock(&pool_mu);
    if (idle.empty()) return nullptr;
    auto c = std::move(idle.back());
    idle.pop_back();
    return c;
  }

  void GiveBack(std::unique_ptr<Connection> conn) {
    absl::MutexLock lock(&pool_mu);
    if (idle.size() < options.max_idle_connections) idle.push_back(std::move(conn));
  }

  // One exchange on `conn`. `got_bytes` says whether any response byte arrived.
  absl::StatusOr<HttpResult> Exchange(Connection& conn, bhttp::request<bhttp::string_body>& req,
                                      TimePoint deadline, bool* got_bytes, bool* keep_alive) {
    error_code ec;
    conn.tcp().expires_at(deadline);
    bhttp::async_write(conn.stream, req, [&](error_code e, size_t) { ec = e; });
    conn.RunPending();
    if (ec) return TransportError("sending the request", ec);
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(options.max_response_bytes);
    parser.header_limit(64 << 10);
    const size_t before = conn.buffer.size();
    bhttp::async_read(conn.stream, conn.buffer, parser, [&](error_code e, size_t n) {
      ec = e;
      *got_bytes = n > 0 || conn.buffer.size() != before;
    });
    conn.RunPending();
    if (ec) return TransportError("reading the response", ec);
    *got_bytes = true;
    *keep_alive = parser.keep_alive();
    HttpResult result;
    result.status = static_cast<int>(parser.get().result_int());
    result.body = std::move(parser.get().body());
    return result;
  }

  const KubeConfig config;
  const ClientOptions options;
  const ServerUrl url;
  ssl::context ctx;

  absl::Mutex token_mu;
  std::string token ABSL_GUARDED_BY(token_mu);
  TimePoint token_read ABSL_GUARDED_BY(token_mu){};

  absl::Mutex pool_mu;
  std::vector<std::unique_ptr<Connection>> idle ABSL_GUARDED_BY(pool_mu);
};

Transport::Transport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Transport::~Transport() = default;

absl::StatusOr<std::unique_ptr<Transport>> Transport::Create(const KubeConfig& config,
                                                             const ClientOptions& options) {
  ASSIGN_OR_RETURN(ServerUrl url, ParseServerUrl(config.server));
  auto impl = std::make_unique<Impl>(config, options, std::move(url));
  RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Transport>(new Transport(std::move(impl)));
}

absl::StatusOr<HttpResult> Transport::Send(std::string_view method, std::string_view target,
                                           std::string_view body, std::string_view content_type,
                                           TimePoint deadline) {
  auto req = impl_->MakeRequest(method, target, body, content_type);
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Connection> conn = attempt == 0 ? impl_->TakeIdle() : nullptr;
    const bool reused = conn != nullptr;
    if (!reused) {
      ASSIGN_OR_RETURN(conn, impl_->Connect(deadline));
    }
    bool got_bytes = false, keep_alive = false;
    auto result = impl_->Exchange(*conn, req, deadline, &got_bytes, &keep_alive);
    if (!result.ok()) {
      // A kept-alive connection the server closed meanwhile fails before any answer: the
      // request was not processed, so it is sent once more on a fresh connection (what Go's
      // net/http does for a connection that was closed while idle).
      if (reused && !got_bytes && result.status().code() == absl::StatusCode::kUnavailable) {
        continue;
      }
      return result.status();
    }
    if (keep_alive) impl_->GiveBack(std::move(conn));
    return result;
  }
  return absl::UnavailableError("kubernetes API: no connection");
}

absl::Status Transport::Stream(
    std::string_view target, Duration idle_timeout,
    const std::function<absl::StatusOr<bool>(std::string_view)>& on_bytes, std::stop_token stop) {
  if (stop.stop_requested()) return absl::CancelledError("watch stopped");
  const TimePoint connect_deadline =
      std::chrono::steady_clock::now() + impl_->options.connect_timeout;
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, impl_->Connect(connect_deadline));
  std::atomic<bool> stopped{false};
  // Cancels the pending read from the thread that requests the stop: the handler runs inside
  // RunPending() on the reading thread, and `stopped` covers a request made between reads.
  std::stop_callback on_stop(stop, [&] {
    stopped.store(true);
    asio::post(conn->io, [&] { conn->tcp().cancel(); });
  });
  auto cancelled = [&] { return stopped.load(); };

  auto req = impl_->MakeRequest("GET", target, {}, {});
  req.keep_alive(false);
  error_code ec;
  conn->tcp().expires_after(idle_timeout);
  bhttp::async_write(conn->stream, req, [&](error_code e, size_t) { ec = e; });
  conn->RunPending();
  if (cancelled()) return absl::CancelledError("watch stopped");
  if (ec) return TransportError("sending the watch request", ec);

  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.body_limit(boost::none);  // a watch body is unbounded; lines are bounded by the caller
  conn->tcp().expires_after(idle_timeout);
  bhttp::async_read_header(conn->stream, conn->buffer, parser,
                           [&](error_code e, size_t) { ec = e; });
  conn->RunPending();
  if (cancelled()) return absl::CancelledError("watch stopped");
  if (ec) return TransportError("reading the watch response", ec);
  const int status = static_cast<int>(parser.get().result_int());

  std::string error_body;
  std::vector<char> chunk(64 << 10);
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    if (cancelled()) return absl::CancelledError("watch stopped");
    conn->tcp().expires_after(idle_timeout);
    bhttp::async_read_some(conn->stream, conn->buffer, parser,
                           [&](error_code e, size_t) { ec = e; });
    conn->RunPending();
    if (cancelled()) return absl::CancelledError("watch stopped");
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof) break;
    if (ec) return TransportError("reading the watch stream", ec);
    const size_t n = chunk.size() - parser.get().body().size;
    if (n == 0) continue;
    if (status != 200) {
      if (error_body.size() < (1 << 20)) error_body.append(chunk.data(), n);
      continue;
    }
    ASSIGN_OR_RETURN(const bool more, on_bytes(std::string_view(chunk.data(), n)));
    if (!more) return absl::OkStatus();
  }
  if (status != 200) return ApiErrorFromResponse(status, error_body);
  return absl::OkStatus();
}

}  // namespace galley::kube::internal
