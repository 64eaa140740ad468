#include "serve/serve_main.h"

#include <thread>

#include "common/log.h"
#include "common/signals.h"
#include "model/vader_backend.h"
#include "serve/model_service.h"

#ifndef GALLEY_VERSION
#define GALLEY_VERSION "dev"
#endif

namespace galley::serve {
namespace {

double Secs(std::chrono::milliseconds ms) { return ms.count() / 1000.0; }

boost::json::object ConfigFields(const ServeOptions& o) {
  return {{"host", o.http.host},
          {"port", o.http.port},
          {"io_threads", o.http.io_threads},
          {"max_body_bytes", o.http.max_body_bytes},
          {"max_header_bytes", o.http.max_header_bytes},
          {"max_connections", o.http.max_connections},
          {"idle_timeout_s", Secs(o.http.idle_timeout)},
          {"request_timeout_s", Secs(o.http.request_timeout)},
          {"model", o.frontend.analyze_model},
          {"model_instances", o.model_instances},
          {"max_batch_size", o.runner.batch.max_batch_size},
          {"queue_capacity", o.runner.queue_capacity},
          {"default_timeout_s", Secs(o.frontend.default_timeout)},
          {"drain_delay_s", Secs(o.drain_delay)},
          {"grace_period_s", Secs(o.grace_period)}};
}

// Warm-up input for the sentiment model: a few texts that touch the lexicon and the rules.
std::vector<model::InferInput> SentimentWarmup() {
  model::InferInput in;
  model::Tensor t{"text", model::DataType::kBytes, {3}, {}, {}};
  t.bytes = {"The food was great!", "The service was NOT good :(", "It is a table."};
  in.inputs.push_back(std::move(t));
  return {std::move(in)};
}

}  // namespace

int RunServe(const ServeOptions& options) {
  // Block the stop signals in every thread; this thread takes them below.
  BlockStopSignals();

  const Clock& clock = SteadyClock::Get();
  log::Info("starting", {{"version", GALLEY_VERSION}, {"config", ConfigFields(options)}});

  metrics::Registry registry;
  ServeMetrics metrics(registry);
  ModelService service;
  {
    std::vector<std::unique_ptr<model::Backend>> instances;
    for (int i = 0; i < std::max(1, options.model_instances); ++i) {
      instances.push_back(std::make_unique<model::VaderBackend>(
          options.frontend.analyze_model, std::max(1, options.runner.batch.max_batch_size)));
    }
    service.AddModel(std::make_unique<ModelRunner>(std::move(instances), options.runner, clock, &metrics));
  }

  HttpFrontendOptions fe = options.frontend;
  fe.server_version = GALLEY_VERSION;
  http::Server* server_ptr = nullptr;
  HttpFrontend frontend = MakeHttpFrontend(service, registry, metrics, clock, fe, [&metrics, &server_ptr] {
    if (server_ptr != nullptr) {
      metrics.http_connections_gauge.Set(static_cast<double>(server_ptr->stats().open_connections.load()));
    }
  });
  auto server = http::Server::Create(options.http, std::move(frontend.handler),
                                     std::move(frontend.on_rejected));
  if (!server.ok()) {
    log::Error("start_failed", {{"error", std::string(server.status().message())}});
    return 1;
  }
  server_ptr = server->get();
  (*server)->Start();
  log::Info("listening", {{"host", options.http.host}, {"port", (*server)->port()}});

  // Live from here; ready once every model is loaded and warmed up.
  bool load_failed = false;
  for (const auto& md : service.Models()) {
    ModelRunner* runner = service.runner(md.name);
    if (absl::Status st = runner->Load(SentimentWarmup()); !st.ok()) {
      log::Error("model_load_failed", {{"model", md.name}, {"error", std::string(st.message())}});
      load_failed = true;
      continue;
    }
    runner->Start();
  }
  if (!load_failed) log::Info("ready", {});

  const int sig = WaitForStopSignal();
  const TimePoint stop_start = clock.Now();
  const TimePoint grace_deadline = stop_start + options.grace_period;
  service.SetDraining();
  log::Info("draining", {{"signal", StopSignalName(sig)},
                         {"drain_delay_s", Secs(options.drain_delay)}});
  // Keep serving while load balancers notice that ready is false (a real wait, not a sync).
  const TimePoint drain_end = std::min(stop_start + options.drain_delay, grace_deadline);
  std::this_thread::sleep_until(drain_end);

  (*server)->StopAccepting();
  const bool clean = (*server)->WaitForConnectionsClosed(grace_deadline);
  service.Stop();
  (*server)->Stop();
  const double took = std::chrono::duration<double>(clock.Now() - stop_start).count();
  log::Stopped(took, clean);
  return 0;
}

}  // namespace galley::serve
