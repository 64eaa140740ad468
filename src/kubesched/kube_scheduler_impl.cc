// KubeScheduler's scheduling loop, bind workers and event recorder (see kube_scheduler_impl.h).
#include "kubesched/kube_scheduler_impl.h"

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <stop_token>
#include <string>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "boost/json.hpp"
#include "common/log.h"
#include "common/strings.h"
#include "common/sync.h"
#include "kube/api_error.h"
#include "kube/resource.h"
#include "kubesched/convert.h"
#include "schedule/fragmentation.h"
#include "schedule/policy.h"

namespace galley::kubesched {

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
