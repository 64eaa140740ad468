#include "tracing/tracer.h"

#include <charconv>
#include <deque>
#include <future>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/sync.h"
#include "common/thread_name.h"
#include "upstream/http_upstream.h"

namespace galley::tracing {

namespace {

void AppendAttribute(std::string& out, const Attribute& a) {
  out += R"({"key":)";
  JsonAppendString(out, a.key);
  out += R"(,"value":{)";
  std::visit(
      [&out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          out += R"("stringValue":)";
          JsonAppendString(out, v);
        } else if constexpr (std::is_same_v<T, bool>) {
          out += R"("boolValue":)";
          out += v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, int64_t>) {
          out += StrCat(R"("intValue":")", v, "\"");
        } else {
          out += R"("doubleValue":)";
          JsonAppendDouble(out, v);
        }
      },
      a.value);
  out += "}}";
}

}  // namespace

std::string EncodeOtlpJson(const std::vector<Span>& spans, const std::string& service_name) {
  std::string out = R"({"resourceSpans":[{"resource":{"attributes":[)";
  AppendAttribute(out, {"service.name", service_name});
  out += R"(]},"scopeSpans":[{"scope":{"name":"galley"},"spans":[)";
  for (size_t i = 0; i < spans.size(); ++i) {
    const Span& s = spans[i];
    if (i) out += ',';
    out += StrCat(R"({"traceId":")", Hex(s.trace_id), R"(","spanId":")", Hex(s.span_id), "\"");
    if (s.parent != SpanId{}) out += StrCat(R"(,"parentSpanId":")", Hex(s.parent), "\"");
    out += R"(,"name":)";
    JsonAppendString(out, s.name);
    out += StrCat(R"(,"kind":)", static_cast<int>(s.kind), R"(,"startTimeUnixNano":")", s.start_ns,
                  R"(","endTimeUnixNano":")", s.end_ns, R"(","attributes":[)");
    for (size_t j = 0; j < s.attributes.size(); ++j) {
      if (j) out += ',';
      AppendAttribute(out, s.attributes[j]);
    }
    out += "]";
    if (s.error) {  // STATUS_CODE_ERROR = 2
      out += R"(,"status":{"code":2,"message":)";
      JsonAppendString(out, s.status_message);
      out += "}";
    }
    out += "}";
  }
  out += "]}]}]}";
  return out;
}

struct Tracer::State {
  TracerOptions options;
  std::string host, path;
  uint16_t port = 0;
  upstream::HttpUpstream http;
  absl::Mutex mu;
  absl::CondVar cv, idle;
  std::deque<Span> queue ABSL_GUARDED_BY(mu);
  bool stopping ABSL_GUARDED_BY(mu) = false;
  bool exporting ABSL_GUARDED_BY(mu) = false;
  bool flush ABSL_GUARDED_BY(mu) = false;  // Flush() asked: export now, whatever the batch size
  std::atomic<uint64_t> exported{0}, dropped{0}, failed{0};
  bool failing = false;  // the last export failed (logged once per streak)
  std::thread thread;

  void Run() ABSL_LOCKS_EXCLUDED(mu) {
    SetThreadName("trace-export");
    absl::MutexLock lock(&mu);
    while (true) {
      const auto deadline = std::chrono::steady_clock::now() + options.flush_interval;
      while (!stopping && !flush && queue.size() < options.max_batch &&
             WaitUntil(cv, mu, deadline)) {
      }
      flush = false;
      if (queue.empty()) {
        idle.SignalAll();
        if (stopping) return;
        continue;
      }
      std::vector<Span> batch;
      while (!queue.empty() && batch.size() < options.max_batch) {
        batch.push_back(std::move(queue.front()));
        queue.pop_front();
      }
      exporting = true;
      mu.Unlock();
      Export(batch);
      mu.Lock();
      exporting = false;
      if (queue.empty()) idle.SignalAll();
    }
  }

  void Export(const std::vector<Span>& batch) ABSL_LOCKS_EXCLUDED(mu) {
    http::Request req{http::Verb::post, path, 11};
    req.set(boost::beast::http::field::host, StrCat(host, ":", port));
    req.set(boost::beast::http::field::content_type, "application/json");
    req.body() = EncodeOtlpJson(batch, options.service_name);
    req.prepare_payload();
    std::promise<upstream::UpstreamResult> done;
    auto result = done.get_future();
    http.Send(host, port, std::move(req), std::chrono::steady_clock::now() + options.export_timeout,
              [&done](upstream::UpstreamResult&& r) { done.set_value(std::move(r)); });
    const upstream::UpstreamResult r = result.get();
    const int code = r.transport_error ? 0 : static_cast<int>(r.response.result_int());
    if (code / 100 == 2) {
      exported += batch.size();
      if (failing) log::Info("trace_export_recovered", {{"endpoint", options.endpoint}});
      failing = false;
      return;
    }
    failed += 1;
    if (!failing) {
      log::Warn("trace_export_failed",
                {{"endpoint", options.endpoint},
                 {"spans", batch.size()},
                 {"error", r.transport_error
                               ? r.error
                               : StrCat("HTTP ", code, ": ", r.response.body().substr(0, 200))}});
    }
    failing = true;
  }
};

absl::StatusOr<std::unique_ptr<Tracer>> Tracer::Create(TracerOptions options) {
  std::string_view url = options.endpoint;
  if (!StartsWith(url, "http://")) {
    return absl::InvalidArgumentError(
        StrCat("OTLP endpoint '", options.endpoint, "' must be http://HOST:PORT[/PATH]"));
  }
  url.remove_prefix(7);
  const size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  std::string_view base = slash == std::string_view::npos ? "" : url.substr(slash);
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  const size_t colon = authority.rfind(':');
  unsigned port = 0;
  if (colon == std::string_view::npos || colon == 0 ||
      std::from_chars(authority.data() + colon + 1, authority.data() + authority.size(), port).ec !=
          std::errc{} ||
      port == 0 || port > 65535) {
    return absl::InvalidArgumentError(
        StrCat("OTLP endpoint '", options.endpoint, "' must name a HOST:PORT"));
  }
  auto state = std::make_unique<State>();
  state->host = std::string(authority.substr(0, colon));
  state->port = static_cast<uint16_t>(port);
  state->path = StrCat(base, "/v1/traces");
  state->options = std::move(options);
  state->thread = std::thread([s = state.get()] { s->Run(); });
  return std::unique_ptr<Tracer>(new Tracer(std::move(state)));
}

Tracer::Tracer(std::unique_ptr<State> state) : state_(std::move(state)) {}

Tracer::~Tracer() {
  {
    absl::MutexLock lock(&state_->mu);
    state_->stopping = true;
  }
  state_->cv.SignalAll();
  state_->thread.join();
  state_->http.Shutdown();
}

void Tracer::Record(Span span) {
  if (!span.sampled) return;
  {
    absl::MutexLock lock(&state_->mu);
    if (state_->queue.size() >= state_->options.max_queue) {
      state_->dropped += 1;
      return;
    }
    state_->queue.push_back(std::move(span));
    if (state_->queue.size() < state_->options.max_batch) return;
  }
  state_->cv.Signal();
}

void Tracer::Flush() {
  absl::MutexLock lock(&state_->mu);
  state_->flush = true;
  state_->cv.Signal();
  while (!state_->queue.empty() || state_->exporting) state_->idle.Wait(&state_->mu);
}

absl::StatusOr<std::unique_ptr<Tracer>> TracerFor(const std::string& endpoint,
                                                  const std::string& service_name) {
  if (endpoint.empty()) return std::unique_ptr<Tracer>();
  return Tracer::Create({.endpoint = endpoint, .service_name = service_name});
}

uint64_t Tracer::exported() const { return state_->exported; }
uint64_t Tracer::dropped() const { return state_->dropped; }
uint64_t Tracer::failed() const { return state_->failed; }

}  // namespace galley::tracing
