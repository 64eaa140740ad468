// The `galley serve` process: load the model, serve HTTP, drain and stop on SIGTERM/SIGINT.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "http/server.h"
#include "inference/model_repository.h"
#include "inference/model_runner.h"
#include "queue/amqp_consumer.h"
#include "queue/redis_consumer.h"
#include "serve/http_handlers.h"

namespace galley::serve {

struct ServeOptions {
  http::ServerOptions http;
  std::optional<http::ServerOptions> metrics_http;  // set: /metrics on its own listener
  HttpFrontendOptions frontend;
  inference::RunnerOptions runner;
  // Models to serve: every model of this repository (inference/model_repository.h). Empty: only the
  // built-in VADER sentiment model, named frontend.analyze_model, with the options below.
  std::string model_repository;
  int model_instances = 1;  // built-in model: instances (worker threads)
  int grpc_port = 8081;     // gRPC front-end on the HTTP host (0: a free port); -1: no gRPC
  // Set: also consume work from this Redis stream (docs/queues.md) into the same models.
  std::optional<queue::RedisStreamOptions> queue;
  // Set: also consume work from this RabbitMQ queue (docs/queues.md, "RabbitMQ").
  std::optional<queue::AmqpOptions> amqp;
  // Set: traces go to this OTLP/HTTP collector (tracing/tracer.h), as this service.
  std::string otlp_endpoint;
  std::string otlp_service_name = "galley-serve";
  std::chrono::milliseconds drain_delay{5'000};    // keep serving after SIGTERM, not ready
  std::chrono::milliseconds grace_period{30'000};  // from SIGTERM to exit, at most
};

// Runs the server until SIGTERM or SIGINT, then shuts down gracefully. Returns the exit code:
// 0 after a clean shutdown, 1 if start-up failed. Call from main() before starting any thread.
// `backends` makes the repository's models (inference/builtin_backends.h lists the built-in ones).
int RunServe(const ServeOptions& options, const inference::BackendRegistry& backends);

}  // namespace galley::serve
