#include "sim/autoscale_sim.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <memory>
#include <random>

#include "autoscale/controller_core.h"
#include "autoscale/inference_policy.h"
#include "common/strings.h"
#include "gateway/balancer.h"
#include "sim/autoscale_policies.h"

namespace galley::sim {
namespace {

using autoscale::InferencePolicy;

constexpr double kInf = std::numeric_limits<double>::infinity();
// The simulation's time 0 as the recommender sees it (any fixed instant would do).
const absl::Time kEpoch = absl::FromUnixSeconds(1'700'000'000);

absl::Time At(double t) { return kEpoch + absl::Seconds(t); }

// Latencies in 10 us bins up to 10 s (one overflow bin above): exact counts, bounded memory.
class LatencyHistogram {
 public:
  static constexpr double kBin = 10e-6;
  static constexpr size_t kBins = 1'000'000;

  LatencyHistogram() : counts_(kBins + 1, 0) {}
  void Add(double s) {
    const double b = std::floor(std::max(0.0, s) / kBin);
    ++counts_[b >= kBins ? kBins : static_cast<size_t>(b)];
    ++total_;
    max_ = std::max(max_, s);
  }
  // The upper edge of the bin holding the q-quantile (nearest rank); 0 when empty.
  double Quantile(double q) const {
    if (total_ == 0) return 0;
    const auto rank = static_cast<int64_t>(std::ceil(q * static_cast<double>(total_)));
    int64_t seen = 0;
    for (size_t i = 0; i <= kBins; ++i) {
      seen += counts_[i];
      if (seen >= std::max<int64_t>(rank, 1)) return i == kBins ? max_ : (i + 1) * kBin;
    }
    return max_;
  }
  double max() const { return max_; }

 private:
  std::vector<uint32_t> counts_;
  int64_t total_ = 0;
  double max_ = 0;
};

enum class State { kStarting, kReady, kDraining, kGone };

struct Replica {
  int id = 0;
  State state = State::kStarting;
  double start = 0;
  double ready_at = 0;               // when it becomes (or became) ready
  std::optional<double> ready_time;  // set once ready
  std::deque<double> queue;          // arrival instants of queued requests
  std::vector<double> batch;         // arrival instants of the running batch
  double batch_start = 0;
  double batch_end = kInf;   // kInf: idle
  double busy_total = 0;     // seconds spent running batches
  double cpu_mark_time = 0;  // the HPA's last CPU sample: time and busy_total then
  double cpu_mark_busy = 0;
  int64_t answered = 0;  // galley_requests_total: requests answered or refused for a full queue

  int Outstanding() const { return static_cast<int>(queue.size() + batch.size()); }
  double BusyAt(double t) const { return busy_total + (batch_end < kInf ? t - batch_start : 0); }
};

class Engine {
 public:
  Engine(const ClusterModel& cluster, const PolicySetup& policy, const SimOptions& options)
      : cluster_(cluster), policy_(policy), options_(options), rng_(options.seed) {
    result_.policy = policy.name;
    for (int i = 0; i < cluster.initial_replicas; ++i) {
      Replica& r = AddReplica(-3600);
      MakeReady(r, -3600 + cluster.model_load_time_s);
    }
    desired_ = cluster.initial_replicas;
  }

  SimResult Run(ArrivalStream& arrivals) {
    std::optional<double> next_arrival = arrivals.Next();
    double next_tick = 0;
    double now = 0;
    while (true) {
      // Queue: the controller keeps ticking after the last arrival while messages wait or are
      // held (the fleet must still wake for them), up to drain_limit_s.
      const bool draining_queue = options_.queue && !next_arrival && WorkLeft() &&
                                  next_tick <= result_.horizon_s + options_.drain_limit_s;
      const bool ticking = next_arrival.has_value() || draining_queue;
      // The next event; ties go to completions, then readiness, then ticks, then arrivals.
      double t_done = kInf, t_ready = kInf;
      Replica* done = nullptr;
      Replica* ready = nullptr;
      for (auto& r : replicas_) {
        if (r->batch_end < t_done) t_done = r->batch_end, done = r.get();
        if (r->state == State::kStarting && r->ready_at < t_ready)
          t_ready = r->ready_at, ready = r.get();
      }
      const double t_arrival = next_arrival.value_or(kInf);
      const double t_tick = ticking ? next_tick : kInf;  // ticks stop with the arrivals
      const double t = std::min({t_done, t_ready, t_tick, t_arrival});
      if (t == kInf) break;
      if (ticking) result_.replica_seconds += existing_ * (t - now);  // cost until the horizon
      now = t;
      if (t == t_done) {
        Complete(*done, t);
      } else if (t == t_ready) {
        MakeReady(*ready, t);
      } else if (t == t_tick) {
        Tick(t);
        next_tick += policy_.sync_period_s;
      } else {
        Arrive(t);
        result_.horizon_s = t;
        next_arrival = arrivals.Next();
      }
    }
    Finish();
    return std::move(result_);
  }

 private:
  Replica& AddReplica(double t) {
    auto r = std::make_unique<Replica>();
    r->id = next_id_++;
    r->start = t;
    r->ready_at = t + cluster_.model_load_time_s;
    r->cpu_mark_time = t;
    replicas_.push_back(std::move(r));
    ++existing_;
    result_.max_replicas = std::max(result_.max_replicas, existing_);
    return *replicas_.back();
  }

  void MakeReady(Replica& r, double t) {
    r.state = State::kReady;
    r.ready_time = t;
    r.cpu_mark_time = std::max(r.cpu_mark_time, t);
    r.cpu_mark_busy = r.busy_total;
    if (options_.queue && t >= 0) Fetch(t);
  }

  bool WorkLeft() const {
    if (!broker_.empty()) return true;
    return std::any_of(replicas_.begin(), replicas_.end(),
                       [](const auto& r) { return r->Outstanding() > 0; });
  }

  // Queue: ready replicas with room fetch waiting messages, the one with the most room first (a
  // consumer asks for as many as it has room for), until the broker is empty or nobody has room.
  void Fetch(double t) {
    while (!broker_.empty()) {
      Replica* best = nullptr;
      int room = 0;
      for (auto& r : replicas_) {
        if (r->state != State::kReady) continue;
        const int free = options_.prefetch - r->Outstanding();
        if (free > room) room = free, best = r.get();
      }
      if (best == nullptr) return;
      Take(*best, room, t);
      if (best->batch_end == kInf) StartBatch(*best, t);
    }
  }

  // Moves up to `n` messages from the broker into `r`'s queue.
  void Take(Replica& r, int n, double t) {
    for (int i = 0; i < n && !broker_.empty(); ++i) {
      ages_.Add(t - broker_.front());
      r.queue.push_back(broker_.front());
      broker_.pop_front();
    }
  }

  void Gone(Replica& r) {
    r.state = State::kGone;
    --existing_;
  }

  void StartBatch(Replica& r, double t) {
    const size_t n = std::min(r.queue.size(), static_cast<size_t>(cluster_.service.max_batch_size));
    r.batch.assign(r.queue.begin(), r.queue.begin() + static_cast<std::ptrdiff_t>(n));
    r.queue.erase(r.queue.begin(), r.queue.begin() + static_cast<std::ptrdiff_t>(n));
    r.batch_start = t;
    r.batch_end = t + cluster_.service.BatchSeconds(static_cast<int>(n));
  }

  void Complete(Replica& r, double t) {
    r.answered += static_cast<int64_t>(r.batch.size());
    for (const double a : r.batch) {
      const double latency = t - a;
      latencies_.Add(latency);
      ++result_.completed;
      if (latency <= options_.slo_s) {
        ++result_.within_slo;
        CountWindow(a, true);
      } else {
        CountWindow(a, false);
      }
    }
    r.busy_total += t - r.batch_start;
    r.batch.clear();
    r.batch_end = kInf;
    // Queue: the consumer refills what the batch freed before the next batch is formed.
    if (options_.queue && r.state == State::kReady) Take(r, options_.prefetch - r.Outstanding(), t);
    if (!r.queue.empty()) {
      StartBatch(r, t);
    } else if (r.state == State::kDraining) {
      Gone(r);
    }
  }

  // The gateway's balancer over the ready replicas; no ready replica or a full queue drops.
  void Arrive(double t) {
    ++result_.arrived;
    if (options_.queue) {
      broker_.push_back(t);
      Fetch(t);
      result_.max_lag = std::max<int64_t>(result_.max_lag, static_cast<int64_t>(broker_.size()));
      return;
    }
    candidates_.clear();
    routable_.clear();
    for (auto& r : replicas_) {
      if (r->state != State::kReady) continue;
      candidates_.push_back({r->Outstanding(), true});
      routable_.push_back(r.get());
    }
    const std::optional<size_t> pick = gateway::PickTwoChoices(candidates_, rng_);
    if (!pick) {
      ++unrouted_;
      return Drop(t);
    }
    Replica& r = *routable_[*pick];
    if (static_cast<int>(r.queue.size()) >= cluster_.service.max_queue_size) {
      ++r.answered;  // refused: queue_full
      return Drop(t);
    }
    r.queue.push_back(t);
    if (r.batch_end == kInf) StartBatch(r, t);
  }

  void Drop(double t) {
    ++result_.dropped;
    CountWindow(t, false);
  }

  // Step scenario bookkeeping: per arrival second, requests and those within the SLO.
  void CountWindow(double arrival, bool ok) {
    if (!options_.step_at_s) return;
    const auto s = static_cast<size_t>(std::max(0.0, std::floor(arrival)));
    if (s >= per_second_.size()) per_second_.resize(s + 1, {0, 0});
    ++per_second_[s].first;
    if (ok) ++per_second_[s].second;
  }

  // One controller tick: the schedule's count for a scheduled baseline, else the decision.
  void Tick(double t) {
    const size_t index = tick_index_++;
    if (policy_.schedule.empty()) return Decide(t);
    const int n = policy_.schedule[std::min(index, policy_.schedule.size() - 1)];
    if (n != desired_) {
      SetReplicas(n, t);
      ++result_.scale_events;
    }
    Record(t, "Schedule", "", Observed());
    std::erase_if(replicas_, [](const auto& r) { return r->state == State::kGone; });
  }

  std::vector<Replica*> Observed() const {
    std::vector<Replica*> out;
    for (const auto& r : replicas_) {
      if (r->state != State::kGone) out.push_back(r.get());
    }
    return out;
  }

  void Record(double t, std::string reason, std::string message,
              const std::vector<Replica*>& observed) {
    if (!options_.keep_timeline) return;
    TickRecord rec{t,
                   desired_,
                   0,
                   0,
                   result_.completed - result_.within_slo + result_.dropped,
                   std::move(reason),
                   std::move(message)};
    for (const Replica* r : observed) {
      rec.ready += r->state == State::kReady ? 1 : 0;
      rec.outstanding += r->Outstanding();
    }
    result_.timeline.push_back(std::move(rec));
  }

  // KEDA's poll (KedaSettings): activity, scale from and to zero. True when it scaled.
  bool KedaPoll(double t, double backlog) {
    const KedaSettings& k = *policy_.keda;
    if (t < next_poll_) return false;
    next_poll_ = t + k.polling_s;
    unrouted_ = 0;
    const bool active = backlog > k.activation;
    if (active) last_active_ = t;
    int n = desired_;
    if (desired_ == 0 && active) {
      n = std::max(k.min_replica_count, 1);
    } else if (desired_ > 0 && !active && t - last_active_ >= k.cooldown_s) {
      n = std::min(desired_, k.min_replica_count);
    }
    if (n == desired_) return false;
    SetReplicas(n, t);
    ++result_.scale_events;
    return true;
  }

  // One controller tick, as autoscale::Controller::Tick does it: observe, aggregate, snapshot,
  // recommend, remember, scale.
  void Decide(double t) {
    const absl::Time now = At(t);
    autoscale::MetricsSnapshot ms;
    ms.time = now;
    std::vector<Replica*> observed;
    for (auto& r : replicas_) {
      if (r->state == State::kGone) continue;
      autoscale::ReplicaObservation o;
      o.id = StrCat("replica-", r->id);
      o.ready = r->state == State::kReady;
      o.start_time = At(r->start);
      if (r->ready_time) o.ready_time = At(*r->ready_time);
      // A starting replica's model is not loaded: nothing to report yet.
      o.scraped = r->state != State::kStarting;
      o.inflight = r->Outstanding();
      o.queued = static_cast<double>(r->queue.size());
      if (o.scraped) o.requests_total = static_cast<double>(r->answered);
      ms.replicas.push_back(std::move(o));
      observed.push_back(r.get());
    }
    const bool inference = std::holds_alternative<InferencePolicy>(policy_.spec.policy);
    absl::Duration keep = absl::Minutes(10);  // HPA: covers the 5 min downscale stabilisation
    // Queue: the lag is demand no replica reports (autoscale::Controller adds it the same way);
    // pending messages are in the replicas' in-flight counts.
    if (options_.queue) ms.gateway_held = static_cast<double>(broker_.size());
    if (inference) {
      const auto& p = std::get<InferencePolicy>(policy_.spec.policy);
      autoscale::RememberObservation(autoscale::Aggregate(ms, previous_ ? &*previous_ : nullptr),
                                     now, p.stable_window, observations_);
      keep = autoscale::InferenceMemory(p);
    }
    autoscale::Snapshot snap = autoscale::BuildSnapshot(ms, desired_, observations_);
    previous_ = std::move(ms);
    if (!inference) AddPodMetrics(t, observed, snap);
    if (policy_.keda) {
      // NOTE: arrivals that found no ready replica since the last poll count as backlog, as the
      // queue in front of a scaled-to-zero fleet would hold them (here they were dropped). With a
      // queue: lag + pending, or pending alone (KEDA's Redis Streams scaler's default,
      // pendingEntriesCount), which cannot see messages no consumer has fetched.
      double backlog = options_.queue ? static_cast<double>(broker_.size()) : unrouted_;
      if (policy_.kind == PolicyKind::kKedaPending) backlog = 0;
      for (const Replica* r : observed) backlog += r->Outstanding();
      snap.external_metrics[kBacklogMetric] = {backlog};
      if (KedaPoll(t, backlog)) snap.current_replicas = desired_;
    }
    const autoscale::Decision d = autoscale::Recommend(snap, policy_.spec, history_, now);
    autoscale::RememberDecision(d, now, keep, history_);
    int change = 0;
    if (d.replicas != desired_) {
      change = d.replicas - desired_;
      SetReplicas(d.replicas, t);
      ++result_.scale_events;
    }
    autoscale::RememberScale(change, now, history_);
    Record(t, d.reason, d.message, observed);
    std::erase_if(replicas_, [](const auto& r) { return r->state == State::kGone; });
  }

  // What the metrics APIs would give the HPA for each observed pod (same order as the snapshot's
  // pods): metrics-server's CPU usage over its window (Resource metric; the pod's busy share of
  // the last sync period times the cores it uses when busy) and the custom metrics API's
  // galley_queue_length (Pods metric; the gauge at the tick). A starting pod reports nothing
  // (a missing metric, which the HPA treats as its rules say).
  void AddPodMetrics(double t, const std::vector<Replica*>& observed, autoscale::Snapshot& snap) {
    for (size_t i = 0; i < observed.size(); ++i) {
      Replica& r = *observed[i];
      autoscale::PodState& pod = snap.pods[i];
      pod.requests["cpu"] = cluster_.cpu_request_cores;
      if (r.state == State::kStarting) continue;
      const double window = std::max(t - r.cpu_mark_time, 1e-9);
      const double busy = std::clamp((r.BusyAt(t) - r.cpu_mark_busy) / window, 0.0, 1.0);
      r.cpu_mark_time = t;
      r.cpu_mark_busy = r.BusyAt(t);
      autoscale::MetricSample cpu;
      cpu.value = busy * cluster_.cpu_request_cores;
      cpu.timestamp = At(t);
      cpu.window = absl::Seconds(policy_.sync_period_s);
      pod.metrics["cpu"] = cpu;
      autoscale::MetricSample queue;
      queue.value = static_cast<double>(r.queue.size());
      queue.timestamp = At(t);
      pod.metrics[kQueueMetric] = queue;
    }
  }

  // The scale target: adds starting replicas, or removes replicas in the order a ReplicaSet
  // deletes pods (controller.ActivePods: not ready before ready; then the most recently ready
  // first); a removed ready replica drains.
  void SetReplicas(int n, double t) {
    desired_ = n;
    std::vector<Replica*> active;
    for (auto& r : replicas_) {
      if (r->state == State::kStarting || r->state == State::kReady) active.push_back(r.get());
    }
    const int have = static_cast<int>(active.size());
    for (int i = have; i < n; ++i) AddReplica(t);
    if (n >= have) return;
    std::stable_sort(active.begin(), active.end(), [](const Replica* a, const Replica* b) {
      const bool ar = a->state == State::kReady, br = b->state == State::kReady;
      if (ar != br) return !ar;
      if (ar) return a->ready_time.value_or(0) > b->ready_time.value_or(0);
      return a->start > b->start;
    });
    for (int i = 0; i < have - n; ++i) {
      Replica& r = *active[static_cast<size_t>(i)];
      if (r.state == State::kStarting || r.Outstanding() == 0) {
        Gone(r);
      } else {
        r.state = State::kDraining;
      }
    }
  }

  void Finish() {
    result_.stranded = static_cast<int64_t>(broker_.size());
    result_.dropped += result_.stranded;
    result_.age_p50_s = ages_.Quantile(0.50);
    result_.age_p99_s = ages_.Quantile(0.99);
    result_.age_max_s = ages_.max();
    result_.p50_s = latencies_.Quantile(0.50);
    result_.p99_s = latencies_.Quantile(0.99);
    result_.max_latency_s = latencies_.max();
    if (!options_.step_at_s) return;
    // Windows [w, w + W) of whole arrival seconds from the step to the horizon.
    const double step = *options_.step_at_s;
    const auto first = static_cast<size_t>(std::ceil(step));
    const auto window = static_cast<size_t>(std::max(1.0, std::round(options_.restore_window_s)));
    const auto last_second = static_cast<size_t>(std::floor(result_.horizon_s));
    std::optional<size_t> last_bad_end;
    for (size_t w = first; w + window <= last_second + 1; ++w) {
      int64_t total = 0, ok = 0;
      for (size_t s = w; s < w + window && s < per_second_.size(); ++s) {
        total += per_second_[s].first;
        ok += per_second_[s].second;
      }
      if (total > 0 &&
          static_cast<double>(ok) < options_.restore_share * static_cast<double>(total)) {
        last_bad_end = w + window;
      }
    }
    if (!last_bad_end) {
      result_.restore_s = 0;
    } else if (*last_bad_end <= last_second) {
      result_.restore_s = static_cast<double>(*last_bad_end) - step;
    }
  }

  const ClusterModel& cluster_;
  const PolicySetup& policy_;
  const SimOptions& options_;
  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  int next_id_ = 0;
  int existing_ = 0;  // replicas not gone
  int desired_ = 0;   // the scale target's spec.replicas
  size_t tick_index_ = 0;
  int64_t unrouted_ = 0;    // arrivals with no ready replica since KEDA's last poll
  double next_poll_ = 0;    // KEDA's next poll
  double last_active_ = 0;  // KEDA's lastActiveTime
  autoscale::History history_;
  std::vector<autoscale::Observation> observations_;
  std::optional<autoscale::MetricsSnapshot> previous_;  // the last tick's, for the request rate
  std::vector<gateway::Candidate> candidates_;
  std::vector<Replica*> routable_;
  LatencyHistogram latencies_;
  LatencyHistogram ages_;      // queue: time in the broker
  std::deque<double> broker_;  // queue: arrival instants of messages not yet fetched
  std::vector<std::pair<int64_t, int64_t>> per_second_;
  SimResult result_;
};

}  // namespace

SimResult Simulate(ArrivalStream& arrivals, const ClusterModel& cluster, const PolicySetup& policy,
                   const SimOptions& options) {
  return Engine(cluster, policy, options).Run(arrivals);
}

}  // namespace galley::sim
