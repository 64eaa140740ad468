#include "autoscale/plan_json.h"

#include <charconv>
#include <cmath>
#include <string>

#include "boost/json.hpp"
#include "common/json.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace galley::autoscale {
namespace {

namespace json = boost::json;

absl::Status Bad(const std::string& path, std::string_view what) {
  return absl::InvalidArgumentError(StrCat(path, ": ", what));
}

absl::StatusOr<const json::object*> Object(const json::value& v, const std::string& path) {
  if (!v.is_object()) return Bad(path, "must be an object");
  return &v.get_object();
}

const json::value* Find(const json::object& o, std::string_view key) {
  auto it = o.find(json::string_view(key.data(), key.size()));
  return it == o.end() ? nullptr : &it->value();
}

absl::StatusOr<double> Number(const json::value& v, const std::string& path) {
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  if (v.is_double()) return v.get_double();
  return Bad(path, "must be a number");
}

// A number, or a Kubernetes quantity string.
absl::StatusOr<double> Quantity(const json::value& v, const std::string& path) {
  if (v.is_string()) {
    auto q = ParseQuantity(std::string_view(v.get_string().data(), v.get_string().size()));
    if (!q.ok()) return Bad(path, ToStd(q.status().message()));
    return *q;
  }
  return Number(v, path);
}

absl::StatusOr<int> Int(const json::value& v, const std::string& path) {
  ASSIGN_OR_RETURN(double d, Number(v, path));
  if (d != std::floor(d) || std::fabs(d) > 1e9) return Bad(path, "must be an integer");
  return static_cast<int>(d);
}

absl::StatusOr<std::string> String(const json::value& v, const std::string& path) {
  if (!v.is_string()) return Bad(path, "must be a string");
  return std::string(v.get_string().data(), v.get_string().size());
}

absl::StatusOr<bool> Bool(const json::value& v, const std::string& path) {
  if (!v.is_bool()) return Bad(path, "must be true or false");
  return v.get_bool();
}

absl::StatusOr<absl::Time> Time(const json::value& v, const std::string& path) {
  ASSIGN_OR_RETURN(std::string s, String(v, path));
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, s, &t, &err)) {
    return Bad(path, StrCat("not an RFC 3339 time (", s, "): ", err));
  }
  return t;
}

// Optional fields: the setter runs only when the key is present.
template <typename T, typename Parse>
absl::Status Opt(const json::object& o, std::string_view key, const std::string& path, Parse parse,
                 T& out) {
  if (const json::value* v = Find(o, key)) {
    ASSIGN_OR_RETURN(out, parse(*v, StrCat(path, ".", key)));
  }
  return absl::OkStatus();
}

absl::StatusOr<const json::array*> Array(const json::value& v, const std::string& path) {
  if (!v.is_array()) return Bad(path, "must be an array");
  return &v.get_array();
}

absl::StatusOr<TargetType> ParseTarget(const json::object& t, const std::string& path,
                                       MetricSpec& m) {
  const json::value* type = Find(t, "type");
  if (!type) return Bad(path, "type is required");
  ASSIGN_OR_RETURN(std::string s, String(*type, path + ".type"));
  if (s == "Utilization") {
    const json::value* u = Find(t, "averageUtilization");
    if (!u) return Bad(path, "averageUtilization is required for a Utilization target");
    ASSIGN_OR_RETURN(m.average_utilization, Int(*u, path + ".averageUtilization"));
    return TargetType::kUtilization;
  }
  if (s == "AverageValue" || s == "Value") {
    const char* key = s == "Value" ? "value" : "averageValue";
    const json::value* v = Find(t, key);
    if (!v) return Bad(path, StrCat(key, " is required for a ", s, " target"));
    ASSIGN_OR_RETURN(m.value, Quantity(*v, StrCat(path, ".", key)));
    return s == "Value" ? TargetType::kValue : TargetType::kAverageValue;
  }
  return Bad(path + ".type", StrCat("unknown target type \"", s, "\""));
}

absl::StatusOr<MetricSpec> ParseMetric(const json::value& v, const std::string& path) {
  ASSIGN_OR_RETURN(const json::object* o, Object(v, path));
  const json::value* type_v = Find(*o, "type");
  if (!type_v) return Bad(path, "type is required");
  ASSIGN_OR_RETURN(std::string type, String(*type_v, path + ".type"));
  MetricSpec m;
  std::string key;
  if (type == "Resource")
    m.type = MetricSourceType::kResource, key = "resource";
  else if (type == "ContainerResource")
    m.type = MetricSourceType::kContainerResource, key = "containerResource";
  else if (type == "Pods")
    m.type = MetricSourceType::kPods, key = "pods";
  else if (type == "Object")
    m.type = MetricSourceType::kObject, key = "object";
  else if (type == "External")
    m.type = MetricSourceType::kExternal, key = "external";
  else
    return Bad(path + ".type", StrCat("unknown metric source type \"", type, "\""));
  const std::string sub = StrCat(path, ".", key);
  const json::value* src_v = Find(*o, key);
  if (!src_v) return Bad(path, StrCat(key, " is required for type ", type));
  ASSIGN_OR_RETURN(const json::object* src, Object(*src_v, sub));
  if (m.type == MetricSourceType::kResource || m.type == MetricSourceType::kContainerResource) {
    const json::value* n = Find(*src, "name");
    if (!n) return Bad(sub, "name is required");
    ASSIGN_OR_RETURN(m.name, String(*n, sub + ".name"));
  } else {
    const json::value* mv = Find(*src, "metric");
    if (!mv) return Bad(sub, "metric is required");
    ASSIGN_OR_RETURN(const json::object* mo, Object(*mv, sub + ".metric"));
    const json::value* n = Find(*mo, "name");
    if (!n) return Bad(sub + ".metric", "name is required");
    ASSIGN_OR_RETURN(m.name, String(*n, sub + ".metric.name"));
  }
  if (m.type == MetricSourceType::kObject) {
    const json::value* dv = Find(*src, "describedObject");
    if (!dv) return Bad(sub, "describedObject is required");
    ASSIGN_OR_RETURN(const json::object* d, Object(*dv, sub + ".describedObject"));
    std::string kind, name;
    RETURN_IF_ERROR(Opt(*d, "kind", sub + ".describedObject", String, kind));
    RETURN_IF_ERROR(Opt(*d, "name", sub + ".describedObject", String, name));
    m.object = StrCat(kind, "/", name);
  }
  const json::value* tv = Find(*src, "target");
  if (!tv) return Bad(sub, "target is required");
  ASSIGN_OR_RETURN(const json::object* t, Object(*tv, sub + ".target"));
  ASSIGN_OR_RETURN(m.target_type, ParseTarget(*t, sub + ".target", m));
  return m;
}

absl::StatusOr<ScalingRules> ParseRules(const json::value& v, const std::string& path) {
  ASSIGN_OR_RETURN(const json::object* o, Object(v, path));
  ScalingRules r;
  RETURN_IF_ERROR(Opt(*o, "stabilizationWindowSeconds", path, Int, r.stabilization_window_seconds));
  if (r.stabilization_window_seconds &&
      (*r.stabilization_window_seconds < 0 || *r.stabilization_window_seconds > 3600)) {
    return Bad(path + ".stabilizationWindowSeconds", "must be in [0, 3600]");
  }
  RETURN_IF_ERROR(Opt(*o, "tolerance", path, Quantity, r.tolerance));
  if (const json::value* sp = Find(*o, "selectPolicy")) {
    ASSIGN_OR_RETURN(std::string s, String(*sp, path + ".selectPolicy"));
    if (s == "Max")
      r.select_policy = SelectPolicy::kMax;
    else if (s == "Min")
      r.select_policy = SelectPolicy::kMin;
    else if (s == "Disabled")
      r.select_policy = SelectPolicy::kDisabled;
    else
      return Bad(path + ".selectPolicy", StrCat("must be Max, Min or Disabled, not \"", s, "\""));
  }
  if (const json::value* pv = Find(*o, "policies")) {
    ASSIGN_OR_RETURN(const json::array* arr, Array(*pv, path + ".policies"));
    for (size_t i = 0; i < arr->size(); ++i) {
      const std::string pp = StrCat(path, ".policies[", i, "]");
      ASSIGN_OR_RETURN(const json::object* po, Object((*arr)[i], pp));
      ScalingPolicy p;
      std::string type;
      RETURN_IF_ERROR(Opt(*po, "type", pp, String, type));
      if (type == "Pods")
        p.type = PolicyType::kPods;
      else if (type == "Percent")
        p.type = PolicyType::kPercent;
      else
        return Bad(pp + ".type", StrCat("must be Pods or Percent, not \"", type, "\""));
      RETURN_IF_ERROR(Opt(*po, "value", pp, Int, p.value));
      RETURN_IF_ERROR(Opt(*po, "periodSeconds", pp, Int, p.period_seconds));
      if (p.value <= 0) return Bad(pp + ".value", "must be positive");
      if (p.period_seconds <= 0 || p.period_seconds > 1800) {
        return Bad(pp + ".periodSeconds", "must be in (0, 1800]");
      }
      r.policies.push_back(p);
    }
  }
  return r;
}

absl::Status ParseHpaSpec(const json::object& o, const json::object& root, HpaSpec& s) {
  RETURN_IF_ERROR(Opt(o, "minReplicas", "spec", Int, s.min_replicas));
  const json::value* mx = Find(o, "maxReplicas");
  if (!mx) return Bad("spec", "maxReplicas is required");
  ASSIGN_OR_RETURN(s.max_replicas, Int(*mx, "spec.maxReplicas"));
  if (s.min_replicas < 0 || s.max_replicas < 1 || s.min_replicas > s.max_replicas) {
    return Bad("spec", "need 0 <= minReplicas <= maxReplicas and maxReplicas >= 1");
  }
  if (const json::value* mv = Find(o, "metrics")) {
    ASSIGN_OR_RETURN(const json::array* arr, Array(*mv, "spec.metrics"));
    for (size_t i = 0; i < arr->size(); ++i) {
      ASSIGN_OR_RETURN(MetricSpec m, ParseMetric((*arr)[i], StrCat("spec.metrics[", i, "]")));
      s.metrics.push_back(std::move(m));
    }
  }
  if (const json::value* bv = Find(o, "behavior")) {
    ASSIGN_OR_RETURN(const json::object* b, Object(*bv, "spec.behavior"));
    Behavior behavior;
    RETURN_IF_ERROR(Opt(*b, "scaleUp", "spec.behavior", ParseRules, behavior.scale_up));
    RETURN_IF_ERROR(Opt(*b, "scaleDown", "spec.behavior", ParseRules, behavior.scale_down));
    s.behavior = behavior;
  }
  // kube-controller-manager flags, optionally overridden.
  if (const json::value* cv = Find(root, "controller")) {
    ASSIGN_OR_RETURN(const json::object* c, Object(*cv, "controller"));
    int cpu_init = -1, readiness = -1, downscale = -1;
    RETURN_IF_ERROR(Opt(*c, "tolerance", "controller", Number, s.tolerance));
    RETURN_IF_ERROR(Opt(*c, "cpuInitializationPeriodSeconds", "controller", Int, cpu_init));
    RETURN_IF_ERROR(Opt(*c, "initialReadinessDelaySeconds", "controller", Int, readiness));
    RETURN_IF_ERROR(Opt(*c, "downscaleStabilizationSeconds", "controller", Int, downscale));
    if (cpu_init >= 0) s.cpu_initialization_period = absl::Seconds(cpu_init);
    if (readiness >= 0) s.initial_readiness_delay = absl::Seconds(readiness);
    if (downscale >= 0) s.downscale_stabilization = absl::Seconds(downscale);
  }
  return absl::OkStatus();
}

absl::Status ParseInferenceSpec(const json::object& o, InferencePolicy& p) {
  const std::string s = "spec";
  double stable = -1, delay = -1, load = -1, grace = -1, gap = -1, memory = -1;
  RETURN_IF_ERROR(Opt(o, "minReplicas", s, Int, p.min_replicas));
  RETURN_IF_ERROR(Opt(o, "maxReplicas", s, Int, p.max_replicas));
  RETURN_IF_ERROR(Opt(o, "targetConcurrency", s, Number, p.target_concurrency));
  RETURN_IF_ERROR(Opt(o, "targetLatencySeconds", s, Number, p.target_latency_seconds));
  RETURN_IF_ERROR(Opt(o, "targetGpuMemoryFraction", s, Number, p.target_gpu_memory_fraction));
  RETURN_IF_ERROR(Opt(o, "stableWindowSeconds", s, Number, stable));
  RETURN_IF_ERROR(Opt(o, "panicWindowPercentage", s, Number, p.panic_window_percentage));
  RETURN_IF_ERROR(Opt(o, "panicThresholdPercentage", s, Number, p.panic_threshold_percentage));
  RETURN_IF_ERROR(Opt(o, "maxScaleUpRate", s, Number, p.max_scale_up_rate));
  RETURN_IF_ERROR(Opt(o, "maxScaleDownRate", s, Number, p.max_scale_down_rate));
  RETURN_IF_ERROR(Opt(o, "scaleDownDelaySeconds", s, Number, delay));
  RETURN_IF_ERROR(Opt(o, "burstGapMaxSeconds", s, Number, gap));
  RETURN_IF_ERROR(Opt(o, "burstMemorySeconds", s, Number, memory));
  RETURN_IF_ERROR(Opt(o, "modelLoadTimeSeconds", s, Number, load));
  RETURN_IF_ERROR(Opt(o, "scaleToZero", s, Bool, p.scale_to_zero));
  RETURN_IF_ERROR(Opt(o, "scaleToZeroGraceSeconds", s, Number, grace));
  RETURN_IF_ERROR(Opt(o, "tolerance", s, Number, p.tolerance));
  RETURN_IF_ERROR(Opt(o, "replicaCapacityRps", s, Number, p.replica_capacity_rps));
  RETURN_IF_ERROR(Opt(o, "targetUtilization", s, Number, p.target_utilization));
  RETURN_IF_ERROR(Opt(o, "burstCoverShare", s, Number, p.burst_cover_share));
  if (stable >= 0) p.stable_window = absl::Seconds(stable);
  if (delay >= 0) p.scale_down_delay = absl::Seconds(delay);
  if (load >= 0) p.model_load_time = absl::Seconds(load);
  if (gap >= 0) p.burst_gap_max = absl::Seconds(gap);
  if (memory >= 0) p.burst_memory = absl::Seconds(memory);
  if (grace >= 0) p.scale_to_zero_grace = absl::Seconds(grace);
  if (p.min_replicas < 0 || p.max_replicas < 1 || p.min_replicas > p.max_replicas) {
    return Bad(s, "need 0 <= minReplicas <= maxReplicas and maxReplicas >= 1");
  }
  if (p.target_concurrency <= 0) return Bad(s + ".targetConcurrency", "must be positive");
  if (p.replica_capacity_rps && *p.replica_capacity_rps <= 0) {
    return Bad(s + ".replicaCapacityRps", "must be positive");
  }
  if (!(p.target_utilization > 0 && p.target_utilization <= 1)) {
    return Bad(s + ".targetUtilization", "must be in (0, 1]");
  }
  if (!(p.burst_cover_share > 0 && p.burst_cover_share <= 1)) {
    return Bad(s + ".burstCoverShare", "must be in (0, 1]");
  }
  if (p.stable_window <= absl::ZeroDuration())
    return Bad(s + ".stableWindowSeconds", "must be positive");
  if (p.max_scale_down_rate < 1 || p.max_scale_up_rate <= 1) {
    return Bad(s, "need maxScaleDownRate >= 1 and maxScaleUpRate > 1");
  }
  if ((p.target_latency_seconds && *p.target_latency_seconds <= 0) ||
      (p.target_gpu_memory_fraction && *p.target_gpu_memory_fraction <= 0)) {
    return Bad(s, "latency and GPU memory targets must be positive");
  }
  return absl::OkStatus();
}

absl::StatusOr<PodPhase> ParsePhase(const json::value& v, const std::string& path) {
  ASSIGN_OR_RETURN(std::string s, String(v, path));
  if (s == "Pending") return PodPhase::kPending;
  if (s == "Running") return PodPhase::kRunning;
  if (s == "Succeeded") return PodPhase::kSucceeded;
  if (s == "Failed") return PodPhase::kFailed;
  if (s == "Unknown") return PodPhase::kUnknown;
  return Bad(path, StrCat("unknown phase \"", s, "\""));
}

absl::StatusOr<MetricSample> ParseSample(const json::value& v, const std::string& path) {
  MetricSample s;
  if (!v.is_object()) {
    ASSIGN_OR_RETURN(s.value, Quantity(v, path));
    return s;
  }
  const json::object& o = v.get_object();
  const json::value* val = Find(o, "value");
  if (!val) return Bad(path, "value is required");
  ASSIGN_OR_RETURN(s.value, Quantity(*val, path + ".value"));
  RETURN_IF_ERROR(Opt(o, "timestamp", path, Time, s.timestamp));
  double window = -1;
  RETURN_IF_ERROR(Opt(o, "windowSeconds", path, Number, window));
  if (window >= 0) s.window = absl::Seconds(window);
  return s;
}

absl::StatusOr<PodState> ParsePod(const json::value& v, const std::string& path) {
  ASSIGN_OR_RETURN(const json::object* o, Object(v, path));
  PodState p;
  const json::value* name = Find(*o, "name");
  if (!name) return Bad(path, "name is required");
  ASSIGN_OR_RETURN(p.name, String(*name, path + ".name"));
  RETURN_IF_ERROR(Opt(*o, "phase", path, ParsePhase, p.phase));
  RETURN_IF_ERROR(Opt(*o, "ready", path, Bool, p.ready));
  RETURN_IF_ERROR(Opt(*o, "deleted", path, Bool, p.deleted));
  RETURN_IF_ERROR(Opt(*o, "startTime", path, Time, p.start_time));
  RETURN_IF_ERROR(Opt(*o, "readyTime", path, Time, p.ready_transition_time));
  for (const char* key : {"requests", "metrics"}) {
    const json::value* mv = Find(*o, key);
    if (!mv) continue;
    const std::string mp = StrCat(path, ".", key);
    ASSIGN_OR_RETURN(const json::object* m, Object(*mv, mp));
    for (const auto& kv : *m) {
      const std::string k(kv.key().data(), kv.key().size());
      if (std::string_view(key) == "requests") {
        ASSIGN_OR_RETURN(p.requests[k], Quantity(kv.value(), StrCat(mp, ".", k)));
      } else {
        ASSIGN_OR_RETURN(p.metrics[k], ParseSample(kv.value(), StrCat(mp, ".", k)));
      }
    }
  }
  return p;
}

absl::StatusOr<Observation> ParseObservation(const json::value& v, const std::string& path) {
  ASSIGN_OR_RETURN(const json::object* o, Object(v, path));
  Observation ob;
  const json::value* t = Find(*o, "time");
  if (!t) return Bad(path, "time is required");
  ASSIGN_OR_RETURN(ob.time, Time(*t, path + ".time"));
  RETURN_IF_ERROR(Opt(*o, "inflight", path, Number, ob.inflight));
  RETURN_IF_ERROR(Opt(*o, "queued", path, Number, ob.queued));
  RETURN_IF_ERROR(Opt(*o, "latencySeconds", path, Number, ob.latency_seconds));
  RETURN_IF_ERROR(Opt(*o, "gpuMemoryFraction", path, Number, ob.gpu_memory_fraction));
  RETURN_IF_ERROR(Opt(*o, "requestRate", path, Number, ob.request_rate));
  if (ob.inflight < 0 || ob.queued < 0) return Bad(path, "inflight and queued must be >= 0");
  if (ob.request_rate && *ob.request_rate < 0) return Bad(path, "requestRate must be >= 0");
  return ob;
}

absl::Status ParseHistory(const json::value& v, History& h) {
  ASSIGN_OR_RETURN(const json::object* o, Object(v, "history"));
  if (const json::value* rv = Find(*o, "recommendations")) {
    ASSIGN_OR_RETURN(const json::array* arr, Array(*rv, "history.recommendations"));
    for (size_t i = 0; i < arr->size(); ++i) {
      const std::string p = StrCat("history.recommendations[", i, "]");
      ASSIGN_OR_RETURN(const json::object* r, Object((*arr)[i], p));
      const json::value* t = Find(*r, "time");
      const json::value* n = Find(*r, "replicas");
      if (!t || !n) return Bad(p, "time and replicas are required");
      TimestampedRecommendation rec;
      ASSIGN_OR_RETURN(rec.time, Time(*t, p + ".time"));
      ASSIGN_OR_RETURN(rec.replicas, Int(*n, p + ".replicas"));
      h.recommendations.push_back(rec);
    }
  }
  if (const json::value* ev = Find(*o, "scaleEvents")) {
    ASSIGN_OR_RETURN(const json::array* arr, Array(*ev, "history.scaleEvents"));
    for (size_t i = 0; i < arr->size(); ++i) {
      const std::string p = StrCat("history.scaleEvents[", i, "]");
      ASSIGN_OR_RETURN(const json::object* r, Object((*arr)[i], p));
      const json::value* t = Find(*r, "time");
      const json::value* n = Find(*r, "change");
      if (!t || !n) return Bad(p, "time and change are required");
      ScaleEvent e;
      ASSIGN_OR_RETURN(e.time, Time(*t, p + ".time"));
      ASSIGN_OR_RETURN(e.change, Int(*n, p + ".change"));
      h.scale_events.push_back(e);
    }
  }
  if (const json::value* bv = Find(*o, "burstOnsets")) {
    ASSIGN_OR_RETURN(const json::array* arr, Array(*bv, "history.burstOnsets"));
    for (size_t i = 0; i < arr->size(); ++i) {
      ASSIGN_OR_RETURN(absl::Time t, Time((*arr)[i], StrCat("history.burstOnsets[", i, "]")));
      if (!h.burst_onsets.empty() && t < h.burst_onsets.back()) {
        return Bad("history.burstOnsets", "must be in time order, oldest first");
      }
      h.burst_onsets.push_back(t);
    }
  }
  if (const json::value* rv = Find(*o, "rates")) {
    ASSIGN_OR_RETURN(const json::array* arr, Array(*rv, "history.rates"));
    for (size_t i = 0; i < arr->size(); ++i) {
      const std::string p = StrCat("history.rates[", i, "]");
      ASSIGN_OR_RETURN(const json::object* r, Object((*arr)[i], p));
      const json::value* t = Find(*r, "time");
      const json::value* n = Find(*r, "rate");
      if (!t || !n) return Bad(p, "time and rate are required");
      TimedRate rate;
      ASSIGN_OR_RETURN(rate.time, Time(*t, p + ".time"));
      ASSIGN_OR_RETURN(rate.rate, Number(*n, p + ".rate"));
      if (rate.rate < 0) return Bad(p, "rate must be >= 0");
      if (!h.rates.empty() && rate.time < h.rates.back().time) {
        return Bad("history.rates", "must be in time order, oldest first");
      }
      h.rates.push_back(rate);
    }
  }
  RETURN_IF_ERROR(Opt(*o, "panicSince", "history", Time, h.panic_since));
  RETURN_IF_ERROR(Opt(*o, "lastActive", "history", Time, h.last_active));
  return absl::OkStatus();
}

absl::Status ParseWorld(const json::object& root, Snapshot& s) {
  const json::value* cr = Find(root, "currentReplicas");
  if (!cr) return Bad("currentReplicas", "is required");
  ASSIGN_OR_RETURN(s.current_replicas, Int(*cr, "currentReplicas"));
  if (s.current_replicas < 0) return Bad("currentReplicas", "must be >= 0");
  if (const json::value* pv = Find(root, "pods")) {
    ASSIGN_OR_RETURN(const json::array* arr, Array(*pv, "pods"));
    for (size_t i = 0; i < arr->size(); ++i) {
      ASSIGN_OR_RETURN(PodState p, ParsePod((*arr)[i], StrCat("pods[", i, "]")));
      s.pods.push_back(std::move(p));
    }
  }
  if (const json::value* ov = Find(root, "objectMetrics")) {
    ASSIGN_OR_RETURN(const json::object* o, Object(*ov, "objectMetrics"));
    for (const auto& kv : *o) {
      const std::string k(kv.key().data(), kv.key().size());
      ASSIGN_OR_RETURN(s.object_metrics[k], Quantity(kv.value(), "objectMetrics." + k));
    }
  }
  if (const json::value* ev = Find(root, "externalMetrics")) {
    ASSIGN_OR_RETURN(const json::object* o, Object(*ev, "externalMetrics"));
    for (const auto& kv : *o) {
      const std::string k(kv.key().data(), kv.key().size());
      const std::string p = "externalMetrics." + k;
      std::vector<double>& out = s.external_metrics[k];
      if (kv.value().is_array()) {
        for (size_t i = 0; i < kv.value().get_array().size(); ++i) {
          ASSIGN_OR_RETURN(double d, Quantity(kv.value().get_array()[i], StrCat(p, "[", i, "]")));
          out.push_back(d);
        }
      } else {
        ASSIGN_OR_RETURN(double d, Quantity(kv.value(), p));
        out.push_back(d);
      }
    }
  }
  if (const json::value* obv = Find(root, "observations")) {
    ASSIGN_OR_RETURN(const json::array* arr, Array(*obv, "observations"));
    for (size_t i = 0; i < arr->size(); ++i) {
      ASSIGN_OR_RETURN(Observation ob,
                       ParseObservation((*arr)[i], StrCat("observations[", i, "]")));
      s.observations.push_back(ob);
    }
  }
  return absl::OkStatus();
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
}

}  // namespace

absl::StatusOr<double> ParseQuantity(std::string_view text) {
  std::string_view s = StripWhitespace(text);
  struct Suffix {
    std::string_view name;
    double factor;
  };
  static constexpr Suffix kSuffixes[] = {
      {"Ki", 1024.0}, {"Mi", 1048576.0}, {"Gi", 1073741824.0}, {"Ti", 1099511627776.0},
      {"m", 1e-3},    {"k", 1e3},        {"M", 1e6},           {"G", 1e9},
      {"T", 1e12}};
  double factor = 1;
  for (const Suffix& suf : kSuffixes) {
    if (s.size() > suf.name.size() && s.substr(s.size() - suf.name.size()) == suf.name) {
      factor = suf.factor;
      s.remove_suffix(suf.name.size());
      break;
    }
  }
  double value = 0;
  const char* end = s.data() + s.size();
  auto r = std::from_chars(s.data(), end, value);
  if (s.empty() || r.ec != std::errc() || r.ptr != end || !std::isfinite(value)) {
    return absl::InvalidArgumentError(StrCat("not a quantity: \"", text, "\""));
  }
  return value * factor;
}

absl::StatusOr<PlanInput> ParsePlanInput(std::string_view text) {
  boost::system::error_code ec;
  json::value doc = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return absl::InvalidArgumentError(StrCat("input is not valid JSON: ", ec.message()));
  ASSIGN_OR_RETURN(const json::object* root, Object(doc, "document"));
  PlanInput in;
  const json::value* now = Find(*root, "now");
  if (!now) return Bad("now", "is required (RFC 3339)");
  ASSIGN_OR_RETURN(in.now, Time(*now, "now"));
  std::string mode = "hpa";
  RETURN_IF_ERROR(Opt(*root, "mode", "", String, mode));
  const json::value* spec_v = Find(*root, "spec");
  if (!spec_v) return Bad("spec", "is required");
  ASSIGN_OR_RETURN(const json::object* spec, Object(*spec_v, "spec"));
  if (mode == "hpa") {
    HpaSpec h;
    RETURN_IF_ERROR(ParseHpaSpec(*spec, *root, h));
    in.spec.policy = std::move(h);
  } else if (mode == "galley") {
    InferencePolicy p;
    RETURN_IF_ERROR(ParseInferenceSpec(*spec, p));
    in.spec.policy = p;
  } else {
    return Bad("mode", StrCat("must be \"hpa\" or \"galley\", not \"", mode, "\""));
  }
  RETURN_IF_ERROR(ParseWorld(*root, in.snapshot));
  if (const json::value* hv = Find(*root, "history"))
    RETURN_IF_ERROR(ParseHistory(*hv, in.history));
  return in;
}

std::string DecisionToJson(const Decision& d, const PlanInput& input) {
  json::object out;
  out["replicas"] = d.replicas;
  out["currentReplicas"] = input.snapshot.current_replicas;
  out["reason"] = d.reason;
  out["message"] = d.message;
  if (d.recommendation)
    out["recommendation"] = *d.recommendation;
  else
    out["recommendation"] = nullptr;
  json::array proposals;
  for (const MetricProposal& p : d.proposals) {
    json::object o;
    o["metric"] = p.metric;
    if (p.replicas >= 0)
      o["replicas"] = p.replicas;
    else
      o["replicas"] = nullptr;
    o["current"] = p.current;
    o["target"] = p.target;
    if (!p.note.empty()) o["note"] = p.note;
    proposals.push_back(std::move(o));
  }
  out["proposals"] = std::move(proposals);
  if (std::holds_alternative<InferencePolicy>(input.spec.policy)) {
    out["panic"] = d.panic;
    if (d.panic_since) out["panicSince"] = Rfc3339(*d.panic_since);
    if (d.last_active) out["lastActive"] = Rfc3339(*d.last_active);
    json::array onsets;
    for (absl::Time t : d.burst_onsets) onsets.push_back(json::value(Rfc3339(t)));
    out["burstOnsets"] = std::move(onsets);
    out["scaleDownDelaySeconds"] = absl::ToDoubleSeconds(d.hold);
    if (d.rate) out["requestRate"] = *d.rate;
  }
  return JsonSerialize(out);
}

}  // namespace galley::autoscale
