// A synchronous Redis connection over hiredis (RESP2): one command at a time, with connect and
// command timeouts, reconnecting on the next command after an I/O error. Not thread-safe: each
// thread that talks to Redis owns its own RedisClient.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

struct redisContext;

namespace galley::redis {

// One reply, converted from hiredis' redisReply.
struct RedisReply {
  enum class Type { kNil, kString, kStatus, kInteger, kArray, kError };
  Type type = Type::kNil;
  std::string str;                   // kString, kStatus, kError
  int64_t integer = 0;               // kInteger
  std::vector<RedisReply> elements;  // kArray

  bool nil() const { return type == Type::kNil; }
  bool error() const { return type == Type::kError; }
};

struct RedisAddress {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
};

// "HOST:PORT" (port required; HOST may be a name or an IPv4 address). InvalidArgument otherwise.
absl::StatusOr<RedisAddress> ParseRedisAddress(std::string_view text);

class RedisClient {
 public:
  RedisClient(RedisAddress address, std::chrono::milliseconds timeout);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Sends one command (binary-safe arguments) and returns its reply; a Redis error reply is a
  // reply of type kError, not a failed status. Unavailable when the connection cannot be made
  // or breaks (the next call reconnects). `timeout` bounds the wait for the reply; a blocking
  // command's own timeout must stay below it.
  absl::StatusOr<RedisReply> Command(const std::vector<std::string>& args);

  // Sends every command at once and then reads their replies in order (Redis pipelining: one
  // round trip, and with `appendfsync always` one fsync for the lot). Unavailable when the
  // connection breaks: then some of the commands may have run, so they must be safe to repeat.
  absl::StatusOr<std::vector<RedisReply>> Pipeline(
      const std::vector<std::vector<std::string>>& commands);

  // Closes the connection (the next command reconnects).
  void Close();

 private:
  absl::Status Connect();

  const RedisAddress address_;
  const std::chrono::milliseconds timeout_;
  redisContext* ctx_ = nullptr;
};

}  // namespace galley::redis
