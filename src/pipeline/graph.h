// Inference pipelines: a declarative graph per route, run by the gateway. The node kinds are
// those of KServe's InferenceGraph (kserve.github.io/website, "Inference Graph": Sequence,
// Switch, Ensemble, Splitter); data moves between steps by name, as in Triton's ensembles
// (input_map/output_map of the ensemble scheduler).
//
// A pipeline has declared inputs (tensors the request brings, e.g. "message"), a root node and
// named nodes. A node is a list of steps run one way:
//   sequence  every step in order; a step's outputs are visible to the steps after it
//   switch    the first step whose condition holds (KServe: the first match wins); none: nothing
//   ensemble  every step at once; the node ends when all have
//   splitter  one step, drawn by weight (the weights sum to 100, as KServe requires)
// A step does exactly one thing: calls a model over the Open Inference Protocol (`model`), runs
// another node (`node`), or sets tensors to constants (`set`). A model step's outputs are stored
// as STEP.OUTPUT (and under any alias its `outputs` map gives). A step is a hard dependency (its
// failure fails the run) or soft (skipped and marked); it may name a deadline of its own and a
// fallback model; `halt` ends the whole run after it (e.g. a refusal).
//
// The JSON form, one file for all pipelines, is docs/pipelines.md's subject.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace galley::pipeline {

enum class NodeKind { kSequence, kSwitch, kEnsemble, kSplitter };
std::string_view NodeKindName(NodeKind k);

enum class CompareOp { kEq, kNe, kLt, kLe, kGt, kGe };

// A condition on the first element of a tensor: a number compared with any op, a string with ==
// or !=. A tensor that is absent (e.g. its soft step was skipped) makes the condition false.
struct Condition {
  std::string tensor;
  CompareOp op = CompareOp::kEq;
  bool is_string = false;
  std::string string_value;
  double number_value = 0;
};

// A model input taken from a named tensor, optionally reshaped (at most one -1, inferred).
struct InputBinding {
  std::string from;
  std::optional<std::vector<int64_t>> shape;
};

// A constant tensor of a `set` step: a string is BYTES, a number FP64; shape [n].
struct Constant {
  bool is_string = true;
  std::vector<std::string> strings;
  std::vector<double> numbers;
};

struct Step {
  std::string name;
  // Exactly one of these three.
  std::string model;
  std::string node;
  std::map<std::string, Constant> set;

  std::map<std::string, InputBinding> inputs;  // model input name -> source
  std::map<std::string, std::string> outputs;  // model output name -> alias
  std::optional<Condition> condition;          // switch steps
  int weight = 0;                              // splitter steps
  bool hard = true;                            // dependency: "hard" (default) or "soft"
  std::optional<int64_t> timeout_ms;           // this step's own deadline (within the run's)
  std::string fallback_model;  // called when `model` fails, until the run's deadline
  bool halt = false;           // end the run after this step
};

struct Node {
  std::string name;
  NodeKind kind = NodeKind::kSequence;
  std::vector<Step> steps;
};

struct Pipeline {
  std::string name;
  std::vector<std::string> inputs;  // what a request must bring
  std::string root;
  std::map<std::string, Node> nodes;
};

struct PipelineSet {
  std::map<std::string, Pipeline> pipelines;
};

// Parses the JSON form. InvalidArgument naming the pipeline, node and step at fault for anything
// malformed (unknown field, wrong type, a step doing none or two of model/node/set, ...).
absl::StatusOr<PipelineSet> ParsePipelines(std::string_view json);

// Checks the graph as a whole, before anything runs: every node reachable from its root and no
// cycle among nodes (both named in the error: "cycle: a -> b -> a", "node 'x' is unreachable
// from root 'main'"), every node a step names defined, every model and fallback model among
// `known_models`, step names unique within a pipeline, every tensor a step reads or a condition
// tests either a declared input or produced by some step (STEP.OUTPUT of a model step, an alias,
// or a `set`), splitter weights summing to 100, switch steps with conditions (the last may have
// none: the default). FailedPrecondition with every fault found, one per line.
absl::Status ValidatePipelines(const PipelineSet& set,
                               const std::vector<std::string>& known_models);

}  // namespace galley::pipeline
