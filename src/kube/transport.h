// Internal to galley_kube: HTTPS exchanges with one API server over a mutex-guarded pool of
// keep-alive TLS connections, and streamed responses (watches) on connections of their own.
// No Beast or OpenSSL types appear here.
#pragma once

#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "kube/client.h"
#include "kube/config.h"

namespace galley::kube::internal {

// The parts of a server URL: https://HOST[:PORT][/PREFIX].
struct ServerUrl {
  std::string host;         // without brackets for IPv6
  std::string port;         // "443" when absent
  std::string path_prefix;  // "" or "/prefix" (no trailing slash)
  bool host_is_ip = false;
  std::string HostHeader() const;
};
absl::StatusOr<ServerUrl> ParseServerUrl(std::string_view server);

struct HttpResult {
  int status = 0;
  std::string body;
};

class Transport {
 public:
  // InvalidArgument for a bad server URL or PEM that OpenSSL refuses.
  static absl::StatusOr<std::unique_ptr<Transport>> Create(const KubeConfig& config,
                                                           const ClientOptions& options);
  ~Transport();

  // One request/response exchange on a pooled connection, finished by `deadline`. A reused
  // connection that fails before any response byte is replaced by a fresh one once. Unavailable
  // (transport) or DeadlineExceeded on failure; any HTTP status is a result.
  absl::StatusOr<HttpResult> Send(std::string_view method, std::string_view target,
                                  std::string_view body, std::string_view content_type,
                                  TimePoint deadline);

  // GET `target` on a new connection and hand the body to `on_bytes` as it arrives. A non-200
  // answer is read whole and returned as its API error. Returns OK when the server ends the
  // body or `on_bytes` returns false; Cancelled on `stop`; DeadlineExceeded when nothing arrives
  // for `idle_timeout`; the error `on_bytes` returns otherwise.
  absl::Status Stream(std::string_view target, Duration idle_timeout,
                      const std::function<absl::StatusOr<bool>(std::string_view)>& on_bytes,
                      std::stop_token stop);

  struct Impl;

 private:
  explicit Transport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace galley::kube::internal
