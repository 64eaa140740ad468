// Private to galley_kubesched: KubeScheduler's implementation, shared by kube_scheduler.cc
// (creation, start and stop, the informers' handlers and the cache) and kube_scheduler_impl.cc
// (the scheduling loop, the bind workers and the event recorder).
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "boost/json.hpp"
#include "kube/informer.h"
#include "kube/leader_election.h"
#include "kubesched/kube_scheduler.h"
#include "schedule/policy.h"

namespace galley::kubesched {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

class KubeScheduler::Impl {
 public:
  Impl(kube::Client* client, KubeSchedulerOptions options)
      : client_(client), o_(std::move(options)), rng_(o_.seed) {}

  absl::Status Start();
  void Stop();
  KubeSchedulerStats stats() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    KubeSchedulerStats s = stats_;
    s.leading = leading_.load();
    return s;
  }

 private:
  struct NodeEntry {
    schedule::Node base;  // from the Node object, nothing used
    bool schedulable = true;
    std::string shape;
  };
  struct PodEntry {
    schedule::Pod pod;
    std::string node;
    std::vector<int> gpus;
    bool assumed = false;  // bound by us, not yet seen bound through the watch
  };
  struct Event {
    std::string ns, name, uid, type, reason, message;
  };

  // Informer handlers (informer threads).
  void OnNode(const json::value& obj);
  void OnNodeDeleted(const json::value& obj);
  void OnPod(const json::value& obj);
  void OnPodDeleted(const json::value& obj);

  // Cache, all under mu_.
  void AccountLocked(const std::string& key, PodEntry entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RebuildNodeLocked(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RefreshSnapshotLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WakeUnschedulableLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool ShouldScheduleLocked(const std::string& key, const json::value& obj) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EnqueueLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The scheduling thread (only while leading).
  void RunScheduling(std::stop_token stop);
  // Called and returns with mu_ held; releases it while logging and posting events.
  void ScheduleOne(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status BindPod(const json::value& pod, const std::string& node,
                       const std::vector<int>& gpus);
  struct BindTask {
    std::string key;
    json::value pod;
    std::string node;
    std::vector<int> gpus;
  };
  void RunBinder(std::stop_token stop);
  void FinishBind(const BindTask& task, const absl::Status& status);
  void ForgetLocked(const std::string& key, const absl::Status& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Events.
  void PostEvent(const json::value& pod, std::string type, std::string reason, std::string message)
      ABSL_LOCKS_EXCLUDED(mu_, events_mu_);
  void RunEvents(std::stop_token stop);

  kube::Client* const client_;
  const KubeSchedulerOptions o_;
  std::unique_ptr<kube::Informer> nodes_;
  std::unique_ptr<kube::Informer> pods_;
  absl::Mutex lifecycle_mu_;
  std::unique_ptr<kube::LeaderElector> elector_ ABSL_GUARDED_BY(lifecycle_mu_);
  // Without leader election.
  std::unique_ptr<std::jthread> scheduling_ ABSL_GUARDED_BY(lifecycle_mu_);
  std::unique_ptr<std::jthread> events_thread_ ABSL_GUARDED_BY(lifecycle_mu_);
  std::atomic<bool> leading_{false};
  std::atomic<bool> stopping_{false};
  bool started_ ABSL_GUARDED_BY(lifecycle_mu_) = false;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::map<std::string, NodeEntry> node_entries_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, PodEntry> bound_ ABSL_GUARDED_BY(mu_);  // by pod key
  // node -> pod keys
  std::map<std::string, std::set<std::string>> pods_on_node_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> active_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> in_active_ ABSL_GUARDED_BY(mu_);
  // key -> when
  std::map<std::string, Clock::time_point> unschedulable_ ABSL_GUARDED_BY(mu_);
  // key -> (retry at, failures)
  std::map<std::string, std::pair<Clock::time_point, int>> backoff_ ABSL_GUARDED_BY(mu_);
  // The core's snapshot: rebuilt whole when the node set changes, else node by node.
  schedule::ClusterSnapshot snapshot_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> index_ ABSL_GUARDED_BY(mu_);
  bool nodes_changed_ ABSL_GUARDED_BY(mu_) = true;
  std::set<std::string> dirty_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<schedule::Scheduler> core_ ABSL_GUARDED_BY(mu_);
  int decisions_since_core_ ABSL_GUARDED_BY(mu_) = 0;
  schedule::Rng rng_ ABSL_GUARDED_BY(mu_);
  KubeSchedulerStats stats_ ABSL_GUARDED_BY(mu_);

  // Binds waiting for a worker. Only while leading: a term's end drops those not yet started.
  absl::Mutex bind_mu_;
  absl::CondVar bind_cv_;
  std::deque<BindTask> binds_ ABSL_GUARDED_BY(bind_mu_);
  int binds_in_flight_ ABSL_GUARDED_BY(bind_mu_) = 0;
  std::vector<std::unique_ptr<std::jthread>> binders_ ABSL_GUARDED_BY(lifecycle_mu_);

  absl::Mutex events_mu_;
  absl::CondVar events_cv_;
  std::deque<Event> events_ ABSL_GUARDED_BY(events_mu_);
};

}  // namespace galley::kubesched
