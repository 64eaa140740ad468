#include "gateway/gateway_main.h"

#include <thread>

#include "common/log.h"
#include "common/signals.h"
#include "gateway/http_upstream.h"
#include "model/vader_backend.h"
#include "serve/model_service.h"

#ifndef GALLEY_VERSION
#define GALLEY_VERSION "dev"
#endif

namespace galley::gateway {
namespace {

double Secs(std::chrono::milliseconds ms) { return ms.count() / 1000.0; }

}  // namespace

int RunGateway(const GatewayRunOptions& options, ReplicaSource& source,
               std::function<void(uint16_t)> after_start, std::function<void()> after_drain) {
  BlockStopSignals();
  const Clock& clock = SteadyClock::Get();
  metrics::Registry registry;
  serve::ServeMetrics serve_metrics(registry);
  GatewayMetrics metrics(registry);

  // The fallback: the CPU sentiment model, in process, behind its own bounded queue.
  serve::ModelService fallback;
  {
    std::vector<std::unique_ptr<model::Backend>> instances;
    instances.push_back(std::make_unique<model::VaderBackend>(
        options.frontend.fallback_model, std::max(1, options.fallback.batch.max_batch_size)));
    fallback.AddModel(std::make_unique<serve::ModelRunner>(std::move(instances), options.fallback,
                                                           clock, &serve_metrics));
  }
  model::InferInput warm;
  warm.inputs.push_back({"text", model::DataType::kBytes, {1}, {}, {"warm up"}});
  serve::ModelRunner* runner = fallback.runner(options.frontend.fallback_model);
  if (absl::Status st = runner->Load({warm}); !st.ok()) {
    log::Error("start_failed", {{"error", std::string(st.message())}});
    return 1;
  }
  runner->Start();

  HttpUpstream upstream;
  Gateway gateway(source, upstream, upstream.io(), clock, metrics, options.gateway);
  std::atomic<bool> draining{false};
  http::Server* server_ptr = nullptr;
  GatewayFrontendOptions fe = options.frontend;
  fe.server_version = GALLEY_VERSION;
  GatewayFrontend frontend = MakeGatewayFrontend(
      gateway, fallback, registry, serve_metrics, metrics, clock, fe,
      [&draining, &fallback] { return !draining.load() && fallback.Ready(); },
      [&serve_metrics, &server_ptr] {
        if (server_ptr != nullptr) {
          serve_metrics.http_connections_gauge.Set(
              static_cast<double>(server_ptr->stats().open_connections.load()));
        }
      });
  auto server = http::Server::Create(options.http, std::move(frontend.handler), std::move(frontend.on_rejected));
  if (!server.ok()) {
    log::Error("start_failed", {{"error", std::string(server.status().message())}});
    return 1;
  }
  server_ptr = server->get();
  gateway.Start();
  (*server)->Start();
  log::Info("listening", {{"host", options.http.host}, {"port", (*server)->port()}, {"role", "gateway"}});
  log::Info("ready", {{"role", "gateway"}});
  if (after_start) after_start((*server)->port());

  const int sig = WaitForStopSignal();
  const TimePoint stop_start = clock.Now();
  const TimePoint grace_deadline = stop_start + options.grace_period;
  draining.store(true);
  log::Info("draining", {{"signal", StopSignalName(sig)}, {"drain_delay_s", Secs(options.drain_delay)}});
  std::this_thread::sleep_until(std::min(stop_start + options.drain_delay, grace_deadline));
  (*server)->StopAccepting();
  const bool clean = (*server)->WaitForConnectionsClosed(grace_deadline);
  if (after_drain) after_drain();
  gateway.Stop();
  fallback.Stop();
  (*server)->Stop();
  upstream.Shutdown();  // before `gateway` goes: pending callbacks refer to it
  const double took = std::chrono::duration<double>(clock.Now() - stop_start).count();
  log::Stopped(took, clean);
  return 0;
}

}  // namespace galley::gateway
