#include "common/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

#include "absl/base/attributes.h"
#include "absl/synchronization/mutex.h"
#include "common/json.h"

namespace galley::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
ABSL_CONST_INIT absl::Mutex g_write_mu(absl::kConstInit);

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

std::string Timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
      1000000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(micros));
  return buf;
}

}  // namespace

void SetLevel(Level level) { g_level.store(static_cast<int>(level)); }

bool Enabled(Level level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

bool ParseLevel(std::string_view text, Level* level) {
  if (text == "debug")
    *level = Level::kDebug;
  else if (text == "info")
    *level = Level::kInfo;
  else if (text == "warn")
    *level = Level::kWarn;
  else if (text == "error")
    *level = Level::kError;
  else
    return false;
  return true;
}

void Write(Level level, std::string_view event, const boost::json::object& fields) {
  if (!Enabled(level)) return;
  boost::json::object line;
  line.reserve(fields.size() + 3);
  line["ts"] = Timestamp();
  line["level"] = LevelName(level);
  line["event"] = event;
  for (const auto& kv : fields) line[kv.key()] = kv.value();
  std::string text = JsonSerialize(line);
  text.push_back('\n');
  absl::MutexLock lock(&g_write_mu);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

void Stopped(double duration_s, bool clean) {
  if (clean) {
    Info("stopped", {{"duration_s", duration_s}});
  } else {
    Warn("stopped",
         {{"duration_s", duration_s}, {"note", "grace period ended with connections open"}});
  }
}

}  // namespace galley::log
