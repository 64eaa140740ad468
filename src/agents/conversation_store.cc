#include "agents/conversation_store.h"

#include <charconv>
#include <map>

#include "common/strings.h"

namespace galley::agents {
namespace {

// Turn markers kept per conversation: a retried turn comes back within seconds, not after a
// thousand other turns.
constexpr int64_t kTurnMarkers = 1024;

// KEYS: history, meta, turns. ARGV: turn ID, expected version ("" for none), max entries, max
// bytes, TTL seconds, now (ms), markers kept, entries... Returns {code, n}: 0 appended (n: the
// new version), 1 a turn seen before (n: the version it made), 2 another version (n: it),
// 3 too large (n: the turn's bytes).
constexpr const char* kAppendScript = R"lua(
local turn, expected = ARGV[1], ARGV[2]
local max_entries, max_bytes = tonumber(ARGV[3]), tonumber(ARGV[4])
local ttl, now, markers = ARGV[5], ARGV[6], tonumber(ARGV[7])
local function touch()
  for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ttl) end
end
local seen = redis.call('ZSCORE', KEYS[3], turn)
if seen then
  touch()
  return {1, tonumber(seen)}
end
local version = tonumber(redis.call('HGET', KEYS[2], 'version') or '0')
if expected ~= '' and tonumber(expected) ~= version then
  return {2, version}
end
local size = 0
for i = 8, #ARGV do size = size + #ARGV[i] end
if size > max_bytes then
  return {3, size}
end
local bytes = tonumber(redis.call('HGET', KEYS[2], 'bytes') or '0') + size
for i = 8, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
local n = redis.call('LLEN', KEYS[1])
while n > max_entries or bytes > max_bytes do
  bytes = bytes - #redis.call('LPOP', KEYS[1])
  n = n - 1
end
version = version + 1
redis.call('HSET', KEYS[2], 'version', version, 'bytes', bytes, 'updated_ms', now)
redis.call('HSETNX', KEYS[2], 'created_ms', now)
redis.call('HINCRBY', KEYS[2], 'turns', 1)
redis.call('ZADD', KEYS[3], version, turn)
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(markers + 1))
touch()
return {0, version}
)lua";

std::optional<int64_t> ToInt(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool ValidConversationId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

ConversationStore::ConversationStore(redis::RedisAddress address, std::chrono::milliseconds timeout,
                                     ConversationOptions options)
    : redis_(std::move(address), timeout), options_(std::move(options)) {}

std::string ConversationStore::Key(const std::string& id, const char* part) const {
  return StrCat(options_.prefix, ":{", id, "}:", part);
}

absl::StatusOr<Conversation> ConversationStore::Load(const std::string& id) {
  if (!ValidConversationId(id)) {
    return absl::InvalidArgumentError(
        StrCat("conversation id '", id, "' must be 1-128 characters of [A-Za-z0-9._:-]"));
  }
  const std::string ttl = std::to_string(options_.ttl.count());
  auto replies = redis_.Pipeline({{"LRANGE", Key(id, "history"), "0", "-1"},
                                  {"HGETALL", Key(id, "meta")},
                                  {"EXPIRE", Key(id, "history"), ttl},
                                  {"EXPIRE", Key(id, "meta"), ttl},
                                  {"EXPIRE", Key(id, "turns"), ttl}});
  if (!replies.ok()) return replies.status();
  for (const redis::RedisReply& r : *replies) {
    if (r.error()) return absl::UnavailableError(StrCat("Redis: ", r.str));
  }
  Conversation c;
  c.id = id;
  for (const redis::RedisReply& e : (*replies)[0].elements) c.entries.push_back(e.str);
  std::map<std::string, std::string> meta;
  const auto& kv = (*replies)[1].elements;
  for (size_t i = 0; i + 1 < kv.size(); i += 2) meta[kv[i].str] = kv[i + 1].str;
  if (meta.empty()) {
    if (!c.entries.empty()) {
      return absl::DataLossError(StrCat("conversation '", id, "' has a history but no metadata"));
    }
    return c;
  }
  const auto version = ToInt(meta["version"]);
  const auto bytes = ToInt(meta["bytes"]);
  const auto turns = ToInt(meta["turns"]);
  if (!version || !bytes || !turns) {
    return absl::DataLossError(StrCat("conversation '", id, "' has malformed metadata"));
  }
  c.version = *version;
  c.bytes = *bytes;
  c.turns = *turns;
  return c;
}

absl::StatusOr<AppendResult> ConversationStore::Append(const std::string& id,
                                                       const std::string& turn_id,
                                                       const std::vector<std::string>& entries,
                                                       std::optional<int64_t> expected_version) {
  if (!ValidConversationId(id)) {
    return absl::InvalidArgumentError(
        StrCat("conversation id '", id, "' must be 1-128 characters of [A-Za-z0-9._:-]"));
  }
  if (!ValidConversationId(turn_id)) {
    return absl::InvalidArgumentError(
        StrCat("turn id '", turn_id, "' must be 1-128 characters of [A-Za-z0-9._:-]"));
  }
  if (entries.empty()) return absl::InvalidArgumentError("a turn needs at least one entry");
  std::vector<std::string> cmd = {"EVAL",
                                  kAppendScript,
                                  "3",
                                  Key(id, "history"),
                                  Key(id, "meta"),
                                  Key(id, "turns"),
                                  turn_id,
                                  expected_version ? std::to_string(*expected_version) : "",
                                  std::to_string(options_.max_entries),
                                  std::to_string(options_.max_bytes),
                                  std::to_string(options_.ttl.count()),
                                  std::to_string(NowMillis()),
                                  std::to_string(kTurnMarkers)};
  cmd.insert(cmd.end(), entries.begin(), entries.end());
  auto r = redis_.Command(cmd);
  if (!r.ok()) return r.status();
  if (r->error()) return absl::UnavailableError(StrCat("Redis: ", r->str));
  if (r->elements.size() != 2) return absl::InternalError("unexpected reply to the append script");
  const int64_t code = r->elements[0].integer, n = r->elements[1].integer;
  switch (code) {
    case 0:
      return AppendResult{n, false};
    case 1:
      return AppendResult{n, true};
    case 2:
      return absl::AbortedError(StrCat("conversation '", id, "' is at version ", n, ", not ",
                                       *expected_version, ": reload it and retry the turn"));
    default:
      return absl::ResourceExhaustedError(StrCat("turn '", turn_id, "' is ", n,
                                                 " bytes, over the conversation limit of ",
                                                 options_.max_bytes, " bytes"));
  }
}

}  // namespace galley::agents
