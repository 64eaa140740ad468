#include "serve/http_handlers.h"

#include <charconv>
#include <memory>
#include <string_view>

#include "common/log.h"
#include "common/strings.h"
#include "inference/infer_spans.h"
#include "protocol/http_util.h"
#include "protocol/oip_json.h"
#include "protocol/request_metrics.h"

namespace galley::serve {
namespace {

using http::Request;
using http::Responder;
using http::Response;
namespace bhttp = boost::beast::http;
using inference::InferenceService;
using inference::InferRequest;
using inference::InferResult;
using inference::Outcome;
using protocol::Endpoint;
using protocol::HttpStatusFor;
using protocol::RequestMetrics;

// Per-request bookkeeping shared by the route and the responder: metrics and in-flight count.
class Frontend : public std::enable_shared_from_this<Frontend> {
 public:
  Frontend(InferenceService& service, metrics::Registry& registry,
           protocol::FrontendMetrics& metrics, const Clock& clock, HttpFrontendOptions options,
           std::function<void()> before_scrape)
      : service_(service),
        registry_(registry),
        metrics_(metrics),
        clock_(clock),
        options_(std::move(options)),
        before_scrape_(std::move(before_scrape)),
        request_metrics_(metrics, ModelNames(service)),
        analyze_model_index_(request_metrics_.ModelIndex(options_.analyze_model)) {}

  void Handle(Request&& req, Responder respond);
  void OnRejected(http::Status status) { request_metrics_.Record(Endpoint::kHttp, -1, status, 0); }

 private:
  static std::vector<std::string> ModelNames(const InferenceService& service) {
    std::vector<std::string> names;
    for (const auto& md : service.Models()) names.push_back(md.name);
    return names;
  }
  // Wraps `respond` so that the answer is counted under `endpoint` and the model (by name; an
  // unknown name is counted as model="").
  Responder Counted(Endpoint endpoint, std::string_view model, Responder respond);
  void Route(Request&& req, Responder respond);
  void Analyze(Request&& req, Responder respond);
  void Infer(Request&& req, std::string model, std::string version, Responder respond);
  absl::StatusOr<TimePoint> Deadline(const Request& req, std::optional<int64_t> timeout_us) const;
  // 503 with the reason for a model that is known but broken, else 404.
  Response MissingModel(std::string_view name, std::string_view version) const;

  InferenceService& service_;
  metrics::Registry& registry_;
  protocol::FrontendMetrics& metrics_;
  const Clock& clock_;
  const HttpFrontendOptions options_;
  std::function<void()> before_scrape_;
  RequestMetrics request_metrics_;
  const int analyze_model_index_;
};

Response Text(http::Status status, std::string body, std::string_view type) {
  Response res{status, 11};
  res.set(bhttp::field::content_type, type);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

Response ErrorFor(Outcome outcome, std::string_view message) {
  Response res = http::JsonError(HttpStatusFor(outcome), message);
  if (outcome == Outcome::kQueueFull) res.set(bhttp::field::retry_after, "1");
  return res;
}

std::string UnknownModel(std::string_view name, std::string_view version) {
  if (version.empty()) return StrCat("unknown model '", name, "'");
  return StrCat("unknown model '", name, "' version '", version, "'");
}

}  // namespace

Responder Frontend::Counted(Endpoint endpoint, std::string_view model, Responder respond) {
  metrics_.http_inflight_gauge.Increment();
  const TimePoint start = clock_.Now();
  const int model_index = model.empty() ? -1 : request_metrics_.ModelIndex(model);
  auto self = shared_from_this();
  // The model name as the client gave it, kept only for the debug log line.
  std::string log_model = log::Enabled(log::Level::kDebug) ? std::string(model) : std::string();
  return [self, endpoint, model_index, start, log_model = std::move(log_model),
          respond = std::move(respond)](Response&& res) {
    const double secs = std::chrono::duration<double>(self->clock_.Now() - start).count();
    self->request_metrics_.Record(endpoint, model_index, res.result(), secs);
    self->metrics_.http_inflight_gauge.Decrement();
    if (log::Enabled(log::Level::kDebug)) {
      log::Debug("request", {{"endpoint", EndpointName(endpoint)},
                             {"model", log_model},
                             {"status", static_cast<unsigned>(res.result())},
                             {"duration_s", secs}});
    }
    respond(std::move(res));
  };
}

void Frontend::Handle(Request&& req, Responder respond) {
  Route(std::move(req), std::move(respond));
}

void Frontend::Route(Request&& req, Responder respond) {
  std::string_view target(req.target().data(), req.target().size());
  target = target.substr(0, target.find('?'));
  const bool get = req.method() == http::Verb::get;
  const bool post = req.method() == http::Verb::post;
  auto method_not_allowed = [&](Endpoint endpoint, std::string_view allow) {
    auto r = Counted(endpoint, "", std::move(respond));
    Response res = http::JsonError(http::Status::method_not_allowed,
                                   StrCat("method not allowed; use ", allow));
    res.set(bhttp::field::allow, allow);
    r(std::move(res));
  };

  if (target == "/inference/analyze") {
    if (!post) return method_not_allowed(Endpoint::kAnalyze, "POST");
    return Analyze(std::move(req),
                   Counted(Endpoint::kAnalyze, options_.analyze_model, std::move(respond)));
  }
  if (target == "/v2/health/live" || target == "/livez") {
    if (!get) return method_not_allowed(Endpoint::kHealthLive, "GET");
    return Counted(Endpoint::kHealthLive, "",
                   std::move(respond))(http::JsonResponse(http::Status::ok, R"({"live":true})"));
  }
  if (target == "/v2/health/ready" || target == "/readyz") {
    if (!get) return method_not_allowed(Endpoint::kHealthReady, "GET");
    const bool ready = service_.Ready();
    return Counted(Endpoint::kHealthReady, "", std::move(respond))(
        http::JsonResponse(ready ? http::Status::ok : http::Status::service_unavailable,
                           ready ? R"({"ready":true})" : R"({"ready":false})"));
  }
  if (target == "/metrics") {
    if (!get) return method_not_allowed(Endpoint::kMetrics, "GET");
    auto r = Counted(Endpoint::kMetrics, "", std::move(respond));
    if (before_scrape_) before_scrape_();
    return r(
        Text(http::Status::ok, registry_.Exposition(), "text/plain; version=0.0.4; charset=utf-8"));
  }
  if (target == "/v2") {
    if (!get) return method_not_allowed(Endpoint::kServerMetadata, "GET");
    return Counted(Endpoint::kServerMetadata, "", std::move(respond))(http::JsonResponse(
        http::Status::ok,
        protocol::EncodeServerMetadata(options_.server_name, options_.server_version)));
  }
  if (StartsWith(target, "/v2/models/")) {
    // /v2/models/{name}[/versions/{v}][/ready|/infer]
    std::vector<std::string_view> parts = Split(target.substr(11), '/');
    std::string_view name = parts[0];
    std::string_view version;
    size_t next = 1;
    if (parts.size() >= 3 && parts[1] == "versions") {
      version = parts[2];
      next = 3;
    }
    std::string_view action = next < parts.size() ? parts[next] : "";
    const bool well_formed =
        !name.empty() && parts.size() <= next + 1 && (next == 1 || !version.empty());
    if (well_formed && action.empty()) {
      if (!get) return method_not_allowed(Endpoint::kModelMetadata, "GET");
      auto r = Counted(Endpoint::kModelMetadata, name, std::move(respond));
      auto md = service_.FindModel(name, version);
      if (!md) return r(MissingModel(name, version));
      return r(http::JsonResponse(http::Status::ok, protocol::EncodeModelMetadata(*md)));
    }
    if (well_formed && action == "ready") {
      if (!get) return method_not_allowed(Endpoint::kModelReady, "GET");
      auto r = Counted(Endpoint::kModelReady, name, std::move(respond));
      if (!service_.FindModel(name, version)) return r(MissingModel(name, version));
      const bool ready = service_.ModelReady(name, version);
      return r(http::JsonResponse(ready ? http::Status::ok : http::Status::service_unavailable,
                                  ready ? R"({"ready":true})" : R"({"ready":false})"));
    }
    if (well_formed && action == "infer") {
      if (!post) return method_not_allowed(Endpoint::kInfer, "POST");
      return Infer(std::move(req), std::string(name), std::string(version),
                   Counted(Endpoint::kInfer, name, std::move(respond)));
    }
  }
  Counted(Endpoint::kNotFound, "", std::move(respond))(
      http::JsonError(http::Status::not_found, StrCat("no such endpoint: ", target)));
}

Response Frontend::MissingModel(std::string_view name, std::string_view version) const {
  std::string message = service_.UnavailableMessage(name);
  if (message.empty()) return http::JsonError(http::Status::not_found, UnknownModel(name, version));
  return http::JsonError(http::Status::service_unavailable, message);
}

absl::StatusOr<TimePoint> Frontend::Deadline(const Request& req,
                                             std::optional<int64_t> timeout_us) const {
  return protocol::RequestDeadline(req, timeout_us, options_.default_timeout, clock_.Now());
}

void Frontend::Analyze(Request&& req, Responder respond) {
  if (!protocol::HasJsonContentType(req)) {
    return respond(
        http::JsonError(http::Status::bad_request, "Content-Type must be application/json"));
  }
  auto text = protocol::DecodeAnalyzeRequest(req.body());
  if (!text.ok())
    return respond(http::JsonError(http::Status::bad_request, ToStd(text.status().message())));
  auto deadline = Deadline(req, std::nullopt);
  if (!deadline.ok())
    return respond(http::JsonError(http::Status::bad_request, ToStd(deadline.status().message())));
  InferRequest ir;
  ir.model = options_.analyze_model;
  ir.deadline = *deadline;
  ir.arrival = clock_.Now();
  model::Tensor t{"text", model::DataType::kBytes, {1}, {}, {}};
  t.bytes.push_back(std::move(text).value());
  ir.input.inputs.push_back(std::move(t));
  std::string model = options_.analyze_model;
  service_.Infer(std::move(ir), [respond = std::move(respond), model](InferResult&& r) {
    if (r.outcome != Outcome::kOk) return respond(ErrorFor(r.outcome, r.message));
    const auto& outs = r.output.outputs;
    if (outs.size() < 2 || outs[0].bytes.empty() || outs[1].raw.size() < sizeof(float)) {
      return respond(
          http::JsonError(http::Status::internal_server_error, "the model returned no answer"));
    }
    respond(http::JsonResponse(
        http::Status::ok,
        protocol::EncodeAnalyzeResponse(outs[0].bytes[0], outs[1].At<float>(0), model)));
  });
}

void Frontend::Infer(Request&& req, std::string model, std::string version, Responder respond) {
  auto md = service_.FindModel(model, version);
  if (!md) return respond(MissingModel(model, version));
  auto header_length = protocol::InferenceHeaderLength(req);
  if (!header_length.ok()) {
    return respond(
        http::JsonError(http::Status::bad_request, ToStd(header_length.status().message())));
  }
  auto decoded = protocol::DecodeInferRequest(req.body(), *md, *header_length);
  if (!decoded.ok())
    return respond(http::JsonError(http::Status::bad_request, ToStd(decoded.status().message())));
  auto deadline = Deadline(req, decoded->timeout_us);
  if (!deadline.ok())
    return respond(http::JsonError(http::Status::bad_request, ToStd(deadline.status().message())));
  InferRequest ir;
  ir.model = std::move(model);
  ir.version = std::move(version);
  ir.deadline = *deadline;
  ir.arrival = clock_.Now();
  ir.input = std::move(decoded->input);
  std::optional<tracing::Span> span;
  if (options_.tracer) {
    const auto parent = tracing::ParseTraceparent(
        std::string_view(req["traceparent"].data(), req["traceparent"].size()));
    span = tracing::StartSpan(StrCat("infer ", ir.model), tracing::SpanKind::kServer, parent,
                              ir.arrival);
    span->Set("galley.model", ir.model);
  }
  service_.Infer(std::move(ir), [respond = std::move(respond), md, id = std::move(decoded->id),
                                 outputs = std::move(decoded->outputs),
                                 binary = std::move(decoded->binary_outputs),
                                 all_binary = decoded->binary_data_output, tracer = options_.tracer,
                                 span = std::move(span), clock = &clock_](InferResult&& r) mutable {
    if (span) {
      for (auto& sp : inference::FinishInferSpans(std::move(*span), r, clock->Now())) {
        tracer->Record(std::move(sp));
      }
    }
    if (r.outcome != Outcome::kOk) return respond(ErrorFor(r.outcome, r.message));
    protocol::EncodedInferResponse enc =
        protocol::EncodeInferResponse(*md, id, r.output, outputs, binary, all_binary);
    if (!enc.header_length)
      return respond(http::JsonResponse(http::Status::ok, std::move(enc.body)));
    Response res = Text(http::Status::ok, std::move(enc.body), "application/octet-stream");
    res.set(protocol::kInferenceHeaderLength, std::to_string(*enc.header_length));
    respond(std::move(res));
  });
}

HttpFrontend MakeHttpFrontend(InferenceService& service, metrics::Registry& registry,
                              protocol::FrontendMetrics& metrics, const Clock& clock,
                              HttpFrontendOptions options, std::function<void()> before_scrape) {
  auto fe = std::make_shared<Frontend>(service, registry, metrics, clock, std::move(options),
                                       std::move(before_scrape));
  HttpFrontend out;
  out.handler = [fe](Request&& req, Responder respond) {
    fe->Handle(std::move(req), std::move(respond));
  };
  out.on_rejected = [fe](http::Status status) { fe->OnRejected(status); };
  return out;
}

}  // namespace galley::serve
