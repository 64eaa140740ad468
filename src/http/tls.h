// TLS for Galley's HTTP listeners and for the gateway's connections to replicas, on OpenSSL
// through Boost.Asio. TLS 1.2 and 1.3 only. A server context can require client certificates
// (mutual TLS) signed by a given CA, and follows its files: a connection that starts after the
// certificate or key file changed gets the new ones (a change that does not load keeps the old
// context and is logged).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace boost::asio::ssl {
class context;
}

namespace galley::http {

struct TlsServerFiles {
  std::string cert;       // PEM certificate chain
  std::string key;        // PEM private key
  std::string client_ca;  // PEM CA bundle; set: clients must present a certificate it signed
  // Select HTTP/2 ("h2") in ALPN, and refuse a client that does not offer it (gRPC over TLS:
  // gRPC clients require the server to select h2).
  bool alpn_h2 = false;
};

class TlsServerContext {
 public:
  // Loads the files; InvalidArgument naming the file that does not load.
  static absl::StatusOr<std::shared_ptr<TlsServerContext>> Load(TlsServerFiles files);
  // The context for a new connection, reloaded first if a file changed. Thread-safe.
  std::shared_ptr<boost::asio::ssl::context> Current() ABSL_LOCKS_EXCLUDED(mu_);
  const TlsServerFiles& files() const { return files_; }

 private:
  explicit TlsServerContext(TlsServerFiles files) : files_(std::move(files)) {}
  absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> Build() const;
  std::filesystem::file_time_type Stamp() const;

  const TlsServerFiles files_;
  absl::Mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_ ABSL_GUARDED_BY(mu_);
  std::filesystem::file_time_type stamp_ ABSL_GUARDED_BY(mu_);
};

// A client context that verifies servers against `ca` (PEM; empty: the system's trust store)
// and presents `cert`/`key` when both are set (mutual TLS).
absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> MakeTlsClientContext(
    const std::string& ca, const std::string& cert, const std::string& key);

}  // namespace galley::http
