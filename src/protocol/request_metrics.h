// Per-request metrics of the HTTP front-end: galley_requests_total{endpoint,model,outcome} and
// galley_request_duration_seconds{endpoint}. Label values come from fixed sets (endpoints,
// outcomes, the models known at start-up), so clients cannot create series at will, and the
// series are looked up once and cached, so recording costs no map lookups or allocations.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"
#include "protocol/frontend_metrics.h"

namespace galley::protocol {

enum class Endpoint {
  kAnalyze,
  kInfer,
  kModelMetadata,
  kModelReady,
  kServerMetadata,
  kHealthLive,
  kHealthReady,
  kMetrics,
  kNotFound,
  kHttp,  // rejected by the HTTP layer before routing (413, 431, 408, 400, 503)
  kCount,
};
std::string_view EndpointName(Endpoint e);

// The `outcome` label for an HTTP status: ok, invalid_input, not_found, method_not_allowed,
// request_timeout, too_large, queue_full, header_too_large, deadline_exceeded, unavailable,
// client_error, internal.
std::string_view OutcomeLabelFor(http::Status status);

class RequestMetrics {
 public:
  RequestMetrics(FrontendMetrics& metrics, std::vector<std::string> models);

  // Index of a known model for Record(); -1 (recorded as model="") for anything else.
  int ModelIndex(std::string_view name) const;
  // Thread-safe.
  void Record(Endpoint endpoint, int model_index, http::Status status, double seconds);

 private:
  static constexpr size_t kOutcomes = 12;
  prometheus::Counter& Counter(Endpoint e, int model_index, size_t outcome);

  FrontendMetrics& metrics_;
  const std::vector<std::string> models_;
  std::array<prometheus::Histogram*, static_cast<size_t>(Endpoint::kCount)> durations_{};
  std::unique_ptr<std::atomic<prometheus::Counter*>[]> counters_;
};

}  // namespace galley::protocol
