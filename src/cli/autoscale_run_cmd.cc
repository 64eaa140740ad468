// `galley autoscale run`: the autoscaling controller of one InferenceModel on Kubernetes. It
// scrapes the model's replicas (the endpoints of its EndpointSlices), runs the same controller
// and recommender as `galley up --autoscale` with the policy in the model's spec.autoscaling,
// and writes spec.replicas through the model's `scale` subresource. Leader-elected (a Lease per
// model), so that two instances never both decide; an instance that loses the lease exits.
#include <unistd.h>

#include <atomic>
#include <climits>
#include <csignal>
#include <iostream>

#include "autoscale/controller.h"
#include "autoscale/scrape_metrics_source.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/kube_flags.h"
#include "cli/queue_depth.h"
#include "common/lifecycle.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/sync.h"
#include "kube/leader_election.h"
#include "kubefleet/model_scale.h"
#include "upstream/http_upstream.h"

namespace galley::cli {
namespace {

namespace json = boost::json;

struct RunFlags {
  KubeFlags kube;
  std::string model;  // NAMESPACE/NAME
  std::chrono::milliseconds sync_period{15'000};
  std::chrono::milliseconds stable_window{60'000};
  std::chrono::milliseconds model_load_time{10'000};
  std::string lease_namespace;  // default: the model's
  std::string identity;
  LeaseTimingFlags lease;
  QueueSource queue;  // the queue the model's replicas consume, if any
};

const json::value* At(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* cur = &v;
  for (std::string_view k : path) {
    if (cur == nullptr || !cur->is_object()) return nullptr;
    cur = cur->as_object().if_contains(k);
  }
  return cur;
}

double Number(const json::value& v, std::initializer_list<std::string_view> path, double fallback) {
  const json::value* x = At(v, path);
  if (x == nullptr) return fallback;
  if (x->is_int64()) return static_cast<double>(x->as_int64());
  if (x->is_double()) return x->as_double();
  return fallback;
}

// The policy an InferenceModel asks for; InvalidArgument when it asks for none or for a metric
// this controller does not measure.
absl::StatusOr<autoscale::InferencePolicy> PolicyOf(const json::value& model, const RunFlags& f) {
  const json::value* enabled = At(model, {"spec", "autoscaling", "enabled"});
  if (enabled == nullptr || !enabled->is_bool() || !enabled->as_bool()) {
    return absl::InvalidArgumentError("spec.autoscaling.enabled is not true");
  }
  const json::value* metric = At(model, {"spec", "autoscaling", "metric"});
  const std::string_view name =
      metric != nullptr && metric->is_string() ? std::string_view(metric->as_string()) : "";
  if (!name.empty() && name != "concurrency" && name != "rps") {
    return absl::InvalidArgumentError(StrCat("spec.autoscaling.metric '", name,
                                             "' is not measured yet (concurrency and rps are)"));
  }
  autoscale::InferencePolicy p;
  p.min_replicas = static_cast<int>(Number(model, {"spec", "minReplicas"}, 1));
  p.max_replicas = static_cast<int>(Number(model, {"spec", "maxReplicas"}, 10));
  const double target = Number(model, {"spec", "autoscaling", "target"}, 8);
  if (name == "rps") {
    // Requests per second per replica: rate sizing with one replica's share = target. The request
    // counters do not see a queue's messages, so a model consuming one scales by concurrency.
    if (!(target > 0)) {
      return absl::InvalidArgumentError("spec.autoscaling.target must be positive with metric rps");
    }
    if (f.queue.enabled()) {
      return absl::InvalidArgumentError(
          "spec.autoscaling.metric 'rps' does not see a queue's messages: use concurrency with "
          "--queue-redis or --queue-amqp");
    }
    p.replica_capacity_rps = target / p.target_utilization;
  } else {
    p.target_concurrency = target;
  }
  p.scale_down_delay =
      absl::Seconds(Number(model, {"spec", "autoscaling", "scaleDownDelaySeconds"}, 300));
  p.stable_window = absl::FromChrono(f.stable_window);
  p.model_load_time = absl::FromChrono(f.model_load_time);
  p.scale_to_zero = p.min_replicas == 0;
  return p;
}

// The Lease as a part of the process: holding it runs the controller (on_started_leading);
// BeginDrain marks the coming loss of leadership as our own, so on_stopped_leading does not take
// it for a lost lease; Drain gives the Lease up (the controller stops first).
class LeaseHold final : public Component {
 public:
  LeaseHold(kube::LeaderElector& elector, std::atomic<bool>& stopping)
      : elector_(elector), stopping_(stopping) {}
  std::string_view component_name() const override { return "leader-election"; }
  absl::Status Start() override { return elector_.Start(); }
  void BeginDrain() override { stopping_.store(true); }
  bool Drain(TimePoint) override {
    elector_.Stop();
    return true;
  }
  void Stop() override { elector_.Stop(); }

 private:
  kube::LeaderElector& elector_;
  std::atomic<bool>& stopping_;
};

int Run(const RunFlags& f) {
  const size_t slash = f.model.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == f.model.size()) {
    std::cerr << "--model: give NAMESPACE/NAME\n";
    return 2;
  }
  const std::string ns = f.model.substr(0, slash), name = f.model.substr(slash + 1);
  if (absl::Status st = f.lease.Validate(); !st.ok()) return FlagError(st);
  ProcessRunner process({}, SteadyClock::Get());  // blocks the stop signals before any thread
  auto config = f.kube.Load();
  if (!config.ok()) {
    std::cerr << "galley autoscale run: " << config.status().message() << "\n";
    return 2;
  }
  kube::ClientOptions co;
  co.user_agent = "galley-autoscaler";
  auto client = kube::Client::Create(*config, co);
  if (!client.ok()) {
    std::cerr << "galley autoscale run: " << client.status().message() << "\n";
    return 2;
  }
  auto model = (*client)->Get(kubefleet::kInferenceModelType, ns, name);
  if (!model.ok()) {
    log::Error("start_failed",
               {{"model", f.model}, {"error", std::string(model.status().message())}});
    return 1;
  }
  auto policy = PolicyOf(*model, f);
  if (!policy.ok()) {
    log::Error("start_failed",
               {{"model", f.model}, {"error", std::string(policy.status().message())}});
    return 1;
  }
  const json::value* served = At(*model, {"spec", "model", "name"});
  const std::string model_name =
      served != nullptr && served->is_string() ? std::string(served->as_string()) : name;
  auto slices =
      kubefleet::EndpointSliceReplicas::Start(client->get(), ns, std::chrono::seconds(30));
  auto scale = kubefleet::ScaleSubresource::Open(client->get(), ns, name);
  if (!slices.ok() || !scale.ok()) {
    const absl::Status st = !slices.ok() ? slices.status() : scale.status();
    log::Error("start_failed", {{"model", f.model}, {"error", std::string(st.message())}});
    return 1;
  }
  kubefleet::ModelReplicas replicas(**slices, ns, model_name);
  upstream::HttpUpstream upstream;
  autoscale::ControllerOptions o;
  o.policy = *policy;
  o.sync_period = f.sync_period;
  autoscale::ScrapeOptions scrape;
  scrape.timeout = std::min(std::chrono::milliseconds(1'000), o.sync_period);
  // A queue's lag is demand no replica reports: with minReplicas 0 it wakes the model from zero.
  o.queue_depth = MakeQueueDepthReader(f.queue, scrape.timeout);
  autoscale::ScrapeMetricsSource source(replicas, upstream, SteadyClock::Get(), scrape);
  metrics::Registry registry;
  autoscale::Controller controller(source, **scale, SteadyClock::Get(), o, &registry);

  std::string identity = f.identity;
  if (identity.empty()) {
    char host[HOST_NAME_MAX + 1] = {};
    gethostname(host, sizeof(host) - 1);
    identity = StrCat(host, "_", getpid());
  }
  std::atomic<bool> lost{false}, stopping{false};
  kube::LeaderElectionConfig le;
  le.lease_namespace = f.lease_namespace.empty() ? ns : f.lease_namespace;
  le.lease_name = StrCat("galley-autoscaler-", name);
  le.identity = identity;
  le.lease_duration = f.lease.lease_duration;
  le.renew_deadline = f.lease.renew_deadline;
  le.retry_period = f.lease.retry_period;
  le.on_started_leading = [&](std::stop_token stop) {
    log::Info("autoscaler_leading", {{"model", f.model}, {"identity", identity}});
    if (absl::Status st = controller.Start(); !st.ok()) {
      log::Error("autoscaler_failed", {{"error", std::string(st.message())}});
      return;
    }
    absl::Mutex m;
    absl::CondVar cv;
    galley::StopWaker waker(stop, m, cv);
    {
      absl::MutexLock lock(&m);
      while (!stop.stop_requested()) cv.Wait(&m);
    }
    controller.Stop();
  };
  le.on_stopped_leading = [&] {
    if (stopping.load()) return;  // our own shutdown gave the lease up
    lost.store(true);
    log::Warn("autoscaler_not_leading", {{"model", f.model}});
    kill(getpid(), SIGTERM);  // a controller that lost its lease exits; a restart campaigns again
  };
  auto elector = kube::LeaderElector::Create(client->get(), le);
  if (!elector.ok()) {
    log::Error("start_failed", {{"error", std::string(elector.status().message())}});
    return 1;
  }
  LeaseHold lease(**elector, stopping);
  if (!process.Start(lease).ok()) return 1;
  log::Info("autoscaler_started", {{"model", f.model},
                                   {"served_model", model_name},
                                   {"min_replicas", policy->min_replicas},
                                   {"max_replicas", policy->max_replicas},
                                   {"target_concurrency", policy->target_concurrency},
                                   {"sync_period_ms", f.sync_period.count()},
                                   {"queue", f.queue.Describe()},
                                   {"lease", le.lease_name}});
  process.Run();  // the elector stops the controller (if leading) and gives the lease up
  controller.Stop();
  upstream.Shutdown();
  log::Info("autoscaler_stopped", {{"lost_lease", lost.load()}});
  return lost.load() ? 1 : 0;
}

}  // namespace

Runner AddAutoscaleRunCommand(CLI::App* autoscale) {
  CLI::App* cmd = autoscale->add_subcommand(
      "run", "Autoscale one InferenceModel on Kubernetes (scrape its replicas, write its scale)");
  auto f = std::make_shared<RunFlags>();
  f->kube.Add(cmd);
  Flag(cmd, "model", f->model, "the InferenceModel, NAMESPACE/NAME")->required();
  DurationFlag(cmd, "sync-period-ms", f->sync_period, "how often to observe and decide")
      ->check(CLI::PositiveNumber);
  DurationFlag(cmd, "stable-window-ms", f->stable_window, "demand is averaged over this window")
      ->check(CLI::PositiveNumber);
  DurationFlag(cmd, "model-load-time-ms", f->model_load_time,
               "how long a new replica takes to help")
      ->check(CLI::NonNegativeNumber);
  Flag(cmd, "lease-namespace", f->lease_namespace, "namespace of the Lease (default: the model's)");
  Flag(cmd, "identity", f->identity, "this instance's holder identity (default host_pid)");
  f->lease.Add(cmd);
  AddQueueSourceFlags(cmd, f->queue, "the model's replicas consume work from, and it scales on,");
  return [cmd, f]() -> int {
    if (!cmd->parsed()) return -1;
    if (absl::Status st = f->queue.Validate(); !st.ok()) return FlagError(st);
    return Run(*f);
  };
}

}  // namespace galley::cli
