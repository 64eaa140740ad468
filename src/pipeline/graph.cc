#include "pipeline/graph.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"
#include "common/json.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace galley::pipeline {
namespace {

namespace json = boost::json;

absl::Status Bad(std::string_view where, std::string_view what) {
  return absl::InvalidArgumentError(StrCat(where, ": ", what));
}

// Every key of `obj` must be one of `allowed`: a misspelt field is an error, not a default.
absl::Status OnlyKeys(const json::object& obj, std::initializer_list<std::string_view> allowed,
                      std::string_view where) {
  for (const auto& kv : obj) {
    const std::string_view key(kv.key().data(), kv.key().size());
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return Bad(where, StrCat("unknown field '", key, "' (allowed: ", Join(allowed, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> String(const json::value& v, std::string_view where) {
  if (!v.is_string() || v.as_string().empty()) return Bad(where, "must be a non-empty string");
  return std::string(v.as_string());
}

absl::StatusOr<int64_t> Integer(const json::value& v, std::string_view where) {
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64() && v.as_uint64() <= INT64_MAX) return static_cast<int64_t>(v.as_uint64());
  return Bad(where, "must be an integer");
}

absl::StatusOr<CompareOp> ParseOp(std::string_view op, std::string_view where) {
  static const std::pair<std::string_view, CompareOp> kOps[] = {
      {"==", CompareOp::kEq}, {"!=", CompareOp::kNe}, {"<", CompareOp::kLt},
      {"<=", CompareOp::kLe}, {">", CompareOp::kGt},  {">=", CompareOp::kGe}};
  for (const auto& [name, value] : kOps) {
    if (name == op) return value;
  }
  return Bad(where, StrCat("op '", op, "' is not one of ==, !=, <, <=, >, >="));
}

absl::StatusOr<Condition> ParseCondition(const json::value& v, const std::string& where) {
  if (!v.is_object()) return Bad(where, "must be an object {tensor, op, value}");
  const json::object& o = v.as_object();
  RETURN_IF_ERROR(OnlyKeys(o, {"tensor", "op", "value"}, where));
  Condition c;
  if (!o.contains("tensor") || !o.contains("value"))
    return Bad(where, "needs 'tensor' and 'value'");
  ASSIGN_OR_RETURN(c.tensor, String(o.at("tensor"), where + ".tensor"));
  std::string op = "==";
  if (o.contains("op")) {
    ASSIGN_OR_RETURN(op, String(o.at("op"), where + ".op"));
  }
  ASSIGN_OR_RETURN(c.op, ParseOp(op, where));
  const json::value& value = o.at("value");
  if (value.is_string()) {
    c.is_string = true;
    c.string_value = std::string(value.as_string());
    if (c.op != CompareOp::kEq && c.op != CompareOp::kNe) {
      return Bad(where, "a string value compares only with == or !=");
    }
  } else if (value.is_number()) {
    c.number_value = value.to_number<double>();
  } else if (value.is_bool()) {
    c.number_value = value.as_bool() ? 1 : 0;
  } else {
    return Bad(where, "'value' must be a number, a boolean or a string");
  }
  return c;
}

absl::StatusOr<Constant> ParseConstant(const json::value& v, const std::string& where) {
  Constant c;
  auto add = [&](const json::value& e) -> absl::Status {
    if (e.is_string()) {
      if (!c.numbers.empty()) return Bad(where, "mixes strings and numbers");
      c.strings.emplace_back(e.as_string());
      return absl::OkStatus();
    }
    if (e.is_number()) {
      if (!c.strings.empty()) return Bad(where, "mixes strings and numbers");
      c.is_string = false;
      c.numbers.push_back(e.to_number<double>());
      return absl::OkStatus();
    }
    return Bad(where, "must be a string, a number or a list of either");
  };
  if (v.is_array()) {
    if (v.as_array().empty()) return Bad(where, "must not be empty");
    for (const auto& e : v.as_array()) RETURN_IF_ERROR(add(e));
  } else {
    RETURN_IF_ERROR(add(v));
  }
  return c;
}

absl::StatusOr<Step> ParseStep(const json::value& v, NodeKind kind, const std::string& where) {
  if (!v.is_object()) return Bad(where, "a step must be an object");
  const json::object& o = v.as_object();
  RETURN_IF_ERROR(OnlyKeys(o,
                           {"name", "model", "node", "set", "inputs", "outputs", "condition",
                            "weight", "dependency", "timeout_ms", "fallback_model", "halt"},
                           where));
  Step s;
  if (!o.contains("name")) return Bad(where, "a step needs a 'name'");
  ASSIGN_OR_RETURN(s.name, String(o.at("name"), where + ".name"));
  const std::string at = StrCat(where, " ('", s.name, "')");
  if (s.name.find('.') != std::string::npos) return Bad(at, "a step name must not contain '.'");
  const int doing = o.contains("model") + o.contains("node") + o.contains("set");
  if (doing != 1) return Bad(at, "a step does exactly one of 'model', 'node' or 'set'");
  if (o.contains("model")) {
    ASSIGN_OR_RETURN(s.model, String(o.at("model"), at + ".model"));
  }
  if (o.contains("node")) {
    ASSIGN_OR_RETURN(s.node, String(o.at("node"), at + ".node"));
  }
  if (o.contains("set")) {
    if (!o.at("set").is_object() || o.at("set").as_object().empty()) {
      return Bad(at, "'set' must be a non-empty object of name -> value");
    }
    for (const auto& kv : o.at("set").as_object()) {
      const std::string name(kv.key());
      ASSIGN_OR_RETURN(s.set[name], ParseConstant(kv.value(), StrCat(at, ".set.", name)));
    }
  }
  if (o.contains("inputs")) {
    if (s.model.empty()) return Bad(at, "'inputs' belong to a model step");
    if (!o.at("inputs").is_object()) return Bad(at, "'inputs' must be an object");
    for (const auto& kv : o.at("inputs").as_object()) {
      const std::string name(kv.key());
      const std::string w = StrCat(at, ".inputs.", name);
      InputBinding b;
      if (kv.value().is_string()) {
        ASSIGN_OR_RETURN(b.from, String(kv.value(), w));
      } else if (kv.value().is_object()) {
        const json::object& io = kv.value().as_object();
        RETURN_IF_ERROR(OnlyKeys(io, {"from", "shape"}, w));
        if (!io.contains("from")) return Bad(w, "needs 'from'");
        ASSIGN_OR_RETURN(b.from, String(io.at("from"), w + ".from"));
        if (io.contains("shape")) {
          if (!io.at("shape").is_array()) return Bad(w, "'shape' must be a list of integers");
          std::vector<int64_t> shape;
          int wild = 0;
          for (const auto& d : io.at("shape").as_array()) {
            ASSIGN_OR_RETURN(int64_t n, Integer(d, w + ".shape"));
            if (n < -1 || n == 0) return Bad(w, "a dimension is -1 or positive");
            wild += n == -1;
            shape.push_back(n);
          }
          if (wild > 1) return Bad(w, "at most one dimension may be -1");
          b.shape = std::move(shape);
        }
      } else {
        return Bad(w, "must be a tensor name or {from, shape}");
      }
      s.inputs[name] = std::move(b);
    }
  }
  if (!s.model.empty() && s.inputs.empty()) {
    return Bad(at, "a model step needs 'inputs' (model input -> tensor name)");
  }
  if (o.contains("outputs")) {
    if (s.model.empty()) return Bad(at, "'outputs' belong to a model step");
    if (!o.at("outputs").is_object()) return Bad(at, "'outputs' must be an object");
    for (const auto& kv : o.at("outputs").as_object()) {
      ASSIGN_OR_RETURN(s.outputs[std::string(kv.key())],
                       String(kv.value(), StrCat(at, ".outputs.", std::string(kv.key()))));
    }
  }
  if (o.contains("condition")) {
    if (kind != NodeKind::kSwitch) return Bad(at, "'condition' belongs to a switch node's step");
    ASSIGN_OR_RETURN(s.condition, ParseCondition(o.at("condition"), at + ".condition"));
  }
  if (o.contains("weight")) {
    if (kind != NodeKind::kSplitter) return Bad(at, "'weight' belongs to a splitter node's step");
    ASSIGN_OR_RETURN(int64_t w, Integer(o.at("weight"), at + ".weight"));
    if (w < 1 || w > 100) return Bad(at, "'weight' must be 1..100");
    s.weight = static_cast<int>(w);
  } else if (kind == NodeKind::kSplitter) {
    return Bad(at, "a splitter node's step needs a 'weight'");
  }
  if (o.contains("dependency")) {
    ASSIGN_OR_RETURN(std::string d, String(o.at("dependency"), at + ".dependency"));
    if (d != "hard" && d != "soft") return Bad(at, "'dependency' is \"hard\" or \"soft\"");
    s.hard = d == "hard";
  }
  if (o.contains("timeout_ms")) {
    ASSIGN_OR_RETURN(int64_t t, Integer(o.at("timeout_ms"), at + ".timeout_ms"));
    if (t < 1) return Bad(at, "'timeout_ms' must be positive");
    s.timeout_ms = t;
  }
  if (o.contains("fallback_model")) {
    if (s.model.empty()) return Bad(at, "'fallback_model' belongs to a model step");
    ASSIGN_OR_RETURN(s.fallback_model, String(o.at("fallback_model"), at + ".fallback_model"));
  }
  if (o.contains("halt")) {
    if (!o.at("halt").is_bool()) return Bad(at, "'halt' must be true or false");
    s.halt = o.at("halt").as_bool();
  }
  return s;
}

absl::StatusOr<Node> ParseNode(const std::string& name, const json::value& v,
                               const std::string& where) {
  if (!v.is_object()) return Bad(where, "a node must be an object {kind, steps}");
  const json::object& o = v.as_object();
  RETURN_IF_ERROR(OnlyKeys(o, {"kind", "steps"}, where));
  Node n;
  n.name = name;
  if (!o.contains("kind")) return Bad(where, "a node needs a 'kind'");
  ASSIGN_OR_RETURN(std::string kind, String(o.at("kind"), where + ".kind"));
  if (kind == "sequence") {
    n.kind = NodeKind::kSequence;
  } else if (kind == "switch") {
    n.kind = NodeKind::kSwitch;
  } else if (kind == "ensemble") {
    n.kind = NodeKind::kEnsemble;
  } else if (kind == "splitter") {
    n.kind = NodeKind::kSplitter;
  } else {
    return Bad(where, StrCat("kind '", kind, "' is not sequence, switch, ensemble or splitter"));
  }
  if (!o.contains("steps") || !o.at("steps").is_array() || o.at("steps").as_array().empty()) {
    return Bad(where, "'steps' must be a non-empty list");
  }
  size_t i = 0;
  for (const auto& sv : o.at("steps").as_array()) {
    ASSIGN_OR_RETURN(Step s, ParseStep(sv, n.kind, StrCat(where, ".steps[", i++, "]")));
    n.steps.push_back(std::move(s));
  }
  return n;
}

}  // namespace

std::string_view NodeKindName(NodeKind k) {
  switch (k) {
    case NodeKind::kSequence:
      return "sequence";
    case NodeKind::kSwitch:
      return "switch";
    case NodeKind::kEnsemble:
      return "ensemble";
    case NodeKind::kSplitter:
      return "splitter";
  }
  return "?";
}

absl::StatusOr<PipelineSet> ParsePipelines(std::string_view text) {
  boost::system::error_code ec;
  json::value doc = json::parse(text, ec);
  if (ec) return absl::InvalidArgumentError(StrCat("pipelines: not JSON: ", ec.message()));
  if (auto dup = FindDuplicateKey(text)) {
    return absl::InvalidArgumentError(StrCat("pipelines: key '", *dup, "' appears twice"));
  }
  if (!doc.is_object()) return Bad("pipelines", "the file must be an object {pipelines: {...}}");
  RETURN_IF_ERROR(OnlyKeys(doc.as_object(), {"pipelines"}, "pipelines file"));
  const json::value* all = doc.as_object().if_contains("pipelines");
  if (!all || !all->is_object() || all->as_object().empty()) {
    return Bad("pipelines file", "'pipelines' must be a non-empty object of name -> pipeline");
  }
  PipelineSet set;
  for (const auto& kv : all->as_object()) {
    Pipeline p;
    p.name = std::string(kv.key());
    const std::string where = StrCat("pipeline '", p.name, "'");
    if (!kv.value().is_object()) return Bad(where, "must be an object {inputs, root, nodes}");
    const json::object& o = kv.value().as_object();
    RETURN_IF_ERROR(OnlyKeys(o, {"inputs", "root", "nodes"}, where));
    if (!o.contains("root")) return Bad(where, "needs a 'root' node");
    ASSIGN_OR_RETURN(p.root, String(o.at("root"), where + ".root"));
    if (o.contains("inputs")) {
      if (!o.at("inputs").is_array()) return Bad(where, "'inputs' must be a list of names");
      for (const auto& in : o.at("inputs").as_array()) {
        ASSIGN_OR_RETURN(std::string name, String(in, where + ".inputs"));
        p.inputs.push_back(std::move(name));
      }
    }
    if (!o.contains("nodes") || !o.at("nodes").is_object() || o.at("nodes").as_object().empty()) {
      return Bad(where, "'nodes' must be a non-empty object of name -> node");
    }
    for (const auto& nk : o.at("nodes").as_object()) {
      const std::string name(nk.key());
      ASSIGN_OR_RETURN(p.nodes[name],
                       ParseNode(name, nk.value(), StrCat(where, " node '", name, "'")));
    }
    set.pipelines[p.name] = std::move(p);
  }
  return set;
}

namespace {

void ValidateOne(const Pipeline& p, const std::set<std::string>& models,
                 std::vector<std::string>& faults) {
  const std::string where = StrCat("pipeline '", p.name, "'");
  auto fault = [&](std::string what) { faults.push_back(StrCat(where, ": ", what)); };
  if (!p.nodes.contains(p.root)) fault(StrCat("root node '", p.root, "' is not defined"));

  // Names produced: declared inputs, STEP.OUTPUT of model steps (any output: a model's outputs
  // are known only when it answers), aliases and `set` names.
  std::set<std::string> produced(p.inputs.begin(), p.inputs.end());
  std::set<std::string> model_steps, step_names;
  for (const auto& [_, node] : p.nodes) {
    for (const Step& s : node.steps) {
      if (!step_names.insert(s.name).second) {
        fault(StrCat("step name '", s.name, "' is used twice"));
      }
      if (!s.model.empty()) model_steps.insert(s.name);
      for (const auto& [_, alias] : s.outputs) produced.insert(alias);
      for (const auto& [name, _] : s.set) produced.insert(name);
    }
  }
  auto readable = [&](const std::string& t) {
    if (produced.contains(t)) return true;
    const size_t dot = t.find('.');
    return dot != std::string::npos && model_steps.contains(t.substr(0, dot));
  };

  for (const auto& [name, node] : p.nodes) {
    const std::string at = StrCat("node '", name, "'");
    int weights = 0;
    for (size_t i = 0; i < node.steps.size(); ++i) {
      const Step& s = node.steps[i];
      const std::string st = StrCat(at, " step '", s.name, "'");
      if (!s.node.empty() && !p.nodes.contains(s.node)) {
        fault(StrCat(st, " runs node '", s.node, "', which is not defined"));
      }
      for (const std::string* m : {&s.model, &s.fallback_model}) {
        if (!m->empty() && !models.contains(*m)) {
          fault(StrCat(st, " calls unknown model '", *m, "' (known: ",
                       models.empty() ? std::string("none") : Join(models, ", "), ")"));
        }
      }
      for (const auto& [input, b] : s.inputs) {
        if (!readable(b.from)) {
          fault(StrCat(st, " reads '", b.from, "' for input '", input,
                       "', which no step produces and the pipeline does not take"));
        }
      }
      if (s.condition && !readable(s.condition->tensor)) {
        fault(StrCat(st, " tests '", s.condition->tensor,
                     "', which no step produces and the pipeline does not take"));
      }
      if (node.kind == NodeKind::kSwitch && !s.condition && i + 1 != node.steps.size()) {
        fault(StrCat(st, " has no condition; only a switch's last step may (the default)"));
      }
      weights += s.weight;
    }
    if (node.kind == NodeKind::kSplitter && weights != 100) {
      fault(StrCat(at, " is a splitter whose weights sum to ", weights, ", not 100"));
    }
  }

  // Cycles and reachability: depth-first from the root over "step runs node" edges.
  if (!p.nodes.contains(p.root)) return;
  std::set<std::string> done, on_path;
  std::vector<std::string> path;
  std::set<std::string> reported;
  std::function<void(const std::string&)> visit = [&](const std::string& n) {
    if (done.contains(n) || !p.nodes.contains(n)) return;
    if (on_path.contains(n)) {
      const auto from = std::find(path.begin(), path.end(), n);
      std::vector<std::string> cycle(from, path.end());
      cycle.push_back(n);
      const std::string text = Join(cycle, " -> ");
      if (reported.insert(text).second) fault(StrCat("cycle: ", text));
      return;
    }
    on_path.insert(n);
    path.push_back(n);
    for (const Step& s : p.nodes.at(n).steps) {
      if (!s.node.empty()) visit(s.node);
    }
    path.pop_back();
    on_path.erase(n);
    done.insert(n);
  };
  visit(p.root);
  for (const auto& [name, _] : p.nodes) {
    if (!done.contains(name)) {
      fault(StrCat("node '", name, "' is unreachable from root '", p.root, "'"));
    }
  }
}

}  // namespace

absl::Status ValidatePipelines(const PipelineSet& set,
                               const std::vector<std::string>& known_models) {
  const std::set<std::string> models(known_models.begin(), known_models.end());
  std::vector<std::string> faults;
  for (const auto& [_, p] : set.pipelines) ValidateOne(p, models, faults);
  if (faults.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(Join(faults, "\n"));
}

}  // namespace galley::pipeline
