// `galley schedule run`: Galley's scheduler against a Kubernetes API server (kubesched/).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdlib>
#include <iostream>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/kube_flags.h"
#include "cli/listen.h"
#include "cli/ops_server.h"
#include "common/lifecycle.h"
#include "common/log.h"
#include "common/strings.h"
#include "http/server.h"
#include "kube/client.h"
#include "kube/config.h"
#include "kubesched/kube_scheduler.h"
#include "schedule/policy.h"

namespace galley::cli {
namespace {

struct RunFlags {
  KubeFlags kube;
  // kube-scheduler's clientConnection defaults (v1beta3+): qps 50, burst 100. Binds and events
  // each have a client, and so a limit, of their own.
  double qps = 50;
  int burst = 100;
  LeaseTimingFlags lease;
  std::chrono::milliseconds unschedulable_retry{300'000};
  std::string metrics_listen;  // empty: no /metrics
  kubesched::KubeSchedulerOptions options;
};

// The scheduler's counters in the Prometheus text format (names after kube-scheduler's
// scheduler_schedule_attempts_total, which counts by result).
std::string Exposition(const kubesched::KubeSchedulerStats& s) {
  std::string out;
  out +=
      "# HELP galley_scheduler_schedule_attempts_total Scheduling attempts by result: scheduled "
      "(bound), unschedulable (no node fits), error (the bind call failed).\n"
      "# TYPE galley_scheduler_schedule_attempts_total counter\n";
  out +=
      StrCat("galley_scheduler_schedule_attempts_total{result=\"scheduled\"} ", s.scheduled, "\n");
  out += StrCat("galley_scheduler_schedule_attempts_total{result=\"unschedulable\"} ",
                s.unschedulable, "\n");
  out += StrCat("galley_scheduler_schedule_attempts_total{result=\"error\"} ", s.bind_errors, "\n");
  out += StrCat(
      "# HELP galley_scheduler_invalid_pods_total Pods whose spec could not be read.\n"
      "# TYPE galley_scheduler_invalid_pods_total counter\n"
      "galley_scheduler_invalid_pods_total ",
      s.invalid_pods,
      "\n# HELP galley_scheduler_events_dropped_total Events not posted (queue full or API "
      "error).\n# TYPE galley_scheduler_events_dropped_total counter\n"
      "galley_scheduler_events_dropped_total ",
      s.events_dropped,
      "\n# HELP galley_scheduler_decision_seconds_total Time inside the scheduling core's "
      "decisions.\n# TYPE galley_scheduler_decision_seconds_total counter\n"
      "galley_scheduler_decision_seconds_total ",
      s.core_seconds,
      "\n# HELP galley_scheduler_leader 1 while this instance holds the lease and schedules.\n"
      "# TYPE galley_scheduler_leader gauge\ngalley_scheduler_leader ",
      s.leading ? 1 : 0, "\n");
  return out;
}

std::string DefaultIdentity() {
  char host[HOST_NAME_MAX + 1] = {};
  gethostname(host, sizeof(host) - 1);
  return StrCat(host, "_", getpid());
}

}  // namespace

Runner AddScheduleRunCommand(CLI::App* schedule) {
  CLI::App* cmd = schedule->add_subcommand(
      "run", "Schedule pods on a Kubernetes cluster (pods whose schedulerName names this one)");
  auto f = std::make_shared<RunFlags>();
  f->kube.Add(cmd);
  Flag(cmd, "scheduler-name", f->options.scheduler_name, "spec.schedulerName of the pods to place");
  Flag(cmd, "policy", f->options.policy, "scoring policy (as in `galley schedule replay`)");
  Flag(cmd, "percentage-of-nodes-to-score", f->options.percentage_of_nodes_to_score,
       "kube-scheduler's percentageOfNodesToScore (100: every node, 0: adaptive)")
      ->check(CLI::Range(0, 100));
  Flag(cmd, "seed", f->options.seed, "tie-breaking seed");
  Flag(cmd, "leader-elect", f->options.leader_elect,
       "take a coordination.k8s.io Lease before scheduling, so only one instance binds");
  Flag(cmd, "lease-namespace", f->options.lease_namespace, "namespace of the Lease");
  Flag(cmd, "lease-name", f->options.lease_name, "name of the Lease");
  Flag(cmd, "identity", f->options.identity, "this instance's holder identity (default host_pid)");
  f->lease.Add(cmd);
  DurationFlag(cmd, "unschedulable-retry-ms", f->unschedulable_retry,
               "retry an unschedulable pod after this even if the cluster did not change")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "bind-workers", f->options.bind_workers, "threads making bind calls")
      ->check(CLI::Range(1, 256));
  Flag(cmd, "kube-api-qps", f->qps, "client-side rate limit on API requests (0: none)")
      ->check(CLI::NonNegativeNumber);
  Flag(cmd, "kube-api-burst", f->burst, "burst of the rate limit")->check(CLI::PositiveNumber);
  Flag(cmd, "metrics-listen", f->metrics_listen,
       "serve /metrics, /healthz and /readyz (ready: leading) on HOST:PORT (port 0: a free one; "
       "empty: off)");
  return [cmd, f]() -> int {
    if (!cmd->parsed()) return -1;
    if (absl::Status st = f->lease.Validate(); !st.ok()) return FlagError(st);
    ProcessRunner process({}, SteadyClock::Get());  // blocks the stop signals before any thread
    absl::StatusOr<kube::KubeConfig> config = f->kube.Load();
    if (!config.ok()) {
      std::cerr << "galley schedule run: " << config.status().message() << "\n";
      return 2;
    }
    kube::ClientOptions co;
    co.rate_limit = {f->qps, f->burst};
    co.user_agent = "galley-scheduler";
    auto client = kube::Client::Create(*config, co);
    co.user_agent = "galley-scheduler-events";
    auto events_client = client.ok() ? kube::Client::Create(*config, co) : client.status();
    if (!events_client.ok()) {
      std::cerr << "galley schedule run: " << events_client.status().message() << "\n";
      return 2;
    }
    kubesched::KubeSchedulerOptions o = f->options;
    o.events_client = events_client->get();
    if (o.identity.empty()) o.identity = DefaultIdentity();
    o.lease_duration = f->lease.lease_duration;
    o.renew_deadline = f->lease.renew_deadline;
    o.retry_period = f->lease.retry_period;
    o.unschedulable_retry = f->unschedulable_retry;
    auto lost = std::make_shared<std::atomic<bool>>(false);
    o.on_lost_leadership = [lost] {
      // As kube-scheduler: a scheduler that lost its lease exits, and a fresh process campaigns.
      lost->store(true);
      kill(getpid(), SIGTERM);
    };
    auto scheduler = kubesched::KubeScheduler::Create(client->get(), std::move(o));
    if (!scheduler.ok()) {
      std::cerr << "galley schedule run: " << scheduler.status().message() << "\n";
      return 2;
    }
    kubesched::KubeScheduler* sched = scheduler->get();
    std::unique_ptr<http::Server> ops;
    if (!f->metrics_listen.empty()) {
      const auto listen = ParseListen(f->metrics_listen);
      if (!listen.ok()) {
        return FlagError(absl::InvalidArgumentError("--metrics-listen: " +
                                                    std::string(listen.status().message())));
      }
      auto made =
          MakeOpsServer(*listen, {[sched] { return Exposition(sched->stats()); },
                                  [sched] { return sched->stats().leading; },
                                  [sched] {
                                    return StrCat(R"({"leader":)",
                                                  sched->stats().leading ? "true" : "false", "}");
                                  }});
      if (!made.ok()) {
        log::Error("start_failed", {{"error", std::string(made.status().message())}});
        return 1;
      }
      ops = *std::move(made);
      if (!process.Start(*ops).ok()) return 1;
      log::Info("listening", {{"protocol", "metrics"}, {"port", ops->port()}});
    }
    if (!process.Start(*sched).ok()) return 1;
    log::Info("scheduler_started", {{"scheduler", f->options.scheduler_name},
                                    {"policy", f->options.policy},
                                    {"leader_elect", f->options.leader_elect}});
    process.Run();
    const kubesched::KubeSchedulerStats s = sched->stats();
    log::Info("scheduler_stopped", {{"scheduled", s.scheduled},
                                    {"unschedulable", s.unschedulable},
                                    {"bind_errors", s.bind_errors},
                                    {"events_dropped", s.events_dropped},
                                    {"core_seconds", s.core_seconds},
                                    {"lost_leadership", lost->load()}});
    return lost->load() ? 1 : 0;
  };
}

}  // namespace galley::cli
