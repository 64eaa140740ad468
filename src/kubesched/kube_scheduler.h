// Galley's scheduler on Kubernetes (`galley schedule run`): watches nodes and pods through
// informers, keeps every node's free CPU, memory and per-GPU share from the pods bound to it,
// and while it holds the leader lease, takes pending pods whose spec.schedulerName names it, asks
// the scheduling core (schedule/policy.h) where each goes, and binds it with the Binding
// subresource, recording the GPUs it gave in the gpu.galley.dev/assigned annotation (convert.h),
// then emits a Scheduled event; a pod no node fits gets a FailedScheduling event with the core's
// reasons and waits for the cluster to change.
//
// Accounting follows kube-scheduler's cache (pkg/scheduler/internal/cache): a pod is "assumed"
// on its node before the bind call, so the next decision already sees its resources; a failed
// bind forgets it. After a restart (or a new leader) the accounting is rebuilt from the bound
// pods' annotations before the first decision, so no GPU share is handed out twice.
// Pods bound by someone else without the annotation take the lowest-numbered GPUs that fit.
//
// Threads: the two informers' threads update the cache; the scheduling thread runs only while
// leading; events are posted by a recorder thread so that binding never waits on them.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "common/clock.h"
#include "common/lifecycle.h"
#include "kube/client.h"

namespace galley::kubesched {

struct KubeSchedulerOptions {
  std::string scheduler_name = "galley-scheduler";  // pods' spec.schedulerName to serve
  std::string policy = "galley";                    // a name from schedule::PolicyNames()
  int percentage_of_nodes_to_score = 100;
  uint64_t seed = 1;  // tie-breaking randomness
  // Leader election (kube::LeaderElector); off: this instance always schedules.
  bool leader_elect = true;
  std::string lease_namespace = "kube-system";
  std::string lease_name = "galley-scheduler";
  std::string identity;  // required with leader_elect; unique per instance
  Duration lease_duration = std::chrono::seconds(15);
  Duration renew_deadline = std::chrono::seconds(10);
  Duration retry_period = std::chrono::seconds(2);
  // Runs (on the elector's thread) when this instance stops leading; kube-scheduler exits then,
  // and so does `galley schedule run`, so that a fresh process campaigns again.
  std::function<void()> on_lost_leadership;
  // Unschedulable pods are tried again when the cluster changes (a node added or changed, a pod
  // gone), and at the latest after this (kube-scheduler's podMaxInUnschedulablePodsDuration).
  Duration unschedulable_retry = std::chrono::minutes(5);
  // Bind calls run on this many threads, apart from the decisions (kube-scheduler binds each pod
  // in a goroutine of its own); the API server's write latency then does not cap throughput.
  int bind_workers = 16;
  // Events go through this client when set (kube-scheduler posts events through a client of its
  // own, so that they do not use up the binds' rate limit); else through the main one. Must
  // outlive the scheduler.
  kube::Client* events_client = nullptr;
  // A failed bind is tried again after this (doubling per failure, up to 10 s).
  Duration bind_backoff = std::chrono::milliseconds(100);
};

struct KubeSchedulerStats {
  int64_t scheduled = 0;       // pods bound by this instance
  int64_t unschedulable = 0;   // attempts that found no node
  int64_t bind_errors = 0;     // bind calls that failed (conflict, gone, transport)
  int64_t events_dropped = 0;  // events not posted (queue full or API error)
  int64_t invalid_pods = 0;    // pods whose spec could not be read (a Warning event says why)
  double core_seconds = 0;     // time inside the scheduling core's decisions (for the bench)
  bool leading = false;
};

// A Component (common/lifecycle.h): Stop() lets binds in flight complete and releases the lease,
// so a standby takes over at once.
class KubeScheduler final : public Component {
 public:
  // `client` must outlive the scheduler. InvalidArgument for an unknown policy or missing
  // identity.
  static absl::StatusOr<std::unique_ptr<KubeScheduler>> Create(kube::Client* client,
                                                               KubeSchedulerOptions options);
  ~KubeScheduler();  // Stop()

  // Starts the informers, the event recorder and the leader election (or the scheduling thread
  // directly without it). FailedPrecondition when called twice.
  absl::Status Start() override;
  // Stops scheduling (a bind in flight completes), releases the lease, stops the informers.
  // Idempotent; blocks.
  void Stop() override;
  std::string_view component_name() const override { return "scheduler"; }

  KubeSchedulerStats stats() const;

  class Impl;

 private:
  explicit KubeScheduler(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace galley::kubesched
