#include "queue/redis_consumer.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/sync.h"
#include "common/thread_name.h"
#include "prometheus/gauge.h"
#include "queue/redis_consumer_state.h"

namespace galley::queue {
namespace {

// Entries of an XREADGROUP/XCLAIM/XRANGE reply: [[id, [f, v, ...]], ...] (nil entries skipped).
std::vector<StreamEntry> ParseEntries(const redis::RedisReply& list) {
  std::vector<StreamEntry> out;
  for (const redis::RedisReply& e : list.elements) {
    if (e.elements.size() != 2 || e.elements[1].type != redis::RedisReply::Type::kArray) continue;
    StreamEntry entry;
    entry.id = e.elements[0].str;
    const auto& kv = e.elements[1].elements;
    for (size_t i = 0; i + 1 < kv.size(); i += 2)
      entry.fields.emplace_back(kv[i].str, kv[i + 1].str);
    out.push_back(std::move(entry));
  }
  return out;
}

// "a-b" < "c-d" as stream ids.
bool IdLess(std::string_view a, std::string_view b) {
  auto split = [](std::string_view s) {
    const size_t d = s.find('-');
    uint64_t ms = 0, seq = 0;
    std::from_chars(s.data(), s.data() + (d == s.npos ? s.size() : d), ms);
    if (d != s.npos) std::from_chars(s.data() + d + 1, s.data() + s.size(), seq);
    return std::pair(ms, seq);
  };
  return split(a) < split(b);
}

}  // namespace

absl::Status RedisStreamConsumer::State::EnsureGroup(redis::RedisClient& redis) {
  auto r = redis.Command({"XGROUP", "CREATE", options.stream, options.group, "0", "MKSTREAM"});
  if (!r.ok()) return r.status();
  if (r->error() && r->str.rfind("BUSYGROUP", 0) != 0) {
    return absl::FailedPreconditionError(StrCat("XGROUP CREATE ", options.stream, ": ", r->str));
  }
  return absl::OkStatus();
}

void RedisStreamConsumer::State::Sweep(redis::RedisClient& redis, bool own_only) {
  int free = 0;
  {
    absl::MutexLock lock(&mu);
    free = options.max_inflight - held;
  }
  if (free <= 0) return;
  const int64_t idle = own_only ? 0 : options.visibility_timeout.count();
  std::vector<std::string> args = {"XPENDING", options.stream,       options.group,
                                   "IDLE",     std::to_string(idle), "-",
                                   "+",        std::to_string(free)};
  if (own_only) args.push_back(options.consumer);
  auto r = redis.Command(args);
  if (!r.ok() || r->type != redis::RedisReply::Type::kArray) return;
  std::vector<std::string> claim = {"XCLAIM", options.stream, options.group, options.consumer,
                                    std::to_string(idle)};
  std::vector<std::pair<std::string, int64_t>> over_limit;
  std::map<std::string, int64_t> deliveries;
  for (const redis::RedisReply& p : r->elements) {
    if (p.elements.size() < 4) continue;
    const std::string& id = p.elements[0].str;
    const int64_t n = p.elements[3].integer;
    if (n >= options.max_deliveries) {
      over_limit.emplace_back(id, n);
    } else {
      claim.push_back(id);
      deliveries[id] = n + 1;
    }
  }
  for (const auto& [id, n] : over_limit) {
    auto e = redis.Command({"XRANGE", options.stream, id, id});
    std::vector<StreamEntry> entries = e.ok() ? ParseEntries(*e) : std::vector<StreamEntry>{};
    StreamEntry entry = entries.empty() ? StreamEntry{id, {}} : std::move(entries[0]);
    DeadLetter(
        redis, entry,
        StrCat("delivered ", n, " times without an answer (limit ", options.max_deliveries, ")"),
        n);
  }
  if (claim.size() == 5) return;
  auto c = redis.Command(claim);
  if (!c.ok() || c->type != redis::RedisReply::Type::kArray) return;
  for (StreamEntry& entry : ParseEntries(*c)) {
    Count("redelivered");
    const int64_t n = deliveries.count(entry.id) ? deliveries[entry.id] : 2;
    Accept(redis, std::move(entry), n);
  }
}

void RedisStreamConsumer::State::UpdateBacklogAndTrim(redis::RedisClient& redis) {
  auto r = redis.Command({"XINFO", "GROUPS", options.stream});
  if (!r.ok() || r->type != redis::RedisReply::Type::kArray) return;
  std::string keep_from;  // entries below this id are delivered to and acknowledged by all
  bool can_trim = options.trim && !r->elements.empty();
  for (const redis::RedisReply& g : r->elements) {
    std::string name, last_delivered;
    int64_t pending = 0, lag = -1;
    for (size_t i = 0; i + 1 < g.elements.size(); i += 2) {
      const std::string& k = g.elements[i].str;
      const redis::RedisReply& v = g.elements[i + 1];
      if (k == "name") name = v.str;
      if (k == "pending") pending = v.integer;
      if (k == "last-delivered-id") last_delivered = v.str;
      if (k == "lag") lag = v.nil() ? -1 : v.integer;
    }
    if (name == options.group) {
      pending_gauge.Set(static_cast<double>(pending));
      if (lag >= 0) backlog_gauge.Set(static_cast<double>(lag));
    }
    std::string floor = last_delivered;
    if (pending > 0) {
      auto s = redis.Command({"XPENDING", options.stream, name});
      if (!s.ok() || s->elements.size() < 2 || s->elements[1].nil()) {
        can_trim = false;
        continue;
      }
      if (IdLess(s->elements[1].str, floor)) floor = s->elements[1].str;
    }
    if (keep_from.empty() || IdLess(floor, keep_from)) keep_from = floor;
  }
  if (can_trim && !keep_from.empty() && keep_from != "0-0") {
    (void)redis.Command({"XTRIM", options.stream, "MINID", keep_from});
  }
}

void RedisStreamConsumer::State::FetchLoop() {
  SetThreadName("queue-fetch");
  redis::RedisClient redis(options.address, options.redis_timeout);
  const auto sweep_every = std::max(std::chrono::milliseconds(100), options.visibility_timeout / 2);
  TimePoint next_sweep{};
  bool recovered = false;  // this consumer's own pending entries, once after start
  while (true) {
    // Fetch when a quarter of the room is free, not at every freed slot: fewer, larger fetches
    // (each one a write Redis must make durable before it answers, with `appendfsync always`),
    // and a consumer with room to spare still fetches at once.
    const int refill = std::max(1, options.max_inflight / 4);
    int free = 0;
    {
      absl::MutexLock lock(&mu);
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
      while (!stop_fetching && held > options.max_inflight - refill &&
             galley::WaitUntil(cv, mu, until)) {
      }
      if (stop_fetching) return;
      const bool room = held <= options.max_inflight - refill;
      free = room ? options.max_inflight - held : 0;
    }
    if (!recovered) {
      if (!EnsureGroup(redis).ok()) {
        absl::MutexLock lock(&mu);
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
        while (!stop_fetching && galley::WaitUntil(cv, mu, until)) {
        }
        continue;
      }
      Sweep(redis, /*own_only=*/true);
      recovered = true;
      continue;
    }
    if (clock.Now() >= next_sweep) {
      Sweep(redis, /*own_only=*/false);
      UpdateBacklogAndTrim(redis);
      next_sweep = clock.Now() + sweep_every;
      continue;
    }
    if (free <= 0) continue;
    auto r = redis.Command({"XREADGROUP", "GROUP", options.group, options.consumer, "COUNT",
                            std::to_string(free), "BLOCK", std::to_string(options.block.count()),
                            "STREAMS", options.stream, ">"});
    if (!r.ok() || r->error()) {
      const std::string why = r.ok() ? r->str : std::string(r.status().message());
      log::Warn("queue_fetch_failed", {{"error", why}});
      if (r.ok() && why.rfind("NOGROUP", 0) == 0) recovered = false;  // the stream was deleted
      absl::MutexLock lock(&mu);
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
      while (!stop_fetching && galley::WaitUntil(cv, mu, until)) {
      }
      continue;
    }
    if (r->nil() || r->elements.empty()) continue;  // BLOCK timed out
    for (StreamEntry& entry :
         ParseEntries(r->elements[0].elements.size() == 2 ? r->elements[0].elements[1]
                                                          : redis::RedisReply{})) {
      Count("consumed");
      Accept(redis, std::move(entry), 1);
    }
  }
}

RedisStreamConsumer::RedisStreamConsumer(inference::InferenceService& service,
                                         RedisStreamOptions options, metrics::Registry& registry,
                                         const Clock& clock) {
  if (options.dead_stream.empty()) options.dead_stream = options.stream + ":dead";
  if (options.results_stream.empty()) options.results_stream = options.stream + ":results";
  options.message.results_stream = options.results_stream;
  state_ = std::make_shared<State>(service, std::move(options), registry, clock);
}

RedisStreamConsumer::~RedisStreamConsumer() { Stop(); }

absl::Status RedisStreamConsumer::Start() {
  const RedisStreamOptions& o = state_->options;
  if (o.consumer.empty()) return absl::InvalidArgumentError("the queue consumer needs a name");
  if (o.max_inflight < 1) return absl::InvalidArgumentError("--queue-max-inflight must be >= 1");
  if (o.max_deliveries < 1)
    return absl::InvalidArgumentError("--queue-max-deliveries must be >= 1");
  if (o.block >= o.redis_timeout) {
    return absl::InvalidArgumentError("the fetch block time must be below the Redis timeout");
  }
  State* s = state_.get();
  s->writer = std::thread([s] { s->WriteLoop(); });
  s->fetcher = std::thread([s] { s->FetchLoop(); });
  return absl::OkStatus();
}

void RedisStreamConsumer::BeginDrain() {
  State& s = *state_;
  absl::MutexLock lock(&s.mu);
  s.stop_fetching = true;
  s.cv.SignalAll();
}

bool RedisStreamConsumer::Finish(TimePoint deadline) {
  BeginDrain();
  State& s = *state_;
  if (s.fetcher.joinable()) s.fetcher.join();
  absl::MutexLock lock(&s.mu);
  while (s.held > 0 && s.clock.Now() < deadline) {
    galley::WaitFor(s.cv, s.mu, std::chrono::milliseconds(50));
  }
  return s.held == 0;
}

bool RedisStreamConsumer::Drain(TimePoint deadline) {
  const bool done = Finish(deadline);
  log::Info("queue_drained", {{"broker", "redis"}, {"held", held()}});
  return done;
}

void RedisStreamConsumer::Stop() {
  if (!state_) return;
  Finish(state_->clock.Now());
  State& s = *state_;
  {
    absl::MutexLock lock(&s.mu);
    s.stop_writing = true;
    s.cv.SignalAll();
  }
  if (s.writer.joinable()) s.writer.join();
}

int RedisStreamConsumer::held() const {
  absl::MutexLock lock(&state_->mu);
  return state_->held;
}

}  // namespace galley::queue
