#include "protocol/request_metrics.h"

#include "metrics/registry.h"

namespace galley::protocol {
namespace {

constexpr std::array<std::string_view, static_cast<size_t>(Endpoint::kCount)> kEndpointNames = {
    "analyze",     "infer",        "model_metadata", "model_ready", "server_metadata",
    "health_live", "health_ready", "metrics",        "not_found",   "http"};

constexpr std::array<std::string_view, 12> kOutcomeNames = {
    "ok",           "invalid_input", "not_found",        "method_not_allowed", "request_timeout",
    "too_large",    "queue_full",    "header_too_large", "deadline_exceeded",  "unavailable",
    "client_error", "internal"};

size_t OutcomeIndex(http::Status status) {
  const unsigned code = static_cast<unsigned>(status);
  if (code < 400) return 0;
  switch (code) {
    case 400:
      return 1;
    case 404:
      return 2;
    case 405:
      return 3;
    case 408:
      return 4;
    case 413:
      return 5;
    case 429:
      return 6;
    case 431:
      return 7;
    case 504:
      return 8;
    case 503:
      return 9;
    default:
      return code < 500 ? 10 : 11;
  }
}

}  // namespace

std::string_view EndpointName(Endpoint e) { return kEndpointNames[static_cast<size_t>(e)]; }

std::string_view OutcomeLabelFor(http::Status status) {
  return kOutcomeNames[OutcomeIndex(status)];
}

RequestMetrics::RequestMetrics(FrontendMetrics& metrics, std::vector<std::string> models)
    : metrics_(metrics), models_(std::move(models)) {
  const size_t n = static_cast<size_t>(Endpoint::kCount) * (models_.size() + 1) * kOutcomes;
  counters_ = std::make_unique<std::atomic<prometheus::Counter*>[]>(n);
  for (size_t i = 0; i < n; ++i) counters_[i].store(nullptr);
  for (size_t e = 0; e < durations_.size(); ++e) {
    durations_[e] = &metrics_.request_duration.Add({{"endpoint", std::string(kEndpointNames[e])}},
                                                   metrics::DurationBuckets());
  }
}

int RequestMetrics::ModelIndex(std::string_view name) const {
  for (size_t i = 0; i < models_.size(); ++i) {
    if (models_[i] == name) return static_cast<int>(i);
  }
  return -1;
}

prometheus::Counter& RequestMetrics::Counter(Endpoint e, int model_index, size_t outcome) {
  const size_t m = model_index < 0 ? models_.size() : static_cast<size_t>(model_index);
  const size_t slot = (static_cast<size_t>(e) * (models_.size() + 1) + m) * kOutcomes + outcome;
  prometheus::Counter* c = counters_[slot].load(std::memory_order_acquire);
  if (c == nullptr) {
    // Family::Add is thread-safe and returns the same series for the same labels.
    c = &metrics_.requests.Add({{"endpoint", std::string(kEndpointNames[static_cast<size_t>(e)])},
                                {"model", m < models_.size() ? models_[m] : std::string()},
                                {"outcome", std::string(kOutcomeNames[outcome])}});
    counters_[slot].store(c, std::memory_order_release);
  }
  return *c;
}

void RequestMetrics::Record(Endpoint endpoint, int model_index, http::Status status,
                            double seconds) {
  durations_[static_cast<size_t>(endpoint)]->Observe(seconds);
  Counter(endpoint, model_index, OutcomeIndex(status)).Increment();
}

}  // namespace galley::protocol
