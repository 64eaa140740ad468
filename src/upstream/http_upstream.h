// HttpUpstream: the production Upstream. HTTP/1.1 over pooled keep-alive connections per
// replica, on its own I/O thread(s). A reused connection that turns out to be closed by the
// replica (idle timeout) is replaced by a fresh one once, transparently.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "upstream/upstream.h"

namespace boost::asio {
class io_context;
namespace ssl {
class context;
}
}  // namespace boost::asio

namespace galley::upstream {

struct HttpUpstreamOptions {
  int io_threads = 1;
  size_t max_idle_per_replica = 256;  // idle keep-alive connections kept per replica
  size_t max_response_bytes = 64 << 20;
  // Set: replicas are reached over TLS, their certificates verified with this context and
  // against the replica's address (an IP address SAN, or the host name).
  std::shared_ptr<boost::asio::ssl::context> tls;
};

class HttpUpstream final : public Upstream {
 public:
  explicit HttpUpstream(HttpUpstreamOptions options = {});
  ~HttpUpstream() override;  // calls Shutdown()

  // Stops the I/O threads; callbacks of sends still pending never run. Idempotent; call it
  // before destroying anything those callbacks refer to.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  void Send(const std::string& host, uint16_t port, http::Request request, TimePoint deadline,
            UpstreamCallback done) override;

  // The I/O context that runs the exchanges; also used by the gateway for its timers.
  boost::asio::io_context& io();

  // Internal: a pooled connection (defined in the .cc).
  struct Connection;
  // Returns an idle connection to host:port, or null. Thread-safe.
  std::unique_ptr<Connection> TakeIdle(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);
  // Puts a healthy keep-alive connection back. Thread-safe.
  void GiveBack(const std::string& key, std::unique_ptr<Connection> conn) ABSL_LOCKS_EXCLUDED(mu_);
  const HttpUpstreamOptions& options() const { return options_; }

 private:
  const HttpUpstreamOptions options_;
  std::unique_ptr<boost::asio::io_context> io_;
  struct WorkGuard;
  std::unique_ptr<WorkGuard> work_;
  std::vector<std::thread> threads_;
  absl::Mutex mu_;
  std::map<std::string, std::vector<std::unique_ptr<Connection>>> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace galley::upstream
