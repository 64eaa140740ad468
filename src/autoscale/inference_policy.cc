#include "autoscale/inference_policy.h"

#include <algorithm>
#include <cmath>

#include "common/strings.h"

namespace galley::autoscale {
namespace {

struct Capacity {
  int ready = 0;     // Running and Ready
  int starting = 0;  // not yet ready, expected within the load time
  int stuck = 0;     // not ready long past the load time: not counted
};

// Rule: a replica that is not ready counts as capacity arriving after the model load time, as
// long as it started less than two load times ago; later it is presumed stuck and not counted.
// Deleted and failed pods are not capacity (as in the HPA's groupPods).
Capacity CountCapacity(const Snapshot& s, const InferencePolicy& p, absl::Time now) {
  Capacity c;
  for (const PodState& pod : s.pods) {
    if (pod.deleted || pod.phase == PodPhase::kFailed || pod.phase == PodPhase::kSucceeded)
      continue;
    if (pod.phase == PodPhase::kRunning && pod.ready.value_or(false)) {
      ++c.ready;
    } else if (pod.start_time.value_or(now) + 2 * p.model_load_time > now) {
      ++c.starting;
    } else {
      ++c.stuck;
    }
  }
  return c;
}

struct WindowAverage {
  int samples = 0;
  double concurrency = 0;
  int rate_samples = 0;  // observations that carried a request rate
  double rate = 0;
  double peak_rate = 0;  // the highest of them
};

// Rule (KPA): demand is the mean of in-flight + queued over the window (now - window, now]; with
// rate sizing, the mean request rate over the same window.
// NOTE: a plain mean of the samples, which assumes evenly spaced scrapes; Knative averages
// per-second buckets.
WindowAverage Average(const std::vector<Observation>& obs, absl::Duration window, absl::Time now) {
  WindowAverage w;
  double sum = 0, rate_sum = 0;
  for (const Observation& o : obs) {
    if (o.time > now - window && o.time <= now) {
      sum += o.inflight + o.queued;
      ++w.samples;
      if (o.request_rate) {
        rate_sum += *o.request_rate;
        w.peak_rate = std::max(w.peak_rate, *o.request_rate);
        ++w.rate_samples;
      }
    }
  }
  if (w.samples > 0) w.concurrency = sum / w.samples;
  if (w.rate_samples > 0) w.rate = rate_sum / w.rate_samples;
  return w;
}

const Observation* Latest(const std::vector<Observation>& obs, absl::Duration window,
                          absl::Time now) {
  const Observation* latest = nullptr;
  for (const Observation& o : obs) {
    if (o.time > now - window && o.time <= now && (!latest || o.time >= latest->time)) latest = &o;
  }
  return latest;
}

int Ceil(double x) { return static_cast<int>(std::ceil(x - 1e-9)); }

// Rule: latency and GPU memory are scale-up guards. Above target by more than the tolerance they
// ask for ceil(capacity * observed / target) replicas; otherwise they ask for nothing (0), since a
// fast or roomy replica says nothing about how few replicas would do.
MetricProposal Guard(const std::string& name, std::optional<double> observed, double target,
                     int capacity, double tolerance) {
  MetricProposal p{name, 0, observed.value_or(0), target, ""};
  if (!observed) {
    p.note = "no sample in the stable window";
  } else if (*observed / target > 1.0 + tolerance) {
    p.replicas = Ceil(std::max(capacity, 1) * *observed / target);
  } else {
    p.note = "within target";
  }
  return p;
}

// A series of bursts has ended once no burst began for this multiple of its longest gap. If burst
// onsets arrive as a Poisson process (exponential gaps of mean m), the longest of n gaps is about
// m ln n, and a gap longer than twice that has probability exp(-2 ln n) = 1/n^2: after ten bursts,
// a 1% chance of dropping the fleet just before the next one (1.25 would make it 6%).
constexpr double kBurstLapseFactor = 2.0;

// Rule (Galley): the start of the current series of recurring bursts, if one is under way: at
// least two onsets, each at most burst_gap_max after the one before, the newest no longer ago
// than kBurstLapseFactor times the longest gap between them.
std::optional<absl::Time> RecurringSince(const std::vector<absl::Time>& onsets,
                                         const InferencePolicy& p, absl::Time now) {
  if (onsets.size() < 2) return std::nullopt;
  size_t first = onsets.size() - 1;
  absl::Duration longest = absl::ZeroDuration();
  while (first > 0 && onsets[first] - onsets[first - 1] <= p.burst_gap_max) {
    longest = std::max(longest, onsets[first] - onsets[first - 1]);
    --first;
  }
  if (first == onsets.size() - 1 || now - onsets.back() > longest * kBurstLapseFactor) {
    return std::nullopt;
  }
  return onsets[first];
}

// Rule (Galley, rate sizing): the burst floor. The smallest fleet n that, serving n x `capacity`
// requests per second (the caller passes one replica's share), would have left at most (1 - share)
// of the remembered requests unserved: each remembered rate stands for the time since the one
// before it (at most a stable window, so a gap in the metrics does not weigh as traffic). The
// unserved amount only falls as n grows, so n is found by bisection. It is the cheapest static
// fleet for the remembered past, computed online; 0 when nothing was remembered.
int CoverFleet(const std::vector<TimedRate>& rates, double capacity, double share,
               absl::Duration max_gap, int max_replicas) {
  if (rates.size() < 2 || capacity <= 0 || max_replicas < 1) return 0;
  const double cap_gap = absl::ToDoubleSeconds(max_gap);
  auto unserved = [&](int n, double* total) {
    double lost = 0, all = 0;
    for (size_t i = 1; i < rates.size(); ++i) {
      const double w =
          std::clamp(absl::ToDoubleSeconds(rates[i].time - rates[i - 1].time), 0.0, cap_gap);
      const double r = std::max(0.0, rates[i].rate);
      all += r * w;
      lost += std::max(0.0, r - n * capacity) * w;
    }
    if (total) *total = all;
    return lost;
  };
  double total = 0;
  unserved(max_replicas, &total);
  if (total <= 0) return 0;
  const double allowed = (1 - share) * total;
  int lo = 0, hi = max_replicas;  // unserved(hi) may still exceed: then max_replicas is the answer
  while (lo < hi) {
    const int mid = lo + (hi - lo) / 2;
    if (unserved(mid, nullptr) <= allowed) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

// On demand without bursts, a replica is kept this many model load times after the last
// recommendation that needed it (rate sizing only): a replica dropped too early is back one load
// time after it is asked for, and a smooth rise is seen by the short window well before it
// outgrows the headroom (1 - target utilization). Three keeps a sampled dip of one or two ticks
// from costing a restart.
constexpr int kSmoothHoldLoadTimes = 3;

// Bursts are periodic when the last kPeriodicGaps gaps between onsets each lie within
// kPeriodTolerance of their mean (onsets are seen at tick resolution, so a few seconds of jitter).
constexpr size_t kPeriodicGaps = 3;
constexpr double kPeriodTolerance = 0.1;

struct Periodic {
  absl::Duration period;
  absl::Time next;  // the expected next onset
};

// Rule (Galley, rate sizing): periodic bursts and when the next one is due.
std::optional<Periodic> PeriodicBursts(const std::vector<absl::Time>& onsets) {
  if (onsets.size() < kPeriodicGaps + 1) return std::nullopt;
  std::vector<absl::Duration> gaps;
  for (size_t i = onsets.size() - kPeriodicGaps; i < onsets.size(); ++i) {
    gaps.push_back(onsets[i] - onsets[i - 1]);
  }
  absl::Duration sum = absl::ZeroDuration();
  for (absl::Duration g : gaps) sum += g;
  const absl::Duration mean = sum / static_cast<double>(gaps.size());
  for (absl::Duration g : gaps) {
    if (absl::AbsDuration(g - mean) > mean * kPeriodTolerance) return std::nullopt;
  }
  return Periodic{mean, onsets.back() + mean};
}

}  // namespace

absl::Duration InferenceMemory(const InferencePolicy& p) {
  return std::max({p.stable_window, p.scale_down_delay,
                   p.burst_gap_max > absl::ZeroDuration() ? p.burst_memory : absl::ZeroDuration()});
}

Decision RecommendInference(const Snapshot& snapshot, const InferencePolicy& policy,
                            const History& history, absl::Time now) {
  Decision d;
  const int current = snapshot.current_replicas;
  d.replicas = current;
  d.panic_since = history.panic_since;
  d.last_active = history.last_active;
  const Capacity cap = CountCapacity(snapshot, policy, now);
  const int capacity = cap.ready + cap.starting;

  const WindowAverage stable = Average(snapshot.observations, policy.stable_window, now);
  const absl::Duration panic_window = policy.stable_window * (policy.panic_window_percentage / 100);
  const WindowAverage panic = Average(snapshot.observations, panic_window, now);
  if (stable.samples == 0) {
    d.reason = "NoMetrics";
    d.message = "no observation in the stable window; keeping the current replica count";
    return d;
  }
  // Scale to zero bookkeeping: the last time any demand was seen.
  for (const Observation& o : snapshot.observations) {
    if (o.time <= now && o.inflight + o.queued > 0 && (!d.last_active || o.time > *d.last_active)) {
      d.last_active = o.time;
    }
  }

  // Rule (Galley): with a replica's capacity known and request rates observed, demand is the
  // request rate and one replica takes capacity x target_utilization of it; otherwise demand is
  // concurrency and one replica takes target_concurrency (KPA).
  // Rates are used only while they are current: when the newest observation has none (no
  // replica could be counted, e.g. the fleet at zero while the gateway holds requests) the policy
  // falls back to concurrency, which sees the held requests.
  const Observation* newest = Latest(snapshot.observations, policy.stable_window, now);
  const bool rate_now = newest != nullptr && newest->request_rate.has_value();
  const bool by_rate = policy.replica_capacity_rps && *policy.replica_capacity_rps > 0 &&
                       policy.target_utilization > 0 && stable.rate_samples > 0 && rate_now;
  const double per_replica = by_rate ? *policy.replica_capacity_rps * policy.target_utilization
                                     : policy.target_concurrency;
  const double stable_demand = by_rate ? stable.rate : stable.concurrency;
  const bool panic_seen = by_rate ? panic.rate_samples > 0 : panic.samples > 0;
  // With rates the short window's demand is its peak reading: a burst of a few seconds is over
  // before any replica started for it is ready, and a mean over the window halves it.
  const double panic_demand = !panic_seen ? stable_demand
                              : by_rate   ? panic.peak_rate
                                          : panic.concurrency;
  if (rate_now) d.rate = newest->request_rate;

  // Rule (KPA): desired = ceil(average demand / what one replica takes), per window.
  const int want_stable = Ceil(stable_demand / per_replica);
  const int want_panic = Ceil(panic_demand / per_replica);
  const char* unit = by_rate ? "rate" : "concurrency";
  d.proposals.push_back({StrCat(unit, "/stable"), want_stable, stable_demand, per_replica,
                         StrCat(by_rate ? stable.rate_samples : stable.samples, " samples")});
  d.proposals.push_back({StrCat(unit, "/panic"), want_panic, panic_demand, per_replica,
                         StrCat(by_rate ? panic.rate_samples : panic.samples, " samples")});
  if (by_rate) {
    d.proposals.push_back({"concurrency/stable",
                           Ceil(stable.concurrency / policy.target_concurrency), stable.concurrency,
                           policy.target_concurrency, "reported only: sizing by request rate"});
  }

  // Rule (KPA): panic when the panic-window demand is at least panic_threshold of the capacity
  // (here ready + starting: starting replicas are capacity already on its way); stay in panic
  // until a full stable window has passed without crossing the threshold again.
  const double panic_pods = panic_demand / per_replica;
  const bool over =
      panic_seen && panic_pods / std::max(capacity, 1) >= policy.panic_threshold_percentage / 100;
  if (over) {
    d.panic_since = now;  // (re)arm: Knative extends panic on every crossing
  } else if (d.panic_since && *d.panic_since + policy.stable_window <= now) {
    d.panic_since.reset();
  }
  d.panic = d.panic_since.has_value();

  // Rule (Galley): a burst begins at a tick whose panic-window demand is at least the panic
  // threshold times the stable-window demand (both in replicas, the stable one counted as at least
  // 1), unless another began within the last stable window. Unlike panic mode this compares
  // demand with demand, not with capacity, so bursts that a held fleet absorbs are still seen.
  // Onsets older than burst_memory are forgotten.
  // The scale-down delay in force: the configured one, or, while bursts recur, back to the first
  // burst of the series.
  d.hold = policy.scale_down_delay;
  bool recurring = false;
  if (policy.burst_gap_max > absl::ZeroDuration()) {
    d.burst_onsets = history.burst_onsets;
    std::erase_if(d.burst_onsets,
                  [&](absl::Time t) { return t <= now - policy.burst_memory || t > now; });
    const double stable_pods = std::max(stable_demand / per_replica, 1.0);
    if (panic_seen && panic_pods >= stable_pods * policy.panic_threshold_percentage / 100 &&
        (d.burst_onsets.empty() || d.burst_onsets.back() <= now - policy.stable_window)) {
      d.burst_onsets.push_back(now);
    }
    const std::optional<absl::Time> since = RecurringSince(d.burst_onsets, policy, now);
    recurring = since.has_value();
    if (since && !by_rate) d.hold = std::max(d.hold, now - *since);
  }
  // Rule (Galley, rate sizing): while bursts recur, the floor is the cheapest fleet that would
  // have served burst_cover_share of the remembered requests at one replica's share (CoverFleet),
  // instead of the highest recommendation since the series began: a recommendation made while
  // queues overflowed measures the overflow, the served rate measures the burst.
  int floor = 0;
  std::string floor_reason;
  const std::optional<Periodic> periodic =
      by_rate ? PeriodicBursts(d.burst_onsets) : std::optional<Periodic>();
  if (periodic) {
    // Rule (Galley, rate sizing): periodic bursts are announced, so nothing is held between them
    // (the smooth hold below); from one model load time plus the panic window before the next is
    // due until the panic window after it, and from the onset of the current one until the
    // replicas started for it are ready, the fleet is at least what the bursts were recommended
    // (the highest recommendation since the onset before the last).
    const absl::Time due = periodic->next;
    const absl::Time last = d.burst_onsets.back();
    if ((now >= due - policy.model_load_time - panic_window && now <= due + panic_window) ||
        now <= last + policy.model_load_time + panic_window) {
      const absl::Time since = d.burst_onsets[d.burst_onsets.size() - 2];
      for (const auto& r : history.recommendations) {
        if (r.time >= since) floor = std::max(floor, r.replicas);
      }
      floor = std::min(floor, policy.max_replicas);
      floor_reason = "PeriodicPrewarm";
    }
  } else if (by_rate && recurring) {
    std::vector<TimedRate> rates = history.rates;
    if (d.rate) rates.push_back({now, *d.rate});
    floor = CoverFleet(rates, per_replica, policy.burst_cover_share, policy.stable_window,
                       policy.max_replicas);
    floor_reason = "BurstFloor";
  }
  // Rule (Galley, rate sizing): without bursts, or with periodic ones, hold a replica only
  // kSmoothHoldLoadTimes load times after the last recommendation that needed it.
  if (by_rate && (d.burst_onsets.empty() || periodic)) {
    d.hold = std::min(d.hold, policy.model_load_time * kSmoothHoldLoadTimes);
  }

  int desired = d.panic ? std::max(want_panic, want_stable) : want_stable;
  // Rule (Galley, rate sizing): a rate is bounded by what the fleet answers, so a burst onto a
  // small fleet rarely reads as 200% of it; scale up on the short window's rate at once (the long
  // window still decides every scale-down).
  if (by_rate) desired = std::max(desired, want_panic);
  if (d.panic) {
    // Rule (KPA): in panic mode never scale down: keep the current count and the highest
    // recommendation of the last stable window (Knative keeps maxPanicPods for the episode).
    desired = std::max(desired, current);
    for (const auto& r : history.recommendations) {
      if (r.time > now - policy.stable_window) desired = std::max(desired, r.replicas);
    }
  }
  std::string why = d.panic ? "panic: burst above the panic threshold" : unit;

  const Observation* latest = Latest(snapshot.observations, policy.stable_window, now);
  if (policy.target_latency_seconds) {
    MetricProposal g = Guard("latency", latest ? latest->latency_seconds : std::nullopt,
                             *policy.target_latency_seconds, capacity, policy.tolerance);
    if (g.replicas > desired) desired = g.replicas, why = "latency above target";
    d.proposals.push_back(std::move(g));
  }
  if (policy.target_gpu_memory_fraction) {
    MetricProposal g = Guard("gpuMemory", latest ? latest->gpu_memory_fraction : std::nullopt,
                             *policy.target_gpu_memory_fraction, capacity, policy.tolerance);
    if (g.replicas > desired) desired = g.replicas, why = "GPU memory above target";
    d.proposals.push_back(std::move(g));
  }
  // Rule (KPA): scale up at most max_scale_up_rate times the capacity.
  const int up_cap = Ceil(policy.max_scale_up_rate * std::max(capacity, 1));
  desired = std::min(desired, up_cap);
  d.recommendation = desired;

  std::string reason = desired > current ? "ScaleUp" : desired < current ? "ScaleDown" : "Steady";
  int result = desired;
  if (result < current) {
    // Rule: hold the highest recommendation of the scale-down delay (Knative scale-down-delay),
    // or of the current series of recurring bursts.
    int held = result, held_base = result;
    for (const auto& r : history.recommendations) {
      if (r.time > now - d.hold) held = std::max(held, r.replicas);
      if (r.time > now - policy.scale_down_delay) held_base = std::max(held_base, r.replicas);
    }
    if (held > result) {
      result = std::min(held, current);
      reason = held > held_base ? "BurstHold" : "ScaleDownDelayed";
    }
    // Rule (KPA): scale down at most by a factor max_scale_down_rate per decision.
    const int floor_rate = static_cast<int>(std::floor(current / policy.max_scale_down_rate));
    if (result < floor_rate) result = floor_rate, reason = "ScaleDownLimit";
  }
  if (result < floor) result = floor, reason = floor_reason;
  // Rule: never below the warm pool; zero only when enabled, min_replicas is 0 and no demand was
  // seen for the scale-to-zero grace period.
  const int warm = policy.scale_to_zero ? policy.min_replicas : std::max(policy.min_replicas, 1);
  if (result < warm) result = warm, reason = "WarmPool";
  if (result == 0 && d.last_active && *d.last_active + policy.scale_to_zero_grace > now) {
    result = 1;
    reason = "ScaleToZeroGrace";
  }
  if (result > policy.max_replicas) result = policy.max_replicas, reason = "TooManyReplicas";
  d.replicas = result;
  d.reason = reason;
  d.message = StrCat(
      why, ": ", by_rate ? "request rate " : "demand ", stable_demand, " (stable), ", panic_demand,
      " (panic) for ", per_replica, " per replica; capacity ", cap.ready, " ready + ", cap.starting,
      " starting", cap.stuck > 0 ? StrCat(" (", cap.stuck, " stuck, not counted)") : "",
      "; scale-down delay ", absl::FormatDuration(d.hold), " (", d.burst_onsets.size(),
      " burst onsets remembered)", floor > 0 ? StrCat("; burst floor ", floor) : "");
  return d;
}

}  // namespace galley::autoscale
