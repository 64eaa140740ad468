// The Backend seam: a model that takes a batch of requests and returns a batch of results.
// Front-ends never see a Backend; they go through inference::InferenceService.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/tensor.h"

namespace galley::model {

struct ModelMetadata {
  std::string name;
  std::string version;             // the version this backend serves, e.g. "1"
  std::string platform;            // e.g. "galley_vader"
  std::vector<TensorSpec> inputs;  // shapes include the batch dimension when max_batch_size > 0
  std::vector<TensorSpec> outputs;
  int max_batch_size = 0;  // 0: the model does not batch
};

// One request's inputs, already checked against the model's metadata (names, datatypes, shapes).
struct InferInput {
  std::vector<Tensor> inputs;
};

// One request's outputs: every output the model has, in metadata order.
struct InferOutput {
  std::vector<Tensor> outputs;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Static description; valid from construction, never changes.
  virtual const ModelMetadata& Metadata() const = 0;

  // Loads the model. Called once, before any other call but Metadata(), from one thread.
  virtual absl::Status Load() = 0;

  // Optional pre-processing, run on the submitting thread before the request is queued: may
  // rewrite `input` into what Infer() expects (e.g. texts into token ids) and returns the
  // request's length for length bucketing (0 when the model has no notion of length). Must be
  // thread-safe. An error fails this request alone (InvalidArgument: the client's fault).
  // NOTE: `input` is rewritten in place so that large tensors are not copied.
  virtual absl::StatusOr<int64_t> Prepare(InferInput& input) const { return int64_t{0}; }

  // Runs a batch. Each element of `batch` is one request (its tensors carry their own batch
  // dimension); the result has one entry per request, in the same order. A per-request error
  // (e.g. an input the model cannot use) fails that request only. Called from one worker thread
  // at a time per backend instance unless the backend says otherwise in its own header.
  virtual std::vector<absl::StatusOr<InferOutput>> Infer(
      absl::Span<const InferInput* const> batch) = 0;
};

}  // namespace galley::model
