// The state of multi-agent conversations, kept in Redis so that every agent replica is stateless
// and a conversation goes on whichever replica takes its next turn.
//
// Layout, per conversation ID (the braces are a Redis Cluster hash tag: one slot per
// conversation, so the script below may touch all three keys):
//   PREFIX:{ID}:history  list of entries (opaque strings, typically JSON), oldest first
//   PREFIX:{ID}:meta     hash: version (one per accepted turn), bytes (the history's size),
//                        turns (accepted in all), created_ms, updated_ms
//   PREFIX:{ID}:turns    hash: turn ID -> the version that turn made (the idempotency markers)
// Every read and write renews the TTL of all three (a sliding expiry).
//
// A turn is appended by one Lua script, which Redis runs atomically: a turn ID seen before is not
// appended again (a retried turn, e.g. after a replica died mid-turn, adds no duplicate entry); a
// caller may name the version it read, and the append is refused if another turn came first
// (optimistic concurrency); a turn larger than the conversation's byte limit is refused with
// nothing written; otherwise its entries are pushed, and the oldest entries dropped until the
// history is within both bounds (entries and bytes). Concurrent turns without a version are
// serialised by Redis: none is lost.
//
// Not thread-safe (it owns one Redis connection): one store per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "redis/redis_client.h"

namespace galley::agents {

struct ConversationOptions {
  std::string prefix = "galley:conv";
  int64_t max_entries = 200;            // history entries kept, newest
  int64_t max_bytes = 256 * 1024;       // history bytes kept; a larger turn is refused
  std::chrono::seconds ttl{24 * 3600};  // renewed on every read and write
};

struct Conversation {
  std::string id;
  int64_t version = 0;  // 0: no turn yet (or expired)
  int64_t bytes = 0;
  int64_t turns = 0;
  std::vector<std::string> entries;  // oldest first
};

struct AppendResult {
  int64_t version = 0;     // the conversation's version after this turn (or the one it made)
  bool duplicate = false;  // the turn ID was seen before: nothing was appended
};

class ConversationStore {
 public:
  ConversationStore(redis::RedisAddress address, std::chrono::milliseconds timeout,
                    ConversationOptions options = {});

  // The conversation (empty, version 0, when it does not exist). InvalidArgument for an ID that
  // is empty, longer than 128 bytes or not [A-Za-z0-9._:-]; Unavailable when Redis is not
  // reachable; DataLoss when the stored conversation is not in the layout above.
  absl::StatusOr<Conversation> Load(const std::string& id);

  // Appends one turn's entries under `turn_id`. With `expected_version`, Aborted when the
  // conversation is at another version (reload and retry). ResourceExhausted when the entries
  // alone exceed max_bytes (nothing written). InvalidArgument for a bad ID or turn ID or no
  // entries; Unavailable when Redis is not reachable (the turn may or may not have been
  // written: retry it with the same turn ID).
  absl::StatusOr<AppendResult> Append(const std::string& id, const std::string& turn_id,
                                      const std::vector<std::string>& entries,
                                      std::optional<int64_t> expected_version = std::nullopt);

 private:
  std::string Key(const std::string& id, const char* part) const;

  redis::RedisClient redis_;
  const ConversationOptions options_;
};

// Whether `id` may name a conversation or a turn: 1-128 bytes of [A-Za-z0-9._:-].
bool ValidConversationId(const std::string& id);

}  // namespace galley::agents
