// The flags `galley gateway` and `galley up` share (gateway_flags.h).
#include "cli/gateway_flags.h"

#include <iostream>

#include "cli/flags.h"
#include "redis/redis_client.h"

namespace galley::cli {

void AddGatewayPolicyFlags(CLI::App* cmd, gateway::GatewayRunOptions& o, int64_t& try_timeout_ms,
                           int64_t& health_interval_ms, int64_t& eject_ms, int64_t& break_ms) {
  Flag(cmd, "max-attempts", o.gateway.max_attempts, "first try plus retries")
      ->check(CLI::Range(1, 10));
  Flag(cmd, "try-timeout-ms", try_timeout_ms, "deadline of one attempt")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "try-timeout-multiplier", o.gateway.attempt_latency.multiplier,
       "an attempt with another replica to go to gets this times the model's recent p99 answer "
       "time (at least 50 ms, at most --try-timeout-ms); 0: always --try-timeout-ms")
      ->check(CLI::Range(0.0, 1000.0));
  Flag(cmd, "health-interval-ms", health_interval_ms, "ready-probe period")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "eject-after-failures", o.gateway.eject_after_failures,
       "consecutive failures that eject a replica");
  Flag(cmd, "eject-ms", eject_ms, "base ejection time (jittered up to 1.5x)")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "breaker-min-calls", o.gateway.replica_breaker.minimum_throughput,
       "calls in the window before a breaker may open");
  Flag(cmd, "breaker-failure-ratio", o.gateway.replica_breaker.failure_ratio,
       "failure ratio that opens a breaker");
  Flag(cmd, "breaker-break-ms", break_ms, "first open period of a breaker")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "otlp-endpoint", o.otlp_endpoint,
       "send traces (W3C traceparent continued; pipelines and chat turns with a span per step) "
       "to this OTLP/HTTP collector, http://HOST:PORT; `galley up` passes it to its replicas; "
       "empty: no tracing");
  Flag(cmd, "grpc-port", o.grpc_port,
       "gRPC (Open Inference Protocol) door on the --listen host, its calls taking the REST "
       "path (keys as `authorization` or `x-api-key` metadata); 0: a free port; -1: off")
      ->check(CLI::Range(-1, 65535));
  Flag(cmd, "max-inflight", o.frontend.max_inflight, "requests in the gateway before 429 busy");
  Flag(cmd, "fallback-queue-capacity", o.fallback.queue_capacity,
       "fallback model queue before 429 busy");
  Flag(cmd, "model", o.frontend.analyze_model, "the replicas' model behind /inference/analyze");
  Flag(cmd, "fallback-model", o.frontend.fallback_model,
       "name of the in-process VADER fallback model");
  Flag(cmd, "api-keys-file", o.api_keys_file,
       "require an API key (Authorization: Bearer KEY or X-API-Key: KEY) listed by its SHA-256 "
       "in this file: NAME SHA256-HEX [rate=R] [burst=B] [models=a,b] per line");
  Flag(cmd, "upstream-tls-ca", o.upstream_tls_ca,
       "PEM CA bundle: reach replicas over TLS, their certificates verified against it and their "
       "address");
  Flag(cmd, "upstream-tls-cert", o.upstream_tls_cert,
       "PEM certificate the gateway presents to replicas (mutual TLS)");
  Flag(cmd, "upstream-tls-key", o.upstream_tls_key, "PEM private key of --upstream-tls-cert");
  cmd->add_flag("--ready-on-fallback", o.frontend.ready_on_fallback,
                "/v2/health/ready says 200 while only the fallback answers (no replica ready)")
      ->envname("GALLEY_READY_ON_FALLBACK");
}

bool ApplyGatewayPolicyFlags(gateway::GatewayRunOptions& o, int64_t try_timeout_ms,
                             int64_t health_interval_ms, int64_t eject_ms, int64_t break_ms) {
  o.gateway.try_timeout = std::chrono::milliseconds(try_timeout_ms);
  o.gateway.health_interval = std::chrono::milliseconds(health_interval_ms);
  o.gateway.health_timeout = std::min(o.gateway.health_interval, std::chrono::milliseconds(1000));
  o.gateway.eject_duration = std::chrono::milliseconds(eject_ms);
  o.gateway.replica_breaker.break_duration = std::chrono::milliseconds(break_ms);
  o.gateway.model_breaker = o.gateway.replica_breaker;
  return true;
}

void AddPipelineFlags(CLI::App* cmd, PipelineFlags& f) {
  Flag(cmd, "pipelines", f.file,
       "JSON file of inference pipelines (docs/pipelines.md), run at POST /v1/pipelines/NAME; "
       "checked at start against the models the replicas serve");
  Flag(cmd, "chat-redis", f.chat_redis,
       "POST /v1/chat runs the chat pipeline, each conversation kept in Redis at HOST:PORT "
       "(needs --pipelines)");
  Flag(cmd, "chat-pipeline", f.chat_pipeline, "the pipeline /v1/chat runs");
  Flag(cmd, "conversation-ttl-s", f.conversation_ttl_s,
       "a conversation expires this long after its last turn")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "conversation-max-entries", f.conversation_max_entries,
       "history entries kept per conversation (two per turn), newest")
      ->check(CLI::Range(int64_t{2}, int64_t{100'000}));
}

bool ApplyPipelineFlags(gateway::GatewayRunOptions& o, const PipelineFlags& f,
                        std::vector<std::string> served_models) {
  if (f.file.empty()) {
    if (!f.chat_redis.empty()) {
      std::cerr << "--chat-redis needs --pipelines FILE (the chat pipeline)\n";
      return false;
    }
    return true;
  }
  gateway::ChatOptions chat;
  chat.pipelines_file = f.file;
  chat.chat_pipeline = f.chat_pipeline;
  chat.step_breaker = o.gateway.model_breaker;
  chat.conversation.ttl = std::chrono::seconds(f.conversation_ttl_s);
  chat.conversation.max_entries = f.conversation_max_entries;
  if (!f.chat_redis.empty()) {
    auto address = redis::ParseRedisAddress(f.chat_redis);
    if (!address.ok()) {
      std::cerr << "--chat-redis: " << address.status().message() << "\n";
      return false;
    }
    chat.redis = *address;
  }
  o.chat = std::move(chat);
  o.pipeline_models = std::move(served_models);
  return true;
}

}  // namespace galley::cli
