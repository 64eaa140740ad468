// The depth of a Redis stream for one consumer group, as the autoscaler reads it: entries not
// yet delivered to the group (XINFO GROUPS `lag`, Redis 7+) and entries delivered but not
// acknowledged (`pending`). Lag alone misses work in hand; pending alone cannot wake a fleet at
// zero (no consumer, nothing pending); the autoscaler needs both.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "redis/redis_client.h"

namespace galley::queue {

struct StreamDepth {
  double lag = 0;      // not yet delivered to the group
  double pending = 0;  // delivered, not acknowledged
};

// Reads `group`'s depth on `stream`. A stream or group that does not exist yet has depth 0 (no
// work was ever sent). Unavailable when Redis cannot be reached; FailedPrecondition when Redis
// cannot say the lag (it is unknown after entries were deleted from the middle of the stream).
absl::StatusOr<StreamDepth> ReadStreamDepth(redis::RedisClient& redis, const std::string& stream,
                                            const std::string& group);

}  // namespace galley::queue
