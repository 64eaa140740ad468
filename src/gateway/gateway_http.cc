#include "gateway/gateway_http.h"

#include <charconv>
#include <memory>

#include "boost/json/parse.hpp"
#include "common/json.h"
#include "common/log.h"
#include "common/strings.h"
#include "protocol/http_util.h"
#include "protocol/oip_json.h"
#include "protocol/request_metrics.h"
#include "tracing/span.h"
#include "tracing/trace_context.h"

namespace galley::gateway {
namespace {

namespace bhttp = boost::beast::http;
using http::Request;
using http::Responder;
using http::Response;
using protocol::Endpoint;

constexpr std::string_view kBusy = "I am currently busy, please try again later";

Response Busy() {
  Response res = http::JsonError(http::Status::too_many_requests, kBusy);
  res.set(bhttp::field::retry_after, "1");
  return res;
}

// A replica's answer, relayed with its status, body and every end-to-end field (the protocol's
// Inference-Header-Content-Length among them, RFC 9110 §7.6.1); hop-by-hop fields and those the
// gateway writes itself (Server, Date, Content-Length) are its own.
// A gateway span for a request forwarded to a replica, continuing the client's `traceparent`;
// the request then carries the span's own context, so the replica's spans nest under it.
// Nothing when tracing is off.
std::optional<tracing::Span> StartForwardSpan(tracing::Tracer* tracer, Request& req,
                                              const std::string& model, TimePoint now) {
  if (tracer == nullptr) return std::nullopt;
  const auto parent = tracing::ParseTraceparent(
      std::string_view(req["traceparent"].data(), req["traceparent"].size()));
  tracing::Span span =
      tracing::StartSpan(StrCat("forward ", model), tracing::SpanKind::kServer, parent, now);
  span.Set("galley.model", model);
  req.set("traceparent", tracing::FormatTraceparent(span.Context()));
  return span;
}

// Ends the forward span with who answered, or why no replica did (the fallback or an error
// answers then), and records it.
void EndForwardSpan(tracing::Tracer* tracer, std::optional<tracing::Span>& span,
                    const ForwardResult& r, TimePoint now) {
  if (!span) return;
  span->end_ns = tracing::UnixNanos(now);
  if (r.answered) {
    span->Set("galley.replica", r.replica);
  } else {
    span->Set("galley.no_replica", r.why_not);
  }
  tracer->Record(std::move(*span));
  span.reset();
}

Response Relay(Response&& upstream, const std::string& replica) {
  Response res{upstream.result(), 11};
  http::RemoveHopByHopFields(upstream.base());
  for (const auto& f : upstream.base()) {
    const auto name = f.name();
    if (name == bhttp::field::server || name == bhttp::field::date ||
        name == bhttp::field::content_length) {
      continue;
    }
    res.insert(f.name_string(), f.value());
  }
  res.set("X-Galley-Replica", replica);
  res.body() = std::move(upstream.body());
  res.prepare_payload();
  return res;
}

// The fallback model's answer to an infer request, marked in its JSON (parameters.fallback). With
// binary outputs (Triton's binary tensor data extension) the JSON part grows, so its new length
// goes in Inference-Header-Content-Length and the binary part follows it unchanged.
Response FallbackInferResponse(protocol::EncodedInferResponse enc) {
  const size_t json_length = enc.header_length.value_or(enc.body.size());
  boost::json::value doc = boost::json::parse(std::string_view(enc.body).substr(0, json_length));
  doc.as_object()["parameters"] = boost::json::object{{"fallback", true}};
  std::string body = JsonSerialize(doc);
  if (!enc.header_length) return http::JsonResponse(http::Status::ok, std::move(body));
  const size_t new_length = body.size();
  body.append(enc.body, json_length, std::string::npos);
  Response res{http::Status::ok, 11};
  res.set(boost::beast::http::field::content_type, "application/octet-stream");
  res.set(protocol::kInferenceHeaderLength, std::to_string(new_length));
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

void MarkFallback(Response& res, std::string_view reason) {
  res.set("X-Galley-Fallback", "true");
  res.set("X-Galley-Fallback-Reason", std::string(reason));
}

class Frontend : public std::enable_shared_from_this<Frontend> {
 public:
  Frontend(Gateway& gateway, inference::InferenceService& fallback, metrics::Registry& registry,
           protocol::FrontendMetrics& frontend_metrics, GatewayMetrics& metrics, const Clock& clock,
           GatewayFrontendOptions options, std::function<GatewayState()> state,
           std::function<void()> before_scrape)
      : gateway_(gateway),
        fallback_(fallback),
        registry_(registry),
        frontend_metrics_(frontend_metrics),
        metrics_(metrics),
        clock_(clock),
        options_(std::move(options)),
        state_(std::move(state)),
        before_scrape_(std::move(before_scrape)),
        request_metrics_(frontend_metrics, {options_.analyze_model}) {}

  void Handle(Request&& req, Responder respond);
  void OnRejected(http::Status s) { request_metrics_.Record(Endpoint::kHttp, -1, s, 0); }

 private:
  Responder Counted(Endpoint endpoint, std::string_view model, Responder respond);
  void Analyze(Request&& req, Responder respond);
  void Pipelines(Request&& req, std::string_view target, Responder respond);
  void Infer(Request&& req, std::string model, Responder respond);
  void ModelGet(Request&& req, Endpoint endpoint, std::string model, bool ready_probe,
                Responder respond);
  void FallbackAnalyze(std::string text, TimePoint deadline, std::string_view reason,
                       Responder respond);
  void FallbackInfer(const Request& req, TimePoint deadline, std::string_view reason,
                     Responder respond);
  void CountFallback(std::string_view reason) {
    metrics_.fallbacks.Add({{"reason", std::string(reason)}}).Increment();
  }

  Gateway& gateway_;
  inference::InferenceService& fallback_;
  metrics::Registry& registry_;
  protocol::FrontendMetrics& frontend_metrics_;
  GatewayMetrics& metrics_;
  const Clock& clock_;
  const GatewayFrontendOptions options_;
  std::function<GatewayState()> state_;
  std::function<void()> before_scrape_;
  protocol::RequestMetrics request_metrics_;
  std::atomic<size_t> inflight_{0};
};

Responder Frontend::Counted(Endpoint endpoint, std::string_view model, Responder respond) {
  frontend_metrics_.http_inflight_gauge.Increment();
  inflight_.fetch_add(1);
  const TimePoint start = clock_.Now();
  const int model_index = model.empty() ? -1 : request_metrics_.ModelIndex(model);
  auto self = shared_from_this();
  return [self, endpoint, model_index, start, respond = std::move(respond)](Response&& res) {
    const double secs = std::chrono::duration<double>(self->clock_.Now() - start).count();
    self->request_metrics_.Record(endpoint, model_index, res.result(), secs);
    self->frontend_metrics_.http_inflight_gauge.Decrement();
    self->inflight_.fetch_sub(1);
    respond(std::move(res));
  };
}

namespace {

// The client's preferences of RFC 7240 that the gateway honours: respond-async (§4.1) and wait
// (§4.3, delta-seconds: with respond-async, how long the client will wait for a synchronous
// answer before it takes a 202).
struct Preferences {
  bool respond_async = false;
  std::chrono::seconds wait{0};
};

Preferences ReadPreferences(const Request& req) {
  Preferences p;
  for (auto it = req.find("Prefer"); it != req.end() && it->name_string() == "Prefer"; ++it) {
    const std::string_view v(it->value().data(), it->value().size());
    for (std::string_view token : Split(v, ',')) {
      token = token.substr(0, token.find(';'));
      while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
      while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
      if (token == "respond-async") p.respond_async = true;
      if (StartsWith(token, "wait=")) {
        int64_t s = 0;
        const std::string_view n = token.substr(5);
        auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), s);
        if (ec == std::errc() && end == n.data() + n.size() && s > 0)
          p.wait = std::chrono::seconds(s);
      }
    }
  }
  return p;
}

// ?wait_ms=N of a target, 0 when absent or not a number.
std::chrono::milliseconds WaitParam(std::string_view target) {
  const size_t q = target.find("wait_ms=");
  if (q == std::string_view::npos) return {};
  int64_t ms = 0;
  const std::string_view v = target.substr(q + 8);
  std::from_chars(v.data(), v.data() + v.size(), ms);
  return std::chrono::milliseconds(std::max<int64_t>(0, ms));
}

}  // namespace

void Frontend::Handle(Request&& req, Responder respond) {
  const std::string_view full_target(req.target().data(), req.target().size());
  std::string_view target = full_target.substr(0, full_target.find('?'));
  const bool get = req.method() == http::Verb::get;
  const bool post = req.method() == http::Verb::post;
  auto not_allowed = [&](Endpoint e, std::string_view allow) {
    Response res = http::JsonError(http::Status::method_not_allowed,
                                   StrCat("method not allowed; use ", allow));
    res.set(bhttp::field::allow, allow);
    Counted(e, "", std::move(respond))(std::move(res));
  };
  if (target == "/v2/health/live" || target == "/livez") {
    if (!get) return not_allowed(Endpoint::kHealthLive, "GET");
    return Counted(Endpoint::kHealthLive, "",
                   std::move(respond))(http::JsonResponse(http::Status::ok, R"({"live":true})"));
  }
  if (target == "/v2/health/ready" || target == "/readyz") {
    if (!get) return not_allowed(Endpoint::kHealthReady, "GET");
    const GatewayState state = state_();
    const bool ready = state == GatewayState::kServing || state == GatewayState::kHolding ||
                       (state == GatewayState::kFallbackOnly && options_.ready_on_fallback);
    return Counted(Endpoint::kHealthReady, "", std::move(respond))(http::JsonResponse(
        ready ? http::Status::ok : http::Status::service_unavailable,
        StrCat(R"({"ready":)", ready ? "true" : "false", R"(,"state":")", GatewayStateName(state),
               R"(","replicas_ready":)", gateway_.ReadyReplicas(), "}")));
  }
  if (target == "/metrics") {
    if (!get) return not_allowed(Endpoint::kMetrics, "GET");
    auto r = Counted(Endpoint::kMetrics, "", std::move(respond));
    if (before_scrape_) before_scrape_();
    Response res{http::Status::ok, 11};
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = registry_.Exposition();
    for (const metrics::Registry* extra : options_.extra_registries)
      res.body() += extra->Exposition();
    res.prepare_payload();
    return r(std::move(res));
  }
  if (options_.api_keys) {
    std::string_view model;
    if (target == "/inference/analyze") {
      model = options_.analyze_model;
    } else if (StartsWith(target, "/v2/models/")) {
      model = target.substr(11, target.substr(11).find('/'));
    }
    const AuthDecision d = options_.api_keys->Check(req, model, clock_.Now());
    metrics_.auth.Add({{"outcome", std::string(AuthOutcomeName(d.outcome))}}).Increment();
    if (d.outcome != AuthOutcome::kAllowed) {
      return Counted(Endpoint::kHttp, "", std::move(respond))(AuthErrorResponse(d));
    }
    // The key is the gateway's business: replicas never see it.
    req.erase(bhttp::field::authorization);
    req.erase("X-API-Key");
  }
  if (target == "/v2") {
    if (!get) return not_allowed(Endpoint::kServerMetadata, "GET");
    return Counted(Endpoint::kServerMetadata, "", std::move(respond))(http::JsonResponse(
        http::Status::ok,
        protocol::EncodeServerMetadata("galley-gateway", options_.server_version)));
  }
  if (inflight_.load() >= options_.max_inflight) {
    return Counted(Endpoint::kHttp, "", std::move(respond))(Busy());
  }
  if (options_.async_jobs && StartsWith(target, "/v1/results/")) {
    if (!get) return not_allowed(Endpoint::kNotFound, "GET");
    return options_.async_jobs->Result(std::string(target.substr(12)), WaitParam(full_target),
                                       Counted(Endpoint::kInfer, "", std::move(respond)));
  }
  const Preferences prefer = ReadPreferences(req);
  if (options_.async_jobs && post && prefer.respond_async) {
    std::string model;
    if (target == "/inference/analyze") {
      model = options_.analyze_model;
    } else if (StartsWith(target, "/v2/models/")) {
      const std::vector<std::string_view> parts = Split(target.substr(11), '/');
      if (parts.size() == 2 && parts[1] == "infer") model = std::string(parts[0]);
    }
    if (!model.empty()) {
      auto r = Counted(target == "/inference/analyze" ? Endpoint::kAnalyze : Endpoint::kInfer,
                       model, std::move(respond));
      if (!protocol::HasJsonContentType(req)) {
        return r(
            http::JsonError(http::Status::bad_request, "Content-Type must be application/json"));
      }
      auto deadline =
          protocol::RequestDeadline(req, std::nullopt, std::chrono::milliseconds(0), clock_.Now());
      if (!deadline.ok())
        return r(http::JsonError(http::Status::bad_request, ToStd(deadline.status().message())));
      int64_t deadline_ms = 0;
      if (*deadline != TimePoint::max()) {
        deadline_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch() + (*deadline - clock_.Now()))
                .count();
      }
      return options_.async_jobs->Submit(
          std::move(model), std::move(req.body()), deadline_ms, std::move(r), prefer.wait,
          std::string(req["traceparent"].data(), req["traceparent"].size()));
    }
  }
  if (options_.chat && (target == "/v1/chat" || StartsWith(target, "/v1/chat/") ||
                        StartsWith(target, "/v1/pipelines/"))) {
    return Pipelines(std::move(req), target, std::move(respond));
  }
  if (target == "/inference/analyze") {
    if (!post) return not_allowed(Endpoint::kAnalyze, "POST");
    return Analyze(std::move(req),
                   Counted(Endpoint::kAnalyze, options_.analyze_model, std::move(respond)));
  }
  if (StartsWith(target, "/v2/models/")) {
    std::vector<std::string_view> parts = Split(target.substr(11), '/');
    const std::string name(parts[0]);
    size_t next = 1;
    if (parts.size() >= 3 && parts[1] == "versions" && !parts[2].empty()) next = 3;
    const std::string_view action = next < parts.size() ? parts[next] : "";
    if (!name.empty() && parts.size() <= next + 1) {
      if (action.empty()) {
        if (!get) return not_allowed(Endpoint::kModelMetadata, "GET");
        return ModelGet(std::move(req), Endpoint::kModelMetadata, name, false,
                        Counted(Endpoint::kModelMetadata, name, std::move(respond)));
      }
      if (action == "ready") {
        if (!get) return not_allowed(Endpoint::kModelReady, "GET");
        return ModelGet(std::move(req), Endpoint::kModelReady, name, true,
                        Counted(Endpoint::kModelReady, name, std::move(respond)));
      }
      if (action == "infer") {
        if (!post) return not_allowed(Endpoint::kInfer, "POST");
        return Infer(std::move(req), name, Counted(Endpoint::kInfer, name, std::move(respond)));
      }
    }
  }
  Counted(Endpoint::kNotFound, "", std::move(respond))(
      http::JsonError(http::Status::not_found, StrCat("no such endpoint: ", target)));
}

void Frontend::Analyze(Request&& req, Responder respond) {
  if (!protocol::HasJsonContentType(req)) {
    return respond(
        http::JsonError(http::Status::bad_request, "Content-Type must be application/json"));
  }
  auto text = protocol::DecodeAnalyzeRequest(req.body());
  if (!text.ok())
    return respond(http::JsonError(http::Status::bad_request, ToStd(text.status().message())));
  auto deadline =
      protocol::RequestDeadline(req, std::nullopt, options_.default_timeout, clock_.Now());
  if (!deadline.ok())
    return respond(http::JsonError(http::Status::bad_request, ToStd(deadline.status().message())));
  auto self = shared_from_this();
  const TimePoint dl = *deadline;
  auto span = StartForwardSpan(options_.tracer, req, options_.analyze_model, clock_.Now());
  gateway_.Forward(options_.analyze_model, std::move(req), dl,
                   [self, dl, text = std::move(text).value(), span = std::move(span),
                    respond = std::move(respond)](ForwardResult&& r) mutable {
                     EndForwardSpan(self->options_.tracer, span, r, self->clock_.Now());
                     if (r.answered) return respond(Relay(std::move(r.response), r.replica));
                     self->FallbackAnalyze(std::move(text), dl, r.why_not, std::move(respond));
                   });
}

// /v1/chat, /v1/chat/{id} and /v1/pipelines/{name} (chat.h).
void Frontend::Pipelines(Request&& req, std::string_view target, Responder respond) {
  auto r = Counted(Endpoint::kHttp, "", std::move(respond));
  const bool post = req.method() == http::Verb::post;
  if (StartsWith(target, "/v1/chat/")) {
    if (req.method() != http::Verb::get) {
      Response res =
          http::JsonError(http::Status::method_not_allowed, "method not allowed; use GET");
      res.set(bhttp::field::allow, "GET");
      return r(std::move(res));
    }
    return options_.chat->History(std::string(target.substr(9)), std::move(r));
  }
  if (!post) {
    Response res =
        http::JsonError(http::Status::method_not_allowed, "method not allowed; use POST");
    res.set(bhttp::field::allow, "POST");
    return r(std::move(res));
  }
  if (!protocol::HasJsonContentType(req)) {
    return r(http::JsonError(http::Status::bad_request, "Content-Type must be application/json"));
  }
  auto deadline =
      protocol::RequestDeadline(req, std::nullopt, options_.default_timeout, clock_.Now());
  if (!deadline.ok())
    return r(http::JsonError(http::Status::bad_request, ToStd(deadline.status().message())));
  const std::string traceparent(req["traceparent"].data(), req["traceparent"].size());
  if (target == "/v1/chat") {
    return options_.chat->Chat(std::move(req.body()), *deadline, traceparent, std::move(r));
  }
  return options_.chat->RunPipeline(std::string(target.substr(14)), std::move(req.body()),
                                    *deadline, traceparent, std::move(r));
}

void Frontend::FallbackAnalyze(std::string text, TimePoint deadline, std::string_view reason,
                               Responder respond) {
  inference::InferRequest ir;
  ir.model = options_.fallback_model;
  ir.deadline = deadline;
  ir.arrival = clock_.Now();
  model::Tensor t{"text", model::DataType::kBytes, {1}, {}, {}};
  t.bytes.push_back(std::move(text));
  ir.input.inputs.push_back(std::move(t));
  auto self = shared_from_this();
  fallback_.Infer(std::move(ir), [self, reason = std::string(reason),
                                  respond = std::move(respond)](inference::InferResult&& r) {
    if (r.outcome == inference::Outcome::kQueueFull) return respond(Busy());
    if (r.outcome != inference::Outcome::kOk) {
      return respond(http::JsonError(protocol::HttpStatusFor(r.outcome), r.message));
    }
    const auto& outs = r.output.outputs;
    boost::json::object body;
    body["sentiment"] = std::string_view(outs[0].bytes[0]);
    body["confidence"] = protocol::FloatForJson(outs[1].At<float>(0));
    body["model"] = self->options_.fallback_model;
    body["fallback"] = true;
    Response res = http::JsonResponse(http::Status::ok, JsonSerialize(body));
    MarkFallback(res, reason);
    self->CountFallback(reason);
    respond(std::move(res));
  });
}

void Frontend::Infer(Request&& req, std::string model, Responder respond) {
  auto deadline =
      protocol::RequestDeadline(req, std::nullopt, options_.default_timeout, clock_.Now());
  if (!deadline.ok())
    return respond(http::JsonError(http::Status::bad_request, ToStd(deadline.status().message())));
  auto self = shared_from_this();
  auto span = StartForwardSpan(options_.tracer, req, model, clock_.Now());
  auto shared_req = std::make_shared<Request>(req);
  const TimePoint dl = *deadline;
  gateway_.Forward(
      model, std::move(req), dl,
      [self, dl, model, shared_req, span = std::move(span),
       respond = std::move(respond)](ForwardResult&& r) mutable {
        EndForwardSpan(self->options_.tracer, span, r, self->clock_.Now());
        if (r.answered) return respond(Relay(std::move(r.response), r.replica));
        if (model == self->options_.analyze_model || model == self->options_.fallback_model) {
          return self->FallbackInfer(*shared_req, dl, r.why_not, std::move(respond));
        }
        if (r.has_last_failure) return respond(Relay(std::move(r.last_failure), ""));
        respond(
            http::JsonError(http::Status::service_unavailable,
                            StrCat("no replica can serve model '", model, "' (", r.why_not, ")")));
      });
}

void Frontend::FallbackInfer(const Request& req, TimePoint deadline, std::string_view reason,
                             Responder respond) {
  auto md = fallback_.FindModel(options_.fallback_model, "");
  if (!md) return respond(http::JsonError(http::Status::service_unavailable, "no fallback model"));
  auto header_length = protocol::InferenceHeaderLength(req);
  if (!header_length.ok()) {
    return respond(
        http::JsonError(http::Status::bad_request, ToStd(header_length.status().message())));
  }
  auto decoded = protocol::DecodeInferRequest(req.body(), *md, *header_length);
  if (!decoded.ok())
    return respond(http::JsonError(http::Status::bad_request, ToStd(decoded.status().message())));
  inference::InferRequest ir;
  ir.model = md->name;
  ir.deadline = deadline;
  ir.arrival = clock_.Now();
  ir.input = std::move(decoded->input);
  auto self = shared_from_this();
  fallback_.Infer(
      std::move(ir),
      [self, md, id = decoded->id, outputs = decoded->outputs, binary = decoded->binary_outputs,
       all_binary = decoded->binary_data_output, reason = std::string(reason),
       respond = std::move(respond)](inference::InferResult&& r) {
        if (r.outcome == inference::Outcome::kQueueFull) return respond(Busy());
        if (r.outcome != inference::Outcome::kOk)
          return respond(http::JsonError(protocol::HttpStatusFor(r.outcome), r.message));
        Response res = FallbackInferResponse(
            protocol::EncodeInferResponse(*md, id, r.output, outputs, binary, all_binary));
        MarkFallback(res, reason);
        self->CountFallback(reason);
        respond(std::move(res));
      });
}

void Frontend::ModelGet(Request&& req, Endpoint endpoint, std::string model, bool ready_probe,
                        Responder respond) {
  auto self = shared_from_this();
  const TimePoint dl = clock_.Now() + std::chrono::seconds(2);
  gateway_.Forward(
      "", std::move(req), dl,
      [self, model, ready_probe, respond = std::move(respond)](ForwardResult&& r) mutable {
        if (r.answered) return respond(Relay(std::move(r.response), r.replica));
        auto md = self->fallback_.FindModel(model, "");
        if (!md) {
          return respond(http::JsonError(http::Status::service_unavailable,
                                         StrCat("no replica can answer for model '", model, "'")));
        }
        Response res =
            ready_probe ? http::JsonResponse(http::Status::ok, R"({"ready":true})")
                        : http::JsonResponse(http::Status::ok, protocol::EncodeModelMetadata(*md));
        MarkFallback(res, r.why_not);
        respond(std::move(res));
      });
}

}  // namespace

std::string_view GatewayStateName(GatewayState s) {
  switch (s) {
    case GatewayState::kServing:
      return "serving";
    case GatewayState::kHolding:
      return "holding";
    case GatewayState::kFallbackOnly:
      return "fallback_only";
    case GatewayState::kDraining:
      return "draining";
  }
  return "unknown";
}

GatewayFrontend MakeGatewayFrontend(Gateway& gateway, inference::InferenceService& fallback,
                                    metrics::Registry& registry,
                                    protocol::FrontendMetrics& frontend_metrics,
                                    GatewayMetrics& metrics, const Clock& clock,
                                    GatewayFrontendOptions options,
                                    std::function<GatewayState()> state,
                                    std::function<void()> before_scrape) {
  auto fe =
      std::make_shared<Frontend>(gateway, fallback, registry, frontend_metrics, metrics, clock,
                                 std::move(options), std::move(state), std::move(before_scrape));
  GatewayFrontend out;
  out.handler = [fe](Request&& req, Responder respond) {
    fe->Handle(std::move(req), std::move(respond));
  };
  out.on_rejected = [fe](http::Status s) { fe->OnRejected(s); };
  return out;
}

}  // namespace galley::gateway
