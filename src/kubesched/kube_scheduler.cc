#include "kubesched/kube_scheduler.h"

#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <stop_token>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "boost/json.hpp"
#include "common/log.h"
#include "common/strings.h"
#include "common/sync.h"
#include "common/thread_name.h"
#include "kube/informer.h"
#include "kube/leader_election.h"
#include "kube/resource.h"
#include "kubesched/convert.h"
#include "schedule/fragmentation.h"
#include "schedule/policy.h"

namespace galley::kubesched {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

std::string_view Str(const json::value* v) {
  if (v == nullptr || !v->is_string()) return {};
  return {v->get_string().data(), v->get_string().size()};
}

// obj.a.b as a string ("" when absent).
std::string_view Field(const json::value& obj, std::string_view a, std::string_view b) {
  const json::object* o = obj.if_object();
  const json::value* f = o == nullptr ? nullptr : o->if_contains(a);
  const json::object* fo = f == nullptr ? nullptr : f->if_object();
  return Str(fo == nullptr ? nullptr : fo->if_contains(b));
}

bool Deleting(const json::value& obj) {
  const json::object* o = obj.if_object();
  const json::value* m = o == nullptr ? nullptr : o->if_contains("metadata");
  return m != nullptr && m->is_object() && m->get_object().contains("deletionTimestamp") &&
         !m->get_object().at("deletionTimestamp").is_null();
}

// What of a node the core reads, as text: a heartbeat that changes none of it is not a change.
std::string NodeShapeKey(const schedule::Node& n, bool schedulable) {
  std::string k = StrCat(n.cpu_milli, "|", n.memory_mib, "|", n.gpus.size(), "|", schedulable, "|");
  for (const auto& [key, value] : n.labels) k += StrCat(key, "=", value, ";");
  for (const auto& t : n.taints)
    k += StrCat(t.key, "=", t.value, ":", TaintEffectName(t.effect), ";");
  if (!n.gpus.empty()) k += StrCat(n.gpus[0].model, "/", n.gpus[0].memory_mib);
  return k;
}

// The lowest-numbered GPUs of `node` that can take `pod` (for pods bound without our annotation).
std::vector<int> LowestFittingGpus(const schedule::Pod& pod, const schedule::Node& node) {
  std::vector<int> out;
  for (size_t i = 0; i < node.gpus.size() && static_cast<int>(out.size()) < pod.gpu_count; ++i) {
    const schedule::Gpu& g = node.gpus[i];
    if (g.FreeMilli() >= pod.ShareOn(g)) out.push_back(static_cast<int>(i));
  }
  if (static_cast<int>(out.size()) < pod.gpu_count) out.clear();
  return out;
}

}  // namespace

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

absl::StatusOr<std::unique_ptr<KubeScheduler>> KubeScheduler::Create(kube::Client* client,
                                                                     KubeSchedulerOptions options) {
  if (client == nullptr) return absl::InvalidArgumentError("a Kubernetes client is required");
  if (auto p = schedule::PolicyProfile(options.policy); !p.ok()) {
    std::string names;
    for (const std::string& n : schedule::PolicyNames()) names += names.empty() ? n : ", " + n;
    return absl::InvalidArgumentError(
        StrCat("unknown policy '", options.policy, "' (one of ", names, ")"));
  }
  if (options.scheduler_name.empty()) return absl::InvalidArgumentError("scheduler name is empty");
  if (options.leader_elect && options.identity.empty()) {
    return absl::InvalidArgumentError("leader election needs an identity");
  }
  return std::unique_ptr<KubeScheduler>(
      new KubeScheduler(std::make_unique<Impl>(client, std::move(options))));
}

KubeScheduler::KubeScheduler(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KubeScheduler::~KubeScheduler() { Stop(); }
absl::Status KubeScheduler::Start() { return impl_->Start(); }
void KubeScheduler::Stop() {
  if (impl_) impl_->Stop();
}
KubeSchedulerStats KubeScheduler::stats() const { return impl_->stats(); }

absl::Status KubeScheduler::Impl::Start() {
  absl::MutexLock lifecycle(&lifecycle_mu_);
  if (started_) return absl::FailedPreconditionError("the scheduler was already started");
  started_ = true;
  nodes_ = std::make_unique<kube::Informer>(client_, kube::resources::kNodes);
  nodes_->AddEventHandlers({[this](const json::value& n) { OnNode(n); },
                            [this](const json::value&, const json::value& n) { OnNode(n); },
                            [this](const json::value& n) { OnNodeDeleted(n); }});
  pods_ = std::make_unique<kube::Informer>(client_, kube::resources::kPods);
  pods_->AddEventHandlers({[this](const json::value& p) { OnPod(p); },
                           [this](const json::value&, const json::value& p) { OnPod(p); },
                           [this](const json::value& p) { OnPodDeleted(p); }});
  if (absl::Status st = nodes_->Start(); !st.ok()) return st;
  if (absl::Status st = pods_->Start(); !st.ok()) return st;
  events_thread_ = std::make_unique<std::jthread>([this](std::stop_token s) {
    SetThreadName("sched-events");
    RunEvents(s);
  });
  for (int i = 0; i < std::max(1, o_.bind_workers); ++i) {
    binders_.push_back(std::make_unique<std::jthread>([this, i](std::stop_token s) {
      SetThreadName("sched-binder-", StrCat(i));
      RunBinder(s);
    }));
  }
  if (!o_.leader_elect) {
    scheduling_ = std::make_unique<std::jthread>([this](std::stop_token s) {
      SetThreadName("scheduler");
      RunScheduling(s);
    });
    return absl::OkStatus();
  }
  kube::LeaderElectionConfig lc;
  lc.lease_namespace = o_.lease_namespace;
  lc.lease_name = o_.lease_name;
  lc.identity = o_.identity;
  lc.lease_duration = o_.lease_duration;
  lc.renew_deadline = o_.renew_deadline;
  lc.retry_period = o_.retry_period;
  lc.on_started_leading = [this](std::stop_token s) {  // on the elector's work thread
    SetThreadName("scheduler");
    RunScheduling(s);
  };
  lc.on_stopped_leading = [this] {
    if (stopping_.load()) return;  // Stop() asked for it: not a loss
    log::Warn("leader_lost", {{"identity", o_.identity}});
    if (o_.on_lost_leadership) o_.on_lost_leadership();
  };
  lc.on_new_leader = [this](const std::string& who) {
    log::Info("leader_observed", {{"leader", who}, {"self", who == o_.identity}});
  };
  auto elector = kube::LeaderElector::Create(client_, std::move(lc));
  if (!elector.ok()) return elector.status();
  elector_ = std::move(*elector);
  return elector_->Start();
}

void KubeScheduler::Impl::Stop() {
  absl::MutexLock lifecycle(&lifecycle_mu_);
  stopping_.store(true);
  if (elector_) elector_->Stop();  // stops the scheduling work, releases the lease
  if (scheduling_) {
    scheduling_->request_stop();
    cv_.SignalAll();
    scheduling_.reset();
  }
  for (auto& b : binders_) b->request_stop();
  bind_cv_.SignalAll();
  binders_.clear();  // joins: binds in flight complete
  if (pods_) pods_->Stop();
  if (nodes_) nodes_->Stop();
  if (events_thread_) {
    events_thread_->request_stop();
    events_cv_.SignalAll();
    events_thread_.reset();
  }
}

// ---------------------------------------------------------------------------------------------
// The cache.

void KubeScheduler::Impl::OnNode(const json::value& obj) {
  auto node = NodeFromJson(obj);
  absl::MutexLock lock(&mu_);
  if (!node.ok()) {
    log::Warn("node_invalid", {{"error", std::string(node.status().message())}});
    const std::string name(kube::NameOf(obj));
    if (node_entries_.erase(name) > 0) nodes_changed_ = true;
    return;
  }
  const bool schedulable = NodeSchedulable(obj);
  std::string shape = NodeShapeKey(*node, schedulable);
  auto it = node_entries_.find(node->name);
  if (it != node_entries_.end() && it->second.shape == shape) return;  // a heartbeat
  const std::string name = node->name;
  // A new node, or one cordoned or uncordoned, changes which nodes the snapshot holds.
  if (it == node_entries_.end() || it->second.schedulable != schedulable) nodes_changed_ = true;
  NodeEntry& e = node_entries_[name];
  e.base = std::move(*node);
  e.schedulable = schedulable;
  e.shape = std::move(shape);
  dirty_.insert(name);
  WakeUnschedulableLocked();
}

void KubeScheduler::Impl::OnNodeDeleted(const json::value& obj) {
  absl::MutexLock lock(&mu_);
  if (node_entries_.erase(std::string(kube::NameOf(obj))) > 0) nodes_changed_ = true;
}

bool KubeScheduler::Impl::ShouldScheduleLocked(const std::string& key,
                                               const json::value& obj) const {
  if (Field(obj, "spec", "schedulerName") != o_.scheduler_name) return false;
  if (!Field(obj, "spec", "nodeName").empty() || Deleting(obj)) return false;
  const std::string_view phase = Field(obj, "status", "phase");
  if (!phase.empty() && phase != "Pending") return false;
  return bound_.find(key) == bound_.end();  // assumed: the watch has not caught up yet
}

void KubeScheduler::Impl::EnqueueLocked(const std::string& key) {
  if (unschedulable_.count(key) > 0 || backoff_.count(key) > 0) return;
  if (in_active_.insert(key).second) {
    active_.push_back(key);
    cv_.SignalAll();
  }
}

void KubeScheduler::Impl::OnPod(const json::value& obj) {
  const std::string key = kube::KeyOf(obj);
  std::optional<BoundPod> b = BoundPodFromJson(obj);
  absl::MutexLock lock(&mu_);
  if (!b) {
    // Not bound, or finished: a finished pod frees what it held.
    if (!Field(obj, "spec", "nodeName").empty()) {
      if (bound_.count(key) > 0) {
        ReleaseLocked(key);
        WakeUnschedulableLocked();
      }
      return;
    }
    if (ShouldScheduleLocked(key, obj)) EnqueueLocked(key);
    return;
  }
  // Bound: account it (once; an assumed pod is now confirmed).
  in_active_.erase(key);
  unschedulable_.erase(key);
  backoff_.erase(key);
  auto it = bound_.find(key);
  if (it != bound_.end() && it->second.node == b->node) {
    it->second.assumed = false;
    if (!b->gpu_indices.empty() && b->gpu_indices != it->second.gpus) {
      it->second.gpus = b->gpu_indices;  // the API's record wins
      dirty_.insert(b->node);
    }
    return;
  }
  auto pod = PodFromJson(obj);
  if (!pod.ok()) {
    // Still holds its node's resources as far as we can tell: account CPU-less, GPU-less.
    log::Warn("pod_invalid", {{"pod", key}, {"error", std::string(pod.status().message())}});
    pod = schedule::Pod{};
    pod->name = key;
  }
  if (it != bound_.end()) ReleaseLocked(key);
  AccountLocked(key, PodEntry{std::move(*pod), b->node, b->gpu_indices, false});
}

void KubeScheduler::Impl::OnPodDeleted(const json::value& obj) {
  const std::string key = kube::KeyOf(obj);
  absl::MutexLock lock(&mu_);
  in_active_.erase(key);
  unschedulable_.erase(key);
  backoff_.erase(key);
  if (bound_.count(key) > 0) {
    ReleaseLocked(key);
    WakeUnschedulableLocked();
  }
}

void KubeScheduler::Impl::AccountLocked(const std::string& key, PodEntry entry) {
  pods_on_node_[entry.node].insert(key);
  dirty_.insert(entry.node);
  bound_[key] = std::move(entry);
}

void KubeScheduler::Impl::ReleaseLocked(const std::string& key) {
  auto it = bound_.find(key);
  if (it == bound_.end()) return;
  auto on = pods_on_node_.find(it->second.node);
  if (on != pods_on_node_.end()) {
    on->second.erase(key);
    if (on->second.empty()) pods_on_node_.erase(on);
  }
  dirty_.insert(it->second.node);
  bound_.erase(it);
}

// A node from its base and the pods on it. Pods without recorded GPUs get the lowest that fit.
void KubeScheduler::Impl::RebuildNodeLocked(const std::string& name) {
  auto idx = index_.find(name);
  auto e = node_entries_.find(name);
  if (idx == index_.end() || e == node_entries_.end()) return;
  schedule::Node n = e->second.base;
  if (auto on = pods_on_node_.find(name); on != pods_on_node_.end()) {
    for (const std::string& key : on->second) {
      PodEntry& p = bound_.at(key);
      std::vector<int> gpus = p.gpus;
      bool valid = static_cast<int>(gpus.size()) == (p.pod.WantsGpu() ? p.pod.gpu_count : 0);
      for (int g : gpus) valid = valid && g >= 0 && static_cast<size_t>(g) < n.gpus.size();
      if (!valid) gpus = p.pod.WantsGpu() ? LowestFittingGpus(p.pod, n) : std::vector<int>{};
      if (p.pod.WantsGpu() && gpus.empty()) {
        // Over-committed as far as our accounting goes: take what is there, not more than whole.
        schedule::Pod cpu_only = p.pod;
        cpu_only.gpu_count = 0;
        schedule::Bind(cpu_only, {}, n);
        continue;
      }
      schedule::Bind(p.pod, gpus, n);
    }
  }
  snapshot_.nodes[static_cast<size_t>(idx->second)] = std::move(n);
}

void KubeScheduler::Impl::RefreshSnapshotLocked() {
  if (nodes_changed_) {
    snapshot_.nodes.clear();
    index_.clear();
    for (const auto& [name, e] : node_entries_) {
      if (!e.schedulable) continue;
      index_[name] = static_cast<int>(snapshot_.nodes.size());
      snapshot_.nodes.push_back(e.base);
    }
    for (const auto& [name, e] : node_entries_) RebuildNodeLocked(name);
    nodes_changed_ = false;
    dirty_.clear();
    return;
  }
  for (const std::string& name : dirty_) RebuildNodeLocked(name);
  dirty_.clear();
}

void KubeScheduler::Impl::WakeUnschedulableLocked() {
  for (const auto& [key, when] : unschedulable_) {
    if (in_active_.insert(key).second) active_.push_back(key);
  }
  unschedulable_.clear();
  cv_.SignalAll();
}

// ---------------------------------------------------------------------------------------------
// Scheduling.

void KubeScheduler::Impl::RunScheduling(std::stop_token stop) {
  leading_.store(true);
  log::Info("scheduling_started",
            {{"identity", o_.identity}, {"scheduler", o_.scheduler_name}, {"policy", o_.policy}});
  // Decide nothing before both caches hold the whole cluster: the accounting of bound pods is
  // what keeps a GPU share from being given twice.
  while (!stop.stop_requested() && !(nodes_->WaitForSync(std::chrono::milliseconds(200)) &&
                                     pods_->WaitForSync(std::chrono::milliseconds(200)))) {
  }
  {
    galley::StopWaker waker(stop, mu_, cv_);
    absl::MutexLock lock(&mu_);
    core_.reset();  // a new term builds the core from the workload it sees now
    while (!stop.stop_requested()) {
      const auto now = Clock::now();
      // Due retries: bind back-off expired, or unschedulable for unschedulable_retry.
      std::optional<Clock::time_point> next_due;
      for (auto it = backoff_.begin(); it != backoff_.end();) {
        if (it->second.first <= now) {
          if (in_active_.insert(it->first).second) active_.push_back(it->first);
          it = backoff_.erase(it);
        } else {
          next_due = std::min(next_due.value_or(it->second.first), it->second.first);
          ++it;
        }
      }
      for (auto it = unschedulable_.begin(); it != unschedulable_.end();) {
        const auto due = it->second + o_.unschedulable_retry;
        if (due <= now) {
          if (in_active_.insert(it->first).second) active_.push_back(it->first);
          it = unschedulable_.erase(it);
        } else {
          next_due = std::min(next_due.value_or(due), due);
          ++it;
        }
      }
      if (active_.empty()) {
        auto wake = next_due.value_or(now + std::chrono::seconds(1));
        while (active_.empty() && !stop.stop_requested() && galley::WaitUntil(cv_, mu_, wake)) {
        }
        continue;
      }
      std::string key = std::move(active_.front());
      active_.pop_front();
      in_active_.erase(key);
      ScheduleOne(key);
    }
  }
  // The term is over: binds not yet started are dropped (another leader decides now), and the
  // term ends only when those in flight have finished.
  std::deque<BindTask> dropped;
  {
    absl::MutexLock b(&bind_mu_);
    dropped.swap(binds_);
    while (binds_in_flight_ != 0) bind_cv_.Wait(&bind_mu_);
  }
  {
    absl::MutexLock relock(&mu_);
    for (const BindTask& t : dropped) ForgetLocked(t.key, absl::CancelledError("leadership ended"));
  }
  leading_.store(false);
  log::Info("scheduling_stopped", {{"identity", o_.identity}, {"binds_dropped", dropped.size()}});
}

void KubeScheduler::Impl::ScheduleOne(const std::string& key) {
  std::optional<json::value> obj = pods_->Get(key);
  if (!obj || !ShouldScheduleLocked(key, *obj)) return;
  auto pod = PodFromJson(*obj);
  if (!pod.ok()) {
    ++stats_.invalid_pods;
    const std::string message(pod.status().message());
    mu_.Unlock();
    log::Warn("pod_invalid", {{"pod", key}, {"error", message}});
    PostEvent(*obj, "Warning", "FailedScheduling", message);
    mu_.Lock();
    return;  // a later update of the pod queues it again
  }
  RefreshSnapshotLocked();
  if (!core_ || ++decisions_since_core_ >= 256) {
    // The fragmentation-aware policies measure against the workload: the pods seen so far.
    std::vector<schedule::Pod> seen;
    seen.reserve(bound_.size() + 1);
    for (const auto& [k, e] : bound_) seen.push_back(e.pod);
    seen.push_back(*pod);
    auto workload = std::make_shared<schedule::WorkloadDistribution>(
        schedule::WorkloadDistribution::FromPods(seen));
    auto core = schedule::NewPolicyScheduler(o_.policy, std::move(workload),
                                             o_.percentage_of_nodes_to_score);
    if (!core.ok()) {
      log::Error("scheduler_build_failed", {{"error", std::string(core.status().message())}});
      return;
    }
    core_ = std::move(*core);
    decisions_since_core_ = 0;
  }
  const auto core_start = Clock::now();
  schedule::ScheduleResult result = core_->Schedule(*pod, snapshot_, rng_);
  stats_.core_seconds += std::chrono::duration<double>(Clock::now() - core_start).count();
  if (auto* u = std::get_if<schedule::Unschedulable>(&result)) {
    ++stats_.unschedulable;
    unschedulable_[key] = Clock::now();
    const std::string message = u->Message();
    mu_.Unlock();
    log::Info("pod_unschedulable", {{"pod", key}, {"message", message}});
    PostEvent(*obj, "Warning", "FailedScheduling", message);
    mu_.Lock();
    return;
  }
  const schedule::Placement placement = std::get<schedule::Placement>(std::move(result));
  // Assume: the next decision sees this pod's resources taken, before the bind returns.
  schedule::Bind(*pod, placement.gpu_indices,
                 snapshot_.nodes[static_cast<size_t>(placement.node_index)]);
  bound_[key] = PodEntry{*pod, placement.node_name, placement.gpu_indices, true};
  pods_on_node_[placement.node_name].insert(key);
  // Bind on a worker (kube-scheduler's binding cycle runs apart from its scheduling cycle too),
  // so the next decision does not wait for this write to reach etcd.
  {
    absl::MutexLock b(&bind_mu_);
    binds_.push_back(BindTask{key, std::move(*obj), placement.node_name, placement.gpu_indices});
  }
  bind_cv_.Signal();
}

void KubeScheduler::Impl::RunBinder(std::stop_token stop) {
  galley::StopWaker waker(stop, bind_mu_, bind_cv_);
  while (true) {
    BindTask t;
    {
      absl::MutexLock b(&bind_mu_);
      while (binds_.empty() && !stop.stop_requested()) bind_cv_.Wait(&bind_mu_);
      if (binds_.empty()) return;
      t = std::move(binds_.front());
      binds_.pop_front();
      ++binds_in_flight_;
    }
    FinishBind(t, BindPod(t.pod, t.node, t.gpus));
    {
      absl::MutexLock b(&bind_mu_);
      --binds_in_flight_;
    }
    bind_cv_.SignalAll();
  }
}

void KubeScheduler::Impl::FinishBind(const BindTask& t, const absl::Status& st) {
  if (st.ok()) {
    log::Info("pod_scheduled",
              {{"pod", t.key}, {"node", t.node}, {"gpus", FormatGpuIndices(t.gpus)}});
    PostEvent(
        t.pod, "Normal", "Scheduled",
        StrCat("Successfully assigned ", t.key, " to ", t.node,
               t.gpus.empty() ? std::string() : StrCat(" (GPUs ", FormatGpuIndices(t.gpus), ")")));
  } else {
    log::Warn("bind_failed",
              {{"pod", t.key}, {"node", t.node}, {"error", std::string(st.message())}});
  }
  absl::MutexLock lock(&mu_);
  if (st.ok()) {
    ++stats_.scheduled;
    return;
  }
  ++stats_.bind_errors;
  ForgetLocked(t.key, st);
}

// A bind that failed or was never made: the pod no longer holds its node's resources here.
void KubeScheduler::Impl::ForgetLocked(const std::string& key, const absl::Status& why) {
  auto it = bound_.find(key);
  if (it != bound_.end() && it->second.assumed) ReleaseLocked(key);
  // Conflict (bound meanwhile) and NotFound (deleted): the watch tells the rest. Else retry.
  if (!kube::IsConflict(why) && !absl::IsNotFound(why)) {
    auto& [at, failures] = backoff_[key];
    failures = std::min(failures + 1, 8);
    const auto wait =
        std::min<Duration>(o_.bind_backoff * (1 << (failures - 1)), std::chrono::seconds(10));
    at = Clock::now() + std::chrono::duration_cast<Clock::duration>(wait);
  }
  cv_.SignalAll();
}

absl::Status KubeScheduler::Impl::BindPod(const json::value& pod, const std::string& node,
                                          const std::vector<int>& gpus) {
  std::map<std::string, std::string> annotations;
  if (!gpus.empty()) annotations[std::string(kAssignedAnnotation)] = FormatGpuIndices(gpus);
  // The pod's UID makes the bind apply only to this incarnation of the pod.
  return client_->Bind(kube::NamespaceOf(pod), kube::NameOf(pod), node, kube::UidOf(pod),
                       annotations);
}

// ---------------------------------------------------------------------------------------------
// Events: posted from their own thread so a slow or failing events API never holds a bind up.

void KubeScheduler::Impl::PostEvent(const json::value& pod, std::string type, std::string reason,
                                    std::string message) {
  Event e{std::string(kube::NamespaceOf(pod)),
          std::string(kube::NameOf(pod)),
          std::string(kube::UidOf(pod)),
          std::move(type),
          std::move(reason),
          std::move(message)};
  {
    absl::MutexLock lock(&events_mu_);
    if (events_.size() >= 4096) {
      absl::MutexLock s(&mu_);
      ++stats_.events_dropped;
      return;
    }
    events_.push_back(std::move(e));
  }
  events_cv_.Signal();
}

void KubeScheduler::Impl::RunEvents(std::stop_token stop) {
  galley::StopWaker waker(stop, events_mu_, events_cv_);
  while (true) {
    Event e;
    {
      absl::MutexLock lock(&events_mu_);
      while (events_.empty() && !stop.stop_requested()) events_cv_.Wait(&events_mu_);
      if (events_.empty()) return;  // stopped and drained
      e = std::move(events_.front());
      events_.pop_front();
    }
    kube::EventSpec spec;
    spec.involved = json::object{
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata", json::object{{"name", e.name}, {"namespace", e.ns}, {"uid", e.uid}}}};
    spec.type = e.type;
    spec.reason = e.reason;
    spec.message = e.message;
    spec.component = o_.scheduler_name;
    spec.action = "Scheduling";
    kube::CallOptions call;
    call.timeout = std::chrono::seconds(5);
    kube::Client* events = o_.events_client != nullptr ? o_.events_client : client_;
    if (auto r = events->CreateEvent(spec, call); !r.ok()) {
      absl::MutexLock lock(&mu_);
      ++stats_.events_dropped;
    }
  }
}

}  // namespace galley::kubesched
