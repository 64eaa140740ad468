#include "pipeline/executor.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"
#include "common/json.h"
#include "common/strings.h"

namespace galley::pipeline {
namespace {

namespace json = boost::json;
using Cont = std::function<void(absl::Status)>;

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += StrCat(i ? "," : "", shape[i]);
  return out + "]";
}

double Millis(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Flattens nested JSON arrays into `out` (the protocol allows either form for `data`).
void Flatten(const json::value& v, json::array& out) {
  if (v.is_array()) {
    for (const auto& e : v.as_array()) Flatten(e, out);
  } else {
    out.push_back(v);
  }
}

absl::StatusOr<Tensor> Reshaped(const Tensor& t, const std::vector<int64_t>& shape) {
  const int64_t n = static_cast<int64_t>(t.data.size());
  int64_t known = 1;
  int wild = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      wild = static_cast<int>(i);
    } else {
      known *= shape[i];
    }
  }
  Tensor out = t;
  out.shape = shape;
  if (wild >= 0) {
    if (known == 0 || n % known != 0) {
      return absl::InvalidArgumentError(StrCat(n, " elements do not fit shape ", ShapeText(shape)));
    }
    out.shape[wild] = n / known;
  } else if (known != n) {
    return absl::InvalidArgumentError(StrCat(n, " elements do not fit shape ", ShapeText(shape)));
  }
  return out;
}

bool Holds(const Condition& c, const Tensors& tensors) {
  const auto it = tensors.find(c.tensor);
  if (it == tensors.end() || it->second.data.empty()) return false;
  const json::value& v = it->second.data.front();
  if (c.is_string) {
    if (!v.is_string()) return false;
    const bool eq = v.as_string() == c.string_value;
    return c.op == CompareOp::kEq ? eq : !eq;
  }
  double x;
  if (v.is_number()) {
    x = v.to_number<double>();
  } else if (v.is_bool()) {
    x = v.as_bool() ? 1 : 0;
  } else {
    return false;
  }
  switch (c.op) {
    case CompareOp::kEq:
      return x == c.number_value;
    case CompareOp::kNe:
      return x != c.number_value;
    case CompareOp::kLt:
      return x < c.number_value;
    case CompareOp::kLe:
      return x <= c.number_value;
    case CompareOp::kGt:
      return x > c.number_value;
    case CompareOp::kGe:
      return x >= c.number_value;
  }
  return false;
}

class RunState : public std::enable_shared_from_this<RunState> {
 public:
  RunState(const Pipeline& p, Tensors inputs, TimePoint deadline, ModelCaller& caller,
           const Clock& clock, uint64_t seed, std::function<void(RunResult&&)> done)
      : p_(p),
        deadline_(deadline),
        caller_(caller),
        clock_(clock),
        rng_(seed),
        done_(std::move(done)) {
    result_.tensors = std::move(inputs);
  }

  void Start() {
    auto self = shared_from_this();
    RunNode(p_.nodes.at(p_.root), [self](absl::Status st) {
      RunResult r;
      {
        absl::MutexLock lock(&self->mu_);
        r = std::move(self->result_);
      }
      r.status = std::move(st);
      self->done_(std::move(r));
    });
  }

 private:
  bool Halted() {
    absl::MutexLock lock(&mu_);
    return result_.halted;
  }

  void Record(StepRecord rec, bool halt) {
    absl::MutexLock lock(&mu_);
    result_.steps.push_back(std::move(rec));
    if (halt) result_.halted = true;
  }

  void RunNode(const Node& node, Cont cont) {
    switch (node.kind) {
      case NodeKind::kSequence:
        return RunSequence(node, 0, std::move(cont));
      case NodeKind::kSwitch: {
        const Step* chosen = nullptr;
        {
          absl::MutexLock lock(&mu_);
          for (const Step& s : node.steps) {
            if (!s.condition || Holds(*s.condition, result_.tensors)) {
              chosen = &s;
              break;
            }
          }
        }
        if (!chosen) return cont(absl::OkStatus());
        return RunStep(node, *chosen, std::move(cont));
      }
      case NodeKind::kSplitter: {
        int draw;
        {
          absl::MutexLock lock(&mu_);
          draw = std::uniform_int_distribution<int>(0, 99)(rng_);
        }
        for (const Step& s : node.steps) {
          if (draw < s.weight) return RunStep(node, s, std::move(cont));
          draw -= s.weight;
        }
        return RunStep(node, node.steps.back(), std::move(cont));
      }
      case NodeKind::kEnsemble: {
        struct Join {
          std::atomic<size_t> left;
          absl::Mutex mu;
          absl::Status first ABSL_GUARDED_BY(mu);
          Cont cont;
        };
        auto join = std::make_shared<Join>();
        join->left = node.steps.size();
        join->cont = std::move(cont);
        for (const Step& s : node.steps) {
          RunStep(node, s, [join](absl::Status st) {
            if (!st.ok()) {
              absl::MutexLock lock(&join->mu);
              if (join->first.ok()) join->first = std::move(st);
            }
            if (join->left.fetch_sub(1) == 1) {
              absl::Status first;
              {
                absl::MutexLock lock(&join->mu);
                first = join->first;
              }
              join->cont(std::move(first));
            }
          });
        }
        return;
      }
    }
  }

  void RunSequence(const Node& node, size_t i, Cont cont) {
    if (i == node.steps.size() || Halted()) return cont(absl::OkStatus());
    auto self = shared_from_this();
    RunStep(node, node.steps[i], [self, &node, i, cont = std::move(cont)](absl::Status st) {
      if (!st.ok()) return cont(std::move(st));
      self->RunSequence(node, i + 1, cont);
    });
  }

  void RunStep(const Node& node, const Step& step, Cont cont) {
    if (Halted()) return cont(absl::OkStatus());
    if (!step.set.empty()) {
      {
        absl::MutexLock lock(&mu_);
        for (const auto& [name, c] : step.set) {
          Tensor t;
          if (c.is_string) {
            t = StringTensor(c.strings);
          } else {
            t.datatype = "FP64";
            t.shape = {static_cast<int64_t>(c.numbers.size())};
            for (double d : c.numbers) t.data.push_back(d);
          }
          result_.tensors[name] = std::move(t);
        }
      }
      caller_.StepSet(step.name);
      StepRecord rec;
      rec.step = step.name;
      rec.node = node.name;
      rec.status = "set";
      Record(std::move(rec), step.halt);
      return cont(absl::OkStatus());
    }
    if (!step.node.empty()) {
      auto self = shared_from_this();
      return RunNode(p_.nodes.at(step.node),
                     [self, &step, cont = std::move(cont)](absl::Status st) {
                       if (st.ok() && step.halt) {
                         absl::MutexLock lock(&self->mu_);
                         self->result_.halted = true;
                       }
                       cont(std::move(st));
                     });
    }
    CallModel(node, step, std::move(cont));
  }

  void CallModel(const Node& node, const Step& step, Cont cont) {
    const TimePoint start = clock_.Now();
    TimePoint deadline = deadline_;
    if (step.timeout_ms) {
      deadline = std::min(deadline, start + std::chrono::milliseconds(*step.timeout_ms));
    }
    Tensors inputs;
    absl::Status bound;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [name, b] : step.inputs) {
        const auto it = result_.tensors.find(b.from);
        if (it == result_.tensors.end()) {
          bound = absl::FailedPreconditionError(
              StrCat("input '", name, "' reads '", b.from, "', which this run does not have"));
          break;
        }
        if (!b.shape) {
          inputs[name] = it->second;
          continue;
        }
        auto r = Reshaped(it->second, *b.shape);
        if (!r.ok()) {
          bound = absl::InvalidArgumentError(
              StrCat("input '", name, "' from '", b.from, "': ", r.status().message()));
          break;
        }
        inputs[name] = *std::move(r);
      }
    }
    if (!bound.ok()) return Finish(node, step, start, step.model, {}, std::move(bound), "", cont);
    std::string body = EncodeInferRequest(inputs);
    auto self = shared_from_this();
    const std::string key = StrCat(p_.name, "/", step.name);
    caller_.Call(key, step.model, body, deadline,
                 [self, &node, &step, start, key, body, cont](CallResult&& r) mutable {
                   if (r.status.ok() || step.fallback_model.empty()) {
                     return self->Finish(node, step, start, step.model, std::move(r),
                                         absl::OkStatus(), "", cont);
                   }
                   // The primary failed: the fallback model gets what is left of the run's
                   // deadline (the step's own timeout bounded the primary, as a timeout policy
                   // inside a fallback does in Polly's policy wraps).
                   std::string why = std::string(r.status.message());
                   self->caller_.Call(StrCat(key, "#fallback"), step.fallback_model,
                                      std::move(body), self->deadline_,
                                      [self, &node, &step, start, why, cont](CallResult&& f) {
                                        self->Finish(node, step, start, step.fallback_model,
                                                     std::move(f), absl::OkStatus(), why, cont);
                                      });
                 });
  }

  // Ends a model step: stores its outputs, records it, and continues (or fails the run if the
  // step was hard and failed). `pre` is a failure before any call; `primary_error` is set when
  // `model` is the fallback.
  void Finish(const Node& node, const Step& step, TimePoint start, const std::string& model,
              CallResult r, absl::Status pre, const std::string& primary_error, const Cont& cont) {
    StepRecord rec;
    rec.step = step.name;
    rec.node = node.name;
    rec.model = model;
    rec.replica = r.replica;
    rec.latency_ms = Millis(clock_.Now() - start);
    absl::Status st = pre.ok() ? r.status : pre;
    if (st.ok()) {
      auto outputs = DecodeInferResponse(r.body);
      if (!outputs.ok()) {
        st = outputs.status();
      } else {
        absl::MutexLock lock(&mu_);
        for (auto& [name, t] : *outputs) {
          if (const auto alias = step.outputs.find(name); alias != step.outputs.end()) {
            result_.tensors[alias->second] = t;
          }
          result_.tensors[StrCat(step.name, ".", name)] = std::move(t);
        }
      }
    }
    if (st.ok()) {
      rec.status = primary_error.empty() ? "ok" : "fallback";
      rec.error = primary_error;
      Record(std::move(rec), step.halt);
      return cont(absl::OkStatus());
    }
    rec.error = primary_error.empty()
                    ? std::string(st.message())
                    : StrCat(primary_error, "; fallback '", model, "': ", st.message());
    if (!step.hard) {
      rec.status = "skipped";
      Record(std::move(rec), false);
      return cont(absl::OkStatus());
    }
    rec.status = "failed";
    const std::string message =
        StrCat("step '", step.name, "' (model '", step.model, "') failed: ", rec.error);
    {
      absl::MutexLock lock(&mu_);
      result_.failed_step = step.name;
    }
    Record(std::move(rec), false);
    cont(absl::Status(st.code() == absl::StatusCode::kDeadlineExceeded
                          ? absl::StatusCode::kDeadlineExceeded
                          : absl::StatusCode::kUnavailable,
                      message));
  }

  const Pipeline& p_;
  const TimePoint deadline_;
  ModelCaller& caller_;
  const Clock& clock_;
  absl::Mutex mu_;
  RunResult result_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  std::function<void(RunResult&&)> done_;
};

}  // namespace

Tensor StringTensor(std::vector<std::string> values) {
  Tensor t;
  t.datatype = "BYTES";
  t.shape = {static_cast<int64_t>(values.size())};
  for (auto& v : values) t.data.emplace_back(std::move(v));
  return t;
}

void Run(const Pipeline& pipeline, Tensors inputs, TimePoint deadline, ModelCaller& caller,
         const Clock& clock, uint64_t seed, std::function<void(RunResult&&)> done) {
  std::make_shared<RunState>(pipeline, std::move(inputs), deadline, caller, clock, seed,
                             std::move(done))
      ->Start();
}

std::string EncodeInferRequest(const Tensors& inputs) {
  json::array list;
  for (const auto& [name, t] : inputs) {
    json::array shape;
    for (int64_t d : t.shape) shape.push_back(d);
    list.push_back(
        json::object{{"name", name}, {"datatype", t.datatype}, {"shape", shape}, {"data", t.data}});
  }
  return JsonSerialize(json::object{{"inputs", std::move(list)}});
}

absl::StatusOr<Tensors> DecodeInferResponse(std::string_view body) {
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  if (ec || !doc.is_object()) {
    return absl::DataLossError(StrCat("the model's answer is not a JSON object: ", ec.message()));
  }
  const json::value* outputs = doc.as_object().if_contains("outputs");
  if (!outputs || !outputs->is_array()) {
    return absl::DataLossError("the model's answer has no 'outputs' list");
  }
  Tensors out;
  for (const auto& o : outputs->as_array()) {
    const json::object* obj = o.if_object();
    const json::value* name = obj ? obj->if_contains("name") : nullptr;
    const json::value* data = obj ? obj->if_contains("data") : nullptr;
    if (!name || !name->is_string() || !data) {
      return absl::DataLossError("an output of the model's answer lacks 'name' or 'data'");
    }
    Tensor t;
    if (const json::value* dt = obj->if_contains("datatype"); dt && dt->is_string()) {
      t.datatype = std::string(dt->as_string());
    }
    if (const json::value* sh = obj->if_contains("shape"); sh && sh->is_array()) {
      for (const auto& d : sh->as_array()) {
        if (d.is_number()) t.shape.push_back(d.to_number<int64_t>());
      }
    }
    Flatten(*data, t.data);
    out[std::string(name->as_string())] = std::move(t);
  }
  return out;
}

}  // namespace galley::pipeline
