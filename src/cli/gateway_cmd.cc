// `galley gateway`: the front door over a static list of replicas.
#include <iostream>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/gateway_flags.h"
#include "cli/kube_flags.h"
#include "cli/listen.h"
#include "common/lifecycle.h"
#include "common/log.h"
#include "common/strings.h"
#include "gateway/gateway_main.h"
#include "kube/client.h"
#include "kubefleet/endpoint_replicas.h"

namespace galley::cli {

Runner AddGatewayCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("gateway", "Run the gateway in front of model replicas");
  auto flags = std::make_shared<HttpFlags>();
  auto opts = std::make_shared<gateway::GatewayRunOptions>();
  auto replicas = std::make_shared<std::string>();
  flags->Add(cmd);
  Flag(cmd, "replicas", *replicas, "replicas as HOST:PORT,HOST:PORT,... (or --kube-endpoints)");
  auto pipelines = std::make_shared<PipelineFlags>();
  auto served = std::make_shared<std::string>();
  pipelines->Add(cmd);
  Flag(cmd, "models", *served,
       "the models the replicas serve, as NAME,NAME,... (what --pipelines may call)");
  auto kube = std::make_shared<KubeFlags>();
  auto kube_on = std::make_shared<bool>(false);
  auto kube_ns = std::make_shared<std::string>();
  cmd->add_flag("--kube-endpoints", *kube_on,
                "replicas from the EndpointSlices of every InferenceModel's Service (label "
                "galley.dev/model), routed by model name");
  Flag(cmd, "kube-namespace", *kube_ns, "--kube-endpoints: only this namespace (default: all)");
  kube->Add(cmd);
  AddGatewayPolicyFlags(cmd, *opts);
  auto async = std::make_shared<std::array<std::string, 2>>(
      std::array<std::string, 2>{"", gateway::AsyncJobsOptions{}.stream});
  Flag(cmd, "queue-redis", (*async)[0],
       "asynchronous requests (Prefer: respond-async) go to a Redis stream at HOST:PORT that "
       "replicas consume (galley serve --queue-redis); empty: off");
  Flag(cmd, "queue-stream", (*async)[1], "queue-redis: the stream");
  return [cmd, flags, opts, replicas, async, kube, kube_on, kube_ns, pipelines, served]() -> int {
    if (!cmd->parsed()) return -1;
    if (absl::Status st = flags->Apply(opts->http, opts->metrics_http); !st.ok()) {
      return FlagError(st);
    }
    if (replicas->empty() == !*kube_on) {
      std::cerr << "give either --replicas HOST:PORT,... or --kube-endpoints\n";
      return 2;
    }
    opts->frontend.default_timeout = flags->default_timeout;
    opts->drain_delay = flags->drain_delay;
    opts->grace_period = flags->grace_period;
    FinishGatewayPolicy(*opts);
    std::vector<std::string> models;
    for (std::string_view m : Split(*served, ',')) {
      if (!StripWhitespace(m).empty()) models.emplace_back(StripWhitespace(m));
    }
    if (absl::Status st = pipelines->Apply(*opts, std::move(models)); !st.ok()) {
      return FlagError(st);
    }
    if (!(*async)[0].empty()) {
      auto address = redis::ParseRedisAddress((*async)[0]);
      if (!address.ok()) {
        std::cerr << "--queue-redis: " << address.status().message() << "\n";
        return 2;
      }
      opts->async_jobs = gateway::AsyncJobsOptions{};
      opts->async_jobs->address = *address;
      opts->async_jobs->stream = (*async)[1];
    }
    // Blocks the stop signals before any thread starts (the informer's too).
    ProcessRunner process({opts->drain_delay, opts->grace_period}, SteadyClock::Get());
    if (*kube_on) {
      auto config = kube->Load();
      if (!config.ok()) {
        std::cerr << "galley gateway: " << config.status().message() << "\n";
        return 2;
      }
      kube::ClientOptions co;
      co.user_agent = "galley-gateway";
      auto client = kube::Client::Create(*config, co);
      if (!client.ok()) {
        std::cerr << "galley gateway: " << client.status().message() << "\n";
        return 2;
      }
      auto source = kubefleet::EndpointSliceReplicas::Start(client->get(), *kube_ns,
                                                            std::chrono::seconds(30));
      if (!source.ok()) {
        log::Error("start_failed", {{"error", std::string(source.status().message())}});
        return 1;
      }
      return gateway::RunGateway(*opts, **source, process);
    }
    std::vector<fleet::ReplicaEndpoint> list;
    for (std::string_view item : Split(*replicas, ',')) {
      item = StripWhitespace(item);
      if (item.empty()) continue;
      auto hp = ParseListen(item);
      if (!hp.ok()) {
        std::cerr << "--replicas: " << hp.status().message() << "\n";
        return 2;
      }
      list.push_back({std::string(item), hp->host, hp->port, true, {}});
    }
    if (list.empty()) {
      std::cerr << "--replicas: give at least one HOST:PORT\n";
      return 2;
    }
    fleet::StaticReplicaSource source(std::move(list));
    return gateway::RunGateway(*opts, source, process);
  };
}

}  // namespace galley::cli
