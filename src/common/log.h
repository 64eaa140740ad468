// Structured logging: one JSON object per line on stdout, {"ts","level","event",...fields}.
#pragma once

#include <string_view>

#include "boost/json/object.hpp"

namespace galley::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Sets the minimum level that is written. Thread-safe.
void SetLevel(Level level);
// Parses "debug", "info", "warn" or "error"; returns false for anything else.
bool ParseLevel(std::string_view text, Level* level);
bool Enabled(Level level);

// Writes one line: {"ts": RFC 3339 UTC, "level": ..., "event": event, <fields>}. Thread-safe;
// a line is written whole or not at all.
void Write(Level level, std::string_view event, const boost::json::object& fields = {});

inline void Debug(std::string_view e, const boost::json::object& f = {}) {
  Write(Level::kDebug, e, f);
}
inline void Info(std::string_view e, const boost::json::object& f = {}) {
  Write(Level::kInfo, e, f);
}
inline void Warn(std::string_view e, const boost::json::object& f = {}) {
  Write(Level::kWarn, e, f);
}
inline void Error(std::string_view e, const boost::json::object& f = {}) {
  Write(Level::kError, e, f);
}

// The `stopped` line of a long-running command: info when every connection closed in time
// (`clean`), warn otherwise.
void Stopped(double duration_s, bool clean);

}  // namespace galley::log
