// Flags shared by `galley gateway` and `galley up` (cli/gateway_cmd.cc): the gateway's
// resilience policy, and pipelines with the chat entry point.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "gateway/gateway_main.h"

namespace galley::cli {

// The resilience policy's flags, bound to `o` itself; after parsing, FinishGatewayPolicy(o) sets
// what follows from them (the probe timeout, the model breaker as the replica breaker).
void AddGatewayPolicyFlags(CLI::App* cmd, gateway::GatewayRunOptions& o);
void FinishGatewayPolicy(gateway::GatewayRunOptions& o);

struct PipelineFlags {
  std::string file;        // --pipelines
  std::string chat_redis;  // --chat-redis
  std::string chat_pipeline = "chat";
  std::chrono::seconds conversation_ttl{86'400};
  int64_t conversation_max_entries = 200;

  void Add(CLI::App* cmd);
  // --chat-redis needs --pipelines, and parses.
  absl::Status Validate() const;
  // Sets o.chat (and o.pipeline_models = `served_models`, what the replicas serve) from the
  // flags; the chat steps' breaker is the gateway's model breaker (set it first).
  absl::Status Apply(gateway::GatewayRunOptions& o, std::vector<std::string> served_models) const;
};

}  // namespace galley::cli
