// `galley operator run`: the InferenceModel controller (kubeop/) against a Kubernetes API
// server, with /metrics, /healthz and /readyz on --metrics-listen.
#include <unistd.h>

#include <climits>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/kube_flags.h"
#include "cli/listen.h"
#include "cli/ops_server.h"
#include "common/lifecycle.h"
#include "common/log.h"
#include "common/strings.h"
#include "kube/client.h"
#include "kubeop/operator.h"
#include "metrics/registry.h"

namespace galley::cli {
namespace {

struct OperatorFlags {
  KubeFlags kube;
  std::string install_crd;
  std::string metrics_listen = "127.0.0.1:9443";
  std::chrono::milliseconds resync{30'000};
  LeaseTimingFlags lease;
  double qps = 50;
  int burst = 100;
  kubeop::OperatorOptions options;
};

}  // namespace

Runner AddOperatorCommand(CLI::App& app) {
  CLI::App* op = app.add_subcommand("operator", "The InferenceModel operator for Kubernetes");
  op->require_subcommand(1);
  CLI::App* cmd = op->add_subcommand("run",
                                     "Reconcile InferenceModels into Deployments, Services "
                                     "and PodDisruptionBudgets");
  auto f = std::make_shared<OperatorFlags>();
  f->kube.Add(cmd);
  Flag(cmd, "install-crd", f->install_crd,
       "apply this CustomResourceDefinition file first and wait until it is served "
       "(deploy/crd/inferencemodels.galley.dev.yaml)");
  Flag(cmd, "namespace", f->options.namespace_name, "watch only this namespace (default: all)");
  Flag(cmd, "lease-namespace", f->options.lease_namespace, "namespace of the leader Lease");
  Flag(cmd, "lease-name", f->options.lease_name, "name of the leader Lease");
  Flag(cmd, "identity", f->options.identity, "this instance's holder identity (default host_pid)");
  Flag(cmd, "metrics-listen", f->metrics_listen,
       "/metrics, /healthz and /readyz (HOST:PORT; port 0: a free one)");
  DurationFlag(cmd, "resync-ms", f->resync, "reconcile every model at least this often")
      ->check(CLI::PositiveNumber);
  f->lease.Add(cmd);
  Flag(cmd, "kube-api-qps", f->qps, "client-side rate limit on API requests (0: none)")
      ->check(CLI::NonNegativeNumber);
  Flag(cmd, "kube-api-burst", f->burst, "burst of the rate limit")->check(CLI::PositiveNumber);
  return [cmd, f]() -> int {
    if (!cmd->parsed()) return -1;
    using std::chrono::milliseconds;
    if (absl::Status st = f->lease.Validate(); !st.ok()) return FlagError(st);
    const auto listen = ParseListen(f->metrics_listen);
    if (!listen.ok()) {
      return FlagError(absl::InvalidArgumentError("--metrics-listen: " +
                                                  std::string(listen.status().message())));
    }
    ProcessRunner process({}, SteadyClock::Get());  // blocks the stop signals before any thread
    auto config = f->kube.Load();
    if (!config.ok()) {
      std::cerr << "galley operator run: " << config.status().message() << "\n";
      return 2;
    }
    kube::ClientOptions co;
    co.rate_limit = {f->qps, f->burst};
    co.user_agent = "galley-operator";
    auto client = kube::Client::Create(*config, co);
    if (!client.ok()) {
      std::cerr << "galley operator run: " << client.status().message() << "\n";
      return 2;
    }
    if (!f->install_crd.empty()) {
      std::ifstream in(f->install_crd);
      std::stringstream text;
      text << in.rdbuf();
      if (!in) {
        std::cerr << "--install-crd: cannot read " << f->install_crd << "\n";
        return 2;
      }
      if (absl::Status st = kubeop::InstallCrd(**client, text.str(), milliseconds(30'000));
          !st.ok()) {
        log::Error("start_failed", {{"error", std::string(st.message())}});
        return 1;
      }
      log::Info("crd_installed", {{"file", f->install_crd}});
    }
    kubeop::OperatorOptions o = f->options;
    if (o.identity.empty()) {
      char host[HOST_NAME_MAX + 1] = {};
      gethostname(host, sizeof(host) - 1);
      o.identity = StrCat(host, "_", getpid());
    }
    o.resync = f->resync;
    o.lease_duration = f->lease.lease_duration;
    o.renew_deadline = f->lease.renew_deadline;
    o.retry_period = f->lease.retry_period;
    metrics::Registry registry;
    kubeop::Operator op(**client, o, registry);
    // /metrics, /healthz (the process runs) and /readyz (its caches are synced).
    auto ops = MakeOpsServer(
        *listen, {[&registry] { return registry.Exposition(); }, [&op] { return op.Synced(); },
                  [&op] {
                    return StrCat(R"({"ready":)", op.Synced() ? "true" : "false", R"(,"leader":)",
                                  op.Leading() ? "true" : "false", "}");
                  }});
    if (!ops.ok()) {
      log::Error("start_failed", {{"error", std::string(ops.status().message())}});
      return 1;
    }
    if (!process.Start(**ops).ok()) return 1;
    log::Info("listening", {{"protocol", "metrics"}, {"port", (*ops)->port()}});
    if (!process.Start(op).ok()) return 1;
    log::Info("operator_started",
              {{"identity", o.identity},
               {"namespace", o.namespace_name.empty() ? "*" : o.namespace_name}});
    return process.Run();
  };
}

}  // namespace galley::cli
