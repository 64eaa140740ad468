// What the supervisor reads in a replica's stdout. `galley serve` logs one JSON object per line;
// two of them drive the supervisor: {"event":"listening","port":N} gives the replica's port and
// {"event":"ready"} its readiness ({"event":"draining"} takes readiness away again). Every line
// is forwarded to the supervisor's own stdout with the replica's id added. Pure: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/log.h"

namespace galley::local {

struct ChildLine {
  bool is_json = false;                  // a JSON object (anything else is forwarded as plain text)
  std::string event;                     // its "event", or empty
  std::optional<uint16_t> port;          // from a `listening` line with a valid "port"
  log::Level level = log::Level::kInfo;  // its "level" ("info" when absent or unknown)
  // For a JSON object: the line to forward, newline included, with "replica":<id> placed right
  // after "event" and every other field kept in order.
  std::string forwarded;
};

ChildLine ParseChildLine(std::string_view line, std::string_view replica_id);

}  // namespace galley::local
