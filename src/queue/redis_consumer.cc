#include "queue/redis_consumer.h"

#include <algorithm>
#include <charconv>
#include <deque>
#include <map>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "boost/json/serialize.hpp"
#include "boost/json/string.hpp"
#include "common/log.h"
#include "common/strings.h"
#include "common/sync.h"
#include "common/thread_name.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "queue/consumer_metrics.h"
#include "queue/queue_trace.h"

namespace galley::queue {
namespace {

using inference::InferResult;
using inference::Outcome;

// Settles up to kResultsPerScript results in one call. KEYS: stream, then per message its done
// key and reply stream. ARGV: group, ttl seconds, then per message its entry id, message id (the
// result's key), model, body and done record. Each result is written only if its done key was
// not set yet: the done key itself, set to the done record ({"status":"ok","model":..,"body":..},
// what GET /v1/results/{id} answers) with the TTL, and an entry of the reply stream. Every entry
// is acknowledged either way, in one XACK. Returns 1 (written) or 0 (a duplicate) per message.
// Redis runs a script atomically, so a result and its acknowledgement are never apart.
constexpr const char* kResultsScript = R"lua(
local group, ttl = ARGV[1], ARGV[2]
local written, ids = {}, {}
for i = 1, (#KEYS - 1) / 2 do
  local k, a = 1 + 2 * (i - 1), 2 + 5 * (i - 1)
  local entry, key, model, body = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  ids[i] = entry
  written[i] = 0
  if redis.call('SET', KEYS[k + 1], ARGV[a + 5], 'NX', 'EX', ttl) then
    redis.call('XADD', KEYS[k + 2], '*', 'id', key, 'entry', entry, 'model', model,
               'status', 'ok', 'body', body)
    written[i] = 1
  end
end
redis.call('XACK', KEYS[1], group, unpack(ids))
return written
)lua";
// Results per script call: bounds its argument list (Lua's unpack is limited to a few thousand
// values) and how long Redis runs one script while other clients wait.
constexpr size_t kResultsPerScript = 128;

// KEYS: stream, dead stream, result key. ARGV: group, entry id, ttl seconds, reason, fields...
// Acknowledges and dead-letters (and records the failure for GET /v1/results/{id}), only if the
// entry was still pending: repeating it (after a lost reply) adds no second letter.
constexpr const char* kDeadScript = R"lua(
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XADD', KEYS[2], '*', unpack(ARGV, 5))
  redis.call('HSET', KEYS[3], 'status', 'dead_lettered', 'reason', ARGV[4])
  redis.call('EXPIRE', KEYS[3], ARGV[3])
  return 1
end
return 0
)lua";

// The done key's value: what GET /v1/results/{id} answers. `body` is the JSON the REST API
// answers, embedded as it is.
std::string DoneRecord(const std::string& model, const std::string& body) {
  return StrCat(R"({"status":"ok","model":)", boost::json::serialize(boost::json::string(model)),
                R"(,"body":)", body, "}");
}

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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

struct Completion {
  StreamEntry entry;
  std::shared_ptr<QueueRequest> request;  // null for a message that failed to parse
  Disposition disposition = Disposition::kRelease;
  std::string reason;  // for kDeadLetter
  std::string body;    // for kResult
  int64_t deliveries = 1;
  TimePoint due{};  // for kResubmit
};

}  // namespace

struct RedisStreamConsumer::State : std::enable_shared_from_this<State> {
  State(inference::InferenceService& s, RedisStreamOptions o, metrics::Registry& r, const Clock& c)
      : service(s),
        options(std::move(o)),
        clock(c),
        metrics(r, {{"broker", "redis"}}),
        held_gauge(metrics.inflight),
        backlog_gauge(metrics.backlog),
        pending_gauge(prometheus::BuildGauge()
                          .Name("galley_consumer_pending_messages")
                          .Help("Entries delivered to the group and not acknowledged, all "
                                "consumers (Redis Streams only).")
                          .Register(r.prom())
                          .Add(metrics.labels)),
        age(metrics.age),
        end_to_end(metrics.end_to_end) {}

  void Count(const char* outcome) { metrics.Count(outcome); }

  // Fetcher thread.
  void FetchLoop();
  void Sweep(redis::RedisClient& redis, bool own_only);
  void Accept(redis::RedisClient& redis, StreamEntry entry, int64_t deliveries);
  void Submit(std::shared_ptr<QueueRequest> q, StreamEntry entry, int64_t deliveries);
  bool DeadLetter(redis::RedisClient& redis, const StreamEntry& entry, const std::string& reason,
                  int64_t deliveries);
  std::vector<std::string> DeadLetterCommand(const StreamEntry& entry, const std::string& reason,
                                             int64_t deliveries) const;
  void CountDeadLetter(const StreamEntry& entry, const std::string& reason, int64_t deliveries);
  absl::Status EnsureGroup(redis::RedisClient& redis);
  void UpdateBacklogAndTrim(redis::RedisClient& redis);
  // Writer thread.
  void WriteLoop();
  // Writes a batch in one pipeline; false (nothing counted) when Redis could not be reached.
  bool WriteBatch(redis::RedisClient& redis, std::vector<Completion>& batch);
  void Finish();

  inference::InferenceService& service;
  const RedisStreamOptions options;
  const Clock& clock;
  ConsumerMetrics metrics;  // the names every consumer exports, labelled broker="redis"
  prometheus::Gauge& held_gauge;
  prometheus::Gauge& backlog_gauge;
  prometheus::Gauge& pending_gauge;
  prometheus::Histogram& age;
  prometheus::Histogram& end_to_end;

  mutable absl::Mutex mu;
  absl::CondVar cv;
  int held ABSL_GUARDED_BY(mu) = 0;
  bool stop_fetching ABSL_GUARDED_BY(mu) = false;
  bool stop_writing ABSL_GUARDED_BY(mu) = false;
  std::deque<Completion> done ABSL_GUARDED_BY(mu);
  std::deque<Completion> retry ABSL_GUARDED_BY(mu);  // resubmissions, by due time
  std::thread fetcher, writer;
};

absl::Status RedisStreamConsumer::State::EnsureGroup(redis::RedisClient& redis) {
  auto r = redis.Command({"XGROUP", "CREATE", options.stream, options.group, "0", "MKSTREAM"});
  if (!r.ok()) return r.status();
  if (r->error() && r->str.rfind("BUSYGROUP", 0) != 0) {
    return absl::FailedPreconditionError(StrCat("XGROUP CREATE ", options.stream, ": ", r->str));
  }
  return absl::OkStatus();
}

std::vector<std::string> RedisStreamConsumer::State::DeadLetterCommand(const StreamEntry& entry,
                                                                       const std::string& reason,
                                                                       int64_t deliveries) const {
  const std::string* id = entry.Field("id");
  const std::string& key = id != nullptr && !id->empty() ? *id : entry.id;
  std::vector<std::string> args = {"EVAL",
                                   kDeadScript,
                                   "3",
                                   options.stream,
                                   options.dead_stream,
                                   StrCat(options.stream, ":result:", key),
                                   options.group,
                                   entry.id,
                                   std::to_string(options.result_ttl.count()),
                                   reason,
                                   "entry",
                                   entry.id,
                                   "reason",
                                   reason,
                                   "deliveries",
                                   std::to_string(deliveries),
                                   "consumer",
                                   options.consumer};
  for (const auto& [k, v] : entry.fields) {
    args.push_back("msg." + k);
    args.push_back(v);
  }
  return args;
}

bool RedisStreamConsumer::State::DeadLetter(redis::RedisClient& redis, const StreamEntry& entry,
                                            const std::string& reason, int64_t deliveries) {
  auto r = redis.Command(DeadLetterCommand(entry, reason, deliveries));
  if (!r.ok() || r->error()) {
    log::Warn(
        "queue_write_failed",
        {{"entry", entry.id}, {"error", r.ok() ? r->str : std::string(r.status().message())}});
    return false;
  }
  CountDeadLetter(entry, reason, deliveries);
  return true;
}

void RedisStreamConsumer::State::CountDeadLetter(const StreamEntry& entry,
                                                 const std::string& reason, int64_t deliveries) {
  Count("dead_lettered");
  log::Info("queue_dead_lettered",
            {{"entry", entry.id}, {"reason", reason}, {"deliveries", deliveries}});
}

void RedisStreamConsumer::State::Finish() {
  absl::MutexLock lock(&mu);
  --held;
  held_gauge.Set(held);
  cv.SignalAll();
}

void RedisStreamConsumer::State::Accept(redis::RedisClient& redis, StreamEntry entry,
                                        int64_t deliveries) {
  {
    absl::MutexLock lock(&mu);
    ++held;
    held_gauge.Set(held);
  }
  const int64_t now_ms = UnixMillis();
  if (auto ms = EntryMillis(entry.id)) age.Observe(std::max<int64_t>(0, now_ms - *ms) / 1000.0);
  auto parsed = ParseMessage(entry, service, options.message, now_ms, clock.Now());
  if (!parsed.ok()) {
    // Never lost: if the dead-letter write fails the entry stays pending and comes back.
    DeadLetter(redis, entry, std::string(parsed.status().message()), deliveries);
    Finish();
    return;
  }
  Submit(std::make_shared<QueueRequest>(std::move(parsed).value()), std::move(entry), deliveries);
}

void RedisStreamConsumer::State::Submit(std::shared_ptr<QueueRequest> q, StreamEntry entry,
                                        int64_t deliveries) {
  inference::InferRequest request = q->request;  // the copy goes to the service
  auto span = StartMessageSpans(options.tracer, *q, "redis", options.stream, clock.Now());
  // The callback keeps the state alive: the service may finish work after the consumer stopped.
  service.Infer(std::move(request), [self = shared_from_this(), q, entry = std::move(entry),
                                     deliveries, span = std::move(span)](InferResult&& r) mutable {
    State& s = *self;
    FinishMessageSpans(s.options.tracer, std::move(span), r, s.clock.Now());
    Completion c;
    c.disposition = DispositionFor(r.outcome);
    c.entry = std::move(entry);
    c.deliveries = deliveries;
    if (c.disposition == Disposition::kResult) c.body = EncodeResult(*q, r);
    if (c.disposition == Disposition::kDeadLetter) {
      c.reason = r.message.empty() ? std::string(inference::OutcomeName(r.outcome)) : r.message;
    }
    c.request = std::move(q);
    absl::MutexLock lock(&s.mu);
    if (c.disposition == Disposition::kResubmit) {
      c.due = s.clock.Now() + std::chrono::milliseconds(10);
      s.retry.push_back(std::move(c));
    } else {
      s.done.push_back(std::move(c));
    }
    s.cv.SignalAll();
  });
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

bool RedisStreamConsumer::State::WriteBatch(redis::RedisClient& redis,
                                            std::vector<Completion>& batch) {
  // One command per dead letter, one script per kResultsPerScript results, all in one pipeline:
  // with `appendfsync always` Redis fsyncs once per pipeline, and a script saves the per-command
  // cost of each of its writes. commands[i] settles batch[owners[i]...].
  std::vector<std::vector<std::string>> commands;
  std::vector<std::vector<size_t>> owners;
  std::vector<size_t> results;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].disposition == Disposition::kResult) results.push_back(i);
    if (batch[i].disposition != Disposition::kDeadLetter) continue;
    commands.push_back(DeadLetterCommand(batch[i].entry, batch[i].reason, batch[i].deliveries));
    owners.push_back({i});
  }
  for (size_t start = 0; start < results.size(); start += kResultsPerScript) {
    const size_t end = std::min(results.size(), start + kResultsPerScript);
    const size_t n = end - start;
    std::vector<std::string> keys{options.stream},
        args{options.group, std::to_string(options.result_ttl.count())};
    keys.reserve(1 + 2 * n);
    args.reserve(2 + 5 * n);
    for (size_t k = start; k < end; ++k) {
      const Completion& c = batch[results[k]];
      keys.push_back(StrCat(options.stream, ":done:", c.request->key));
      keys.push_back(c.request->reply);
      args.push_back(c.entry.id);
      args.push_back(c.request->key);
      args.push_back(c.request->request.model);
      args.push_back(c.body);
      args.push_back(DoneRecord(c.request->request.model, c.body));
    }
    std::vector<std::string> cmd{"EVAL", kResultsScript, std::to_string(keys.size())};
    cmd.reserve(3 + keys.size() + args.size());
    for (std::string& k : keys) cmd.push_back(std::move(k));
    for (std::string& a : args) cmd.push_back(std::move(a));
    commands.push_back(std::move(cmd));
    owners.emplace_back(results.begin() + static_cast<std::ptrdiff_t>(start),
                        results.begin() + static_cast<std::ptrdiff_t>(end));
  }
  if (!commands.empty()) {
    // Every script is safe to repeat: a result is guarded by its done key, a dead letter by the
    // entry still being pending. So a batch whose replies were lost is simply sent again.
    auto replies = redis.Pipeline(commands);
    if (!replies.ok()) {
      log::Warn("queue_write_failed",
                {{"messages", batch.size()}, {"error", std::string(replies.status().message())}});
      return false;
    }
    for (size_t k = 0; k < replies->size(); ++k) {
      const redis::RedisReply& r = (*replies)[k];
      if (r.error()) {  // e.g. the stream was deleted: the messages cannot be settled here
        for (size_t i : owners[k]) {
          log::Warn("queue_write_failed", {{"entry", batch[i].entry.id}, {"error", r.str}});
        }
        continue;
      }
      const Completion& first = batch[owners[k][0]];
      if (first.disposition == Disposition::kDeadLetter) {
        if (r.integer == 1) CountDeadLetter(first.entry, first.reason, first.deliveries);
        continue;
      }
      const int64_t now_ms = UnixMillis();
      for (size_t j = 0; j < owners[k].size(); ++j) {
        const bool written = j < r.elements.size() && r.elements[j].integer == 1;
        Count(written ? "acked" : "duplicate");
        if (auto ms = EntryMillis(batch[owners[k][j]].entry.id)) {
          end_to_end.Observe(std::max<int64_t>(0, now_ms - *ms) / 1000.0);
        }
      }
    }
  }
  for (const Completion& c : batch) {
    if (c.disposition == Disposition::kRelease) Count("released");
  }
  return true;
}

void RedisStreamConsumer::State::WriteLoop() {
  SetThreadName("queue-write");
  redis::RedisClient redis(options.address, options.redis_timeout);
  std::vector<Completion> batch;
  while (true) {
    std::vector<Completion> resubmit;
    {
      absl::MutexLock lock(&mu);
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(10);
      while (!stop_writing && done.empty() && galley::WaitUntil(cv, mu, until)) {
      }
      if (stop_writing) return;
      const TimePoint now = clock.Now();
      while (!retry.empty() && retry.front().due <= now) {
        resubmit.push_back(std::move(retry.front()));
        retry.pop_front();
      }
      // Everything finished goes in one pipeline (at most --queue-max-inflight messages): with
      // `appendfsync always`, Redis fsyncs once per pipeline, so batches are what scales.
      while (!done.empty()) {
        batch.push_back(std::move(done.front()));
        done.pop_front();
      }
    }
    for (Completion& r : resubmit) Submit(std::move(r.request), std::move(r.entry), r.deliveries);
    if (batch.empty()) continue;
    // A batch that cannot be written (Redis restarting) is retried until it is or the consumer
    // stops: its messages stay held meanwhile.
    while (!WriteBatch(redis, batch)) {
      absl::MutexLock lock(&mu);
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
      while (!stop_writing && galley::WaitUntil(cv, mu, until)) {
      }
      if (stop_writing) return;
    }
    {
      absl::MutexLock lock(&mu);
      held -= static_cast<int>(batch.size());
      held_gauge.Set(held);
      cv.SignalAll();
    }
    batch.clear();
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
