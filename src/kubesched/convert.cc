#include "kubesched/convert.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "boost/json.hpp"
#include "common/strings.h"

namespace galley::kubesched {
namespace {

namespace json = boost::json;
using schedule::kMilliPerGpu;

absl::Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(std::string(what));
}

const json::object* ObjectAt(const json::object* o, std::string_view key) {
  if (o == nullptr) return nullptr;
  const json::value* f = o->if_contains(key);
  return f == nullptr ? nullptr : f->if_object();
}

const json::object* ObjectAt(const json::value& v, std::string_view key) {
  return ObjectAt(v.if_object(), key);
}

const json::array* ArrayAt(const json::object* o, std::string_view key) {
  if (o == nullptr) return nullptr;
  const json::value* f = o->if_contains(key);
  return f == nullptr ? nullptr : f->if_array();
}

std::string_view StringAt(const json::object* o, std::string_view key) {
  if (o == nullptr) return {};
  const json::value* f = o->if_contains(key);
  if (f == nullptr || !f->is_string()) return {};
  const json::string& s = f->get_string();
  return {s.data(), s.size()};
}

// A map of string values (labels, annotations, nodeSelector, resource lists as strings).
absl::Status StringMap(const json::object* o, std::string_view key, std::string_view where,
                       schedule::Labels& out) {
  if (o == nullptr) return absl::OkStatus();
  const json::value* f = o->if_contains(key);
  if (f == nullptr || f->is_null()) return absl::OkStatus();
  if (!f->is_object()) return Invalid(StrCat(where, ".", key, " must be an object"));
  for (const auto& [k, v] : f->get_object()) {
    if (!v.is_string())
      return Invalid(StrCat(where, ".", key, ".", std::string(k), " must be a string"));
    out.emplace(std::string(k), std::string(v.get_string()));
  }
  return absl::OkStatus();
}

// Quantity: a signed decimal number (optionally with an exponent) and a suffix.
struct Quantity {
  long double value = 0;  // in base units
};

absl::StatusOr<Quantity> ParseQuantity(std::string_view text) {
  const std::string_view original = text;
  auto bad = [&] { return Invalid(StrCat("'", original, "' is not a quantity")); };
  if (text.empty()) return bad();
  size_t i = 0;
  if (text[i] == '+' || text[i] == '-') ++i;
  const size_t digits_start = i;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
    ++i;
  if (i == digits_start) return bad();
  const std::string number(text.substr(0, i));
  std::string_view suffix = text.substr(i);
  long double multiplier = 1;
  if (suffix.empty()) {
  } else if (suffix == "Ki") {
    multiplier = 1024.0L;
  } else if (suffix == "Mi") {
    multiplier = 1024.0L * 1024;
  } else if (suffix == "Gi") {
    multiplier = 1024.0L * 1024 * 1024;
  } else if (suffix == "Ti") {
    multiplier = 1024.0L * 1024 * 1024 * 1024;
  } else if (suffix == "Pi") {
    multiplier = 1024.0L * 1024 * 1024 * 1024 * 1024;
  } else if (suffix == "Ei") {
    multiplier = 1024.0L * 1024 * 1024 * 1024 * 1024 * 1024;
  } else if (suffix == "n") {
    multiplier = 1e-9L;
  } else if (suffix == "u") {
    multiplier = 1e-6L;
  } else if (suffix == "m") {
    multiplier = 1e-3L;
  } else if (suffix == "k") {
    multiplier = 1e3L;
  } else if (suffix == "M") {
    multiplier = 1e6L;
  } else if (suffix == "G") {
    multiplier = 1e9L;
  } else if (suffix == "T") {
    multiplier = 1e12L;
  } else if (suffix == "P") {
    multiplier = 1e15L;
  } else if (suffix == "E") {
    multiplier = 1e18L;
  } else if (suffix[0] == 'e' || suffix[0] == 'E') {
    int exp = 0;
    std::string_view e = suffix.substr(1);
    if (!e.empty() && e[0] == '+') e.remove_prefix(1);
    auto [p, ec] = std::from_chars(e.data(), e.data() + e.size(), exp);
    if (e.empty() || ec != std::errc() || p != e.data() + e.size()) return bad();
    multiplier = std::pow(10.0L, exp);
  } else {
    return bad();
  }
  if (std::count(number.begin(), number.end(), '.') > 1) return bad();
  char* end = nullptr;
  const long double v = std::strtold(number.c_str(), &end);
  if (end != number.c_str() + number.size() || !std::isfinite(v)) return bad();
  return Quantity{v * multiplier};
}

int64_t CeilToInt64(long double v) {
  // Round tiny binary errors (0.1 * 1000 = 100.0000001) to the decimal value before rounding up.
  const long double r = std::round(v);
  if (std::fabs(v - r) < 1e-9L * std::max<long double>(1, std::fabs(v))) v = r;
  const long double c = std::ceil(v);
  if (c >= static_cast<long double>(std::numeric_limits<int64_t>::max())) {
    return std::numeric_limits<int64_t>::max();
  }
  return static_cast<int64_t>(c);
}

// A resource list entry ("cpu": "500m") in thousandths; 0 when absent.
absl::StatusOr<int64_t> ResourceMilli(const json::object* list, std::string_view name,
                                      std::string_view where) {
  if (list == nullptr) return 0;
  const json::value* f = list->if_contains(name);
  if (f == nullptr) return 0;
  if (f->is_int64()) return f->get_int64() * 1000;
  if (f->is_uint64()) return static_cast<int64_t>(f->get_uint64()) * 1000;
  if (!f->is_string()) return Invalid(StrCat(where, ".", name, " must be a quantity string"));
  auto q = ParseQuantityMilli(std::string_view(f->get_string()));
  if (!q.ok()) return Invalid(StrCat(where, ".", name, ": ", q.status().message()));
  return *q;
}

int64_t MilliToMibCeil(int64_t milli_bytes) {
  const int64_t bytes = (milli_bytes + 999) / 1000;
  return (bytes + (1 << 20) - 1) >> 20;
}

int64_t MilliToMibFloor(int64_t milli_bytes) { return (milli_bytes / 1000) >> 20; }

absl::StatusOr<int64_t> AnnotationInt(const schedule::Labels& annotations, std::string_view key,
                                      int64_t min, int64_t max) {
  auto it = annotations.find(key);
  if (it == annotations.end()) return -1;
  int64_t v = 0;
  const std::string& s = it->second;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < min || v > max) {
    return Invalid(
        StrCat("annotation ", key, " must be an integer in [", min, ", ", max, "], not '", s, "'"));
  }
  return v;
}

absl::StatusOr<schedule::TaintEffect> EffectFrom(std::string_view s, std::string_view where) {
  if (s == "NoSchedule") return schedule::TaintEffect::kNoSchedule;
  if (s == "PreferNoSchedule") return schedule::TaintEffect::kPreferNoSchedule;
  if (s == "NoExecute") return schedule::TaintEffect::kNoExecute;
  return Invalid(StrCat(where, ": unknown taint effect '", s, "'"));
}

absl::StatusOr<schedule::SelectorOperator> OperatorFrom(std::string_view s,
                                                        std::string_view where) {
  using Op = schedule::SelectorOperator;
  if (s == "In") return Op::kIn;
  if (s == "NotIn") return Op::kNotIn;
  if (s == "Exists") return Op::kExists;
  if (s == "DoesNotExist") return Op::kDoesNotExist;
  if (s == "Gt") return Op::kGt;
  if (s == "Lt") return Op::kLt;
  return Invalid(StrCat(where, ": unknown operator '", s, "'"));
}

absl::StatusOr<std::vector<schedule::SelectorRequirement>> Requirements(const json::array* a,
                                                                        std::string_view where) {
  std::vector<schedule::SelectorRequirement> out;
  if (a == nullptr) return out;
  for (const json::value& e : *a) {
    const json::object* o = e.if_object();
    if (o == nullptr) return Invalid(StrCat(where, " entries must be objects"));
    schedule::SelectorRequirement r;
    r.key = std::string(StringAt(o, "key"));
    auto op = OperatorFrom(StringAt(o, "operator"), where);
    if (!op.ok()) return op.status();
    r.op = *op;
    if (const json::array* values = ArrayAt(o, "values")) {
      for (const json::value& v : *values) {
        if (!v.is_string()) return Invalid(StrCat(where, ".values must be strings"));
        r.values.emplace_back(v.get_string());
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<schedule::NodeSelectorTerm> NodeTerm(const json::object* o, std::string_view where) {
  schedule::NodeSelectorTerm t;
  if (o == nullptr) return t;
  auto reqs = Requirements(ArrayAt(o, "matchExpressions"), StrCat(where, ".matchExpressions"));
  if (!reqs.ok()) return reqs.status();
  t.match_expressions = std::move(*reqs);
  // matchFields: kube allows only metadata.name; expressed here as the hostname label.
  auto fields = Requirements(ArrayAt(o, "matchFields"), StrCat(where, ".matchFields"));
  if (!fields.ok()) return fields.status();
  for (auto& f : *fields) {
    if (f.key != "metadata.name") return Invalid(StrCat(where, ".matchFields: only metadata.name"));
    f.key = "kubernetes.io/hostname";
    t.match_expressions.push_back(std::move(f));
  }
  return t;
}

absl::StatusOr<schedule::LabelSelector> Selector(const json::object* o, std::string_view where) {
  schedule::LabelSelector s;
  if (o == nullptr) return s;
  if (absl::Status st = StringMap(o, "matchLabels", where, s.match_labels); !st.ok()) return st;
  auto reqs = Requirements(ArrayAt(o, "matchExpressions"), StrCat(where, ".matchExpressions"));
  if (!reqs.ok()) return reqs.status();
  s.match_expressions = std::move(*reqs);
  return s;
}

absl::StatusOr<schedule::PodAffinityTerm> AffinityTerm(const json::object* o,
                                                       std::string_view where) {
  schedule::PodAffinityTerm t;
  if (o == nullptr) return Invalid(StrCat(where, " must be an object"));
  auto sel = Selector(ObjectAt(o, "labelSelector"), StrCat(where, ".labelSelector"));
  if (!sel.ok()) return sel.status();
  t.selector = std::move(*sel);
  t.topology_key = std::string(StringAt(o, "topologyKey"));
  if (t.topology_key.empty()) return Invalid(StrCat(where, ".topologyKey is required"));
  return t;
}

// Requests of one container list, summed.
absl::Status SumContainers(const json::array* containers, std::string_view where, int64_t& cpu,
                           int64_t& mem_milli, int64_t& gpus_milli, bool max_instead) {
  if (containers == nullptr) return absl::OkStatus();
  for (size_t i = 0; i < containers->size(); ++i) {
    const std::string w = StrCat(where, "[", i, "].resources");
    const json::object* c = (*containers)[i].if_object();
    if (c == nullptr) return Invalid(StrCat(where, "[", i, "] must be an object"));
    const json::value* res = c->if_contains("resources");
    const json::object* r = res == nullptr ? nullptr : res->if_object();
    const json::object* requests = nullptr;
    const json::object* limits = nullptr;
    if (r != nullptr) {
      if (const json::value* v = r->if_contains("requests")) requests = v->if_object();
      if (const json::value* v = r->if_contains("limits")) limits = v->if_object();
    }
    // A request defaults to the limit when only the limit is set (API defaulting).
    auto get = [&](std::string_view name) -> absl::StatusOr<int64_t> {
      auto q = ResourceMilli(requests, name, StrCat(w, ".requests"));
      if (!q.ok() || *q > 0 || (requests != nullptr && requests->contains(name))) return q;
      return ResourceMilli(limits, name, StrCat(w, ".limits"));
    };
    auto c_cpu = get("cpu");
    if (!c_cpu.ok()) return c_cpu.status();
    auto c_mem = get("memory");
    if (!c_mem.ok()) return c_mem.status();
    auto c_gpu = get(kGpuResource);
    if (!c_gpu.ok()) return c_gpu.status();
    if (max_instead) {
      cpu = std::max(cpu, *c_cpu), mem_milli = std::max(mem_milli, *c_mem);
      gpus_milli = std::max(gpus_milli, *c_gpu);
    } else {
      cpu += *c_cpu, mem_milli += *c_mem, gpus_milli += *c_gpu;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int64_t> ParseQuantityMilli(std::string_view text) {
  auto q = ParseQuantity(text);
  if (!q.ok()) return q.status();
  return CeilToInt64(q->value * 1000);
}

absl::StatusOr<int64_t> ParseQuantityValue(std::string_view text) {
  auto q = ParseQuantity(text);
  if (!q.ok()) return q.status();
  return CeilToInt64(q->value);
}

absl::StatusOr<schedule::Node> NodeFromJson(const json::value& v) {
  const json::object* meta = ObjectAt(v, "metadata");
  if (meta == nullptr) return Invalid("node: metadata is missing");
  schedule::Node n;
  n.name = std::string(StringAt(meta, "name"));
  if (n.name.empty()) return Invalid("node: metadata.name is missing");
  const std::string where = StrCat("node ", n.name);
  if (absl::Status st = StringMap(meta, "labels", StrCat(where, ": metadata"), n.labels);
      !st.ok()) {
    return st;
  }
  if (auto it = n.labels.find(schedule::kNodePoolLabel); it != n.labels.end()) n.pool = it->second;
  if (const json::array* taints = ArrayAt(ObjectAt(v, "spec"), "taints")) {
    for (const json::value& t : *taints) {
      const json::object* o = t.if_object();
      if (o == nullptr) return Invalid(StrCat(where, ": spec.taints entries must be objects"));
      schedule::Taint taint;
      taint.key = std::string(StringAt(o, "key"));
      taint.value = std::string(StringAt(o, "value"));
      auto e = EffectFrom(StringAt(o, "effect"), StrCat(where, ": spec.taints"));
      if (!e.ok()) return e.status();
      taint.effect = *e;
      n.taints.push_back(std::move(taint));
    }
  }
  const json::object* status = ObjectAt(v, "status");
  const json::value* alloc_v = status == nullptr ? nullptr : status->if_contains("allocatable");
  const json::object* alloc = alloc_v == nullptr ? nullptr : alloc_v->if_object();
  const std::string aw = StrCat(where, ": status.allocatable");
  auto cpu = ResourceMilli(alloc, "cpu", aw);
  if (!cpu.ok()) return cpu.status();
  auto mem = ResourceMilli(alloc, "memory", aw);
  if (!mem.ok()) return mem.status();
  auto gpus = ResourceMilli(alloc, kGpuResource, aw);
  if (!gpus.ok()) return gpus.status();
  n.cpu_milli = *cpu;
  n.memory_mib = MilliToMibFloor(*mem);
  const int64_t gpu_count = *gpus / 1000;
  if (gpu_count > 64) return Invalid(StrCat(aw, ".", kGpuResource, ": more than 64 GPUs"));
  std::string model;
  if (auto it = n.labels.find(kGpuProductLabel); it != n.labels.end()) model = it->second;
  int64_t gpu_memory = 0;
  if (auto it = n.labels.find(kGpuMemoryLabel); it != n.labels.end()) {
    auto m = ParseQuantityValue(it->second);
    if (!m.ok() || *m < 0) {
      return Invalid(
          StrCat(where, ": label ", kGpuMemoryLabel, " must be MiB, not '", it->second, "'"));
    }
    gpu_memory = *m;
  }
  n.gpus.assign(static_cast<size_t>(gpu_count), schedule::Gpu{model, gpu_memory, 0, 0});
  n.generation = schedule::NextNodeGeneration();
  return n;
}

bool NodeSchedulable(const json::value& v) {
  const json::object* spec = ObjectAt(v, "spec");
  if (spec == nullptr) return true;
  const json::value* u = spec->if_contains("unschedulable");
  return u == nullptr || !u->is_bool() || !u->get_bool();
}

absl::StatusOr<schedule::Pod> PodFromJson(const json::value& v) {
  const json::object* meta = ObjectAt(v, "metadata");
  if (meta == nullptr) return Invalid("pod: metadata is missing");
  schedule::Pod p;
  const std::string_view name = StringAt(meta, "name");
  if (name.empty()) return Invalid("pod: metadata.name is missing");
  p.name = StrCat(StringAt(meta, "namespace"), "/", name);
  const std::string where = StrCat("pod ", p.name);
  if (absl::Status st = StringMap(meta, "labels", StrCat(where, ": metadata"), p.labels);
      !st.ok()) {
    return st;
  }
  schedule::Labels annotations;
  if (absl::Status st = StringMap(meta, "annotations", StrCat(where, ": metadata"), annotations);
      !st.ok()) {
    return st;
  }
  const json::object* spec = ObjectAt(v, "spec");
  if (spec == nullptr) return Invalid(StrCat(where, ": spec is missing"));

  // Requests: max(sum of containers, largest init container) + overhead.
  int64_t cpu = 0, mem = 0, gpus = 0, icpu = 0, imem = 0, igpus = 0;
  if (absl::Status st = SumContainers(ArrayAt(spec, "containers"),
                                      StrCat(where, ": spec.containers"), cpu, mem, gpus, false);
      !st.ok()) {
    return st;
  }
  if (absl::Status st =
          SumContainers(ArrayAt(spec, "initContainers"), StrCat(where, ": spec.initContainers"),
                        icpu, imem, igpus, true);
      !st.ok()) {
    return st;
  }
  cpu = std::max(cpu, icpu), mem = std::max(mem, imem), gpus = std::max(gpus, igpus);
  if (const json::value* ov = spec->if_contains("overhead"); ov != nullptr && ov->is_object()) {
    auto ocpu = ResourceMilli(&ov->get_object(), "cpu", StrCat(where, ": spec.overhead"));
    auto omem = ResourceMilli(&ov->get_object(), "memory", StrCat(where, ": spec.overhead"));
    if (!ocpu.ok()) return ocpu.status();
    if (!omem.ok()) return omem.status();
    cpu += *ocpu, mem += *omem;
  }
  p.cpu_milli = cpu;
  p.memory_mib = MilliToMibCeil(mem);

  auto milli = AnnotationInt(annotations, kMilliAnnotation, 1, kMilliPerGpu);
  if (!milli.ok()) return Invalid(StrCat(where, ": ", milli.status().message()));
  auto gpu_mem = AnnotationInt(annotations, kMemoryAnnotation, 1, int64_t{1} << 40);
  if (!gpu_mem.ok()) return Invalid(StrCat(where, ": ", gpu_mem.status().message()));
  if ((*milli > 0 || *gpu_mem > 0) && gpus > 0) {
    return Invalid(StrCat(where, ": asks for a GPU share (", kMilliAnnotation, "/",
                          kMemoryAnnotation, ") and for ", kGpuResource, " as well; use one"));
  }
  if (*milli > 0 || *gpu_mem > 0) {
    p.gpu_count = 1;
    p.gpu_milli = *milli > 0 ? static_cast<int32_t>(*milli) : 0;
    p.gpu_memory_mib = std::max<int64_t>(*gpu_mem, 0);
  } else if (gpus > 0) {
    if (gpus % 1000 != 0) return Invalid(StrCat(where, ": ", kGpuResource, " must be whole GPUs"));
    if (gpus / 1000 > 64) return Invalid(StrCat(where, ": more than 64 GPUs"));
    p.gpu_count = static_cast<int32_t>(gpus / 1000);
    p.gpu_milli = kMilliPerGpu;
  }
  if (auto it = annotations.find(kModelsAnnotation); it != annotations.end()) {
    for (std::string_view m : Split(it->second, ',')) {
      m = StripWhitespace(m);
      if (!m.empty()) p.gpu_models.emplace_back(m);
    }
  }

  if (absl::Status st = StringMap(spec, "nodeSelector", StrCat(where, ": spec"), p.node_selector);
      !st.ok()) {
    return st;
  }
  if (const json::array* tols = ArrayAt(spec, "tolerations")) {
    for (const json::value& t : *tols) {
      const json::object* o = t.if_object();
      if (o == nullptr) return Invalid(StrCat(where, ": spec.tolerations entries must be objects"));
      schedule::Toleration tol;
      tol.key = std::string(StringAt(o, "key"));
      tol.value = std::string(StringAt(o, "value"));
      const std::string_view op = StringAt(o, "operator");
      if (op == "Exists") {
        tol.op = schedule::TolerationOperator::kExists;
      } else if (op.empty() || op == "Equal") {
        tol.op = schedule::TolerationOperator::kEqual;
      } else {
        return Invalid(StrCat(where, ": spec.tolerations: unknown operator '", op, "'"));
      }
      if (const std::string_view e = StringAt(o, "effect"); !e.empty()) {
        auto eff = EffectFrom(e, StrCat(where, ": spec.tolerations"));
        if (!eff.ok()) return eff.status();
        tol.effect = *eff;
      }
      p.tolerations.push_back(std::move(tol));
    }
  }
  const json::object* affinity = ObjectAt(spec, "affinity");
  if (affinity != nullptr) {
    if (const json::object* na = ObjectAt(affinity, "nodeAffinity")) {
      if (const json::object* req =
              ObjectAt(na, "requiredDuringSchedulingIgnoredDuringExecution")) {
        if (const json::array* terms = ArrayAt(req, "nodeSelectorTerms")) {
          for (const json::value& t : *terms) {
            auto term = NodeTerm(t.if_object(), StrCat(where, ": nodeAffinity.required"));
            if (!term.ok()) return term.status();
            p.required_node_affinity.push_back(std::move(*term));
          }
        }
      }
      if (const json::array* pref =
              ArrayAt(na, "preferredDuringSchedulingIgnoredDuringExecution")) {
        for (const json::value& t : *pref) {
          const json::object* o = t.if_object();
          if (o == nullptr)
            return Invalid(StrCat(where, ": nodeAffinity.preferred entries must be objects"));
          schedule::PreferredSchedulingTerm pt;
          if (const json::value* w = o->if_contains("weight"); w != nullptr && w->is_int64()) {
            pt.weight = static_cast<int32_t>(w->get_int64());
          }
          auto term =
              NodeTerm(ObjectAt(t, "preference"), StrCat(where, ": nodeAffinity.preferred"));
          if (!term.ok()) return term.status();
          pt.preference = std::move(*term);
          p.preferred_node_affinity.push_back(std::move(pt));
        }
      }
    }
    if (const json::object* anti = ObjectAt(affinity, "podAntiAffinity")) {
      if (const json::array* req =
              ArrayAt(anti, "requiredDuringSchedulingIgnoredDuringExecution")) {
        for (const json::value& t : *req) {
          auto term = AffinityTerm(t.if_object(), StrCat(where, ": podAntiAffinity.required"));
          if (!term.ok()) return term.status();
          p.required_anti_affinity.push_back(std::move(*term));
        }
      }
      if (const json::array* pref =
              ArrayAt(anti, "preferredDuringSchedulingIgnoredDuringExecution")) {
        for (const json::value& t : *pref) {
          const json::object* o = t.if_object();
          if (o == nullptr)
            return Invalid(StrCat(where, ": podAntiAffinity.preferred entries must be objects"));
          schedule::WeightedPodAffinityTerm wt;
          if (const json::value* w = o->if_contains("weight"); w != nullptr && w->is_int64()) {
            wt.weight = static_cast<int32_t>(w->get_int64());
          }
          auto term = AffinityTerm(ObjectAt(t, "podAffinityTerm"),
                                   StrCat(where, ": podAntiAffinity.preferred.podAffinityTerm"));
          if (!term.ok()) return term.status();
          wt.term = std::move(*term);
          p.preferred_anti_affinity.push_back(std::move(wt));
        }
      }
    }
  }
  return p;
}

std::optional<BoundPod> BoundPodFromJson(const json::value& v) {
  const json::object* spec = ObjectAt(v, "spec");
  const std::string_view node = StringAt(spec, "nodeName");
  if (node.empty()) return std::nullopt;
  const std::string_view phase = StringAt(ObjectAt(v, "status"), "phase");
  if (phase == "Succeeded" || phase == "Failed") return std::nullopt;
  BoundPod b;
  b.node = std::string(node);
  if (const json::object* ann = ObjectAt(ObjectAt(v, "metadata"), "annotations")) {
    const std::string_view assigned = StringAt(ann, kAssignedAnnotation);
    if (!assigned.empty()) {
      auto idx = ParseGpuIndices(assigned);
      if (idx.ok()) b.gpu_indices = std::move(*idx);
    }
  }
  return b;
}

absl::StatusOr<std::vector<int>> ParseGpuIndices(std::string_view text) {
  std::vector<int> out;
  if (text.empty()) return out;
  for (std::string_view part : Split(text, ',')) {
    int v = -1;
    auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (part.empty() || ec != std::errc() || p != part.data() + part.size() || v < 0) {
      return Invalid(StrCat("'", text, "' is not a list of GPU indices like 0,3"));
    }
    out.push_back(v);
  }
  return out;
}

std::string FormatGpuIndices(const std::vector<int>& indices) {
  std::string out;
  for (size_t i = 0; i < indices.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += std::to_string(indices[i]);
  }
  return out;
}

}  // namespace galley::kubesched
