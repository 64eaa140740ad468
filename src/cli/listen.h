// Parsing of --listen values: "HOST:PORT", "[IPv6]:PORT" or ":PORT" (all interfaces).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace galley::cli {

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

absl::StatusOr<HostPort> ParseListen(std::string_view value);

}  // namespace galley::cli
