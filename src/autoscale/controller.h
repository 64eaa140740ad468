// The autoscaler's controller loop: the thin shell around the pure recommender. Every sync period
// it observes the replicas (MetricsSource), asks Recommend() with Galley's inference policy, and
// sets the scale target when the answer differs from what the target has. It keeps what the
// recommender needs between ticks (the observations of the stable window and the History), logs
// each decision as one JSON line (`autoscale_decision`) and exports it as metrics.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "autoscale/metrics_source.h"
#include "autoscale/recommender.h"
#include "common/clock.h"
#include "local/scale_target.h"
#include "metrics/registry.h"

namespace galley::autoscale {

struct ControllerOptions {
  InferencePolicy policy;
  // How often to observe and decide: the HPA's --horizontal-pod-autoscaler-sync-period default.
  std::chrono::milliseconds sync_period{15'000};
};

// Pure: one aggregate observation from a snapshot of replicas, or nullopt when no replica was
// scraped (a tick without data must not read as "zero demand"). NOTE: the replicas'
// galley_model_inflight_requests already counts queued requests, so the Observation gets
// inflight = running (inflight - queued) and queued = queued; the recommender's demand,
// inflight + queued, is then each request once. Replicas that failed to scrape add nothing.
std::optional<Observation> Aggregate(const MetricsSnapshot& snapshot);

// Pure: the recommender's Snapshot: `current_replicas`, one pod per observed replica, and the
// observations. A replica that was ready once and is not now is being stopped (scale-down or
// drain), so it is marked deleted and not counted as capacity. NOTE: a replica that merely failed
// its readiness after being ready is treated the same way.
Snapshot BuildSnapshot(const MetricsSnapshot& metrics, int current_replicas,
                       std::vector<Observation> observations);

// Thread-safe for Start and Stop. Tick is the thread's; tests call it directly instead of Start.
class Controller {
 public:
  // `source`, `target` and `clock` must outlive the controller. `registry`, when not null, gets
  // the galley_autoscale_* families (and must outlive it too); without it the controller only logs.
  Controller(MetricsSource& source, local::ScaleTarget& target, const Clock& clock,
             ControllerOptions options, metrics::Registry* registry = nullptr);
  ~Controller();  // Stop()

  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // Starts the controller's thread, which ticks at once and then every sync period.
  // FailedPrecondition when called twice or after Stop.
  absl::Status Start();
  // Stops ticking and joins the thread (a tick in progress finishes, including its scrape).
  // Idempotent; blocks.
  void Stop();

  // One round: observe, decide, scale when the decision differs from the target's desired count,
  // log, export. Returns the decision. Must not run concurrently with itself or the thread.
  Decision Tick();

 private:
  struct Gauges;

  void Run();
  void Export(const Decision& d, int current, const std::optional<Observation>& obs);

  MetricsSource& source_;
  local::ScaleTarget& target_;
  const Clock& clock_;
  const ControllerOptions options_;
  std::unique_ptr<Gauges> gauges_;  // null without a registry

  // Owned by the thread that ticks (see Tick).
  History history_;
  std::vector<Observation> observations_;  // oldest first, within the stable window

  std::mutex mu_;
  std::condition_variable wake_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // touched only by Start and Stop (serialised by lifecycle_mu_)
  std::mutex lifecycle_mu_;
};

}  // namespace galley::autoscale
