// Runs one pipeline (graph.h) for one request. Model steps go through the ModelCaller seam (the
// gateway's implementation forwards them to replicas with its breakers, retries and deadlines);
// everything else (conditions, weights, data between steps, hard and soft failures, fallbacks,
// halting) is here. Asynchronous: Run returns at once and `done` runs once, on whichever thread
// answered last.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "boost/json/array.hpp"
#include "common/clock.h"
#include "pipeline/graph.h"

namespace galley::pipeline {

// A tensor between steps, in the Open Inference Protocol's JSON form (flat data, row-major).
struct Tensor {
  std::string datatype;  // "BYTES", "FP32", "INT64", ...
  std::vector<int64_t> shape;
  boost::json::array data;
};
using Tensors = std::map<std::string, Tensor>;

Tensor StringTensor(std::vector<std::string> values);

// What a model call came back with: an OIP infer response body on success; otherwise why not.
struct CallResult {
  absl::Status status;  // Unavailable / DeadlineExceeded / ... with a reason for people
  std::string body;     // the response JSON, when ok
  std::string replica;  // who answered, if anyone
};
using CallDone = std::function<void(CallResult&&)>;

class ModelCaller {
 public:
  virtual ~ModelCaller() = default;
  // Calls `model` with an OIP infer request `body` until `deadline`. `node_key` names the step
  // ("PIPELINE/STEP") for per-node state such as a circuit breaker. `done` runs exactly once;
  // it may run before Call returns.
  virtual void Call(const std::string& node_key, const std::string& model, std::string body,
                    TimePoint deadline, CallDone done) = 0;
  // A step that sets values instead of calling a model has run (`step` is its name): for traces.
  // Default: nothing.
  virtual void StepSet(const std::string& step) {}
};

// One step's record in the answer, in the order steps finished.
struct StepRecord {
  std::string step;
  std::string node;       // the node the step belongs to
  std::string model;      // the model that answered (the fallback's name when it did)
  std::string status;     // "ok", "fallback", "failed", "skipped", "set"
  std::string error;      // for failed, skipped and fallback: what went wrong first
  std::string replica;    // who answered
  double latency_ms = 0;  // from the step's start to its end (every try)
};

struct RunResult {
  absl::Status status;  // not OK: a hard step failed (its name in the message)
  Tensors tensors;      // every tensor the run saw: inputs, STEP.OUTPUT, aliases, set
  std::vector<StepRecord> steps;
  bool halted = false;  // a halting step ended the run
  std::string failed_step;
};

// Runs `pipeline` (validated) over `inputs` until `deadline`. `caller`, `clock` and `pipeline`
// must outlive the run. `seed` draws splitter choices.
void Run(const Pipeline& pipeline, Tensors inputs, TimePoint deadline, ModelCaller& caller,
         const Clock& clock, uint64_t seed, std::function<void(RunResult&&)> done);

// The OIP infer request for `inputs` (name -> tensor), and the outputs of an infer response.
std::string EncodeInferRequest(const Tensors& inputs);
absl::StatusOr<Tensors> DecodeInferResponse(std::string_view body);

}  // namespace galley::pipeline
