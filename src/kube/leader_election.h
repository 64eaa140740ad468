// Leader election on a coordination.k8s.io/v1 Lease, following the semantics of
// k8s.io/client-go/tools/leaderelection (leaderelection.go, resourcelock/leaselock.go):
//
//  * A candidate acquires the lease when it does not exist, has an empty holderIdentity, or its
//    record has not changed for leaseDuration as measured on the candidate's own clock since it
//    last saw the record change (so clock skew between replicas does not matter). Writes are
//    conditional on the lease's resourceVersion, so two candidates cannot both succeed.
//  * The leader renews every retryPeriod. If it cannot renew within renewDeadline of its last
//    successful renewal it stops leading (on_stopped_leading), before any other candidate may take
//    over (renewDeadline < leaseDuration): two replicas never act at once as long as clocks run at
//    the same rate.
//  * acquireTime, renewTime, leaseDurationSeconds and leaseTransitions are kept as client-go keeps
//    them: leaseTransitions grows by one whenever the holder changes.
//  * On Stop() a leader releases the lease (holderIdentity "", leaseDurationSeconds 1), as with
//    client-go's ReleaseOnCancel, so a successor need not wait out the lease.
//
// As in client-go, an elector that lost leadership does not campaign again: its thread ends.
// Create a new one to rejoin.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "boost/json/value.hpp"
#include "common/clock.h"
#include "kube/client.h"

namespace galley::kube {

struct LeaderElectionConfig {
  std::string lease_namespace = "default";
  std::string lease_name;  // required
  std::string identity;    // required, unique per candidate (e.g. pod name + random suffix)
  // client-go's recommended defaults (leaderelection.go); lease_duration > renew_deadline >
  // 1.2 * retry_period > 0.
  Duration lease_duration = std::chrono::seconds(15);
  Duration renew_deadline = std::chrono::seconds(10);
  Duration retry_period = std::chrono::seconds(2);
  bool release_on_stop = true;

  // Runs on a thread of its own when this candidate becomes leader; `stop` is requested when
  // leadership ends (lost or Stop()). It should return promptly after that.
  std::function<void(std::stop_token stop)> on_started_leading;
  // Runs on the elector's thread when leadership ends (after `stop` above was requested and
  // on_started_leading returned). Only called if on_started_leading was.
  std::function<void()> on_stopped_leading;
  // Runs on the elector's thread whenever the observed holder changes (including to this one).
  std::function<void(const std::string& identity)> on_new_leader;
};

// The holder record stored in a Lease's spec (resourcelock.LeaderElectionRecord).
struct LeaseRecord {
  std::string holder_identity;
  int lease_duration_seconds = 0;
  std::string acquire_time;  // metav1.MicroTime text, "" when unset
  std::string renew_time;
  int lease_transitions = 0;

  bool operator==(const LeaseRecord&) const = default;
};

LeaseRecord LeaseRecordFromLease(const boost::json::value& lease);
// Writes `record` into lease.spec (creating spec when absent).
void StoreLeaseRecord(const LeaseRecord& record, boost::json::value& lease);

// The pure step of tryAcquireOrRenew. Given the record read from the server (`current`, nullopt
// when the lease does not exist), when this candidate last saw that record change
// (`observed_time`), `now`, and the wall-clock text `now_text` for the timestamps: returns the
// record to write, or nullopt when another holder's lease is still valid.
std::optional<LeaseRecord> NextLeaseRecord(const std::optional<LeaseRecord>& current,
                                           TimePoint observed_time, TimePoint now,
                                           const std::string& now_text, const std::string& identity,
                                           Duration lease_duration);

// OK, or InvalidArgument naming the first bad field (NewLeaderElector's checks).
absl::Status ValidateLeaderElectionConfig(const LeaderElectionConfig& config);

class LeaderElector {
 public:
  // InvalidArgument for a missing name/identity or durations out of order. `client` and `clock`
  // must outlive the elector; `clock` measures lease validity and the renew deadline.
  static absl::StatusOr<std::unique_ptr<LeaderElector>> Create(
      Client* client, LeaderElectionConfig config, const Clock* clock = &SteadyClock::Get());
  ~LeaderElector();  // Stop()

  // Starts campaigning on a background thread. FailedPrecondition if already started.
  absl::Status Start();
  // Stops campaigning; a leader stops its on_started_leading work, calls on_stopped_leading and
  // releases the lease (release_on_stop). Idempotent; blocks until done.
  void Stop();

  // True while this candidate leads (between the successful acquire and the end of leadership).
  bool IsLeader() const { return leading_.load(); }
  // The holder most recently observed ("" when none).
  std::string GetLeader() const;
  // Whether the background thread has finished (stopped, or leadership lost).
  bool Done() const { return done_.load(); }

 private:
  LeaderElector(Client* client, LeaderElectionConfig config, const Clock* clock);
  void Run(std::stop_token stop);
  bool Acquire(std::stop_token stop);
  void RenewLoop(std::stop_token stop);
  bool TryAcquireOrRenew(Duration call_timeout);
  void Observe(const LeaseRecord& record, boost::json::value lease, TimePoint now);
  void Release();

  Client* const client_;
  const LeaderElectionConfig config_;
  const Clock* const clock_;

  // Owned by the elector thread.
  std::optional<LeaseRecord> observed_record_;
  boost::json::value observed_lease_;  // last read/written Lease object
  TimePoint observed_time_{};

  mutable absl::Mutex mu_;
  std::string leader_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> leading_{false};
  std::atomic<bool> done_{false};

  absl::Mutex lifecycle_mu_;
  std::unique_ptr<std::jthread> thread_ ABSL_GUARDED_BY(lifecycle_mu_);
};

}  // namespace galley::kube
