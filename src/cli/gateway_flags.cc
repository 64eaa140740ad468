// The flags `galley gateway` and `galley up` share (gateway_flags.h).
#include "cli/gateway_flags.h"

#include <algorithm>

#include "cli/flags.h"
#include "redis/redis_client.h"

namespace galley::cli {

void AddGatewayPolicyFlags(CLI::App* cmd, gateway::GatewayRunOptions& o) {
  Flag(cmd, "max-attempts", o.gateway.max_attempts, "first try plus retries")
      ->check(CLI::Range(1, 10));
  DurationFlag(cmd, "try-timeout-ms", o.gateway.try_timeout, "deadline of one attempt")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "try-timeout-multiplier", o.gateway.attempt_latency.multiplier,
       "an attempt with another replica to go to gets this times the model's recent p99 answer "
       "time (at least 50 ms, at most --try-timeout-ms); 0: always --try-timeout-ms")
      ->check(CLI::Range(0.0, 1000.0));
  DurationFlag(cmd, "health-interval-ms", o.gateway.health_interval, "ready-probe period")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "eject-after-failures", o.gateway.eject_after_failures,
       "consecutive failures that eject a replica");
  DurationFlag(cmd, "eject-ms", o.gateway.eject_duration,
               "base ejection time (jittered up to 1.5x)")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "breaker-min-calls", o.gateway.replica_breaker.minimum_throughput,
       "calls in the window before a breaker may open");
  Flag(cmd, "breaker-failure-ratio", o.gateway.replica_breaker.failure_ratio,
       "failure ratio that opens a breaker");
  DurationFlag(cmd, "breaker-break-ms", o.gateway.replica_breaker.break_duration,
               "first open period of a breaker")
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

void FinishGatewayPolicy(gateway::GatewayRunOptions& o) {
  o.gateway.health_timeout = std::min(o.gateway.health_interval, std::chrono::milliseconds(1000));
  o.gateway.model_breaker = o.gateway.replica_breaker;
}

void PipelineFlags::Add(CLI::App* cmd) {
  Flag(cmd, "pipelines", file,
       "JSON file of inference pipelines (docs/pipelines.md), run at POST /v1/pipelines/NAME; "
       "checked at start against the models the replicas serve");
  Flag(cmd, "chat-redis", chat_redis,
       "POST /v1/chat runs the chat pipeline, each conversation kept in Redis at HOST:PORT "
       "(needs --pipelines)");
  Flag(cmd, "chat-pipeline", chat_pipeline, "the pipeline /v1/chat runs");
  DurationFlag<std::chrono::seconds>(cmd, "conversation-ttl-s", conversation_ttl,
                                     "a conversation expires this long after its last turn")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "conversation-max-entries", conversation_max_entries,
       "history entries kept per conversation (two per turn), newest")
      ->check(CLI::Range(int64_t{2}, int64_t{100'000}));
}

absl::Status PipelineFlags::Validate() const {
  if (file.empty() && !chat_redis.empty()) {
    return absl::InvalidArgumentError("--chat-redis needs --pipelines FILE (the chat pipeline)");
  }
  if (!chat_redis.empty()) {
    if (auto address = redis::ParseRedisAddress(chat_redis); !address.ok()) {
      return absl::InvalidArgumentError("--chat-redis: " + std::string(address.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::Status PipelineFlags::Apply(gateway::GatewayRunOptions& o,
                                  std::vector<std::string> served_models) const {
  if (absl::Status st = Validate(); !st.ok()) return st;
  if (file.empty()) return absl::OkStatus();
  gateway::ChatOptions chat;
  chat.pipelines_file = file;
  chat.chat_pipeline = chat_pipeline;
  chat.step_breaker = o.gateway.model_breaker;
  chat.conversation.ttl = conversation_ttl;
  chat.conversation.max_entries = conversation_max_entries;
  if (!chat_redis.empty()) chat.redis = *redis::ParseRedisAddress(chat_redis);
  o.chat = std::move(chat);
  o.pipeline_models = std::move(served_models);
  return absl::OkStatus();
}

}  // namespace galley::cli
