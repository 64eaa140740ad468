#include "http/tls.h"

#include "boost/asio/ssl/context.hpp"
#include "common/log.h"
#include "common/strings.h"

namespace galley::http {
namespace {

namespace ssl = boost::asio::ssl;

constexpr auto kOptions = ssl::context::default_workarounds | ssl::context::no_sslv2 |
                          ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                          ssl::context::no_tlsv1_1 | ssl::context::single_dh_use;

absl::Status Loaded(const boost::system::error_code& ec, std::string_view what,
                    const std::string& file) {
  if (!ec) return absl::OkStatus();
  return absl::InvalidArgumentError(
      StrCat("TLS ", what, " '", file, "' does not load: ", ec.message()));
}

}  // namespace

absl::StatusOr<std::shared_ptr<ssl::context>> TlsServerContext::Build() const {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  boost::system::error_code ec;
  ctx->set_options(kOptions, ec);
  ctx->use_certificate_chain_file(files_.cert, ec);
  if (auto st = Loaded(ec, "certificate", files_.cert); !st.ok()) return st;
  ctx->use_private_key_file(files_.key, ssl::context::pem, ec);
  if (auto st = Loaded(ec, "key", files_.key); !st.ok()) return st;
  // Session resumption (tickets) with client verification needs a session id context, else
  // OpenSSL fails a resuming client's handshake.
  static constexpr unsigned char kSessionContext[] = "galley";
  SSL_CTX_set_session_id_context(ctx->native_handle(), kSessionContext,
                                 sizeof(kSessionContext) - 1);
  if (files_.alpn_h2) {
    SSL_CTX_set_alpn_select_cb(
        ctx->native_handle(),
        [](SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
           unsigned int in_len, void*) -> int {
          static constexpr unsigned char kH2[] = {2, 'h', '2'};
          unsigned char* selected = nullptr;
          if (SSL_select_next_proto(&selected, out_len, kH2, sizeof(kH2), in, in_len) !=
              OPENSSL_NPN_NEGOTIATED) {
            return SSL_TLSEXT_ERR_ALERT_FATAL;
          }
          *out = selected;
          return SSL_TLSEXT_ERR_OK;
        },
        nullptr);
  }
  if (!files_.client_ca.empty()) {
    ctx->load_verify_file(files_.client_ca, ec);
    if (auto st = Loaded(ec, "client CA", files_.client_ca); !st.ok()) return st;
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
  }
  return ctx;
}

std::filesystem::file_time_type TlsServerContext::Stamp() const {
  std::error_code ec;
  auto newest = std::filesystem::file_time_type::min();
  for (const std::string* f : {&files_.cert, &files_.key, &files_.client_ca}) {
    if (f->empty()) continue;
    const auto t = std::filesystem::last_write_time(*f, ec);
    if (!ec && t > newest) newest = t;
  }
  return newest;
}

absl::StatusOr<std::shared_ptr<TlsServerContext>> TlsServerContext::Load(TlsServerFiles files) {
  if (files.cert.empty() || files.key.empty()) {
    return absl::InvalidArgumentError("TLS needs both a certificate and a key file");
  }
  std::shared_ptr<TlsServerContext> t(new TlsServerContext(std::move(files)));
  auto ctx = t->Build();
  if (!ctx.ok()) return ctx.status();
  absl::MutexLock lock(&t->mu_);
  t->current_ = std::move(ctx).value();
  t->stamp_ = t->Stamp();
  return t;
}

std::shared_ptr<ssl::context> TlsServerContext::Current() {
  const auto stamp = Stamp();
  absl::MutexLock lock(&mu_);
  if (stamp != stamp_) {
    stamp_ = stamp;
    auto ctx = Build();
    if (ctx.ok()) {
      current_ = std::move(ctx).value();
      log::Info("tls_reloaded", {{"cert", files_.cert}});
    } else {
      log::Warn("tls_reload_failed", {{"error", std::string(ctx.status().message())}});
    }
  }
  return current_;
}

absl::StatusOr<std::shared_ptr<ssl::context>> MakeTlsClientContext(const std::string& ca,
                                                                   const std::string& cert,
                                                                   const std::string& key) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  boost::system::error_code ec;
  ctx->set_options(kOptions, ec);
  if (ca.empty()) {
    ctx->set_default_verify_paths(ec);
  } else {
    ctx->load_verify_file(ca, ec);
  }
  if (auto st = Loaded(ec, "CA", ca); !st.ok()) return st;
  ctx->set_verify_mode(ssl::verify_peer, ec);
  if (!cert.empty() || !key.empty()) {
    ctx->use_certificate_chain_file(cert, ec);
    if (auto st = Loaded(ec, "client certificate", cert); !st.ok()) return st;
    ctx->use_private_key_file(key, ssl::context::pem, ec);
    if (auto st = Loaded(ec, "client key", key); !st.ok()) return st;
  }
  return ctx;
}

}  // namespace galley::http
