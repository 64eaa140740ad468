// Pipelines in the gateway (docs/pipelines.md): `POST /v1/pipelines/{name}` runs any configured
// pipeline over the request's tensors; `POST /v1/chat` runs the chat pipeline for one turn of a
// conversation kept in Redis (agents/conversation_store.h); `GET /v1/chat/{id}` reads one.
//
// Every model step goes to the replicas through Gateway::Forward (so it gets the gateway's
// replica choice, retries, per-attempt deadlines and model breakers) behind a circuit breaker of
// its own per pipeline step. Conversation reads and writes run on a small pool of threads, each
// with its own Redis connection; handlers never block on Redis.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "agents/conversation_store.h"
#include "common/clock.h"
#include "gateway/circuit_breaker.h"
#include "gateway/gateway.h"
#include "gateway/gateway_metrics.h"
#include "http/server.h"
#include "pipeline/graph.h"
#include "redis/redis_client.h"
#include "tracing/tracer.h"

namespace galley::gateway {

struct ChatOptions {
  std::string pipelines_file;          // the graphs (pipeline/graph.h's JSON form)
  std::string chat_pipeline = "chat";  // the one /v1/chat runs
  // Where conversations live; unset: /v1/chat answers 503 (the other routes work).
  std::optional<redis::RedisAddress> redis;
  agents::ConversationOptions conversation;
  std::chrono::milliseconds redis_timeout{2'000};
  int redis_threads = 4;
  size_t max_message_bytes = 8 * 1024;
  CircuitBreakerOptions step_breaker;  // one per model step
  // Set: every run is traced (its span, a span per model call, the conversation append), and
  // replicas get the `traceparent` of their call. Must outlive the service.
  tracing::Tracer* tracer = nullptr;
};

class ChatService {
 public:
  // Reads and validates the pipelines against `known_models` (FailedPrecondition naming every
  // fault: a cycle, an unknown model, an unreachable node, ...). `gateway`, `metrics` and
  // `clock` must outlive the service.
  static absl::StatusOr<std::unique_ptr<ChatService>> Create(
      ChatOptions options, const std::vector<std::string>& known_models, Gateway& gateway,
      metrics::Registry& registry, const Clock& clock);
  ~ChatService();

  // POST /v1/chat: {"conversation_id", "message", "turn_id"?}.
  // `traceparent`: the caller's W3C trace context (may be empty).
  void Chat(std::string body, TimePoint deadline, const std::string& traceparent,
            http::Responder respond);
  // GET /v1/chat/{id}.
  void History(std::string id, http::Responder respond);
  // POST /v1/pipelines/{name}: {"inputs": [OIP tensors]}.
  void RunPipeline(std::string name, std::string body, TimePoint deadline,
                   const std::string& traceparent, http::Responder respond);

  struct State;

 private:
  explicit ChatService(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace galley::gateway
