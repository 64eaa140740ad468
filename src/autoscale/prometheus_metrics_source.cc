#include "autoscale/prometheus_metrics_source.h"

#include <arpa/inet.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"
#include "common/strings.h"
#include "common/sync.h"

namespace galley::autoscale {
namespace {

// What the queries of one Observe() share with their callbacks. Held by shared_ptr: a callback
// that arrives after Observe() gave up must still find it alive.
struct Round {
  explicit Round(size_t n) : pending(static_cast<int>(n)), results(n) {}

  absl::Mutex mu;
  absl::CondVar done;
  int pending ABSL_GUARDED_BY(mu);
  std::vector<std::optional<upstream::UpstreamResult>> results ABSL_GUARDED_BY(mu);
};

bool IsIpAddress(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// A sample value as the HTTP API writes it: Go's strconv.FormatFloat, so "NaN", "+Inf", "-Inf"
// besides plain decimals
// (https://prometheus.io/docs/prometheus/latest/querying/api/#expression-query-result-formats).
std::optional<double> ParseSampleValue(std::string_view s) {
  if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (s == "+Inf" || s == "Inf") return std::numeric_limits<double>::infinity();
  if (s == "-Inf") return -std::numeric_limits<double>::infinity();
  double v = 0;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, v);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return v;
}

const boost::json::value* Field(const boost::json::object& o, std::string_view name) {
  return o.if_contains(boost::json::string_view(name.data(), name.size()));
}

std::string FieldString(const boost::json::object& o, std::string_view name) {
  const boost::json::value* v = Field(o, name);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::string Instance(const fleet::ReplicaEndpoint& ep) {
  // An IPv6 target is written [addr]:port, as in Prometheus' own instance labels.
  return ep.host.find(':') != std::string::npos ? StrCat("[", ep.host, "]:", ep.port)
                                                : StrCat(ep.host, ":", ep.port);
}

std::string FormatSeconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", s);
  return buf;
}

}  // namespace

absl::StatusOr<PrometheusEndpoint> ParsePrometheusUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (!StartsWith(url, kScheme)) {
    return absl::InvalidArgumentError(
        StrCat("Prometheus URL '", url, "' must start with http:// (https is not supported)"));
  }
  if (url.find_first_of("?#") != std::string_view::npos) {
    return absl::InvalidArgumentError(
        StrCat("Prometheus URL '", url, "' must not have a query or a fragment"));
  }
  std::string_view rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);

  PrometheusEndpoint ep;
  std::string_view port_text;
  if (StartsWith(authority, "[")) {  // [IPv6]:port (RFC 3986 §3.2.2)
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError(StrCat("Prometheus URL '", url, "': unclosed '['"));
    }
    ep.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return absl::InvalidArgumentError(StrCat("Prometheus URL '", url, "': bad authority"));
      }
      port_text = after.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    ep.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (ep.host == "localhost") ep.host = "127.0.0.1";
  if (ep.host.empty() || !IsIpAddress(ep.host)) {
    return absl::InvalidArgumentError(
        StrCat("Prometheus URL '", url, "': the host must be an IP address or localhost"));
  }
  ep.port = 80;
  if (authority.back() == ':' || !port_text.empty()) {
    unsigned port = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return absl::InvalidArgumentError(StrCat("Prometheus URL '", url, "': bad port"));
    }
    ep.port = static_cast<uint16_t>(port);
  }
  ep.path_prefix = std::string(path);
  return ep;
}

std::string PrometheusQueryTarget(std::string_view path_prefix, std::string_view promql) {
  // Query component: every byte but the unreserved characters percent-encoded (RFC 3986 §2.3).
  std::string out = StrCat(path_prefix, "/api/v1/query?query=");
  constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : promql) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

absl::StatusOr<std::map<std::string, double>> ParseInstantVector(std::string_view body) {
  // The envelope: {"status": "success"|"error", "data": ..., "errorType": ..., "error": ...}.
  boost::system::error_code ec;
  const boost::json::value doc =
      boost::json::parse(boost::json::string_view(body.data(), body.size()), ec);
  if (ec) {
    return absl::InvalidArgumentError(
        StrCat("Prometheus answer is not JSON (", ec.message(), "): '", body.substr(0, 200), "'"));
  }
  if (!doc.is_object()) {
    return absl::InvalidArgumentError("Prometheus answer is not a JSON object");
  }
  const boost::json::object& top = doc.as_object();
  const std::string status = FieldString(top, "status");
  if (status == "error") {
    return absl::UnavailableError(StrCat("Prometheus answered an error (",
                                         FieldString(top, "errorType"),
                                         "): ", FieldString(top, "error")));
  }
  if (status != "success") {
    return absl::InvalidArgumentError(
        "Prometheus answer has no \"status\" of \"success\" or \"error\"");
  }
  const boost::json::value* data = Field(top, "data");
  if (data == nullptr || !data->is_object()) {
    return absl::InvalidArgumentError("Prometheus answer has no \"data\" object");
  }
  const std::string type = FieldString(data->as_object(), "resultType");
  if (type != "vector") {
    return absl::InvalidArgumentError(StrCat("Prometheus answer's resultType is '", type,
                                             "', not 'vector' (an instant query's)"));
  }
  const boost::json::value* result = Field(data->as_object(), "result");
  if (result == nullptr || !result->is_array()) {
    return absl::InvalidArgumentError("Prometheus answer has no \"data.result\" array");
  }
  std::map<std::string, double> out;
  size_t i = 0;
  for (const boost::json::value& series : result->as_array()) {
    const std::string where = StrCat("Prometheus answer's data.result[", i++, "]");
    if (!series.is_object()) return absl::InvalidArgumentError(StrCat(where, " is not an object"));
    const boost::json::value* metric = Field(series.as_object(), "metric");
    if (metric == nullptr || !metric->is_object()) {
      return absl::InvalidArgumentError(StrCat(where, " has no \"metric\" object"));
    }
    const boost::json::value* instance = Field(metric->as_object(), "instance");
    if (instance == nullptr || !instance->is_string()) {
      return absl::InvalidArgumentError(StrCat(where, " has no \"instance\" label"));
    }
    // "value": [<unix time>, "<sample value>"]
    const boost::json::value* value = Field(series.as_object(), "value");
    if (value == nullptr || !value->is_array() || value->as_array().size() != 2 ||
        !value->as_array()[0].is_number() || !value->as_array()[1].is_string()) {
      return absl::InvalidArgumentError(
          StrCat(where, "'s \"value\" is not [<time>, \"<number>\"]"));
    }
    const std::string_view text(value->as_array()[1].as_string());
    const std::optional<double> v = ParseSampleValue(text);
    if (!v) {
      return absl::InvalidArgumentError(StrCat(where, "'s value '", text, "' is not a number"));
    }
    std::string key(instance->as_string());
    if (!out.emplace(key, *v).second) {
      return absl::InvalidArgumentError(
          StrCat(where, ": a second series for instance '", key, "'"));
    }
  }
  return out;
}

absl::StatusOr<std::vector<ReplicaObservation>> MapPrometheusAnswers(
    const PrometheusAnswers& answers, const std::vector<fleet::ReplicaEndpoint>& replicas,
    absl::Duration staleness) {
  struct Named {
    std::string_view query;
    const std::string* body;
    std::map<std::string, double> values;
  };
  Named parsed[] = {{kPromInflightQuery, &answers.inflight, {}},
                    {kPromQueueQuery, &answers.queued, {}},
                    {kPromAgeQuery, &answers.age, {}},
                    {kPromUpQuery, &answers.up, {}}};
  for (Named& n : parsed) {
    absl::StatusOr<std::map<std::string, double>> v = ParseInstantVector(*n.body);
    if (!v.ok()) {
      return absl::Status(v.status().code(),
                          StrCat("query '", n.query, "': ", ToStd(v.status().message())));
    }
    n.values = *std::move(v);
  }
  const auto& [inflight, queued, age, up] =
      std::tie(parsed[0].values, parsed[1].values, parsed[2].values, parsed[3].values);
  const double stale_s = absl::ToDoubleSeconds(staleness);

  std::vector<ReplicaObservation> out;
  out.reserve(replicas.size());
  for (const fleet::ReplicaEndpoint& ep : replicas) {
    ReplicaObservation o;
    o.id = ep.id;
    o.ready = ep.ready;
    const std::string instance = Instance(ep);
    const auto in = inflight.find(instance);
    const auto a = age.find(instance);
    const auto u = up.find(instance);
    if (in == inflight.end()) {
      if (u == up.end()) {
        o.error =
            StrCat("instance ", instance, " is not in Prometheus' answer (not a target yet?)");
      } else if (u->second == 0) {
        o.error = StrCat("Prometheus' last scrape of ", instance, " failed (up == 0)");
      } else {
        o.error = StrCat("Prometheus has no galley_model_inflight_requests for ", instance);
      }
    } else if (a == age.end()) {
      o.error = StrCat("Prometheus gave no sample time for ", instance);
    } else if (!(a->second <= stale_s)) {  // NaN counts as stale
      o.error = StrCat("Prometheus' newest sample of ", instance, " is ", FormatSeconds(a->second),
                       " s old (stale after ", FormatSeconds(stale_s), " s)");
    } else if (!std::isfinite(in->second)) {
      o.error = StrCat("Prometheus has a non-finite galley_model_inflight_requests for ", instance);
    } else {
      o.scraped = true;
      o.inflight = in->second;
      const auto q = queued.find(instance);
      o.queued = q != queued.end() && std::isfinite(q->second) ? q->second : 0;
    }
    out.push_back(std::move(o));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<PrometheusMetricsSource>> PrometheusMetricsSource::Create(
    const fleet::ReplicaSource& replicas, upstream::Upstream& upstream, const Clock& clock,
    PrometheusOptions options) {
  absl::StatusOr<PrometheusEndpoint> ep = ParsePrometheusUrl(options.url);
  if (!ep.ok()) return ep.status();
  if (options.staleness <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the Prometheus staleness bound must be positive");
  }
  return std::unique_ptr<PrometheusMetricsSource>(
      new PrometheusMetricsSource(replicas, upstream, clock, std::move(options), *std::move(ep)));
}

PrometheusMetricsSource::PrometheusMetricsSource(const fleet::ReplicaSource& replicas,
                                                 upstream::Upstream& upstream, const Clock& clock,
                                                 PrometheusOptions options,
                                                 PrometheusEndpoint endpoint)
    : replicas_(replicas),
      upstream_(upstream),
      clock_(clock),
      options_(std::move(options)),
      endpoint_(std::move(endpoint)) {}

absl::StatusOr<MetricsSnapshot> PrometheusMetricsSource::Observe() {
  // The replica set first: a replica that appears while the queries run is left to the next tick.
  const std::vector<fleet::ReplicaEndpoint> endpoints = replicas_.Replicas();
  const TimePoint start = clock_.Now();
  MetricsSnapshot snap;
  snap.time = ToAbslTime(start);

  const std::string_view queries[] = {kPromInflightQuery, kPromQueueQuery, kPromAgeQuery,
                                      kPromUpQuery};
  constexpr size_t kQueries = std::size(queries);
  auto round = std::make_shared<Round>(kQueries);
  const std::string host_header = endpoint_.host.find(':') != std::string::npos
                                      ? StrCat("[", endpoint_.host, "]:", endpoint_.port)
                                      : StrCat(endpoint_.host, ":", endpoint_.port);
  for (size_t i = 0; i < kQueries; ++i) {
    http::Request req{http::Verb::get, PrometheusQueryTarget(endpoint_.path_prefix, queries[i]),
                      11};
    req.set(boost::beast::http::field::host, host_header);
    req.set(boost::beast::http::field::accept, "application/json");
    upstream_.Send(endpoint_.host, endpoint_.port, std::move(req), start + options_.timeout,
                   [round, i](upstream::UpstreamResult&& r) {
                     absl::MutexLock lock(&round->mu);
                     round->results[i] = std::move(r);
                     if (--round->pending == 0) round->done.SignalAll();
                   });
  }
  PrometheusAnswers answers;
  std::string* bodies[] = {&answers.inflight, &answers.queued, &answers.age, &answers.up};
  {
    // NOTE: waits in real time, as ScrapeMetricsSource does; the margin covers timer slack.
    const auto deadline =
        std::chrono::steady_clock::now() + options_.timeout + std::chrono::milliseconds(250);
    absl::MutexLock lock(&round->mu);
    while (round->pending != 0 && galley::WaitUntil(round->done, round->mu, deadline)) {
    }
    for (size_t i = 0; i < kQueries; ++i) {
      const std::optional<upstream::UpstreamResult>& r = round->results[i];
      const std::string what =
          StrCat("Prometheus at ", options_.url, " (query '", queries[i], "')");
      if (!r) return absl::UnavailableError(StrCat(what, ": no answer within the timeout"));
      if (r->transport_error) {
        return absl::UnavailableError(
            StrCat(what, r->timed_out ? ": timed out" : StrCat(": ", r->error)));
      }
      if (r->response.result() != http::Status::ok) {
        // Errors come with a JSON body that says why (400 bad_data, 422 execution, 503 timeout).
        absl::StatusOr<std::map<std::string, double>> why = ParseInstantVector(r->response.body());
        return absl::UnavailableError(
            StrCat(what, ": HTTP ", r->response.result_int(),
                   why.ok() ? std::string() : StrCat(": ", ToStd(why.status().message()))));
      }
      *bodies[i] = r->response.body();
    }
  }
  absl::StatusOr<std::vector<ReplicaObservation>> observed =
      MapPrometheusAnswers(answers, endpoints, options_.staleness);
  if (!observed.ok()) {
    return absl::UnavailableError(
        StrCat("Prometheus at ", options_.url, ": ", ToStd(observed.status().message())));
  }

  std::map<std::string, Seen> seen;
  for (ReplicaObservation& o : *observed) {
    Seen s = seen_.count(o.id) ? seen_[o.id] : Seen{snap.time, std::nullopt};
    if (o.ready && !s.ready) s.ready = snap.time;
    seen[o.id] = s;
    o.start_time = s.start;
    o.ready_time = s.ready;
  }
  seen_ = std::move(seen);  // forget replicas that are gone
  snap.replicas = *std::move(observed);
  return snap;
}

}  // namespace galley::autoscale
