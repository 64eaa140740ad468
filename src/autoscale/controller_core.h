// The controller's pure steps, shared by the controller loop (controller.h) and the autoscaling
// simulator (sim/autoscale_sim.h) so both feed the recommender the same way: turning one
// observation of the replicas into the recommender's Snapshot, and remembering each decision in
// the History the next tick reads. No clock, no I/O.
#pragma once

#include <optional>
#include <vector>

#include "absl/time/time.h"
#include "autoscale/metrics_source.h"
#include "autoscale/recommender.h"

namespace galley::autoscale {

// How long scale events are remembered (the inference policy does not read them; the HPA mode's
// rate policies look back at most 60 s by default, a custom policy at most 30 min, API limit
// 1800 s; 10 min covers every default).
inline constexpr absl::Duration kScaleEventMemory = absl::Minutes(10);

// Pure: one aggregate observation from a snapshot of replicas (plus the requests the gateway
// holds, as queued), or nullopt when there are replicas, none was scraped and the gateway holds
// nothing (a tick without data must not read as "zero demand"). NOTE: the replicas'
// galley_model_inflight_requests already counts queued requests, so the Observation gets
// inflight = running (inflight - queued) and queued = queued; the recommender's demand,
// inflight + queued, is then each request once. Replicas that failed to scrape add nothing.
// With the previous tick's snapshot, the observation also gets the request rate (RequestRate).
std::optional<Observation> Aggregate(const MetricsSnapshot& snapshot,
                                     const MetricsSnapshot* previous = nullptr);

// Pure: requests per second over (previous.time, current.time], from each replica's
// requests_total. A replica read in both counts its increase (a counter that went down was
// reset: its whole new value); one that started or became ready after the previous reading
// (a loading replica is not scraped, and answers nothing before it is ready) counts its whole
// value; any other replica read only now is left out (its increase is unknown). nullopt when no
// replica could be counted or the times do not advance.
std::optional<double> RequestRate(const MetricsSnapshot& previous, const MetricsSnapshot& current);

// Pure: the recommender's Snapshot: `current_replicas`, one pod per observed replica, and the
// observations. A replica that was ready once and is not now is being stopped (scale-down or
// drain), so it is marked deleted and not counted as capacity. NOTE: a replica that merely failed
// its readiness after being ready is treated the same way.
Snapshot BuildSnapshot(const MetricsSnapshot& metrics, int current_replicas,
                       std::vector<Observation> observations);

// Appends `obs` (when present) and forgets observations at or before now - window.
void RememberObservation(const std::optional<Observation>& obs, absl::Time now,
                         absl::Duration window, std::vector<Observation>& observations);

// After a decision at `now`: records its unstabilised recommendation and request rate, forgets
// both at or before now - keep, and carries the inference policy's panic and activity state over.
void RememberDecision(const Decision& d, absl::Time now, absl::Duration keep, History& history);

// After the scale target accepted a change of `change` replicas at `now` (0: nothing changed):
// records it and forgets events older than kScaleEventMemory.
void RememberScale(int change, absl::Time now, History& history);

}  // namespace galley::autoscale
