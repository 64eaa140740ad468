#include "autoscale/controller_core.h"

#include <algorithm>
#include <cmath>

namespace galley::autoscale {
namespace {

template <typename T, typename Pred>
void EraseIf(std::vector<T>& v, Pred pred) {
  v.erase(std::remove_if(v.begin(), v.end(), pred), v.end());
}

double Finite(double v) { return std::isfinite(v) ? v : 0; }

}  // namespace

std::optional<double> RequestRate(const MetricsSnapshot& previous, const MetricsSnapshot& current) {
  const double seconds = absl::ToDoubleSeconds(current.time - previous.time);
  if (!(seconds > 0)) return std::nullopt;
  double total = 0;
  bool any = false;
  for (const ReplicaObservation& r : current.replicas) {
    if (!r.scraped || !r.requests_total || !std::isfinite(*r.requests_total)) continue;
    const double now_total = std::max(0.0, *r.requests_total);
    const auto before = std::find_if(
        previous.replicas.begin(), previous.replicas.end(), [&](const ReplicaObservation& p) {
          return p.id == r.id && p.scraped && p.requests_total && std::isfinite(*p.requests_total);
        });
    if (before != previous.replicas.end()) {
      const double then = std::max(0.0, *before->requests_total);
      total += now_total >= then ? now_total - then : now_total;  // went down: reset
    } else if ((r.start_time && *r.start_time >= previous.time) ||
               (r.ready_time && *r.ready_time >= previous.time)) {
      // Started, or became ready (and so routable), since the previous reading: everything it
      // counted is new.
      total += now_total;
    } else {
      continue;
    }
    any = true;
  }
  if (!any) return std::nullopt;
  return total / seconds;
}

std::optional<Observation> Aggregate(const MetricsSnapshot& snapshot,
                                     const MetricsSnapshot* previous) {
  Observation o;
  if (previous) o.request_rate = RequestRate(*previous, snapshot);
  o.time = snapshot.time;
  bool any = false;
  for (const ReplicaObservation& r : snapshot.replicas) {
    if (!r.scraped) continue;
    any = true;
    const double queued = std::max(0.0, Finite(r.queued));
    o.queued += queued;
    o.inflight += std::max(0.0, Finite(r.inflight) - queued);
  }
  // Requests held at the gateway for want of a ready replica are demand no replica reports; with
  // no replica at all (scaled to zero) an empty gateway is a real zero, not a missing sample.
  const double held = std::max(0.0, Finite(snapshot.gateway_held));
  o.queued += held;
  if (!any && held == 0 && !snapshot.replicas.empty()) return std::nullopt;
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

void RememberObservation(const std::optional<Observation>& obs, absl::Time now,
                         absl::Duration window, std::vector<Observation>& observations) {
  if (obs) observations.push_back(*obs);
  EraseIf(observations, [&](const Observation& o) { return o.time <= now - window; });
}

void RememberDecision(const Decision& d, absl::Time now, absl::Duration keep, History& history) {
  if (d.recommendation) history.recommendations.push_back({now, *d.recommendation});
  EraseIf(history.recommendations,
          [&](const TimestampedRecommendation& r) { return r.time <= now - keep; });
  if (d.rate) history.rates.push_back({now, *d.rate});
  EraseIf(history.rates, [&](const TimedRate& r) { return r.time <= now - keep; });
  history.panic_since = d.panic_since;
  history.last_active = d.last_active;
  history.burst_onsets = d.burst_onsets;
}

void RememberScale(int change, absl::Time now, History& history) {
  if (change != 0) history.scale_events.push_back({now, change});
  EraseIf(history.scale_events,
          [&](const ScaleEvent& e) { return e.time <= now - kScaleEventMemory; });
}

}  // namespace galley::autoscale
