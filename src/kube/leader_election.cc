#include "kube/leader_election.h"

#include <random>

#include "common/log.h"
#include "common/strings.h"
#include "common/sync.h"
#include "common/thread_name.h"

namespace galley::kube {
namespace {

namespace json = boost::json;

std::string StringAt(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

int IntAt(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_number() ? static_cast<int>(v->to_number<double>()) : 0;
}

int DurationSeconds(Duration d) {
  return std::max<int>(
      1, static_cast<int>(std::chrono::duration_cast<std::chrono::seconds>(d).count()));
}

}  // namespace

LeaseRecord LeaseRecordFromLease(const json::value& lease) {
  LeaseRecord r;
  if (!lease.is_object()) return r;
  const auto* spec = lease.get_object().if_contains("spec");
  if (spec == nullptr || !spec->is_object()) return r;
  const auto& s = spec->get_object();
  r.holder_identity = StringAt(s, "holderIdentity");
  r.lease_duration_seconds = IntAt(s, "leaseDurationSeconds");
  r.acquire_time = StringAt(s, "acquireTime");
  r.renew_time = StringAt(s, "renewTime");
  r.lease_transitions = IntAt(s, "leaseTransitions");
  return r;
}

void StoreLeaseRecord(const LeaseRecord& record, json::value& lease) {
  if (!lease.is_object()) lease = json::object();
  json::value& spec_v = lease.get_object()["spec"];
  if (!spec_v.is_object()) spec_v = json::object();
  auto& spec = spec_v.get_object();
  // resourcelock.LeaderElectionRecordToLeaseSpec.
  spec["holderIdentity"] = record.holder_identity;
  spec["leaseDurationSeconds"] = record.lease_duration_seconds;
  spec["leaseTransitions"] = record.lease_transitions;
  if (record.acquire_time.empty()) {
    spec.erase("acquireTime");
  } else {
    spec["acquireTime"] = record.acquire_time;
  }
  if (record.renew_time.empty()) {
    spec.erase("renewTime");
  } else {
    spec["renewTime"] = record.renew_time;
  }
}

std::optional<LeaseRecord> NextLeaseRecord(const std::optional<LeaseRecord>& current,
                                           TimePoint observed_time, TimePoint now,
                                           const std::string& now_text, const std::string& identity,
                                           Duration lease_duration) {
  LeaseRecord next;
  next.holder_identity = identity;
  next.lease_duration_seconds = DurationSeconds(lease_duration);
  next.acquire_time = now_text;
  next.renew_time = now_text;
  if (!current.has_value()) return next;  // no lease yet: create it
  const bool is_holder = current->holder_identity == identity;
  // tryAcquireOrRenew: another holder's lease is valid until leaseDuration after this
  // candidate last saw its record change (observedTime), not after the record's renewTime.
  if (!current->holder_identity.empty() && !is_holder && observed_time + lease_duration > now) {
    return std::nullopt;
  }
  if (is_holder) {
    next.acquire_time = current->acquire_time;
    next.lease_transitions = current->lease_transitions;
  } else {
    next.lease_transitions = current->lease_transitions + 1;
  }
  return next;
}

absl::Status ValidateLeaderElectionConfig(const LeaderElectionConfig& config) {
  if (config.lease_name.empty())
    return absl::InvalidArgumentError("leader election: lease_name is empty");
  if (config.identity.empty())
    return absl::InvalidArgumentError("leader election: identity is empty");
  if (config.lease_namespace.empty()) {
    return absl::InvalidArgumentError("leader election: lease_namespace is empty");
  }
  // NewLeaderElector's checks (leaderelection.go).
  if (config.retry_period <= Duration::zero()) {
    return absl::InvalidArgumentError("leader election: retry_period must be greater than zero");
  }
  if (config.lease_duration <= config.renew_deadline) {
    return absl::InvalidArgumentError(
        "leader election: lease_duration must be greater than renew_deadline");
  }
  if (config.renew_deadline <= config.retry_period * 1.2) {
    return absl::InvalidArgumentError(
        "leader election: renew_deadline must be greater than 1.2 * retry_period");
  }
  return absl::OkStatus();
}

LeaderElector::LeaderElector(Client* client, LeaderElectionConfig config, const Clock* clock)
    : client_(client), config_(std::move(config)), clock_(clock) {}

LeaderElector::~LeaderElector() { Stop(); }

absl::StatusOr<std::unique_ptr<LeaderElector>> LeaderElector::Create(Client* client,
                                                                     LeaderElectionConfig config,
                                                                     const Clock* clock) {
  if (client == nullptr || clock == nullptr) {
    return absl::InvalidArgumentError("leader election: client and clock are required");
  }
  if (absl::Status s = ValidateLeaderElectionConfig(config); !s.ok()) return s;
  return std::unique_ptr<LeaderElector>(new LeaderElector(client, std::move(config), clock));
}

absl::Status LeaderElector::Start() {
  absl::MutexLock lock(&lifecycle_mu_);
  if (thread_) return absl::FailedPreconditionError("leader elector already started");
  thread_ = std::make_unique<std::jthread>([this](std::stop_token stop) {
    SetThreadName("leader-elect");
    Run(stop);
  });
  return absl::OkStatus();
}

void LeaderElector::Stop() {
  absl::MutexLock lock(&lifecycle_mu_);
  if (!thread_) return;
  thread_->request_stop();
  if (thread_->joinable()) thread_->join();
}

std::string LeaderElector::GetLeader() const {
  absl::MutexLock lock(&mu_);
  return leader_;
}

bool LeaderElector::TryAcquireOrRenew(Duration call_timeout) {
  const CallOptions call{std::max<Duration>(call_timeout, std::chrono::milliseconds(100))};
  const TimePoint now = clock_->Now();
  const std::string now_text = FormatMicroTime(std::chrono::system_clock::now());
  auto lease = client_->Get(resources::kLeases, config_.lease_namespace, config_.lease_name, call);
  if (!lease.ok() && !absl::IsNotFound(lease.status())) {
    log::Warn("kube_lease_get_failed",
              {{"lease", config_.lease_name}, {"error", std::string(lease.status().message())}});
    return false;
  }
  if (!lease.ok()) {
    const auto record =
        NextLeaseRecord(std::nullopt, now, now, now_text, config_.identity, config_.lease_duration);
    json::value fresh = {
        {"apiVersion", "coordination.k8s.io/v1"},
        {"kind", "Lease"},
        {"metadata", {{"name", config_.lease_name}, {"namespace", config_.lease_namespace}}}};
    StoreLeaseRecord(*record, fresh);
    auto created = client_->Create(resources::kLeases, config_.lease_namespace, fresh, call);
    if (!created.ok()) return false;  // AlreadyExists: someone else was faster
    Observe(*record, std::move(*created), now);
    return true;
  }
  const LeaseRecord current = LeaseRecordFromLease(*lease);
  if (!observed_record_.has_value() || *observed_record_ != current) {
    Observe(current, *lease, now);
  }
  const auto next = NextLeaseRecord(current, observed_time_, now, now_text, config_.identity,
                                    config_.lease_duration);
  if (!next.has_value()) return false;
  json::value updated_lease = *lease;  // carries metadata.resourceVersion: a conditional write
  StoreLeaseRecord(*next, updated_lease);
  auto updated = client_->Update(resources::kLeases, config_.lease_namespace, updated_lease, call);
  if (!updated.ok()) {
    if (!IsConflict(updated.status())) {
      log::Warn("kube_lease_update_failed", {{"lease", config_.lease_name},
                                             {"error", std::string(updated.status().message())}});
    }
    return false;
  }
  Observe(*next, std::move(*updated), now);
  return true;
}

void LeaderElector::Observe(const LeaseRecord& record, json::value lease, TimePoint now) {
  observed_record_ = record;
  observed_lease_ = std::move(lease);
  observed_time_ = now;
  bool changed = false;
  {
    absl::MutexLock lock(&mu_);
    if (leader_ != record.holder_identity) {
      leader_ = record.holder_identity;
      changed = true;
    }
  }
  if (changed && config_.on_new_leader) config_.on_new_leader(record.holder_identity);
}

bool LeaderElector::Acquire(std::stop_token stop) {
  std::mt19937_64 rng{std::random_device{}()};
  while (!stop.stop_requested()) {
    if (TryAcquireOrRenew(config_.renew_deadline)) return true;
    // wait.JitterUntil(..., RetryPeriod, JitterFactor 1.2, sliding): a wait in
    // [retry, 2.2 * retry).
    const double jitter = std::uniform_real_distribution<double>(0.0, 1.2)(rng);
    galley::SleepFor(
        config_.retry_period + std::chrono::duration_cast<Duration>(config_.retry_period * jitter),
        stop);
  }
  return false;
}

void LeaderElector::RenewLoop(std::stop_token stop) {
  TimePoint last_renew = clock_->Now();
  while (!stop.stop_requested()) {
    galley::SleepFor(config_.retry_period, stop);
    if (stop.stop_requested()) return;
    // Retry every retry_period until renew_deadline after the last successful renewal.
    // NOTE: client-go starts its renewDeadline window at each renewal round (up to retryPeriod
    // after the last success); counting from the last success gives up no later, so it keeps
    // the same guarantee with more margin.
    while (true) {
      const Duration left = config_.renew_deadline - (clock_->Now() - last_renew);
      if (left <= Duration::zero()) {
        log::Warn("kube_leader_lost",
                  {{"lease", config_.lease_name}, {"identity", config_.identity}});
        return;
      }
      if (TryAcquireOrRenew(left)) {
        // Leadership was promised to end at last_renew + renew_deadline; a renewal that only
        // completes after that point does not revive it.
        if (clock_->Now() - last_renew > config_.renew_deadline) return;
        last_renew = clock_->Now();
        break;
      }
      if (stop.stop_requested()) return;
      galley::SleepFor(
          std::min(config_.retry_period, config_.renew_deadline - (clock_->Now() - last_renew)),
          stop);
      if (stop.stop_requested()) return;
    }
  }
}

void LeaderElector::Release() {
  if (!observed_record_.has_value() || observed_record_->holder_identity != config_.identity) {
    return;
  }
  // leaderelection.go release(): empty holder, 1 s duration, transitions unchanged.
  LeaseRecord record;
  record.lease_duration_seconds = 1;
  record.lease_transitions = observed_record_->lease_transitions;
  const std::string now_text = FormatMicroTime(std::chrono::system_clock::now());
  record.acquire_time = now_text;
  record.renew_time = now_text;
  json::value lease = observed_lease_;
  StoreLeaseRecord(record, lease);
  const CallOptions call{config_.renew_deadline};
  auto updated = client_->Update(resources::kLeases, config_.lease_namespace, lease, call);
  if (!updated.ok()) {
    log::Warn("kube_lease_release_failed",
              {{"lease", config_.lease_name}, {"error", std::string(updated.status().message())}});
    return;
  }
  Observe(record, std::move(*updated), clock_->Now());
}

void LeaderElector::Run(std::stop_token stop) {
  if (!Acquire(stop)) {
    done_.store(true);
    return;
  }
  log::Info("kube_leader_started", {{"lease", config_.lease_name}, {"identity", config_.identity}});
  leading_.store(true);
  std::unique_ptr<std::jthread> work;
  if (config_.on_started_leading) {
    work = std::make_unique<std::jthread>(
        [this](std::stop_token work_stop) { config_.on_started_leading(work_stop); });
  }
  RenewLoop(stop);
  // Leadership ends: the work stops (and is waited for) before the lease is released, so a
  // successor never overlaps with it.
  leading_.store(false);
  if (work) {
    work->request_stop();
    work->join();
  }
  if (config_.release_on_stop) Release();
  log::Info("kube_leader_stopped", {{"lease", config_.lease_name}, {"identity", config_.identity}});
  if (config_.on_started_leading && config_.on_stopped_leading) config_.on_stopped_leading();
  done_.store(true);
}

}  // namespace galley::kube
