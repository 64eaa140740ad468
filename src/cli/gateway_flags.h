// Flags shared by `galley gateway` and `galley up` (cli/gateway_cmd.cc): the gateway's
// resilience policy, and pipelines with the chat entry point.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "gateway/gateway_main.h"

namespace galley::cli {

void AddGatewayPolicyFlags(CLI::App* cmd, gateway::GatewayRunOptions& o, int64_t& try_timeout_ms,
                           int64_t& health_interval_ms, int64_t& eject_ms, int64_t& break_ms);
bool ApplyGatewayPolicyFlags(gateway::GatewayRunOptions& o, int64_t try_timeout_ms,
                             int64_t health_interval_ms, int64_t eject_ms, int64_t break_ms);

struct PipelineFlags {
  std::string file;        // --pipelines
  std::string chat_redis;  // --chat-redis
  std::string chat_pipeline = "chat";
  int64_t conversation_ttl_s = 86'400;
  int64_t conversation_max_entries = 200;
};
void AddPipelineFlags(CLI::App* cmd, PipelineFlags& f);
// Sets o.chat (and o.pipeline_models = `served_models`, what the replicas serve) from the flags.
// False, with the reason on stderr, for a bad flag.
bool ApplyPipelineFlags(gateway::GatewayRunOptions& o, const PipelineFlags& f,
                        std::vector<std::string> served_models);

}  // namespace galley::cli
