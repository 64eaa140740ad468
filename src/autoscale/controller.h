// The autoscaler's controller loop: the thin shell around the pure recommender. Every sync period
// it observes the replicas (MetricsSource), asks Recommend() with Galley's inference policy or
// in the HPA-compatible mode (ControllerOptions::hpa), and sets the scale target when the answer
// differs from what the target has. It keeps what the recommender needs between ticks (the
// observations of the stable window and the History), logs each decision as one JSON line
// (`autoscale_decision`) and exports it as metrics.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "autoscale/controller_core.h"
#include "autoscale/metrics_source.h"
#include "autoscale/recommender.h"
#include "common/clock.h"
#include "common/lifecycle.h"
#include "fleet/scale_target.h"
#include "metrics/registry.h"

namespace galley::autoscale {

// The Pods metrics the controller gives the HPA mode, per replica (the MetricSpec::name of a
// kPods metric): the replica's galley_queue_length and galley_model_inflight_requests, each
// summed over its models. NOTE: there is no cpu: `galley serve` exports no
// process_cpu_seconds_total, so a Resource cpu metric has no samples (FailedGetMetrics).
inline constexpr char kPodsQueueLength[] = "galley_queue_length";
inline constexpr char kPodsInflight[] = "galley_model_inflight_requests";
// The External metric the HPA mode gets when the controller reads a queue (ControllerOptions::
// queue_depth): the queue's lag plus pending, one series.
inline constexpr char kExternalQueueBacklog[] = "galley_queue_backlog";

struct ControllerOptions {
  InferencePolicy policy;
  // Set: the recommender's HPA-compatible mode with this spec (hpa.h) instead of `policy`, fed
  // the kPods* metrics of every replica whose metrics were had.
  std::optional<HpaSpec> hpa;
  // How often to observe and decide: the HPA's --horizontal-pod-autoscaler-sync-period default.
  std::chrono::milliseconds sync_period{15'000};
  // Requests held at the gateway for want of a ready replica (scale from zero), read once per
  // tick and added to the queued demand. Must be thread-safe. Unset: none.
  std::function<double()> gateway_held;
  // The depth of the queue the replicas consume, read once per tick. Must be thread-safe.
  // Galley's policy counts the lag as waiting demand (like requests held at the gateway: no
  // replica reports it), and the pending messages too when no replica could be observed (a
  // fleet at zero, or consumers that died holding work); otherwise pending messages are already
  // in the replicas' in-flight counts. The HPA mode gets lag + pending as the External metric
  // kExternalQueueBacklog (what KEDA's Redis Streams scaler with lagCount reports, plus the work
  // in hand). A depth that cannot be read skips the tick, as a failed metrics source does:
  // never scale on a missing metric. Unset: no queue.
  std::function<absl::StatusOr<QueueDepth>()> queue_depth;
};

// The recommender's Spec for `options`: the HPA spec when set, else the inference policy.
Spec SpecOf(const ControllerOptions& options);

// How long the controller keeps recommendations for `options`: the inference policy's stable
// window and scale-down delay, or the HPA's stabilisation windows (the legacy downscale window,
// or behavior's per-direction windows with the Kubernetes defaults, 0 s up and 300 s down).
absl::Duration RecommendationMemory(const ControllerOptions& options);

// Pure: gives each pod of `snapshot` whose replica was observed (scraped) in `metrics` the
// kPodsQueueLength and kPodsInflight samples, stamped metrics.time. Pods without them are
// missing pods to the HPA (replica_calculator.go).
void AddPodsMetrics(const MetricsSnapshot& metrics, Snapshot& snapshot);

// Thread-safe for Start and Stop. Tick is the thread's; tests call it directly instead of Start.
class Controller final : public Component {
 public:
  // `source`, `target` and `clock` must outlive the controller. `registry`, when not null, gets
  // the galley_autoscale_* families (and must outlive it too); without it the controller only logs.
  Controller(MetricsSource& source, fleet::ScaleTarget& target, const Clock& clock,
             ControllerOptions options, metrics::Registry* registry = nullptr);
  ~Controller();  // Stop()

  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // Starts the controller's thread, which ticks at once and then every sync period.
  // FailedPrecondition when called twice or after Stop.
  absl::Status Start() override;
  // Stops ticking and joins the thread (a tick in progress finishes, including its scrape).
  // Idempotent; blocks.
  void Stop() override;
  // Component (common/lifecycle.h): a draining process stops scaling before what it scales
  // drains.
  std::string_view component_name() const override { return "autoscaler"; }
  bool Drain(TimePoint) override {
    Stop();
    return true;
  }
  // Ticks now instead of at the end of the period (the next period counts from this tick): the
  // gateway calls it when a request arrives with no replica to take it, as Knative's activator
  // pokes its autoscaler, so that a scale from zero does not wait for the sync period.
  // Thread-safe; a no-op before Start and after Stop.
  void Poke();

  // One round: observe, decide, scale when the decision differs from the target's desired count,
  // log, export. Returns the decision. When the source as a whole fails (Observe() returns an
  // error, e.g. Prometheus is down) the round is skipped: no recommendation, no scaling, nothing
  // remembered; the decision keeps the count with reason "MetricsUnavailable". Must not run
  // concurrently with itself or the thread.
  Decision Tick();

 private:
  struct Gauges;

  void Run();
  void Export(const Decision& d, int current, const std::optional<Observation>& obs);
  Decision SkipTick(int current, const absl::Status& observe_error);

  MetricsSource& source_;
  fleet::ScaleTarget& target_;
  const Clock& clock_;
  const ControllerOptions options_;
  std::unique_ptr<Gauges> gauges_;  // null without a registry

  // Owned by the thread that ticks (see Tick).
  History history_;
  std::vector<Observation> observations_;    // oldest first, within the stable window
  std::optional<MetricsSnapshot> previous_;  // the last tick's, for the request rate

  absl::Mutex mu_;
  absl::CondVar wake_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool poked_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex lifecycle_mu_;  // serialises Start and Stop
  std::thread thread_ ABSL_GUARDED_BY(lifecycle_mu_);
};

}  // namespace galley::autoscale
