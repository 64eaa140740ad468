#include "gateway/gateway.h"

#include <algorithm>
#include <map>
#include <utility>

#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "common/log.h"
#include "common/strings.h"
#include "gateway/balancer.h"
#include "metrics/registry.h"

namespace galley::gateway {
namespace {

namespace asio = boost::asio;

double Secs(Duration d) { return std::chrono::duration<double>(d).count(); }

// Failures the breaker counts and that are safe to retry elsewhere. Inference is a pure
// function of its input, so a request that may have reached a replica can still be repeated.
bool Retryable(const upstream::UpstreamResult& r) {
  if (r.transport_error) return true;
  const unsigned s = static_cast<unsigned>(r.response.result());
  return s == 429 || s == 502 || s == 503 || s == 504;
}

std::string_view OutcomeLabel(const upstream::UpstreamResult& r) {
  if (r.timed_out) return "timeout";
  if (r.transport_error) return "transport_error";
  const unsigned s = static_cast<unsigned>(r.response.result());
  if (s < 400) return "ok";
  if (s == 429) return "overloaded";
  if (s < 500) return "client_error";
  return "server_error";
}

double StateValue(BreakerState s) {
  switch (s) {
    case BreakerState::kClosed:
      return 0;
    case BreakerState::kOpen:
      return 1;
    case BreakerState::kHalfOpen:
      return 2;
    default:
      return 1;
  }
}

}  // namespace

// Each breaker gets its own jitter seed so breakers that opened together do not re-probe together.
static CircuitBreakerOptions Seeded(CircuitBreakerOptions o, const std::string& id) {
  o.seed = static_cast<uint32_t>(std::hash<std::string>{}(id) ^ o.seed);
  return o;
}

struct Gateway::Timer {
  explicit Timer(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
};

struct Gateway::Replica {
  Replica(fleet::ReplicaEndpoint e, const CircuitBreakerOptions& o, GatewayMetrics& m)
      : endpoint(std::move(e)),
        breaker(Seeded(o, endpoint.id)),
        ready_gauge(&m.replica_ready.Add({{"replica", endpoint.id}})),
        outstanding_gauge(&m.replica_outstanding.Add({{"replica", endpoint.id}})),
        duration(&m.upstream_duration.Add({{"replica", endpoint.id}}, metrics::DurationBuckets())) {
  }

  fleet::ReplicaEndpoint endpoint;  // refreshed from the source each round (under mu)
  std::atomic<int64_t> outstanding{0};
  std::atomic<bool> healthy{false};       // last ready probe said 200
  std::atomic<bool> source_ready{false};  // the source says ready (not draining)
  absl::Mutex mu;                         // guards the fields marked so, and endpoint.models
  CircuitBreaker breaker ABSL_GUARDED_BY(mu);
  int consecutive_failures ABSL_GUARDED_BY(mu) = 0;
  TimePoint ejected_until ABSL_GUARDED_BY(mu) = {};
  prometheus::Gauge* ready_gauge;
  prometheus::Gauge* outstanding_gauge;
  prometheus::Histogram* duration;
};

struct Gateway::Call {
  std::string model;
  http::Request request;
  TimePoint deadline;
  std::function<void(ForwardResult&&)> done;
  int attempts = 0;
  bool model_permit = false;  // the model breaker let this request through
  bool last_attempt_failed = false;
  TimePoint start{};
  std::vector<std::string> tried;
  bool has_last_failure = false;
  http::Response last_failure;
  std::unique_ptr<Timer> backoff_timer;
};

Gateway::Gateway(fleet::ReplicaSource& source, upstream::Upstream& upstream,
                 asio::io_context& timers, const Clock& clock, GatewayMetrics& metrics,
                 GatewayOptions options)
    : source_(source),
      upstream_(upstream),
      timers_(timers),
      clock_(clock),
      metrics_(metrics),
      options_(std::move(options)),
      replicas_(std::make_shared<const ReplicaList>()),
      rng_(options_.seed),
      budget_(options_.retry_budget),
      health_timer_(std::make_unique<Timer>(timers)),
      held_timer_(std::make_unique<Timer>(timers)) {
  for (const std::string& m : options_.models) {
    if (!m.empty()) LearnModel(m);
  }
}

Gateway::~Gateway() { Stop(); }

absl::Status Gateway::Start() {
  SyncReplicas();
  CheckHealth(std::move(first_round_done_));
  ScheduleHealth();
  return absl::OkStatus();
}

void Gateway::Stop() {
  if (stopped_.exchange(true)) return;
  asio::post(timers_, [t = health_timer_.get()] { t->timer.cancel(); });
  asio::post(timers_, [t = held_timer_.get()] { t->timer.cancel(); });
  ReleaseHeld();
}

void Gateway::ReleaseHeld() {
  // Requests still waiting for a replica will not get one now: the fallback answers them.
  std::vector<std::shared_ptr<Call>> held;
  {
    absl::MutexLock lock(&held_mu_);
    held.swap(held_);
  }
  SetHeldCount(0);
  for (auto& call : held) {
    ForwardResult r;
    r.why_not = "no_ready_replica";
    Finish(call, std::move(r));
  }
}

int64_t Gateway::HeldRequests() const {
  absl::MutexLock lock(&held_mu_);
  return static_cast<int64_t>(held_.size());
}

void Gateway::SetHeldCount(size_t n) {
  metrics_.held_requests.Set(static_cast<double>(n));
  if (options_.on_held) options_.on_held(static_cast<int64_t>(n));
}

bool Gateway::Hold(std::shared_ptr<Call> call) {
  size_t n;
  bool arm;
  {
    absl::MutexLock lock(&held_mu_);
    if (stopped_.load() || held_.size() >= options_.max_held) return false;
    held_.push_back(std::move(call));
    n = held_.size();
    arm = !std::exchange(held_check_armed_, true);
  }
  if (arm) asio::post(timers_, [this] { ScheduleHeldCheck(); });
  SetHeldCount(n);
  return true;
}

void Gateway::ScheduleHeldCheck() {
  held_timer_->timer.expires_after(options_.held_poll);
  held_timer_->timer.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_.load()) return;
    CheckHeld();
  });
}

// On the timers' thread, every held_poll while requests wait: when a replica is ready, every
// held request is attempted again (they spread over the ready replicas as new requests do);
// requests whose deadline is closer than the fallback reserve go to the fallback.
void Gateway::CheckHeld() {
  SyncReplicas();
  const bool ready = ReadyReplicas() > 0;
  const TimePoint now = clock_.Now();
  std::vector<std::shared_ptr<Call>> release, expired;
  size_t left;
  {
    absl::MutexLock lock(&held_mu_);
    std::vector<std::shared_ptr<Call>> keep;
    for (auto& call : held_) {
      if (call->deadline - now < options_.min_attempt_time + options_.held_fallback_reserve) {
        expired.push_back(std::move(call));
      } else if (ready) {
        release.push_back(std::move(call));
      } else {
        keep.push_back(std::move(call));
      }
    }
    held_.swap(keep);
    left = held_.size();
    held_check_armed_ = left > 0;
  }
  if (!release.empty() || !expired.empty()) SetHeldCount(left);
  if (left > 0) ScheduleHeldCheck();
  for (auto& call : expired) {
    ForwardResult r;
    r.why_not = "no_ready_replica";
    Finish(call, std::move(r));
  }
  for (auto& call : release) Attempt(std::move(call));
}

std::shared_ptr<const Gateway::ReplicaList> Gateway::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return replicas_;
}

void Gateway::SyncReplicas() {
  std::vector<fleet::ReplicaEndpoint> current = source_.Replicas();
  // Kept replicas' model lists, set once mu_ is released: OnResult takes mu_ while holding a
  // replica's mu, so taking a replica's mu under mu_ here could deadlock.
  std::vector<std::pair<std::shared_ptr<Replica>, std::vector<std::string>>> models;
  {
    absl::MutexLock lock(&mu_);
    std::map<std::string, std::shared_ptr<Replica>> old;
    for (const auto& r : *replicas_) old[r->endpoint.id] = r;
    auto next = std::make_shared<ReplicaList>();
    for (fleet::ReplicaEndpoint& ep : current) {
      auto it = old.find(ep.id);
      std::shared_ptr<Replica> r;
      if (it != old.end() && it->second->endpoint.host == ep.host &&
          it->second->endpoint.port == ep.port) {
        r = it->second;
        models.emplace_back(r, ep.models);
      } else {
        // New replica, or the same id on a new address (restarted): fresh state.
        r = std::make_shared<Replica>(ep, options_.replica_breaker, metrics_);
        r->healthy.store(ep.ready);
      }
      // A replica the source has just seen become ready is taken at its word until the next
      // probe says otherwise.
      if (ep.ready && !r->source_ready.exchange(true)) r->healthy.store(true);
      if (!ep.ready) r->source_ready.store(false);
      if (!ep.ready) r->ready_gauge->Set(0);
      next->push_back(std::move(r));
    }
    for (auto& [id, r] : old) {
      bool kept = false;
      for (const auto& n : *next) kept = kept || n == r;
      if (!kept) {
        r->ready_gauge->Set(0);
        r->outstanding_gauge->Set(0);
      }
    }
    replicas_ = std::move(next);
  }
  for (auto& [r, m] : models) {
    absl::MutexLock lock(&r->mu);
    r->endpoint.models = std::move(m);
  }
}

int Gateway::ReadyReplicas() const {
  const TimePoint now = clock_.Now();
  int n = 0;
  for (const auto& r : *Snapshot()) {
    absl::MutexLock lock(&r->mu);
    if (r->healthy.load() && r->source_ready.load() && now >= r->ejected_until) ++n;
  }
  return n;
}

void Gateway::ScheduleHealth() {
  if (stopped_.load()) return;
  health_timer_->timer.expires_after(options_.health_interval);
  health_timer_->timer.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_.load()) return;
    SyncReplicas();
    CheckHealth();
    ScheduleHealth();
  });
}

void Gateway::CheckHealth(std::function<void()> done) {
  auto list = Snapshot();
  auto remaining = std::make_shared<std::atomic<size_t>>(list->size());
  auto finished = std::make_shared<std::function<void()>>(std::move(done));
  if (list->empty() && *finished) (*finished)();
  for (const auto& r : *list) {
    http::Request req{http::Verb::get, "/v2/health/ready", 11};
    upstream_.Send(
        r->endpoint.host, r->endpoint.port, std::move(req), clock_.Now() + options_.health_timeout,
        [this, r, remaining, finished](upstream::UpstreamResult&& res) {
          const bool ok = !res.transport_error && res.response.result() == http::Status::ok;
          const bool was = r->healthy.exchange(ok);
          if (was != ok) {
            log::Info(ok ? "replica_healthy" : "replica_unhealthy",
                      {{"replica", r->endpoint.id},
                       {"error", res.transport_error ? res.error : std::string()}});
          }
          const bool ejected = [&] {
            absl::MutexLock lock(&r->mu);
            return clock_.Now() < r->ejected_until;
          }();
          r->ready_gauge->Set(ok && r->source_ready.load() && !ejected ? 1 : 0);
          if (remaining->fetch_sub(1) == 1 && *finished) (*finished)();
        });
  }
}

std::shared_ptr<CircuitBreaker> Gateway::ModelBreaker(const std::string& model) {
  absl::MutexLock lock(&mu_);
  auto it = model_breakers_.find(model);
  return it == model_breakers_.end() ? nullptr : it->second;
}

bool Gateway::KnownModel(const std::string& model) const {
  absl::MutexLock lock(&mu_);
  return model_breakers_.count(model) > 0;
}

void Gateway::LearnModel(const std::string& model) {
  absl::MutexLock lock(&mu_);
  if (model_breakers_.size() >= options_.max_known_models || model_breakers_.count(model)) return;
  model_breakers_.emplace(model, std::make_shared<CircuitBreaker>(options_.model_breaker));
  model_latency_.emplace(model, LatencyWindow(options_.attempt_latency));
}

Duration Gateway::AttemptTimeout(const std::string& model) {
  const Duration cap = options_.try_timeout;
  if (options_.attempt_latency.multiplier <= 0) return cap;
  absl::MutexLock lock(&mu_);
  auto it = model_latency_.find(model);
  return it == model_latency_.end() ? cap : it->second.AttemptTimeout(cap);
}

void Gateway::RecordBreaker(const std::string& scope, const std::string& name,
                            const std::optional<BreakerTransition>& t, BreakerState state) {
  metrics_.breaker_state.Add({{"scope", scope}, {"name", name}}).Set(StateValue(state));
  if (!t) return;
  metrics_.breaker_transitions
      .Add({{"scope", scope}, {"name", name}, {"to", std::string(BreakerStateName(t->to))}})
      .Increment();
  log::Info("breaker_transition", {{"scope", scope},
                                   {"name", name},
                                   {"from", BreakerStateName(t->from)},
                                   {"to", BreakerStateName(t->to)}});
}

void Gateway::Forward(const std::string& model, http::Request request, TimePoint deadline,
                      std::function<void(ForwardResult&&)> done) {
  auto call = std::make_shared<Call>();
  call->model = model;
  call->request = std::move(request);
  call->deadline = deadline;
  call->done = std::move(done);
  call->start = clock_.Now();
  {
    absl::MutexLock lock(&mu_);
    budget_.Deposit(clock_.Now());
  }
  if (auto mb = model.empty() ? nullptr : ModelBreaker(model)) {
    absl::MutexLock lock(&model_breaker_mu_);
    const TimePoint now = clock_.Now();
    BreakerPermit permit = mb->Allow(now);
    RecordBreaker("model", model, permit.transition, mb->State(now));
    if (!permit.allowed) {
      ForwardResult r;
      r.why_not = "model_breaker_open";
      return Finish(call, std::move(r));
    }
    call->model_permit = true;
  }
  Attempt(std::move(call));
}

std::vector<Candidate> Gateway::Candidates(const ReplicaList& list, const Call& call,
                                           TimePoint now) const {
  std::vector<Candidate> candidates(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    Replica& r = *list[i];
    bool tried = false;
    for (const auto& t : call.tried) tried = tried || t == r.endpoint.id;
    absl::MutexLock lock(&r.mu);
    candidates[i].outstanding = r.outstanding.load();
    const auto& serves = r.endpoint.models;
    const bool for_model = call.model.empty() || serves.empty() ||
                           std::find(serves.begin(), serves.end(), call.model) != serves.end();
    candidates[i].eligible = for_model && !tried && r.healthy.load() && r.source_ready.load() &&
                             now >= r.ejected_until && r.breaker.State(now) != BreakerState::kOpen;
  }
  return candidates;
}

void Gateway::Attempt(std::shared_ptr<Call> call) {
  const TimePoint now = clock_.Now();
  if (call->deadline - now < options_.min_attempt_time) {
    ForwardResult r;
    r.why_not = call->attempts == 0 ? "deadline" : "replicas_failed";
    return Finish(call, std::move(r));
  }
  auto list = Snapshot();
  std::vector<Candidate> candidates;
  for (int pass = 0; pass < 2; ++pass) {
    candidates = Candidates(*list, *call, now);
    bool any = false;
    for (const auto& c : candidates) any = any || c.eligible;
    if (any || call->attempts > 0 || pass == 1) break;
    // The source may know of replicas (or readiness) the health loop has not picked up yet.
    SyncReplicas();
    list = Snapshot();
  }
  while (true) {
    std::optional<size_t> pick;
    {
      absl::MutexLock lock(&mu_);
      pick = PickTwoChoices(candidates, rng_);
    }
    if (!pick) {
      if (call->attempts == 0 && options_.hold_for_replica && ReadyReplicas() == 0 && Hold(call)) {
        return;
      }
      ForwardResult r;
      r.why_not = call->attempts == 0 ? "no_ready_replica" : "replicas_failed";
      return Finish(call, std::move(r));
    }
    std::shared_ptr<Replica> replica = (*list)[*pick];
    BreakerPermit permit;
    std::optional<BreakerTransition> t;
    {
      absl::MutexLock lock(&replica->mu);
      permit = replica->breaker.Allow(now);
      t = permit.transition;
      RecordBreaker("replica", replica->endpoint.id, t, replica->breaker.State(now));
    }
    if (!permit.allowed) {
      candidates[*pick].eligible = false;
      continue;
    }
    size_t eligible = 0;
    for (const auto& c : candidates) eligible += c.eligible ? 1 : 0;
    // Another replica could take over after this attempt: it gets the model's usual time.
    const bool more_to_try = eligible > 1 && call->attempts + 1 < options_.max_attempts;
    ++call->attempts;
    call->tried.push_back(replica->endpoint.id);
    replica->outstanding_gauge->Set(static_cast<double>(replica->outstanding.fetch_add(1) + 1));
    const Duration try_timeout = more_to_try && !call->model.empty()
                                     ? AttemptTimeout(call->model)
                                     : Duration(options_.try_timeout);
    const TimePoint attempt_deadline = std::min(call->deadline, now + try_timeout);
    http::Request req = call->request;
    const auto left_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(attempt_deadline - now).count();
    req.set("X-Request-Timeout-Ms", std::to_string(std::max<int64_t>(1, left_ms)));
    upstream_.Send(replica->endpoint.host, replica->endpoint.port, std::move(req), attempt_deadline,
                   [this, call, replica](upstream::UpstreamResult&& res) {
                     OnResult(call, replica, std::move(res));
                   });
    return;
  }
}

void Gateway::OnResult(std::shared_ptr<Call> call, std::shared_ptr<Replica> replica,
                       upstream::UpstreamResult&& res) {
  const TimePoint now = clock_.Now();
  replica->outstanding_gauge->Set(static_cast<double>(replica->outstanding.fetch_sub(1) - 1));
  replica->duration->Observe(Secs(res.latency));
  metrics_.upstream_requests
      .Add({{"replica", replica->endpoint.id}, {"outcome", std::string(OutcomeLabel(res))}})
      .Increment();
  const int status = res.transport_error ? 0 : static_cast<int>(res.response.result());
  const bool failure = IsBreakerFailure(status, res.transport_error);
  {
    absl::MutexLock lock(&replica->mu);
    std::optional<BreakerTransition> t = failure ? replica->breaker.OnFailure(now, res.latency)
                                                 : replica->breaker.OnSuccess(now, res.latency);
    RecordBreaker("replica", replica->endpoint.id, t, replica->breaker.State(now));
    if (failure) {
      if (++replica->consecutive_failures >= options_.eject_after_failures &&
          now >= replica->ejected_until) {
        std::uniform_real_distribution<double> jitter(1.0, 1.5);
        double j;
        {
          absl::MutexLock glock(&mu_);
          j = jitter(rng_);
        }
        replica->ejected_until =
            now + std::chrono::duration_cast<Duration>(options_.eject_duration * j);
        replica->consecutive_failures = 0;
        replica->ready_gauge->Set(0);
        metrics_.ejections.Add({{"replica", replica->endpoint.id}}).Increment();
        log::Warn("replica_ejected",
                  {{"replica", replica->endpoint.id},
                   {"for_s", Secs(replica->ejected_until - now)},
                   {"last_error", res.transport_error ? res.error : std::to_string(status)}});
      }
    } else {
      replica->consecutive_failures = 0;
    }
  }
  call->last_attempt_failed = failure;
  // Only a replica's success teaches anything: that it serves the name, and how long the model
  // takes (a fast 400 or a 413 from a replica's own limits says neither).
  const bool success =
      !res.transport_error && res.response.result_int() >= 200 && res.response.result_int() < 300;
  if (!call->model.empty() && !call->model_permit && success) {
    LearnModel(call->model);  // a replica serves it
  }
  if (success && call->model_permit) {
    absl::MutexLock lock(&mu_);
    if (auto it = model_latency_.find(call->model); it != model_latency_.end())
      it->second.Add(res.latency);
  }
  if (!failure || !Retryable(res)) {
    ForwardResult r;
    r.answered = true;
    r.response = std::move(res.response);
    r.replica = replica->endpoint.id;
    return Finish(call, std::move(r));
  }
  if (!res.transport_error) {
    call->has_last_failure = true;
    call->last_failure = std::move(res.response);
  }
  // A retry: to another replica, after a jittered back-off, inside the deadline and the budget.
  const char* denied = nullptr;
  Duration wait{};
  if (call->attempts >= options_.max_attempts) {
    denied = "attempts";
  } else {
    absl::MutexLock lock(&mu_);
    wait = NextBackoff(options_.backoff, call->attempts, rng_);
    if (!FitsDeadline(now, wait, call->deadline, options_.min_attempt_time)) {
      denied = "deadline";
    } else if (!budget_.TryWithdraw(now)) {
      denied = "budget";
    }
  }
  if (denied != nullptr) {
    metrics_.retries_denied.Add({{"reason", denied}}).Increment();
    ForwardResult r;
    r.why_not = "replicas_failed";
    return Finish(call, std::move(r));
  }
  metrics_.retries.Add({}).Increment();
  call->backoff_timer = std::make_unique<Timer>(timers_);
  call->backoff_timer->timer.expires_after(wait);
  call->backoff_timer->timer.async_wait([this, call](boost::system::error_code) { Attempt(call); });
}

void Gateway::Finish(std::shared_ptr<Call> call, ForwardResult&& result) {
  if (call->model_permit) {
    // The model breaker sees one outcome per request: did the replicas, together, answer it?
    auto mb = ModelBreaker(call->model);
    absl::MutexLock lock(&model_breaker_mu_);
    const TimePoint now = clock_.Now();
    std::optional<BreakerTransition> t;
    if (call->attempts == 0) {
      mb->OnIgnored(now);
    } else if (result.answered && !call->last_attempt_failed) {
      t = mb->OnSuccess(now, now - call->start);
    } else {
      t = mb->OnFailure(now, now - call->start);
    }
    RecordBreaker("model", call->model, t, mb->State(now));
  }
  if (!result.answered && call->has_last_failure) {
    result.has_last_failure = true;
    result.last_failure = std::move(call->last_failure);
  }
  auto done = std::move(call->done);
  done(std::move(result));
}

}  // namespace galley::gateway
