// ScrapeMetricsSource: the MetricsSource that GETs every replica's /metrics itself, in parallel,
// each with a timeout, and reads galley_model_inflight_requests and galley_queue_length from the
// Prometheus text exposition. Replicas come from a gateway::ReplicaSource (the supervisor of
// `galley up`), requests go through a gateway::Upstream (HttpUpstream in production).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "autoscale/metrics_source.h"
#include "common/clock.h"
#include "fleet/replica_source.h"
#include "upstream/upstream.h"

namespace galley::autoscale {

struct ScrapeOptions {
  // Each scrape's deadline; a replica that has not answered by then counts as a missing metric.
  std::chrono::milliseconds timeout{1'000};
  std::string path = "/metrics";
};

class ScrapeMetricsSource final : public MetricsSource {
 public:
  // `replicas`, `upstream` and `clock` must outlive this object; the upstream's I/O must keep
  // running while Observe() waits.
  ScrapeMetricsSource(const fleet::ReplicaSource& replicas, upstream::Upstream& upstream,
                      const Clock& clock, ScrapeOptions options = {});

  // Scrapes every replica that has a port, in parallel, and returns once all answered or the
  // timeout passed. Never returns an error: failures are per replica (scraped == false).
  // Replicas' start and ready times are when this source first saw them (started, ready).
  absl::StatusOr<MetricsSnapshot> Observe() override;

 private:
  struct Seen {
    absl::Time start;
    std::optional<absl::Time> ready;
  };

  const fleet::ReplicaSource& replicas_;
  upstream::Upstream& upstream_;
  const Clock& clock_;
  const ScrapeOptions options_;
  std::map<std::string, Seen> seen_;  // by replica id; only Observe() touches it
};

struct ReplicaLoad {
  double inflight = 0;           // galley_model_inflight_requests summed over models
  double queued = 0;             // galley_queue_length summed over models (0 when absent)
  double consumer_inflight = 0;  // galley_consumer_inflight_messages, all consumers (0 when absent)
  std::optional<double>
      requests_total;  // galley_requests_total, every series (absent: not exposed)
};

// Reads one replica's load out of its /metrics body. InvalidArgument when the body does not parse
// or has no galley_model_inflight_requests sample. Pure.
absl::StatusOr<ReplicaLoad> ReadReplicaLoad(std::string_view exposition);

}  // namespace galley::autoscale
