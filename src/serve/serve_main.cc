#include "serve/serve_main.h"

#include <filesystem>

#include "common/lifecycle.h"
#include "common/log.h"
#include "common/strings.h"
#include "grpc/grpc_frontend.h"
#include "http/ops_listener.h"
#include "inference/model_service.h"
#include "model/vader_backend.h"

#ifndef GALLEY_VERSION
#define GALLEY_VERSION "dev"
#endif

namespace galley::serve {
namespace {

using inference::BackendFactory;
using inference::BackendRegistry;
using inference::ModelRunner;
using inference::ModelService;
using inference::RepositoryEntry;
using inference::RunnerOptions;

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
          {"model_repository", o.model_repository},
          {"model_instances", o.model_instances},
          {"max_batch_size", o.runner.batch.max_batch_size},
          {"queue_capacity", o.runner.queue_capacity},
          {"default_timeout_s", Secs(o.frontend.default_timeout)},
          {"drain_delay_s", Secs(o.drain_delay)},
          {"grace_period_s", Secs(o.grace_period)}};
}

// The built-in model when no repository is given: VADER, named by the analyze model option.
void AddBuiltinModel(const ServeOptions& options, const Clock& clock,
                     inference::ModelMetrics& metrics, ModelService& service) {
  std::vector<std::unique_ptr<model::Backend>> instances;
  for (int i = 0; i < std::max(1, options.model_instances); ++i) {
    instances.push_back(std::make_unique<model::VaderBackend>(
        options.frontend.analyze_model, std::max(1, options.runner.batch.max_batch_size)));
  }
  service.AddModel(
      std::make_unique<ModelRunner>(std::move(instances), options.runner, clock, &metrics));
}

// Every model of the repository; a model that cannot be made is logged and recorded as
// unavailable, and the others are served. Fails only when the repository cannot be read.
absl::Status AddRepositoryModels(const std::string& repository, const BackendRegistry& backends,
                                 const Clock& clock, inference::ModelMetrics& metrics,
                                 ModelService& service) {
  auto entries = inference::ScanRepository(repository);
  if (!entries.ok()) return entries.status();
  std::error_code ec;
  const auto absolute = std::filesystem::absolute(repository, ec);
  service.SetRepositoryRoot(ec ? repository : absolute.lexically_normal().string());
  for (RepositoryEntry& e : *entries) {
    absl::Status st = e.status;
    std::vector<std::unique_ptr<model::Backend>> instances;
    const BackendFactory* factory = st.ok() ? backends.Find(e.config.platform) : nullptr;
    if (st.ok() && factory == nullptr) {
      st = absl::UnimplementedError(StrCat("model '", e.name, "': no backend for platform '",
                                           e.config.platform, "' in this build"));
    }
    for (int i = 0; st.ok() && i < e.config.instance_count; ++i) {
      auto backend = (*factory)(e.config, e.location);
      if (!backend.ok()) {
        st = backend.status();
        break;
      }
      instances.push_back(std::move(backend).value());
    }
    if (!st.ok()) {
      log::Error("model_load_failed", {{"model", e.name}, {"error", std::string(st.message())}});
      service.AddUnavailable(e.name, std::string(st.message()));
      continue;
    }
    RunnerOptions ro;
    ro.queue_capacity = e.config.max_queue_size;
    ro.batch = e.config.batch;
    log::Info("model_found", {{"model", e.name},
                              {"version", e.location.version},
                              {"platform", e.config.platform},
                              {"max_batch_size", e.config.max_batch_size},
                              {"dynamic_batching", e.config.dynamic_batching},
                              {"instances", e.config.instance_count}});
    service.AddModel(std::make_unique<ModelRunner>(std::move(instances), ro, clock, &metrics));
  }
  return absl::OkStatus();
}

}  // namespace

int RunServe(const ServeOptions& options, const BackendRegistry& backends) {
  const Clock& clock = SteadyClock::Get();
  // Blocks the stop signals in every thread; Run() takes them.
  ProcessRunner process({options.drain_delay, options.grace_period}, clock);
  log::Info("starting", {{"version", GALLEY_VERSION}, {"config", ConfigFields(options)}});

  metrics::Registry registry;
  inference::ModelMetrics model_metrics(registry);
  protocol::FrontendMetrics metrics(registry);
  ModelService service;
  if (options.model_repository.empty()) {
    AddBuiltinModel(options, clock, model_metrics, service);
  } else if (absl::Status st = AddRepositoryModels(options.model_repository, backends, clock,
                                                   model_metrics, service);
             !st.ok()) {
    log::Error("start_failed", {{"error", std::string(st.message())}});
    return 1;
  }

  auto made = tracing::TracerFor(options.otlp_endpoint, options.otlp_service_name);
  if (!made.ok()) {
    log::Error("start_failed", {{"error", std::string(made.status().message())}});
    return 1;
  }
  const std::unique_ptr<tracing::Tracer> tracer = std::move(made).value();
  HttpFrontendOptions fe = options.frontend;
  fe.server_version = GALLEY_VERSION;
  fe.tracer = tracer.get();
  http::Server* server_ptr = nullptr;
  HttpFrontend frontend =
      MakeHttpFrontend(service, registry, metrics, clock, fe, [&metrics, &server_ptr] {
        if (server_ptr == nullptr) return;
        metrics.SyncConnections(server_ptr->stats().open_connections.load(),
                                server_ptr->stats().evicted_connections.load());
      });
  // The operations listener answers /metrics and the probes to the very end (stopped last).
  auto ops = http::StartOpsListener(options.metrics_http, frontend.handler);
  if (!ops.ok()) {
    log::Error("start_failed", {{"error", std::string(ops.status().message())}});
    return 1;
  }
  auto server = http::Server::Create(options.http, std::move(frontend.handler),
                                     std::move(frontend.on_rejected));
  if (!server.ok()) {
    log::Error("start_failed", {{"error", std::string(server.status().message())}});
    return 1;
  }
  server_ptr = server->get();
  if (!process.Start(**server).ok()) return 1;
  log::Info("listening", {{"host", options.http.host}, {"port", (*server)->port()}});

  // The gRPC front-end (src/grpc): on the HTTP host, with REST's body limit, default timeout,
  // connection cap, first-byte timeout and idle time.
  std::unique_ptr<rpc::GrpcFrontend> grpc;
  if (options.grpc_port >= 0) {
    rpc::GrpcOptions go = rpc::GrpcOptionsLike(options.http, options.grpc_port);
    go.default_timeout = options.frontend.default_timeout;
    go.server_name = options.frontend.server_name;
    go.server_version = GALLEY_VERSION;
    go.metrics = &metrics;
    go.clock = &clock;
    go.tracer = tracer.get();
    auto created = rpc::GrpcFrontend::Create(service, std::move(go));
    if (!created.ok()) {
      log::Error("start_failed",
                 {{"protocol", "grpc"}, {"error", std::string(created.status().message())}});
      return process.Abort();
    }
    grpc = std::move(created).value();
    if (!process.Start(*grpc).ok()) return 1;
    log::Info("listening",
              {{"protocol", "grpc"}, {"host", options.http.host}, {"port", grpc->port()}});
  }

  // Live from here; ready once every model has loaded (or failed: the others still serve).
  if (!process.Start(service).ok()) return 1;
  if (service.loaded_models() > 0) {
    log::Info("ready", {{"models", service.loaded_models()}});
  } else {
    log::Error("no_model_loaded", {});
  }
  if (grpc) grpc->RefreshHealth();  // gRPC health Watch streams learn that models loaded

  // The queue consumers start once the models are loaded: they fetch only what they can run.
  // On SIGTERM they stop fetching at once and finish and acknowledge what they hold; what they
  // cannot finish by the grace deadline stays pending for another consumer.
  std::unique_ptr<queue::RedisStreamConsumer> consumer;
  if (options.queue) {
    queue::RedisStreamOptions qo = *options.queue;
    qo.tracer = tracer.get();
    consumer = std::make_unique<queue::RedisStreamConsumer>(service, qo, registry, clock);
    if (!process.Start(*consumer).ok()) return 1;
    log::Info("queue_consuming",
              {{"redis", StrCat(options.queue->address.host, ":", options.queue->address.port)},
               {"stream", options.queue->stream},
               {"group", options.queue->group},
               {"consumer", options.queue->consumer}});
  }
  std::unique_ptr<queue::AmqpConsumer> amqp;
  if (options.amqp) {
    queue::AmqpOptions ao = *options.amqp;
    ao.tracer = tracer.get();
    amqp = std::make_unique<queue::AmqpConsumer>(service, ao, registry, clock);
    if (!process.Start(*amqp).ok()) return 1;
    log::Info("queue_consuming", {{"amqp", StrCat(options.amqp->host, ":", options.amqp->port)},
                                  {"queue", options.amqp->queue},
                                  {"consumer", options.amqp->consumer}});
  }

  const int rc = process.Run();
  if (*ops) (*ops)->Stop();
  return rc;
}

}  // namespace galley::serve
