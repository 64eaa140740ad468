#include "queue/redis_consumer_state.h"

#include <algorithm>
#include <chrono>
#include <optional>

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

}  // namespace

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

}  // namespace galley::queue
