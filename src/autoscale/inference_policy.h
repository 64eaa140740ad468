// Galley's inference policy: the recommender mode for model servers. Demand is concurrency (the
// requests in flight plus those queued, summed over replicas), averaged over a stable window and
// a short panic window in the manner of Knative's KPA (pkg/autoscaler/scaling/autoscaler.go,
// https://knative.dev/docs/serving/autoscaling/kpa-specific/), with latency and GPU memory as
// optional scale-up guards, starting replicas counted as capacity, a warm pool and a slow
// scale-down.
//
// Defaults (the fields of InferencePolicy in recommender.h) and why:
//   target_concurrency 2: the requests (in flight + queued) one replica holds at Knative's target
//     utilisation (70%), by Little's law at light-load latency: 0.7 x full-batch throughput x the
//     latency of a request alone. KPA's rule, desired = demand / target, assumes a request's
//     latency does not change with load; for a batching server it grows with the batch, so the
//     target must be taken where the fleet sits after a scale-up (lightly loaded), or the rule
//     undershoots. For the built-in `sentiment` model (docs/autoscale-sim.md, "Service time":
//     batch time 180 us + 164 us x n, 5,995 req/s at full batches, 344 us alone) that is
//     0.7 x 5,995 x 0.000344 = 1.4; 2 keeps a replica near 75% of its full-batch throughput.
//     The former default, 45 (70% of the 64-row batch), is a replica at saturation: in
//     `galley sim autoscale` it let the fleet shrink until queues overflowed (bench/RESULTS.md,
//     "Autoscaling"). Set it from the model's own numbers for heavier models.
//   stable_window 60 s, panic_window_percentage 10 (6 s), panic_threshold_percentage 200,
//     max_scale_up_rate 1000, max_scale_down_rate 2: Knative's config-autoscaler defaults
//     (stable-window, panic-window-percentage, panic-threshold-percentage,
//     max-scale-up-rate, max-scale-down-rate).
//   scale_down_delay 5 min: the HPA's --horizontal-pod-autoscaler-downscale-stabilization
//     default; Knative's scale-down-delay defaults to 0. Inference traffic is bursty with idle
//     gaps of one to three minutes (the Azure LLM inference trace, ../shared/data/azure-llm-2023):
//     a replica dropped in a gap comes back only after model_load_time, while the next burst
//     overflows the queues; holding the highest recommendation of the last 5 minutes costs
//     replica-seconds but keeps the SLO (bench/RESULTS.md, "Autoscaling": 60 s -> 89.0% within
//     the SLO, 5 min -> 95.4%, at target 2).
//   burst_gap_max 20 min, burst_memory 1 h (the burst-recurrence hold): a fixed delay only
//     bridges gaps shorter than itself, and the trace's bursts recur at 1-9 min intervals, so any
//     fixed delay either drops the fleet just before the next burst or holds it long after the
//     bursts stop (fixed 15 min: 97.7%; 30 min: 99.4%). Instead the policy notes when bursts
//     begin (demand in the panic window at >= the panic threshold times the stable window's) and,
//     while they recur at most burst_gap_max apart, holds the highest recommendation since the
//     first burst of the series; the series ends when no burst began for twice its longest gap
//     (exponential gaps: a 1/n^2 chance after n bursts that the next gap is longer). On the trace
//     this gives 99.87% within the SLO (bench/RESULTS.md); on a single step it changes nothing.
//     20 min bounds what a burst is worth holding for (four 5-minute delays); an hour bounds the
//     hold. The cost: up to an hour of the series' peak fleet while bursts keep coming.
//   model_load_time 10 s: `galley serve` with the built-in model reaches ready in 59-88 ms
//     (measured here, process start to the `ready` log line, three runs); a replica is only
//     routable after its first passing readiness probe, and the Kubernetes default probe
//     periodSeconds is 10 s, which dominates. Set it to the measured load time of heavier models.
//   min_replicas 1 (warm pool): Knative's min-scale default is 0, but a cold start costs a full
//     model load; one warm replica keeps the first request fast. scale_to_zero opts out.
//   scale_to_zero_grace 30 s: Knative's scale-to-zero-grace-period.
//   tolerance 0.1: the HPA's --horizontal-pod-autoscaler-tolerance, for the latency and GPU
//     memory guards.
//
// Where the concurrency-sized defaults stand against the baselines of `galley sim autoscale`
// (the cheapest static fleet, a clairvoyant oracle; bench/RESULTS.md, medians over three seeds):
// the rule behind them is "never let a recurring burst find the fleet short", and it holds for
// the SLO on the trace (99.87%, the only policy at >= 99.5%) and on the smooth patterns (100%),
// at 1.6x the cheapest static fleet's replica-seconds on the trace and 1.0-1.25x on the smooth
// patterns. What it lacks is the arrival rate: concurrency measured while queues overflow says
// only "more", so a burst's hold is the ceiling, not the burst's need. Rate sizing (below) is
// the answer where the replicas' request counters can be read.
//
// Sizing by request rate (replica_capacity_rps set, and the observations carry request rates,
// i.e. the replicas expose galley_requests_total). Why: concurrency measured while queues
// overflow says only "more", so the concurrency rule's recommendations during a burst are the
// ceiling, and the burst hold above keeps that ceiling (65,788 replica-seconds on the trace, 1.6x
// the cheapest static fleet). The request rate, refusals included, measures the burst itself.
// The rules and their defaults:
//   demand = request rate; one replica takes replica_capacity_rps x target_utilization. The
//     capacity is the model's full-batch throughput from its measured batch curve (for the
//     built-in model 64 / (180 us + 64 x 164 us) = 5,995 req/s, docs/autoscale-sim.md).
//   target_utilization 0.8: the headroom must cover the rate's growth during one model load time
//     plus a tick, Poisson noise within a 2-s tick, and a burst's first seconds above what the
//     fleet was sized for. Measured in `galley sim autoscale` (seed 1, bench/RESULTS.md, "Rate
//     sizing"): 0.95 already misses on the climb (99.97%); 0.9 keeps the smooth patterns at 100%
//     for 10% fewer replica-seconds than 0.8 but loses 1.5 points more of the trace's bursts
//     (92.0% vs 93.5%); 0.7 keeps 96.5% of the trace but costs 13% more than 0.8 on smooth
//     demand, past 1.3x the clairvoyant oracle there. 0.8 is the highest that keeps the trace
//     above 93% and the lowest that keeps the smooth patterns within 1.3x the oracle; a model
//     whose load is smooth can take 0.9, a bursty one 0.7.
//   scale-up on the short (panic) window's peak reading: a rate is bounded by what the fleet
//     answers plus what it refuses, so a burst onto a small fleet rarely reads as 200% of it, and
//     a burst shorter than the window is halved by a mean; the long window still decides every
//     scale-down (KPA's asymmetry, kept).
//   burst floor, burst_cover_share 0.995 (while bursts recur, as above): the smallest fleet that,
//     at one replica's share, would have served 99.5% of the requests remembered over
//     burst_memory; the online analogue of the cheapest static fleet for the recent past. 0.995 is
//     the SLO target the simulator's baselines are held to.
//   periodic bursts: when the last three gaps between burst onsets agree within 10%, the next is
//     expected one period after the last; from one model load time plus the panic window before
//     it, and from each onset until the replicas started for it are ready, the fleet is at least
//     what the last two bursts were recommended; nothing is held between them. Three gaps, not
//     two: on the trace, two gaps agree by chance and the floor would be dropped too early.
//   smooth hold, 3 model load times (30 s): without bursts (none remembered) or with periodic
//     ones, a replica is kept this long after the last recommendation that needed it instead of
//     scale_down_delay: a dropped replica is back one load time after it is asked for, and a
//     smooth rise shows in the short window before it outgrows the 20% headroom.
// The rule behind these defaults: "size to the measured rate with the headroom one load time
// needs; hold only what the remembered past says will come back". They are the same on every
// pattern; bench/RESULTS.md ("Rate sizing") has each pattern's table, and why no controller that
// does not know the future can keep 99.5% on the step, bursts, flash and quiet patterns of 30
// minutes: the first jump from the base rate to the peak loses more than 0.5% of the requests
// before any replica started for it is ready.
// NOTE: a fleet consuming a queue is sized by concurrency (the request counters do not see the
// messages still in the broker), and so is one read through Prometheus (no counter reading).
#pragma once

#include "autoscale/recommender.h"

namespace galley::autoscale {

// How long History.recommendations must reach back for the inference policy's rules.
absl::Duration InferenceMemory(const InferencePolicy& p);

// Pure: the inference policy's decision. Reads observations in (now - stable_window, now].
Decision RecommendInference(const Snapshot& snapshot, const InferencePolicy& policy,
                            const History& history, absl::Time now);

}  // namespace galley::autoscale
