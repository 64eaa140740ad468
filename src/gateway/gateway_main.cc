#include "gateway/gateway_main.h"

#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "common/log.h"
#include "grpc/grpc_frontend.h"
#include "http/ops_listener.h"
#include "http/tls.h"
#include "inference/model_service.h"
#include "model/vader_backend.h"
#include "upstream/http_upstream.h"

#ifndef GALLEY_VERSION
#define GALLEY_VERSION "dev"
#endif

namespace galley::gateway {
namespace {

GatewayState State(bool draining, bool fallback_ready, const Gateway& gateway, bool holds) {
  if (draining) return GatewayState::kDraining;
  if (gateway.ReadyReplicas() > 0) return GatewayState::kServing;
  if (holds) return GatewayState::kHolding;
  return fallback_ready ? GatewayState::kFallbackOnly : GatewayState::kDraining;
}

// Logs `ready` (what `make run` and the tests wait for) once /v2/health/ready would say 200: a
// replica is ready, requests are held for one, or (with --ready-on-fallback) the fallback
// answers. Reads the gateway's state every 20 ms until then.
void LogReadyWhenServing(boost::asio::steady_timer& timer, const Gateway& gateway, bool holds,
                         bool ready_on_fallback) {
  const int replicas = gateway.ReadyReplicas();
  if (replicas > 0 || holds || ready_on_fallback) {
    const char* state = replicas > 0 ? "serving" : holds ? "holding" : "fallback_only";
    log::Info("ready", {{"role", "gateway"}, {"state", state}, {"replicas_ready", replicas}});
    return;
  }
  timer.expires_after(std::chrono::milliseconds(20));
  timer.async_wait([&timer, &gateway, holds, ready_on_fallback](boost::system::error_code ec) {
    if (!ec) LogReadyWhenServing(timer, gateway, holds, ready_on_fallback);
  });
}

void RefreshHealthEvery(boost::asio::steady_timer& timer, rpc::GrpcFrontend& grpc,
                        std::chrono::milliseconds period) {
  grpc.RefreshHealth();
  timer.expires_after(period);
  timer.async_wait([&timer, &grpc, period](boost::system::error_code ec) {
    if (!ec) RefreshHealthEvery(timer, grpc, period);
  });
}

}  // namespace

int RunGateway(const GatewayRunOptions& options, fleet::ReplicaSource& source,
               ProcessRunner& process, std::function<void(uint16_t)> after_start) {
  const Clock& clock = SteadyClock::Get();
  // Checked before anything starts: a bad key file stops the start with its line.
  std::shared_ptr<ApiKeys> api_keys;
  if (!options.api_keys_file.empty()) {
    auto keys = ApiKeys::Load(options.api_keys_file);
    if (!keys.ok()) {
      log::Error("start_failed", {{"error", std::string(keys.status().message())}});
      return process.Abort();
    }
    log::Info("api_keys_loaded", {{"keys", (*keys)->size()}});
    api_keys = std::move(keys).value();
  }
  metrics::Registry registry;
  inference::ModelMetrics model_metrics(registry);
  protocol::FrontendMetrics frontend_metrics(registry);
  GatewayMetrics metrics(registry);

  // The fallback: the CPU sentiment model, in process, behind its own bounded queue.
  inference::ModelService fallback;
  {
    std::vector<std::unique_ptr<model::Backend>> instances;
    instances.push_back(std::make_unique<model::VaderBackend>(
        options.frontend.fallback_model, std::max(1, options.fallback.batch.max_batch_size)));
    fallback.AddModel(std::make_unique<inference::ModelRunner>(
        std::move(instances), options.fallback, clock, &model_metrics));
  }
  if (!process.Start(fallback).ok()) return 1;
  if (!fallback.ModelReady(options.frontend.fallback_model, "")) {
    log::Error("start_failed",
               {{"error", fallback.UnavailableMessage(options.frontend.fallback_model)}});
    return process.Abort();
  }

  upstream::HttpUpstreamOptions upstream_options;
  if (!options.upstream_tls_ca.empty()) {
    auto tls = http::MakeTlsClientContext(options.upstream_tls_ca, options.upstream_tls_cert,
                                          options.upstream_tls_key);
    if (!tls.ok()) {
      log::Error("start_failed", {{"error", std::string(tls.status().message())}});
      return process.Abort();
    }
    upstream_options.tls = std::move(tls).value();
  }
  upstream::HttpUpstream upstream(upstream_options);
  // Whatever runs on the upstream's threads refers to what is declared after it: the upstream
  // is shut down before those go, on every way out.
  struct ShutdownOnExit {
    upstream::HttpUpstream& u;
    ~ShutdownOnExit() { u.Shutdown(); }
  };
  GatewayOptions gateway_options = options.gateway;
  gateway_options.models.push_back(options.frontend.analyze_model);
  Gateway gateway(source, upstream, upstream.io(), clock, metrics, gateway_options);
  // Before the front-end's options: whatever holds a pointer to it goes first.
  auto made = tracing::TracerFor(options.otlp_endpoint, options.otlp_service_name);
  if (!made.ok()) {
    log::Error("start_failed", {{"error", std::string(made.status().message())}});
    upstream.Shutdown();
    return process.Abort();
  }
  const std::unique_ptr<tracing::Tracer> tracer = std::move(made).value();
  http::Server* server_ptr = nullptr;
  GatewayFrontendOptions fe = options.frontend;
  fe.server_version = GALLEY_VERSION;
  fe.api_keys = std::move(api_keys);
  fe.tracer = tracer.get();
  if (options.async_jobs) {
    auto jobs = AsyncJobs::Create(*options.async_jobs);
    if (!jobs.ok()) {
      log::Error("start_failed", {{"error", std::string(jobs.status().message())}});
      upstream.Shutdown();
      return process.Abort();
    }
    fe.async_jobs = std::move(jobs).value();
  }
  if (options.chat) {
    ChatOptions chat_options = *options.chat;
    chat_options.tracer = tracer.get();
    auto chat =
        ChatService::Create(chat_options, options.pipeline_models, gateway, registry, clock);
    if (!chat.ok()) {
      log::Error("start_failed", {{"error", std::string(chat.status().message())}});
      upstream.Shutdown();
      return process.Abort();
    }
    fe.chat = std::move(chat).value();
    log::Info("pipelines_loaded",
              {{"file", options.chat->pipelines_file}, {"chat", options.chat->redis.has_value()}});
  }
  const std::shared_ptr<AsyncJobs> async_jobs = fe.async_jobs;  // stopped after the server
  GatewayFrontend frontend = MakeGatewayFrontend(
      gateway, fallback, registry, frontend_metrics, metrics, clock, fe,
      [&] {
        return State(gateway.draining(), fallback.Ready(), gateway,
                     options.gateway.hold_for_replica);
      },
      [&frontend_metrics, &server_ptr] {
        if (server_ptr == nullptr) return;
        frontend_metrics.SyncConnections(server_ptr->stats().open_connections.load(),
                                         server_ptr->stats().evicted_connections.load());
      });
  const http::Handler grpc_target = frontend.handler;  // the gRPC door's calls take the REST path
  // The operations listener answers /metrics and the probes to the very end (stopped last).
  auto ops = http::StartOpsListener(options.metrics_http, frontend.handler);
  auto server = ops.ok() ? http::Server::Create(options.http, std::move(frontend.handler),
                                                std::move(frontend.on_rejected))
                         : ops.status();
  if (!server.ok()) {
    log::Error("start_failed", {{"error", std::string(server.status().message())}});
    if (ops.ok() && *ops) (*ops)->Stop();
    upstream.Shutdown();  // before `gateway` goes: its timers run on the upstream's threads
    return process.Abort();
  }
  server_ptr = server->get();
  // The gRPC door: ready as /v2/health/ready says 200.
  std::unique_ptr<rpc::GrpcFrontend> grpc;
  boost::asio::steady_timer health_timer(upstream.io());
  boost::asio::steady_timer ready_timer(upstream.io());
  const ShutdownOnExit shutdown_upstream{upstream};  // before the timers and `gateway` go
  // `ready` is logged once the first probes have said whether a replica serves.
  gateway.OnFirstRound([&] {
    boost::asio::post(upstream.io(), [&] {
      LogReadyWhenServing(ready_timer, gateway, options.gateway.hold_for_replica,
                          options.frontend.ready_on_fallback);
    });
  });
  // The gRPC door starts after the HTTP one, so it drains first: its calls in flight finish
  // while HTTP has stopped accepting, then HTTP waits for its connections.
  const bool started = [&] {
    if (!process.Start(gateway).ok()) return false;
    if (!process.Start(**server).ok()) return false;
    if (options.grpc_port >= 0) {
      rpc::GrpcOptions go = rpc::GrpcOptionsLike(options.http, options.grpc_port);
      go.default_timeout = options.frontend.default_timeout;
      go.server_name = "galley-gateway";
      go.server_version = GALLEY_VERSION;
      go.clock = &clock;
      rpc::GrpcProxy proxy{
          grpc_target, [&] {
            const GatewayState s = State(gateway.draining(), fallback.Ready(), gateway,
                                         options.gateway.hold_for_replica);
            return s == GatewayState::kServing || s == GatewayState::kHolding ||
                   (s == GatewayState::kFallbackOnly && options.frontend.ready_on_fallback);
          }};
      auto created = rpc::GrpcFrontend::CreateProxy(std::move(proxy), std::move(go));
      if (!created.ok()) {
        log::Error("start_failed",
                   {{"protocol", "grpc"}, {"error", std::string(created.status().message())}});
        process.Abort();
        return false;
      }
      grpc = std::move(created).value();
      if (!process.Start(*grpc).ok()) return false;
      log::Info("listening", {{"protocol", "grpc"},
                              {"host", options.http.host},
                              {"port", grpc->port()},
                              {"role", "gateway"}});
      // Health Watch streams follow the gateway's readiness, read every health interval.
      RefreshHealthEvery(health_timer, *grpc, options.gateway.health_interval);
    }
    return true;
  }();
  int rc = 1;
  if (started) {
    log::Info("listening",
              {{"host", options.http.host}, {"port", (*server)->port()}, {"role", "gateway"}});
    if (after_start) after_start((*server)->port());
    rc = process.Run();
  }
  if (async_jobs) async_jobs->Stop();
  if (*ops) (*ops)->Stop();
  return rc;
}

}  // namespace galley::gateway
