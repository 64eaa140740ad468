// Galley's inference policy: the recommender mode for model servers. Demand is concurrency (the
// requests in flight plus those queued, summed over replicas), averaged over a stable window and
// a short panic window in the manner of Knative's KPA (pkg/autoscaler/scaling/autoscaler.go,
// https://knative.dev/docs/serving/autoscaling/kpa-specific/), with latency and GPU memory as
// optional scale-up guards, starting replicas counted as capacity, a warm pool and a slow
// scale-down.
//
// Defaults (the fields of InferencePolicy in recommender.h) and why:
//   target_concurrency 45: `galley serve` forms batches of up to 64 rows (--max-batch-size,
//     serve/batch_policy.h); 45 is 70% of that, Knative's container-concurrency-target-percentage
//     default ("target utilization 70%"), leaving headroom for a burst while the panic window
//     reacts. bench/out/serve-*.md measured p50 3.45 ms at concurrency 64 on 2 cores, so one
//     batch of ~45 stays well inside a replica's service capacity.
//   stable_window 60 s, panic_window_percentage 10 (6 s), panic_threshold_percentage 200,
//     max_scale_up_rate 1000, max_scale_down_rate 2: Knative's config-autoscaler defaults
//     (stable-window, panic-window-percentage, panic-threshold-percentage,
//     max-scale-up-rate, max-scale-down-rate).
//   scale_down_delay 60 s: one stable window; Knative's scale-down-delay defaults to 0 but its
//     stable average already lags by a window; we hold the peak one more window so that a
//     replica whose model load costs model_load_time is not dropped between two bursts.
//   model_load_time 10 s: `galley serve` with the built-in model reaches ready in 59-88 ms
//     (measured here, process start to the `ready` log line, three runs); a replica is only
//     routable after its first passing readiness probe, and the Kubernetes default probe
//     periodSeconds is 10 s, which dominates. Set it to the measured load time of heavier models.
//   min_replicas 1 (warm pool): Knative's min-scale default is 0, but a cold start costs a full
//     model load; one warm replica keeps the first request fast. scale_to_zero opts out.
//   scale_to_zero_grace 30 s: Knative's scale-to-zero-grace-period.
//   tolerance 0.1: the HPA's --horizontal-pod-autoscaler-tolerance, for the latency and GPU
//     memory guards.
#pragma once

#include "autoscale/recommender.h"

namespace galley::autoscale {

// Pure: the inference policy's decision. Reads observations in (now - stable_window, now].
Decision RecommendInference(const Snapshot& snapshot, const InferencePolicy& policy,
                            const History& history, absl::Time now);

}  // namespace galley::autoscale
