#include "queue/redis_backlog.h"

#include "common/strings.h"

namespace galley::queue {

absl::StatusOr<StreamDepth> ReadStreamDepth(redis::RedisClient& redis, const std::string& stream,
                                            const std::string& group) {
  auto r = redis.Command({"XINFO", "GROUPS", stream});
  if (!r.ok()) return r.status();
  if (r->error()) {
    // "ERR no such key": nothing was ever sent.
    if (r->str.find("no such key") != std::string::npos) return StreamDepth{};
    return absl::FailedPreconditionError(StrCat("XINFO GROUPS ", stream, ": ", r->str));
  }
  for (const redis::RedisReply& g : r->elements) {
    std::string name;
    StreamDepth d;
    bool lag_known = false;
    for (size_t i = 0; i + 1 < g.elements.size(); i += 2) {
      const std::string& k = g.elements[i].str;
      const redis::RedisReply& v = g.elements[i + 1];
      if (k == "name") name = v.str;
      if (k == "pending") d.pending = static_cast<double>(v.integer);
      if (k == "lag" && v.type == redis::RedisReply::Type::kInteger) {
        d.lag = static_cast<double>(v.integer);
        lag_known = true;
      }
    }
    if (name != group) continue;
    if (!lag_known) {
      return absl::FailedPreconditionError(
          StrCat("Redis cannot say the lag of group '", group, "' on '", stream, "'"));
    }
    return d;
  }
  // No such group yet: every entry of the stream is waiting for it.
  auto len = redis.Command({"XLEN", stream});
  if (!len.ok()) return len.status();
  StreamDepth d;
  d.lag = len->type == redis::RedisReply::Type::kInteger ? static_cast<double>(len->integer) : 0;
  return d;
}

}  // namespace galley::queue
