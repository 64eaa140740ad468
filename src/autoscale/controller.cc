#include "autoscale/controller.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/log.h"
#include "common/strings.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"

namespace galley::autoscale {
namespace {

// How long scale events are remembered (the inference policy does not read them yet; kept for
// the HPA mode's policies, whose longest default period is 60 s).
constexpr absl::Duration kScaleEventMemory = absl::Minutes(10);

template <typename T, typename Pred>
void EraseIf(std::vector<T>& v, Pred pred) {
  v.erase(std::remove_if(v.begin(), v.end(), pred), v.end());
}

double Finite(double v) { return std::isfinite(v) ? v : 0; }

}  // namespace

std::optional<Observation> Aggregate(const MetricsSnapshot& snapshot) {
  Observation o;
  o.time = snapshot.time;
  bool any = false;
  for (const ReplicaObservation& r : snapshot.replicas) {
    if (!r.scraped) continue;
    any = true;
    const double queued = std::max(0.0, Finite(r.queued));
    o.queued += queued;
    o.inflight += std::max(0.0, Finite(r.inflight) - queued);
  }
  if (!any) return std::nullopt;
  return o;
}

Snapshot BuildSnapshot(const MetricsSnapshot& metrics, int current_replicas,
                       std::vector<Observation> observations) {
  Snapshot s;
  s.current_replicas = current_replicas;
  for (const ReplicaObservation& r : metrics.replicas) {
    PodState pod;
    pod.name = r.id;
    pod.phase = PodPhase::kRunning;
    pod.ready = r.ready;
    pod.deleted = !r.ready && r.ready_time.has_value();
    pod.start_time = r.start_time;
    pod.ready_transition_time = r.ready_time;
    s.pods.push_back(std::move(pod));
  }
  s.observations = std::move(observations);
  return s;
}

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

Controller::Controller(MetricsSource& source, local::ScaleTarget& target, const Clock& clock,
                       ControllerOptions options, metrics::Registry* registry)
    : source_(source),
      target_(target),
      clock_(clock),
      options_(std::move(options)),
      gauges_(registry ? std::make_unique<Gauges>(*registry) : nullptr) {}

Controller::~Controller() { Stop(); }

absl::Status Controller::Start() {
  std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_ || stopping_) {
      return absl::FailedPreconditionError("the autoscale controller was already started");
    }
    started_ = true;
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void Controller::Stop() {
  std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Controller::Run() {
  // NOTE: the thread sleeps on the real steady clock; `clock_` only stamps observations and
  // decisions. Tests drive Tick() themselves with a manual clock.
  auto next = std::chrono::steady_clock::now();
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_until(lock, next,
                       [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; });
      if (stopping_) return;
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

  absl::StatusOr<MetricsSnapshot> snap = source_.Observe();
  MetricsSnapshot metrics_snap = snap.ok() ? *std::move(snap) : MetricsSnapshot{now, {}};
  metrics_snap.time = now;  // the tick's instant, so the observation is never after `now`
  const std::optional<Observation> obs = Aggregate(metrics_snap);
  if (obs) observations_.push_back(*obs);
  EraseIf(observations_,
          [&](const Observation& o) { return o.time <= now - policy.stable_window; });

  const Decision d =
      Recommend(BuildSnapshot(metrics_snap, current, observations_), Spec{policy}, history_, now);

  if (d.recommendation) history_.recommendations.push_back({now, *d.recommendation});
  const absl::Duration keep = std::max(policy.stable_window, policy.scale_down_delay);
  EraseIf(history_.recommendations,
          [&](const TimestampedRecommendation& r) { return r.time <= now - keep; });
  history_.panic_since = d.panic_since;
  history_.last_active = d.last_active;

  std::string scale_error;
  if (d.replicas != current) {
    if (absl::Status st = target_.SetReplicas(d.replicas); st.ok()) {
      history_.scale_events.push_back({now, d.replicas - current});
    } else {
      scale_error = std::string(ToStd(st.message()));
    }
  }
  EraseIf(history_.scale_events,
          [&](const ScaleEvent& e) { return e.time <= now - kScaleEventMemory; });

  int observed = 0, missing = 0;
  for (const ReplicaObservation& r : metrics_snap.replicas) (r.scraped ? observed : missing)++;
  boost::json::object m;
  for (const MetricProposal& p : d.proposals) m[p.metric] = p.current;
  if (obs) {
    m["inflight"] = obs->inflight;
    m["queued"] = obs->queued;
  }
  m["replicasObserved"] = observed;
  m["replicasMissing"] = missing;
  boost::json::object fields{{"desired", d.replicas}, {"current", current},
                             {"reason", d.reason},    {"panic", d.panic},
                             {"message", d.message},  {"metrics", std::move(m)}};
  if (!snap.ok()) fields["observe_error"] = std::string(ToStd(snap.status().message()));
  if (!scale_error.empty()) fields["scale_error"] = scale_error;
  log::Write(scale_error.empty() ? log::Level::kInfo : log::Level::kWarn, "autoscale_decision",
             fields);
  Export(d, current, obs);
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
