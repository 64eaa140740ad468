// Creation, start and stop, the informers' handlers and the cache; the scheduling loop, the bind
// workers and the event recorder are in kube_scheduler_impl.cc.
#include "kubesched/kube_scheduler.h"

#include <algorithm>
#include <map>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "boost/json.hpp"
#include "common/log.h"
#include "common/strings.h"
#include "common/thread_name.h"
#include "kube/informer.h"
#include "kube/leader_election.h"
#include "kube/resource.h"
#include "kubesched/convert.h"
#include "kubesched/kube_scheduler_impl.h"
#include "schedule/policy.h"

namespace galley::kubesched {
namespace {

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

}  // namespace galley::kubesched
