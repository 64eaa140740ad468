#include "gateway/async_jobs.h"

#include <algorithm>
#include <cctype>
#include <deque>
#include <map>
#include <random>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "boost/json/parse.hpp"
#include "boost/json/serialize.hpp"
#include "common/log.h"
#include "common/strings.h"
#include "common/sync.h"
#include "common/thread_name.h"
#include "tracing/trace_context.h"

namespace galley::gateway {
namespace {

using Clock = std::chrono::steady_clock;

// 128 random bits as 32 hex digits: a job id no client can guess.
std::string NewId(std::mt19937_64& rng) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 2; ++i) {
    uint64_t v = rng();
    for (int j = 0; j < 16; ++j, v >>= 4) id.push_back(kHex[v & 15]);
  }
  return id;
}

bool ValidId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return false;
  }
  return true;
}

struct Task {
  enum class Kind { kSubmit, kResult } kind = Kind::kSubmit;
  std::string id, model, body;
  std::string traceparent;  // the client's, passed on to the consumer in the entry
  int64_t deadline_ms = 0;
  Clock::time_point until{};  // kResult: answer "pending" after this
  Clock::time_point next{};   // kResult: when to look again
  // kSubmit: after queueing, wait up to this long for the result and answer it (RFC 7240's
  // `wait` with `respond-async`); 0: answer 202 at once. kResult: the wait of such a submission
  // (the answer on timeout is then the 202 of the job, not "pending").
  std::chrono::milliseconds sync_wait{0};
  http::Responder respond;
};

// The preference the answer honoured (RFC 7240 §3, Preference-Applied).
std::string Applied(const Task& t, bool async) {
  if (t.sync_wait.count() <= 0) return "respond-async";
  const std::string wait = StrCat("wait=", (t.sync_wait.count() + 999) / 1000);
  return async ? StrCat("respond-async, ", wait) : wait;
}

}  // namespace

struct AsyncJobs::State {
  explicit State(AsyncJobsOptions o)
      : options(std::move(o)), redis(options.address, options.redis_timeout) {}

  void Run() {
    SetThreadName("async-jobs");
    while (true) {
      Task t;
      {
        absl::MutexLock lock(&mu);
        while (true) {
          if (stopping) return;
          if (!ready.empty()) break;
          if (!waiting.empty()) {
            auto first =
                std::min_element(waiting.begin(), waiting.end(),
                                 [](const Task& a, const Task& b) { return a.next < b.next; });
            if (first->next <= Clock::now()) {
              ready.push_back(std::move(*first));
              waiting.erase(first);
              break;
            }
            galley::WaitUntil(cv, mu, first->next);
          } else {
            cv.Wait(&mu);
          }
        }
        t = std::move(ready.front());
        ready.pop_front();
      }
      if (t.kind == Task::Kind::kSubmit) {
        DoSubmit(t);
      } else {
        DoResult(std::move(t));
      }
    }
  }

  void DoSubmit(Task& t) {
    std::vector<std::string> cmd = {"XADD",  options.stream, "*",    "id",  t.id,
                                    "model", t.model,        "body", t.body};
    if (t.deadline_ms > 0) {
      cmd.push_back("deadline_ms");
      cmd.push_back(std::to_string(t.deadline_ms));
    }
    if (!t.traceparent.empty()) {
      cmd.push_back("traceparent");
      cmd.push_back(t.traceparent);
    }
    // The job is known (GET answers "pending", not 404) for as long as a result would be kept.
    auto r = redis.Pipeline({cmd,
                             {"SET", StrCat(options.stream, ":job:", t.id), "queued", "EX",
                              std::to_string(options.job_ttl.count())}});
    if (!r.ok() || (*r)[0].error()) {
      const std::string why = r.ok() ? (*r)[0].str : std::string(r.status().message());
      log::Warn("async_submit_failed", {{"error", why}});
      return t.respond(http::JsonError(http::Status::service_unavailable,
                                       StrCat("the queue is not reachable: ", why)));
    }
    if (t.sync_wait.count() > 0) {  // ride the queue, answer when the result arrives
      Task wait;
      wait.kind = Task::Kind::kResult;
      wait.id = t.id;
      wait.sync_wait = t.sync_wait;
      wait.until = Clock::now() + t.sync_wait;
      wait.next = Clock::now() + std::chrono::milliseconds(5);
      wait.respond = std::move(t.respond);
      absl::MutexLock lock(&mu);
      waiting.push_back(std::move(wait));
      cv.SignalAll();
      return;
    }
    t.respond(Accepted(t));
  }

  // 202 Accepted for job t: its id and where its result will be.
  static http::Response Accepted(const Task& t) {
    const std::string where = StrCat("/v1/results/", t.id);
    http::Response res = http::JsonResponse(
        http::Status::accepted, boost::json::serialize(boost::json::object{
                                    {"id", t.id}, {"status", "queued"}, {"result", where}}));
    res.set(boost::beast::http::field::location, where);
    res.set("Preference-Applied", Applied(t, true));
    return res;
  }

  // The outcome of job `id`, as the consumers write it (docs/queues.md): a result is the message's
  // done key, a JSON record {"status":"ok","model":..,"body":..}; a failure is the hash
  // STREAM:result:ID with status dead_lettered and the reason. Empty when neither exists yet.
  absl::StatusOr<std::map<std::string, std::string>> ReadOutcome(const std::string& id) {
    auto r = redis.Pipeline({{"GET", StrCat(options.stream, ":done:", id)},
                             {"HGETALL", StrCat(options.stream, ":result:", id)}});
    if (!r.ok()) return r.status();
    for (const redis::RedisReply& reply : *r) {
      if (reply.error()) return absl::UnavailableError(reply.str);
    }
    std::map<std::string, std::string> fields;
    const redis::RedisReply& done = (*r)[0];
    if (!done.nil() && done.type == redis::RedisReply::Type::kString) {
      boost::system::error_code ec;
      boost::json::value v = boost::json::parse(done.str, ec);
      const boost::json::object* o = ec ? nullptr : v.if_object();
      if (o != nullptr && o->contains("body")) {
        fields["status"] = "ok";
        fields["body"] = boost::json::serialize(o->at("body"));
        return fields;
      }
    }
    const redis::RedisReply& failed = (*r)[1];
    for (size_t i = 0; i + 1 < failed.elements.size(); i += 2) {
      fields[failed.elements[i].str] = failed.elements[i + 1].str;
    }
    return fields;
  }

  void DoResult(Task t) {
    auto outcome = ReadOutcome(t.id);
    if (!outcome.ok()) {
      return t.respond(http::JsonError(
          http::Status::service_unavailable,
          StrCat("the queue is not reachable: ", std::string(outcome.status().message()))));
    }
    std::map<std::string, std::string>& fields = *outcome;
    if (fields.empty()) {
      if (Clock::now() < t.until) {  // long poll: look again shortly
        t.next = Clock::now() + std::chrono::milliseconds(20);
        absl::MutexLock lock(&mu);
        waiting.push_back(std::move(t));
        cv.SignalAll();
        return;
      }
      if (t.sync_wait.count() > 0) return t.respond(Accepted(t));  // not in time: the job's 202
      // Pending or unknown: a job is known from submission until its result would expire.
      auto known = redis.Command({"EXISTS", StrCat(options.stream, ":job:", t.id)});
      if (known.ok() && known->type == redis::RedisReply::Type::kInteger && known->integer == 0) {
        return t.respond(http::JsonError(http::Status::not_found, StrCat("no job '", t.id, "'")));
      }
      return t.respond(http::JsonResponse(
          http::Status::accepted,
          boost::json::serialize(boost::json::object{{"id", t.id}, {"status", "pending"}})));
    }
    if (fields["status"] == "ok") {
      http::Response res = http::JsonResponse(http::Status::ok, fields["body"]);
      res.set("X-Galley-Job", t.id);
      if (t.sync_wait.count() > 0) res.set("Preference-Applied", Applied(t, false));
      return t.respond(std::move(res));
    }
    t.respond(http::JsonError(http::Status::unprocessable_entity,
                              StrCat("job ", t.id, " failed: ", fields["reason"])));
  }

  bool Push(Task t) {
    absl::MutexLock lock(&mu);
    if (stopping || ready.size() + waiting.size() >= options.max_pending) return false;
    ready.push_back(std::move(t));
    cv.SignalAll();
    return true;
  }

  const AsyncJobsOptions options;
  redis::RedisClient redis;  // the worker thread's
  absl::Mutex mu;
  absl::CondVar cv;
  std::deque<Task> ready ABSL_GUARDED_BY(mu);
  std::vector<Task> waiting ABSL_GUARDED_BY(mu);  // long polls, by next look
  bool stopping ABSL_GUARDED_BY(mu) = false;
  std::mt19937_64 rng ABSL_GUARDED_BY(mu){std::random_device{}()};
  std::thread thread;
};

absl::StatusOr<std::unique_ptr<AsyncJobs>> AsyncJobs::Create(AsyncJobsOptions options) {
  if (options.stream.empty()) return absl::InvalidArgumentError("the async stream name is empty");
  auto state = std::make_shared<State>(std::move(options));
  state->thread = std::thread([s = state.get()] { s->Run(); });
  return std::unique_ptr<AsyncJobs>(new AsyncJobs(std::move(state)));
}

AsyncJobs::AsyncJobs(std::shared_ptr<State> state) : state_(std::move(state)) {}

AsyncJobs::~AsyncJobs() { Stop(); }

void AsyncJobs::Submit(std::string model, std::string body, int64_t deadline_ms,
                       http::Responder respond, std::chrono::milliseconds wait,
                       std::string traceparent) {
  Task t;
  t.kind = Task::Kind::kSubmit;
  t.sync_wait = std::min(std::max(wait, std::chrono::milliseconds(0)), state_->options.max_wait);
  {
    absl::MutexLock lock(&state_->mu);
    t.id = NewId(state_->rng);
  }
  t.model = std::move(model);
  t.body = std::move(body);
  t.deadline_ms = deadline_ms;
  // Passed on only when it parses: the field must never carry a client's arbitrary text.
  if (tracing::ParseTraceparent(traceparent)) t.traceparent = std::move(traceparent);
  t.respond = respond;
  if (!state_->Push(std::move(t))) {
    respond(http::JsonError(http::Status::too_many_requests,
                            "too many asynchronous requests queued here"));
  }
}

void AsyncJobs::Result(std::string id, std::chrono::milliseconds wait, http::Responder respond) {
  if (!ValidId(id)) {
    return respond(
        http::JsonError(http::Status::bad_request, "a job id is letters, digits, '-', '_' or '.'"));
  }
  Task t;
  t.kind = Task::Kind::kResult;
  t.id = std::move(id);
  t.until = Clock::now() + std::min(wait, state_->options.max_wait);
  t.respond = respond;
  if (!state_->Push(std::move(t))) {
    respond(http::JsonError(http::Status::too_many_requests, "too many requests waiting here"));
  }
}

void AsyncJobs::Stop() {
  if (!state_) return;
  std::deque<Task> ready;
  std::vector<Task> waiting;
  {
    absl::MutexLock lock(&state_->mu);
    if (state_->stopping) return;
    state_->stopping = true;
    state_->cv.SignalAll();
  }
  if (state_->thread.joinable()) state_->thread.join();
  {
    absl::MutexLock lock(&state_->mu);
    ready.swap(state_->ready);
    waiting.swap(state_->waiting);
  }
  for (Task& t : ready)
    t.respond(http::JsonError(http::Status::service_unavailable, "the gateway is stopping"));
  for (Task& t : waiting)
    t.respond(http::JsonError(http::Status::service_unavailable, "the gateway is stopping"));
}

}  // namespace galley::gateway
