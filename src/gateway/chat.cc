#include "gateway/chat.h"

#include <atomic>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/post.hpp"
#include "boost/asio/thread_pool.hpp"
#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"
#include "common/json.h"
#include "common/log.h"
#include "common/strings.h"
#include "gateway/step_caller.h"
#include "pipeline/executor.h"
#include "prometheus/counter.h"
#include "prometheus/histogram.h"
#include "tracing/tracer.h"

namespace galley::gateway {

namespace json = boost::json;
namespace asio = boost::asio;
using http::Responder;
using http::Response;
using http::Status;

namespace {

double Millis(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

json::value TensorJson(const std::string& name, const pipeline::Tensor& t) {
  json::array shape;
  for (int64_t d : t.shape) shape.push_back(d);
  return json::object{{"name", name}, {"datatype", t.datatype}, {"shape", shape}, {"data", t.data}};
}

json::array StepsJson(const pipeline::RunResult& r) {
  json::array out;
  for (const auto& s : r.steps) {
    json::object o{{"step", s.step},
                   {"node", s.node},
                   {"status", s.status},
                   {"latency_ms", std::round(s.latency_ms * 1000) / 1000}};
    if (!s.model.empty()) o["model"] = s.model;
    if (!s.replica.empty()) o["replica"] = s.replica;
    if (!s.error.empty()) o["error"] = s.error;
    out.push_back(std::move(o));
  }
  return out;
}

Response Json(Status status, json::value v) { return http::JsonResponse(status, JsonSerialize(v)); }

Status HttpStatusOf(const absl::Status& st) {
  switch (st.code()) {
    case absl::StatusCode::kInvalidArgument:
      return Status::bad_request;
    case absl::StatusCode::kNotFound:
      return Status::not_found;
    case absl::StatusCode::kResourceExhausted:
      return Status::payload_too_large;
    case absl::StatusCode::kDeadlineExceeded:
      return Status::gateway_timeout;
    case absl::StatusCode::kAborted:
      return Status::conflict;
    case absl::StatusCode::kUnavailable:
      return Status::service_unavailable;
    default:
      return Status::internal_server_error;
  }
}

std::string FirstString(const pipeline::Tensors& t, const std::string& name, size_t i = 0) {
  const auto it = t.find(name);
  if (it == t.end() || it->second.data.size() <= i) return "";
  const json::value& v = it->second.data[i];
  return v.is_string() ? std::string(v.as_string()) : JsonSerialize(v);
}

}  // namespace

struct ChatService::State : std::enable_shared_from_this<State> {
  State(ChatOptions o, pipeline::PipelineSet s, Gateway& gateway, metrics::Registry& registry,
        const Clock& clock)
      : options(std::move(o)),
        set(std::move(s)),
        clock(clock),
        caller(gateway, clock, options.step_breaker),
        pool(std::max(1, options.redis_threads)),
        steps(prometheus::BuildCounter()
                  .Name("galley_gateway_pipeline_steps_total")
                  .Help("Pipeline steps run, by pipeline, step and status (ok, fallback, "
                        "skipped, failed, set).")
                  .Register(registry.prom())),
        step_seconds(prometheus::BuildHistogram()
                         .Name("galley_gateway_pipeline_step_duration_seconds")
                         .Help("Time of one pipeline step, every try and fallback included.")
                         .Register(registry.prom())),
        runs(prometheus::BuildCounter()
                 .Name("galley_gateway_pipeline_runs_total")
                 .Help("Pipeline runs, by pipeline and outcome (ok, halted, failed).")
                 .Register(registry.prom())),
        rng(std::random_device{}()) {}

  // Runs `fn(store)` on the pool with a store of its own.
  void WithStore(std::function<void(agents::ConversationStore&)> fn) {
    asio::post(pool, [self = shared_from_this(), fn = std::move(fn)] {
      std::unique_ptr<agents::ConversationStore> store;
      {
        absl::MutexLock lock(&self->mu);
        if (!self->stores.empty()) {
          store = std::move(self->stores.back());
          self->stores.pop_back();
        }
      }
      if (!store) {
        store = std::make_unique<agents::ConversationStore>(
            *self->options.redis, self->options.redis_timeout, self->options.conversation);
      }
      fn(*store);
      absl::MutexLock lock(&self->mu);
      self->stores.push_back(std::move(store));
    });
  }

  uint64_t Seed() {
    absl::MutexLock lock(&mu);
    return rng();
  }

  std::string NewTurnId() {
    absl::MutexLock lock(&mu);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string id = "t-";
    for (int i = 0; i < 24; ++i) id.push_back(kHex[rng() % 16]);
    return id;
  }

  void Count(const std::string& pipeline, const pipeline::RunResult& r) {
    for (const auto& s : r.steps) {
      steps.Add({{"pipeline", pipeline}, {"step", s.step}, {"status", s.status}}).Increment();
      step_seconds
          .Add({{"pipeline", pipeline}, {"step", s.step}},
               prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                       0.25, 0.5, 1, 2.5, 5, 10})
          .Observe(s.latency_ms / 1000);
    }
    runs.Add({{"pipeline", pipeline},
              {"outcome", !r.status.ok() ? "failed"
                          : r.halted     ? "halted"
                                         : "ok"}})
        .Increment();
  }

  // With a tracer: the run's server span (continuing `traceparent`), ended and recorded when
  // `respond` answers (which then carries a `traceresponse` header naming it), and a caller that
  // puts each model call in a child span.
  struct Traced {
    std::shared_ptr<tracing::Span> span;  // attributes may be added before the run starts
    std::shared_ptr<TracedCaller> caller;
  };
  Traced Trace(std::string name, const std::string& traceparent, TimePoint start,
               Responder& respond) {
    Traced t;
    if (!options.tracer) return t;
    auto span = std::make_shared<tracing::Span>(
        tracing::StartSpan(std::move(name), tracing::SpanKind::kServer,
                           tracing::ParseTraceparent(traceparent), start));
    t.caller = std::make_shared<TracedCaller>(caller, *options.tracer, span->Context(), clock);
    t.span = span;
    respond = [tracer = options.tracer, clock = &clock, span,
               respond = std::move(respond)](Response&& res) mutable {
      span->end_ns = tracing::UnixNanos(clock->Now());
      span->Set("http.response.status_code", int64_t{res.result_int()});
      if (res.result_int() >= 500) {
        span->error = true;
        span->status_message = StrCat("HTTP ", res.result_int());
      }
      res.set("traceresponse", tracing::FormatTraceparent(span->Context()));
      tracer->Record(std::move(*span));
      respond(std::move(res));
    };
    return t;
  }

  void RespondChat(std::string id, std::string turn_id, std::string message, TimePoint start,
                   std::optional<tracing::TraceContext> trace, pipeline::RunResult r,
                   Responder respond);

  const ChatOptions options;
  const pipeline::PipelineSet set;
  const Clock& clock;
  StepCaller caller;
  asio::thread_pool pool;
  prometheus::Family<prometheus::Counter>& steps;
  prometheus::Family<prometheus::Histogram>& step_seconds;
  prometheus::Family<prometheus::Counter>& runs;
  absl::Mutex mu;
  std::mt19937_64 rng ABSL_GUARDED_BY(mu);
  std::vector<std::unique_ptr<agents::ConversationStore>> stores ABSL_GUARDED_BY(mu);
};

absl::StatusOr<std::unique_ptr<ChatService>> ChatService::Create(
    ChatOptions options, const std::vector<std::string>& known_models, Gateway& gateway,
    metrics::Registry& registry, const Clock& clock) {
  std::ifstream in(options.pipelines_file, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        StrCat("pipelines file '", options.pipelines_file, "' cannot be read"));
  }
  std::stringstream text;
  text << in.rdbuf();
  auto set = pipeline::ParsePipelines(text.str());
  if (!set.ok()) {
    return absl::InvalidArgumentError(StrCat(options.pipelines_file, ": ", set.status().message()));
  }
  if (absl::Status st = pipeline::ValidatePipelines(*set, known_models); !st.ok()) {
    return absl::FailedPreconditionError(StrCat(options.pipelines_file, ": ", st.message()));
  }
  if (options.redis && !set->pipelines.contains(options.chat_pipeline)) {
    return absl::FailedPreconditionError(
        StrCat(options.pipelines_file, ": no pipeline '", options.chat_pipeline, "' for /v1/chat"));
  }
  if (options.redis) {
    const pipeline::Pipeline& chat = set->pipelines.at(options.chat_pipeline);
    if (std::find(chat.inputs.begin(), chat.inputs.end(), "message") == chat.inputs.end()) {
      return absl::FailedPreconditionError(
          StrCat(options.pipelines_file, ": pipeline '", options.chat_pipeline,
                 "' must take the input 'message' (the chat message) to serve /v1/chat"));
    }
  }
  auto state =
      std::make_shared<State>(std::move(options), *std::move(set), gateway, registry, clock);
  return std::unique_ptr<ChatService>(new ChatService(std::move(state)));
}

ChatService::ChatService(std::shared_ptr<State> state) : state_(std::move(state)) {}

ChatService::~ChatService() { state_->pool.join(); }

void ChatService::Chat(std::string body, TimePoint deadline, const std::string& traceparent,
                       Responder respond) {
  State& s = *state_;
  if (!s.options.redis) {
    return respond(http::JsonError(
        Status::service_unavailable,
        "chat needs a conversation store: start the gateway with --chat-redis HOST:PORT"));
  }
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  if (ec || !doc.is_object()) {
    return respond(http::JsonError(
        Status::bad_request,
        "the body must be a JSON object {\"conversation_id\": ..., \"message\": ...}"));
  }
  std::string id, message, turn_id;
  for (const auto& kv : doc.as_object()) {
    const std::string_view key(kv.key().data(), kv.key().size());
    if (key != "conversation_id" && key != "message" && key != "turn_id") {
      return respond(http::JsonError(
          Status::bad_request,
          StrCat("unknown field '", key, "' (allowed: conversation_id, message, turn_id)")));
    }
    if (!kv.value().is_string()) {
      return respond(http::JsonError(Status::bad_request, StrCat("'", key, "' must be a string")));
    }
    std::string v(kv.value().as_string());
    (key == "conversation_id" ? id : key == "message" ? message : turn_id) = std::move(v);
  }
  if (!agents::ValidConversationId(id)) {
    return respond(http::JsonError(
        Status::bad_request, "'conversation_id' must be 1-128 characters of [A-Za-z0-9._:-]"));
  }
  if (message.empty() || message.size() > s.options.max_message_bytes) {
    return respond(
        http::JsonError(Status::bad_request,
                        StrCat("'message' must be 1 to ", s.options.max_message_bytes, " bytes")));
  }
  if (!doc.as_object().contains("turn_id")) {
    turn_id = s.NewTurnId();
  } else if (!agents::ValidConversationId(turn_id)) {
    return respond(http::JsonError(Status::bad_request,
                                   "'turn_id' must be 1-128 characters of [A-Za-z0-9._:-]"));
  }
  const TimePoint start = s.clock.Now();
  auto state = state_;
  pipeline::Tensors inputs{{"message", pipeline::StringTensor({message})},
                           {"conversation_id", pipeline::StringTensor({id})}};
  const pipeline::Pipeline& p = s.set.pipelines.at(s.options.chat_pipeline);
  auto traced = s.Trace("chat", traceparent, start, respond);
  if (traced.span) {
    traced.span->Set("galley.conversation_id", id);
    traced.span->Set("galley.turn_id", turn_id);
  }
  std::optional<tracing::TraceContext> trace;
  if (traced.span) trace = traced.span->Context();
  pipeline::ModelCaller& caller =
      traced.caller ? static_cast<pipeline::ModelCaller&>(*traced.caller) : s.caller;
  pipeline::Run(p, std::move(inputs), deadline, caller, s.clock, s.Seed(),
                [state, id, turn_id, message, start, trace, keep = std::move(traced.caller),
                 respond = std::move(respond)](pipeline::RunResult&& r) mutable {
                  state->RespondChat(std::move(id), std::move(turn_id), std::move(message), start,
                                     trace, std::move(r), std::move(respond));
                });
}

void ChatService::State::RespondChat(std::string id, std::string turn_id, std::string message,
                                     TimePoint start, std::optional<tracing::TraceContext> trace,
                                     pipeline::RunResult r, Responder respond) {
  Count(options.chat_pipeline, r);
  if (!r.status.ok()) {
    // Nothing is recorded: the same turn_id may be retried.
    return respond(
        Json(HttpStatusOf(r.status), json::object{{"error", std::string(r.status.message())},
                                                  {"conversation_id", id},
                                                  {"turn_id", turn_id},
                                                  {"nodes", StepsJson(r)}}));
  }
  const auto answer = r.tensors.find("answer");
  if (answer == r.tensors.end() || answer->second.data.empty()) {
    return respond(http::JsonError(
        Status::internal_server_error,
        StrCat("pipeline '", options.chat_pipeline, "' produced no 'answer' tensor")));
  }
  json::array passages, sources;
  for (size_t i = 0; i < answer->second.data.size(); ++i) {
    json::object p{{"text", FirstString(r.tensors, "answer", i)}};
    if (std::string src = FirstString(r.tensors, "sources", i); !src.empty()) {
      p["source"] = src;
      sources.push_back(json::string(src));
    }
    passages.push_back(std::move(p));
  }
  const std::string text = FirstString(r.tensors, "answer");
  json::array fallbacks;
  for (const auto& s : r.steps) {
    if (s.status == "fallback" || s.status == "skipped") {
      fallbacks.push_back(json::object{{"step", s.step}, {"status", s.status}, {"error", s.error}});
    }
  }
  json::object reply{{"conversation_id", id}, {"turn_id", turn_id}, {"answer", text},
                     {"passages", passages},  {"halted", r.halted}, {"nodes", StepsJson(r)},
                     {"fallbacks", fallbacks}};
  std::vector<std::string> entries{
      JsonSerialize(json::object{{"role", "user"}, {"turn_id", turn_id}, {"text", message}}),
      JsonSerialize(json::object{{"role", "assistant"},
                                 {"turn_id", turn_id},
                                 {"text", text},
                                 {"sources", sources},
                                 {"halted", r.halted}})};
  auto self = shared_from_this();
  WithStore([self, id, turn_id, start, trace, entries = std::move(entries),
             reply = std::move(reply),
             respond = std::move(respond)](agents::ConversationStore& store) mutable {
    std::optional<tracing::Span> span;
    if (trace && self->options.tracer) {
      span = tracing::StartSpan("conversation append", tracing::SpanKind::kClient, trace,
                                self->clock.Now());
      span->Set("db.system", std::string("redis"));
    }
    // A pooled connection may have gone stale (Redis restarted since it was last used): one
    // more try on a fresh connection. Safe: the turn ID makes the append idempotent.
    auto appended = store.Append(id, turn_id, entries);
    if (!appended.ok() && appended.status().code() == absl::StatusCode::kUnavailable) {
      appended = store.Append(id, turn_id, entries);
    }
    if (span) {
      span->end_ns = tracing::UnixNanos(self->clock.Now());
      if (!appended.ok()) {
        span->error = true;
        span->status_message = std::string(appended.status().message());
      }
      self->options.tracer->Record(std::move(*span));
    }
    if (!appended.ok()) {
      const absl::Status& st = appended.status();
      log::Warn(
          "chat_turn_not_recorded",
          {{"conversation_id", id}, {"turn_id", turn_id}, {"error", std::string(st.message())}});
      return respond(
          Json(HttpStatusOf(st),
               json::object{{"error", StrCat("conversation store: ", st.message(),
                                             st.code() == absl::StatusCode::kUnavailable
                                                 ? "; retry the turn with the same turn_id"
                                                 : "")},
                            {"conversation_id", id},
                            {"turn_id", turn_id}}));
    }
    reply["turn"] = appended->version;
    reply["duplicate"] = appended->duplicate;
    reply["latency_ms"] = std::round(Millis(self->clock.Now() - start) * 1000) / 1000;
    respond(Json(Status::ok, std::move(reply)));
  });
}

void ChatService::History(std::string id, Responder respond) {
  if (!state_->options.redis) {
    return respond(http::JsonError(
        Status::service_unavailable,
        "chat needs a conversation store: start the gateway with --chat-redis HOST:PORT"));
  }
  if (!agents::ValidConversationId(id)) {
    return respond(http::JsonError(Status::bad_request,
                                   "a conversation ID is 1-128 characters of [A-Za-z0-9._:-]"));
  }
  state_->WithStore([id, respond = std::move(respond)](agents::ConversationStore& store) {
    auto c = store.Load(id);
    if (!c.ok() && c.status().code() == absl::StatusCode::kUnavailable) c = store.Load(id);
    if (!c.ok()) {
      return respond(http::JsonError(HttpStatusOf(c.status()), ToStd(c.status().message())));
    }
    if (c->version == 0) {
      return respond(
          http::JsonError(Status::not_found, StrCat("no conversation '", id, "' (or it expired)")));
    }
    json::array entries;
    for (const std::string& e : c->entries) {
      boost::system::error_code ec;
      json::value v = json::parse(e, ec);
      entries.push_back(ec ? json::value(json::string(e)) : std::move(v));
    }
    respond(Json(Status::ok, json::object{{"conversation_id", id},
                                          {"version", c->version},
                                          {"turns", c->turns},
                                          {"entries", std::move(entries)}}));
  });
}

void ChatService::RunPipeline(std::string name, std::string body, TimePoint deadline,
                              const std::string& traceparent, Responder respond) {
  State& s = *state_;
  const auto it = s.set.pipelines.find(name);
  if (it == s.set.pipelines.end()) {
    return respond(http::JsonError(Status::not_found, StrCat("no pipeline '", name, "'")));
  }
  const pipeline::Pipeline& p = it->second;
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  const json::value* list =
      (!ec && doc.is_object()) ? doc.as_object().if_contains("inputs") : nullptr;
  if (!list || !list->is_array()) {
    return respond(
        http::JsonError(Status::bad_request,
                        "the body must be {\"inputs\": [{name, datatype, shape, data}, ...]}"));
  }
  // The tensors, read as a model's answer would be: the same shape of JSON.
  auto inputs = pipeline::DecodeInferResponse(JsonSerialize(json::object{{"outputs", *list}}));
  if (!inputs.ok()) {
    return respond(http::JsonError(Status::bad_request, StrCat("an input lacks 'name' or 'data' (",
                                                               inputs.status().message(), ")")));
  }
  for (const std::string& need : p.inputs) {
    if (!inputs->contains(need)) {
      return respond(http::JsonError(Status::bad_request,
                                     StrCat("pipeline '", name, "' takes the inputs ",
                                            Join(p.inputs, ", "), "; '", need, "' is missing")));
    }
  }
  auto state = state_;
  auto traced = s.Trace(StrCat("pipeline ", name), traceparent, s.clock.Now(), respond);
  pipeline::ModelCaller& caller =
      traced.caller ? static_cast<pipeline::ModelCaller&>(*traced.caller) : s.caller;
  pipeline::Run(p, *std::move(inputs), deadline, caller, s.clock, s.Seed(),
                [state, name, keep = std::move(traced.caller),
                 respond = std::move(respond)](pipeline::RunResult&& r) {
                  state->Count(name, r);
                  if (!r.status.ok()) {
                    return respond(Json(HttpStatusOf(r.status),
                                        json::object{{"error", std::string(r.status.message())},
                                                     {"pipeline", name},
                                                     {"nodes", StepsJson(r)}}));
                  }
                  json::array outputs;
                  for (const auto& [n, t] : r.tensors) outputs.push_back(TensorJson(n, t));
                  respond(Json(Status::ok, json::object{{"pipeline", name},
                                                        {"halted", r.halted},
                                                        {"outputs", std::move(outputs)},
                                                        {"nodes", StepsJson(r)}}));
                });
}

}  // namespace galley::gateway
