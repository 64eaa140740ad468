#include "gateway/step_caller.h"

#include <utility>

#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"
#include "common/strings.h"

namespace galley::gateway {

namespace json = boost::json;

namespace {

// The reason a replica gave, from its {"error": ...} body, else the body's start.
std::string AnswerReason(const http::Response& res) {
  boost::system::error_code ec;
  const json::value doc = json::parse(res.body(), ec);
  if (!ec && doc.is_object()) {
    if (const json::value* e = doc.as_object().if_contains("error"); e && e->is_string()) {
      return std::string(e->as_string());
    }
  }
  return res.body().substr(0, 200);
}

}  // namespace

void StepCaller::Call(const std::string& key, const std::string& model, std::string body,
                      TimePoint deadline, pipeline::CallDone done) {
  Send(key, model, std::move(body), deadline, "", std::move(done));
}

void StepCaller::Send(const std::string& key, const std::string& model, std::string body,
                      TimePoint deadline, const std::string& traceparent, pipeline::CallDone done) {
  CircuitBreaker& breaker = Breaker(key);
  {
    absl::MutexLock lock(&mu_);
    if (!breaker.Allow(clock_.Now()).allowed) {
      return done({absl::UnavailableError(StrCat("the step's circuit breaker (", key, ") is open")),
                   "", ""});
    }
  }
  http::Request req{http::Verb::post, StrCat("/v2/models/", model, "/infer"), 11};
  req.set(boost::beast::http::field::content_type, "application/json");
  if (!traceparent.empty()) req.set("traceparent", traceparent);
  req.body() = std::move(body);
  req.prepare_payload();
  const TimePoint start = clock_.Now();
  gateway_.Forward(
      model, std::move(req), deadline,
      [this, &breaker, model, start, done = std::move(done)](ForwardResult&& r) {
        pipeline::CallResult out;
        out.replica = r.replica;
        const int code = static_cast<int>(r.response.result_int());
        bool failure = true;
        if (r.answered && code / 100 == 2) {
          out.body = std::move(r.response.body());
          failure = false;
        } else if (r.answered && code / 100 == 4) {
          // The request was wrong for the model: the model is well, the pipeline is not.
          out.status = absl::InvalidArgumentError(
              StrCat("model '", model, "' answered ", code, ": ", AnswerReason(r.response)));
          failure = false;
        } else if (r.answered) {
          out.status = absl::UnavailableError(
              StrCat("model '", model, "' answered ", code, ": ", AnswerReason(r.response)));
        } else if (r.why_not == "deadline") {
          out.status = absl::DeadlineExceededError(
              StrCat("model '", model, "' did not answer before the step's deadline"));
        } else if (r.why_not == "model_breaker_open") {
          out.status = absl::UnavailableError(
              StrCat("model '", model, "': its circuit breaker at the gateway is open"));
        } else if (r.why_not == "no_ready_replica") {
          out.status = absl::UnavailableError(StrCat("model '", model, "': no ready replica"));
        } else {
          out.status = absl::UnavailableError(StrCat(
              "model '", model, "': every replica tried failed",
              r.has_last_failure ? StrCat(" (last: ", r.last_failure.result_int(), ")") : ""));
        }
        {
          absl::MutexLock lock(&mu_);
          const TimePoint now = clock_.Now();
          if (failure) {
            breaker.OnFailure(now, now - start);
          } else {
            breaker.OnSuccess(now, now - start);
          }
        }
        done(std::move(out));
      });
}

CircuitBreaker& StepCaller::Breaker(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto& b = breakers_[key];  // keys come from the configuration: a bounded set
  if (!b) b = std::make_unique<CircuitBreaker>(breaker_options_);
  return *b;
}

void TracedCaller::Call(const std::string& key, const std::string& model, std::string body,
                        TimePoint deadline, pipeline::CallDone done) {
  const std::string step = key.substr(key.find('/') + 1);
  tracing::Span span =
      tracing::StartSpan(StrCat("step ", step), tracing::SpanKind::kClient, parent_, clock_.Now());
  span.Set("galley.step", step);
  span.Set("galley.model", model);
  const std::string traceparent = tracing::FormatTraceparent(span.Context());
  inner_.Send(
      key, model, std::move(body), deadline, traceparent,
      [this, span = std::move(span), done = std::move(done)](pipeline::CallResult&& r) mutable {
        span.end_ns = tracing::UnixNanos(clock_.Now());
        if (!r.replica.empty()) span.Set("galley.replica", r.replica);
        if (!r.status.ok()) {
          span.error = true;
          span.status_message = std::string(r.status.message());
        }
        tracer_.Record(std::move(span));
        done(std::move(r));
      });
}

void TracedCaller::StepSet(const std::string& step) {
  const TimePoint now = clock_.Now();
  tracing::Span span =
      tracing::StartSpan(StrCat("step ", step), tracing::SpanKind::kInternal, parent_, now);
  span.Set("galley.step", step);
  span.Set("galley.status", "set");
  span.end_ns = tracing::UnixNanos(now);
  tracer_.Record(std::move(span));
}

}  // namespace galley::gateway
