// The MetricsSource seam: where the autoscaler's controller learns, once per tick, what each
// replica is doing. Implementations: ScrapeMetricsSource (scrapes every replica's /metrics);
// later a Prometheus-server source and recorded snapshots for the simulator.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace galley::autoscale {

// One replica at one instant.
struct ReplicaObservation {
  std::string id;
  bool ready = false;  // the replica source's view (the supervisor saw `ready`, not stopping)
  // When the source first saw this replica, and first saw it ready.
  std::optional<absl::Time> start_time;
  std::optional<absl::Time> ready_time;
  // False when the replica's metrics could not be had (scrape failed, timed out, or did not
  // parse): a missing metric, and `error` says why. inflight/queued are then 0.
  bool scraped = false;
  std::string error;
  double inflight = 0;  // galley_model_inflight_requests, summed over models: queued + running
  double queued = 0;    // galley_queue_length, summed over models
  double consumer_inflight = 0;  // galley_consumer_inflight_messages: messages its consumers hold
  // galley_requests_total summed over its series: every request the replica answered, refusals
  // included. A counter: Aggregate turns two readings into a rate. Absent when not exposed.
  std::optional<double> requests_total = std::nullopt;
};

struct MetricsSnapshot {
  absl::Time time;  // when the observation was taken
  std::vector<ReplicaObservation> replicas;
  // Requests the gateway holds because no replica is ready (scale from zero): demand that no
  // replica can report. Filled in by the controller, not by the sources.
  double gateway_held = 0;
};

// The depth of a queue the replicas consume, read by the shell once per tick (for a Redis
// stream: queue/redis_backlog.h). Lag: messages not yet delivered to any consumer. Pending:
// delivered and not acknowledged (work in hand, including a dead consumer's).
struct QueueDepth {
  double lag = 0;
  double pending = 0;
  // The broker cannot say what is delivered and unacknowledged (RabbitMQ's declare-ok counts
  // ready messages only): `pending` is then the sum of the observed replicas' consumer_inflight.
  bool pending_from_replicas = false;
};

class MetricsSource {
 public:
  virtual ~MetricsSource() = default;
  // Observes every replica the source knows of. Blocks for at most the source's own timeout. A
  // replica that cannot be observed is in the result with scraped == false; an error status is
  // only for the source as a whole failing (e.g. Unavailable: a Prometheus server is down).
  // Not thread-safe: one caller (the controller's thread) at a time.
  virtual absl::StatusOr<MetricsSnapshot> Observe() = 0;
};

// The recommender works in absl::Time; the shell's clocks are steady. NOTE: this maps a steady
// time point onto absl::Time as an offset from the Unix epoch, so the result is only good for
// differences and ordering (all the recommender does with it), not as a wall-clock date.
inline absl::Time ToAbslTime(TimePoint t) {
  return absl::UnixEpoch() + absl::FromChrono(t.time_since_epoch());
}

}  // namespace galley::autoscale
