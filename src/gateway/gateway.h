// The gateway's forwarding core: keeps the replica set (from a ReplicaSource) with each
// replica's health, outstanding requests, circuit breaker and ejection; picks a replica by power
// of two choices; sends with a per-attempt deadline; retries safe failures on another replica
// with jittered back-off inside the request's deadline and a retry budget. When no replica can
// take a request it says so, and the HTTP layer answers from the fallback model.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/lifecycle.h"
#include "fleet/replica_source.h"
#include "gateway/backoff.h"
#include "gateway/balancer.h"
#include "gateway/circuit_breaker.h"
#include "gateway/gateway_metrics.h"
#include "gateway/latency_window.h"
#include "gateway/retry_budget.h"
#include "upstream/upstream.h"

namespace boost::asio {
class io_context;
}

namespace galley::gateway {

struct GatewayOptions {
  CircuitBreakerOptions replica_breaker;
  CircuitBreakerOptions model_breaker;
  RetryBudgetOptions retry_budget;
  BackoffOptions backoff;
  int max_attempts = 3;                          // first try plus retries
  std::chrono::milliseconds try_timeout{5'000};  // per attempt, within the deadline
  // An attempt that has another replica to go to gets less: a multiple of the model's recent
  // answer times (latency_window.h), so a hung replica costs milliseconds, not try_timeout. The
  // last attempt a request can make always gets try_timeout. multiplier 0: off.
  LatencyWindowOptions attempt_latency;
  std::chrono::milliseconds min_attempt_time{5};  // less left than this: do not send
  std::chrono::milliseconds health_interval{1'000};
  std::chrono::milliseconds health_timeout{500};
  int eject_after_failures = 5;                     // consecutive failures
  std::chrono::milliseconds eject_duration{5'000};  // base, jittered x[1, 1.5)
  uint64_t seed = 0x6a11e7;
  // Scale from zero: a request that finds no ready replica waits here, up to its deadline, for
  // one to become ready instead of going to the fallback at once, as Knative's activator buffers
  // requests for a revision scaled to zero (knative.dev/docs/serving/architecture, "Activator").
  // At most max_held wait; more go to the fallback. While any wait, the replica set is re-read
  // every held_poll. `on_held` runs with the new count whenever it changes (on whichever thread
  // changed it; it must be thread-safe and quick), so that an autoscaler sees the demand.
  bool hold_for_replica = false;
  size_t max_held = 1024;
  std::chrono::milliseconds held_poll{20};
  // A held request gives up this long before its deadline, so the fallback can still answer it.
  std::chrono::milliseconds held_fallback_reserve{50};
  std::function<void(int64_t)> on_held;
  // Model names get a circuit breaker (and its metrics series) only once a replica has answered
  // them with success (2xx), so clients cannot grow the gateway by inventing names; at most
  // max_known_models are learned. `models` are known from the start.
  std::vector<std::string> models;
  size_t max_known_models = 1024;
};

struct ForwardResult {
  bool answered = false;    // a replica answered (any HTTP status that is not retried away)
  http::Response response;  // when answered
  std::string replica;      // who answered
  std::string why_not;      // when !answered: "no_ready_replica", "model_breaker_open",
                            // "deadline", "replicas_failed"
  bool has_last_failure = false;
  http::Response last_failure;  // the last replica's failing answer (e.g. 503), if any
};

// A Component (common/lifecycle.h): BeginDrain() turns draining() true (the front doors then
// report not ready); forwards in flight finish as the front doors drain them.
class Gateway final : public Component {
 public:
  // `source`, `upstream`, `clock` and `metrics` must outlive the gateway. Timers (health checks,
  // back-off) run on `timers`.
  Gateway(fleet::ReplicaSource& source, upstream::Upstream& upstream,
          boost::asio::io_context& timers, const Clock& clock, GatewayMetrics& metrics,
          GatewayOptions options);
  ~Gateway();

  // Before Start(): `done` runs (once, on an upstream thread) when every replica has answered
  // its first probe.
  void OnFirstRound(std::function<void()> done) { first_round_done_ = std::move(done); }
  // Starts the health-check loop (the first round runs at once).
  absl::Status Start() override;
  // Stops the loop. In-flight forwards still complete.
  void Stop() override;
  void BeginDrain() override { draining_.store(true); }
  // The doors stop accepting: requests held for a replica get the fallback's answer now, so the
  // front doors' drains do not wait on them.
  void StopAccepting() override { ReleaseHeld(); }
  std::string_view component_name() const override { return "gateway"; }
  // The process is stopping (BeginDrain was called).
  bool draining() const { return draining_.load(); }

  // Forwards `request` for `model` (used for the per-model breaker; may be empty) until
  // `deadline`. `done` runs once, on an upstream thread. Never blocks.
  void Forward(const std::string& model, http::Request request, TimePoint deadline,
               std::function<void(ForwardResult&&)> done);

  // True if `model` has a breaker: named in the options or answered by a replica.
  bool KnownModel(const std::string& model) const;

  // Replicas that pass their ready probe and are not ejected.
  int ReadyReplicas() const;

  // Requests waiting for a replica (GatewayOptions::hold_for_replica).
  int64_t HeldRequests() const;

  // Runs one health-check round now (also used by tests); `done` after every probe answered.
  void CheckHealth(std::function<void()> done = {});

 private:
  struct Replica;
  struct Call;
  using ReplicaList = std::vector<std::shared_ptr<Replica>>;

  std::shared_ptr<const ReplicaList> Snapshot() const;
  void SyncReplicas();
  std::vector<Candidate> Candidates(const ReplicaList& list, const Call& call, TimePoint now) const;
  void Attempt(std::shared_ptr<Call> call);
  void OnResult(std::shared_ptr<Call> call, std::shared_ptr<Replica> replica,
                upstream::UpstreamResult&& result);
  void Finish(std::shared_ptr<Call> call, ForwardResult&& result);
  void RecordBreaker(const std::string& scope, const std::string& name,
                     const std::optional<BreakerTransition>& t, BreakerState now_state);
  void ScheduleHealth();
  // The breaker of a known model; null for any other name.
  std::shared_ptr<CircuitBreaker> ModelBreaker(const std::string& model);
  void LearnModel(const std::string& model);
  // How long an attempt for `model` may take when another replica could be tried after it.
  Duration AttemptTimeout(const std::string& model);
  bool Hold(std::shared_ptr<Call> call);
  void ScheduleHeldCheck();
  void CheckHeld();
  void SetHeldCount(size_t n);
  // Hands every held request to the fallback (why_not no_ready_replica).
  void ReleaseHeld();

  fleet::ReplicaSource& source_;
  upstream::Upstream& upstream_;
  boost::asio::io_context& timers_;
  const Clock& clock_;
  GatewayMetrics& metrics_;
  const GatewayOptions options_;

  mutable absl::Mutex mu_;
  std::shared_ptr<const ReplicaList> replicas_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<CircuitBreaker>> model_breakers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, LatencyWindow> model_latency_ ABSL_GUARDED_BY(mu_);
  absl::Mutex model_breaker_mu_;  // serialises calls into model breakers
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  RetryBudget budget_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> stopped_{false};
  std::atomic<bool> draining_{false};
  std::function<void()> first_round_done_;
  struct Timer;
  std::unique_ptr<Timer> health_timer_;
  mutable absl::Mutex held_mu_;
  std::vector<std::shared_ptr<Call>> held_ ABSL_GUARDED_BY(held_mu_);
  bool held_check_armed_ ABSL_GUARDED_BY(held_mu_) = false;
  std::unique_ptr<Timer> held_timer_;
};

}  // namespace galley::gateway
