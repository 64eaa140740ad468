// PrometheusMetricsSource: the MetricsSource that asks a Prometheus server, not the replicas.
// Each Observe() sends instant queries to the server's HTTP API (GET <url>/api/v1/query,
// https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries):
//   sum by (instance) (galley_model_inflight_requests)
//   sum by (instance) (galley_queue_length)
//   max by (instance) (time() - timestamp(galley_model_inflight_requests))   the samples' age
//   max by (instance) (up)                                                   why one is missing
// and maps the answers onto the replicas the ReplicaSource knows: a replica is the series whose
// `instance` label is "HOST:PORT" of the replica, which is what Prometheus writes for a target of
// that address (https://prometheus.io/docs/concepts/jobs_instances/). `galley up
// --prometheus-sd-file` keeps Prometheus' targets equal to the live replicas (file_sd.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "autoscale/metrics_source.h"
#include "common/clock.h"
#include "fleet/replica_source.h"
#include "upstream/upstream.h"

namespace galley::autoscale {

inline constexpr std::string_view kPromInflightQuery =
    "sum by (instance) (galley_model_inflight_requests)";
inline constexpr std::string_view kPromQueueQuery = "sum by (instance) (galley_queue_length)";
inline constexpr std::string_view kPromAgeQuery =
    "max by (instance) (time() - timestamp(galley_model_inflight_requests))";
inline constexpr std::string_view kPromUpQuery = "max by (instance) (up)";

struct PrometheusOptions {
  // The server's base URL: http://IP:PORT, optionally with a path prefix (a server run with
  // --web.route-prefix). "localhost" stands for 127.0.0.1; other host names are refused.
  std::string url;
  // Deadline of each Observe(): its queries run in parallel and must all answer by then.
  std::chrono::milliseconds timeout{1'000};
  // A replica whose newest sample is older than this is missing (stale): Prometheus itself keeps
  // answering with the last sample for up to its lookback delta (5 min by default).
  absl::Duration staleness = absl::Seconds(30);
};

// Where the HTTP API is: host (an IP address), port, and the path prefix ("" or "/prefix").
struct PrometheusEndpoint {
  std::string host;
  uint16_t port = 0;
  std::string path_prefix;
};
// InvalidArgument, naming the problem, for anything but http://IP[:PORT][/prefix].
absl::StatusOr<PrometheusEndpoint> ParsePrometheusUrl(std::string_view url);

// The request target of one instant query: <prefix>/api/v1/query?query=<percent-encoded>.
std::string PrometheusQueryTarget(std::string_view path_prefix, std::string_view promql);

// Pure: one /api/v1/query answer whose result is an instant vector, as instance label -> value
// (sample values are strings in the API: "NaN", "+Inf" and "-Inf" included). Unavailable when
// the answer is {"status":"error",...} (with its errorType and error); InvalidArgument when the
// body is not JSON or not the documented shape, the result is not a vector, a series has no
// instance label, or two series share one.
absl::StatusOr<std::map<std::string, double>> ParseInstantVector(std::string_view body);

// The bodies of the four answers of one Observe(), in the order of the queries above.
struct PrometheusAnswers {
  std::string inflight;
  std::string queued;
  std::string age;
  std::string up;
};

// Pure: one observation per replica, in the order of `replicas` (id and ready copied, start and
// ready times left empty). A replica with no in-flight series, a stale or non-finite sample is
// scraped = false with the reason in `error`. An error when any answer does not parse (see
// ParseInstantVector).
absl::StatusOr<std::vector<ReplicaObservation>> MapPrometheusAnswers(
    const PrometheusAnswers& answers, const std::vector<fleet::ReplicaEndpoint>& replicas,
    absl::Duration staleness);

class PrometheusMetricsSource final : public MetricsSource {
 public:
  // InvalidArgument for a bad URL. `replicas`, `upstream` and `clock` must outlive the source;
  // the upstream's I/O must keep running while Observe() waits.
  static absl::StatusOr<std::unique_ptr<PrometheusMetricsSource>> Create(
      const fleet::ReplicaSource& replicas, upstream::Upstream& upstream, const Clock& clock,
      PrometheusOptions options);

  // Unavailable when Prometheus cannot be reached, does not answer in time, answers an HTTP
  // error or an error document, or answers something that does not parse (the message says
  // which). Otherwise one observation per replica, with start and ready times as in
  // ScrapeMetricsSource (when this source first saw the replica, and saw it ready).
  absl::StatusOr<MetricsSnapshot> Observe() override;

 private:
  struct Seen {
    absl::Time start;
    std::optional<absl::Time> ready;
  };
  PrometheusMetricsSource(const fleet::ReplicaSource& replicas, upstream::Upstream& upstream,
                          const Clock& clock, PrometheusOptions options,
                          PrometheusEndpoint endpoint);

  const fleet::ReplicaSource& replicas_;
  upstream::Upstream& upstream_;
  const Clock& clock_;
  const PrometheusOptions options_;
  const PrometheusEndpoint endpoint_;
  std::map<std::string, Seen> seen_;  // by replica id; only Observe() touches it
};

}  // namespace galley::autoscale
