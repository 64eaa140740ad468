#include "autoscale/controller.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "autoscale/inference_policy.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/sync.h"
#include "common/thread_name.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"

namespace galley::autoscale {
struct Controller::Gauges {
  explicit Gauges(metrics::Registry& r)
      : desired(prometheus::BuildGauge()
                    .Name("galley_autoscale_desired_replicas")
                    .Help("Replicas the autoscaler decided on at its last tick.")
                    .Register(r.prom())
                    .Add({})),
        current(prometheus::BuildGauge()
                    .Name("galley_autoscale_current_replicas")
                    .Help("Replicas the scale target had asked for before the last decision.")
                    .Register(r.prom())
                    .Add({})),
        panic(prometheus::BuildGauge()
                  .Name("galley_autoscale_panic_mode")
                  .Help("1 while the autoscaler is in panic mode, else 0.")
                  .Register(r.prom())
                  .Add({})),
        metric_value(prometheus::BuildGauge()
                         .Name("galley_autoscale_metric_value")
                         .Help("The value of each metric the autoscaler decided on, by metric.")
                         .Register(r.prom())) {}

  prometheus::Gauge& desired;
  prometheus::Gauge& current;
  prometheus::Gauge& panic;
  prometheus::Family<prometheus::Gauge>& metric_value;
};

Controller::Controller(MetricsSource& source, fleet::ScaleTarget& target, const Clock& clock,
                       ControllerOptions options, metrics::Registry* registry)
    : source_(source),
      target_(target),
      clock_(clock),
      options_(std::move(options)),
      gauges_(registry ? std::make_unique<Gauges>(*registry) : nullptr) {}

Controller::~Controller() { Stop(); }

absl::Status Controller::Start() {
  absl::MutexLock lifecycle(&lifecycle_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (started_ || stopping_) {
      return absl::FailedPreconditionError("the autoscale controller was already started");
    }
    started_ = true;
  }
  thread_ = std::thread([this] {
    SetThreadName("autoscaler");
    Run();
  });
  return absl::OkStatus();
}

void Controller::Stop() {
  absl::MutexLock lifecycle(&lifecycle_mu_);
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void Controller::Poke() {
  {
    absl::MutexLock lock(&mu_);
    poked_ = true;
  }
  wake_.SignalAll();
}

void Controller::Run() {
  // NOTE: the thread sleeps on the real steady clock; `clock_` only stamps observations and
  // decisions. Tests drive Tick() themselves with a manual clock.
  auto next = std::chrono::steady_clock::now();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      while (!stopping_ && !poked_ && galley::WaitUntil(wake_, mu_, next)) {
      }
      if (stopping_) return;
      if (poked_) next = std::chrono::steady_clock::now();  // the period restarts at a poke
      poked_ = false;
    }
    Tick();
    next += options_.sync_period;
    next = std::max(next, std::chrono::steady_clock::now());  // a slow tick skips, never bunches
  }
}

Decision Controller::Tick() {
  const InferencePolicy& policy = options_.policy;
  const TimePoint now_tp = clock_.Now();
  const absl::Time now = ToAbslTime(now_tp);
  const int current = target_.desired_replicas();

  const double held = options_.gateway_held ? options_.gateway_held() : 0;
  std::optional<QueueDepth> depth;
  if (options_.queue_depth) {
    absl::StatusOr<QueueDepth> d = options_.queue_depth();
    if (!d.ok()) return SkipTick(current, d.status());
    depth = *d;
  }
  // Demand that no replica reports: requests held at the gateway, messages not yet delivered.
  const double waiting = held + (depth ? std::max(0.0, depth->lag) : 0.0);
  absl::StatusOr<MetricsSnapshot> snap = source_.Observe();
  // No data is not zero demand: skip the round rather than decide on an empty snapshot. The
  // exception: demand known without any source (with no replica ready it is all there is), so
  // a scale from zero never waits for the metrics backend.
  if (!snap.ok() && waiting <= 0 && !(depth && depth->pending > 0)) {
    return SkipTick(current, snap.status());
  }
  MetricsSnapshot metrics_snap = snap.ok() ? *std::move(snap) : MetricsSnapshot{now, {}};
  metrics_snap.time = now;  // the tick's instant, so the observation is never after `now`
  const bool any_observed = std::any_of(metrics_snap.replicas.begin(), metrics_snap.replicas.end(),
                                        [](const ReplicaObservation& r) { return r.scraped; });
  if (depth && depth->pending_from_replicas) {
    depth->pending = 0;
    for (const ReplicaObservation& r : metrics_snap.replicas) {
      if (r.scraped) depth->pending += r.consumer_inflight;
    }
  }
  // Pending messages sit in live replicas' in-flight counts; with none observed they are work
  // in hand that only the queue reports (the blind spot of a pending-only or lag-only count).
  metrics_snap.gateway_held =
      waiting + (depth && !any_observed ? std::max(0.0, depth->pending) : 0.0);
  const std::optional<Observation> obs = Aggregate(metrics_snap, previous_ ? &*previous_ : nullptr);
  RememberObservation(obs, now, policy.stable_window, observations_);
  previous_ = metrics_snap;

  Snapshot rec_snap = BuildSnapshot(metrics_snap, current, observations_);
  AddPodsMetrics(metrics_snap, rec_snap);
  if (depth) {
    rec_snap.external_metrics[kExternalQueueBacklog] = {std::max(0.0, depth->lag) +
                                                        std::max(0.0, depth->pending)};
  }
  const Decision d = Recommend(rec_snap, SpecOf(options_), history_, now);

  RememberDecision(d, now, RecommendationMemory(options_), history_);

  std::string scale_error;
  int change = 0;
  if (d.replicas != current) {
    if (absl::Status st = target_.SetReplicas(d.replicas); st.ok()) {
      change = d.replicas - current;
    } else {
      scale_error = std::string(ToStd(st.message()));
    }
  }
  RememberScale(change, now, history_);

  int observed = 0, missing = 0;
  for (const ReplicaObservation& r : metrics_snap.replicas) (r.scraped ? observed : missing)++;
  boost::json::object m;
  for (const MetricProposal& p : d.proposals) m[p.metric] = p.current;
  if (obs) {
    m["inflight"] = obs->inflight;
    m["queued"] = obs->queued;
    if (obs->request_rate) m["requestRate"] = *obs->request_rate;
  }
  if (depth) {
    m["queueLag"] = depth->lag;
    m["queuePending"] = depth->pending;
  }
  m["replicasObserved"] = observed;
  m["replicasMissing"] = missing;
  boost::json::object fields{{"desired", d.replicas}, {"current", current},
                             {"reason", d.reason},    {"panic", d.panic},
                             {"message", d.message},  {"metrics", std::move(m)}};
  boost::json::object why_missing;  // replica id -> why its metrics could not be had
  for (const ReplicaObservation& r : metrics_snap.replicas) {
    if (!r.scraped) why_missing[r.id] = r.error;
  }
  if (!why_missing.empty()) fields["missing"] = std::move(why_missing);
  if (!scale_error.empty()) fields["scale_error"] = scale_error;
  log::Write(scale_error.empty() ? log::Level::kInfo : log::Level::kWarn, "autoscale_decision",
             fields);
  Export(d, current, obs);
  return d;
}

Spec SpecOf(const ControllerOptions& options) {
  if (options.hpa) return Spec{*options.hpa};
  return Spec{options.policy};
}

absl::Duration RecommendationMemory(const ControllerOptions& options) {
  if (!options.hpa) return InferenceMemory(options.policy);
  const HpaSpec& hpa = *options.hpa;
  if (!hpa.behavior) return hpa.downscale_stabilization;  // StabilizeLegacy's only window
  // DefaultScaleUp/DefaultScaleDown (hpa.cc): unset windows are 0 s up, 300 s down
  // (pkg/apis/autoscaling/v2/defaults.go).
  absl::Duration keep = absl::Seconds(300);
  if (hpa.behavior->scale_down && hpa.behavior->scale_down->stabilization_window_seconds) {
    keep = absl::Seconds(*hpa.behavior->scale_down->stabilization_window_seconds);
  }
  if (hpa.behavior->scale_up && hpa.behavior->scale_up->stabilization_window_seconds) {
    keep = std::max(keep, absl::Seconds(*hpa.behavior->scale_up->stabilization_window_seconds));
  }
  return keep;
}

void AddPodsMetrics(const MetricsSnapshot& metrics, Snapshot& snapshot) {
  std::map<std::string, const ReplicaObservation*> by_id;
  for (const ReplicaObservation& r : metrics.replicas) {
    if (r.scraped) by_id[r.id] = &r;
  }
  for (PodState& pod : snapshot.pods) {
    auto it = by_id.find(pod.name);
    if (it == by_id.end()) continue;
    MetricSample q, in;
    q.value = it->second->queued;
    in.value = it->second->inflight;
    q.timestamp = in.timestamp = metrics.time;
    pod.metrics[kPodsQueueLength] = q;
    pod.metrics[kPodsInflight] = in;
  }
}

Decision Controller::SkipTick(int current, const absl::Status& observe_error) {
  Decision d;
  d.replicas = current;
  d.reason = "MetricsUnavailable";
  d.message = "the metrics source failed as a whole; keeping the current replica count";
  log::Warn("autoscale_decision", {{"desired", d.replicas},
                                   {"current", current},
                                   {"reason", d.reason},
                                   {"panic", false},
                                   {"message", d.message},
                                   {"metrics", boost::json::object{}},
                                   {"observe_error", std::string(ToStd(observe_error.message()))}});
  if (gauges_) {
    gauges_->desired.Set(d.replicas);
    gauges_->current.Set(current);
  }
  return d;
}

void Controller::Export(const Decision& d, int current, const std::optional<Observation>& obs) {
  if (!gauges_) return;
  gauges_->desired.Set(d.replicas);
  gauges_->current.Set(current);
  gauges_->panic.Set(d.panic ? 1 : 0);
  for (const MetricProposal& p : d.proposals) {
    gauges_->metric_value.Add({{"metric", p.metric}}).Set(p.current);
  }
  if (obs) {
    gauges_->metric_value.Add({{"metric", "inflight"}}).Set(obs->inflight);
    gauges_->metric_value.Add({{"metric", "queued"}}).Set(obs->queued);
  }
}

}  // namespace galley::autoscale
