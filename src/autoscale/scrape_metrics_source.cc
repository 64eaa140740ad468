#include "autoscale/scrape_metrics_source.h"

#include <cmath>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/strings.h"
#include "common/sync.h"
#include "metrics/exposition_parser.h"

namespace galley::autoscale {
namespace {

constexpr std::string_view kInflight = "galley_model_inflight_requests";
constexpr std::string_view kQueue = "galley_queue_length";
constexpr std::string_view kConsumerInflight = "galley_consumer_inflight_messages";
constexpr std::string_view kRequests = "galley_requests_total";

// What the scrapes of one Observe() share with their callbacks. Held by shared_ptr: a callback
// that arrives after Observe() gave up must still find it alive.
struct Round {
  explicit Round(size_t n) : pending(static_cast<int>(n)), results(n) {}

  absl::Mutex mu;
  absl::CondVar done;
  int pending ABSL_GUARDED_BY(mu);
  std::vector<std::optional<upstream::UpstreamResult>> results ABSL_GUARDED_BY(mu);
};

}  // namespace

absl::StatusOr<ReplicaLoad> ReadReplicaLoad(std::string_view exposition) {
  absl::StatusOr<metrics::ParsedExposition> parsed = metrics::ParseExposition(exposition);
  if (!parsed.ok()) return parsed.status();
  ReplicaLoad load;
  const std::optional<double> inflight = metrics::SumSamples(*parsed, kInflight);
  // A family with no series yet (no model constructed) is declared by its TYPE line: zero load.
  if (!inflight && !parsed->types.count(std::string(kInflight))) {
    return absl::InvalidArgumentError(StrCat("no ", kInflight, " in the exposition"));
  }
  load.inflight = inflight.value_or(0);
  load.queued = metrics::SumSamples(*parsed, kQueue).value_or(0);
  load.consumer_inflight = metrics::SumSamples(*parsed, kConsumerInflight).value_or(0);
  // Inference requests only (REST analyze and infer; the gRPC door counts as infer): probes and
  // scrapes are no load. Every outcome counts, refusals for a full queue included.
  for (const metrics::ParsedSample& sample : parsed->samples) {
    if (sample.name != kRequests || std::isnan(sample.value)) continue;
    const std::string* endpoint = sample.Label("endpoint");
    if (endpoint == nullptr || (*endpoint != "infer" && *endpoint != "analyze")) continue;
    load.requests_total = load.requests_total.value_or(0) + sample.value;
  }
  if (!load.requests_total && parsed->types.count(std::string(kRequests))) load.requests_total = 0;
  return load;
}

ScrapeMetricsSource::ScrapeMetricsSource(const fleet::ReplicaSource& replicas,
                                         upstream::Upstream& upstream, const Clock& clock,
                                         ScrapeOptions options)
    : replicas_(replicas), upstream_(upstream), clock_(clock), options_(std::move(options)) {}

absl::StatusOr<MetricsSnapshot> ScrapeMetricsSource::Observe() {
  const std::vector<fleet::ReplicaEndpoint> endpoints = replicas_.Replicas();
  const TimePoint start = clock_.Now();
  MetricsSnapshot snap;
  snap.time = ToAbslTime(start);

  auto round = std::make_shared<Round>(endpoints.size());
  for (size_t i = 0; i < endpoints.size(); ++i) {
    http::Request req{http::Verb::get, options_.path, 11};
    req.set(boost::beast::http::field::host, endpoints[i].host);
    upstream_.Send(endpoints[i].host, endpoints[i].port, std::move(req), start + options_.timeout,
                   [round, i](upstream::UpstreamResult&& r) {
                     absl::MutexLock lock(&round->mu);
                     round->results[i] = std::move(r);
                     if (--round->pending == 0) round->done.SignalAll();
                   });
  }
  {
    // The upstream answers every send by its deadline; the margin covers its timer's slack.
    // NOTE: waits in real time (a condition variable), not on `clock_`.
    const auto deadline =
        std::chrono::steady_clock::now() + options_.timeout + std::chrono::milliseconds(250);
    absl::MutexLock lock(&round->mu);
    while (round->pending != 0 && galley::WaitUntil(round->done, round->mu, deadline)) {
    }
  }

  std::map<std::string, Seen> seen;
  absl::MutexLock lock(&round->mu);
  for (size_t i = 0; i < endpoints.size(); ++i) {
    const fleet::ReplicaEndpoint& ep = endpoints[i];
    Seen s = seen_.count(ep.id) ? seen_[ep.id] : Seen{snap.time, std::nullopt};
    if (ep.ready && !s.ready) s.ready = snap.time;
    seen[ep.id] = s;

    ReplicaObservation o;
    o.id = ep.id;
    o.ready = ep.ready;
    o.start_time = s.start;
    o.ready_time = s.ready;
    const std::optional<upstream::UpstreamResult>& r = round->results[i];
    if (!r) {
      o.error = "no answer within the scrape timeout";
    } else if (r->transport_error) {
      o.error = r->timed_out ? "scrape timed out" : StrCat("scrape failed: ", r->error);
    } else if (r->response.result() != http::Status::ok) {
      o.error = StrCat("scrape answered HTTP ", r->response.result_int());
    } else if (absl::StatusOr<ReplicaLoad> load = ReadReplicaLoad(r->response.body()); !load.ok()) {
      o.error = std::string(ToStd(load.status().message()));
    } else {
      o.scraped = true;
      o.inflight = load->inflight;
      o.queued = load->queued;
      o.consumer_inflight = load->consumer_inflight;
      o.requests_total = load->requests_total;
    }
    snap.replicas.push_back(std::move(o));
  }
  seen_ = std::move(seen);  // forget replicas that are gone
  return snap;
}

}  // namespace galley::autoscale
