// A thin, exception-free wrapper around one ONNX Runtime inference session (CPU execution
// provider). It is the only code in Galley that includes ONNX Runtime's headers (in the .cc
// file; the class uses a pimpl), so the rest of the tree compiles without them.
//
// Every ONNX Runtime session in the process shares one Ort::Env, created on first use
// (thread-safe, never destroyed), logging at warning level and above into Galley's structured
// log as "onnxruntime" events.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/tensor.h"

namespace galley::model {

class OnnxSession {
 public:
  // Loads the model at `path` with `intra_op_threads` threads per run (>= 1), one inter-op
  // thread and every graph optimisation. Errors: NotFound (no such file), InvalidArgument (not
  // a valid ONNX model, an operator ONNX Runtime does not have, or an input or output that is
  // not a tensor of a datatype Galley has: BOOL, UINT8..64, INT8..64, FP16, FP32, FP64,
  // STRING; the message names the path, the tensor and carries ONNX Runtime's own message),
  // Internal (anything else ONNX Runtime reports). Never throws.
  //
  // With `gpu_device`, the session asks ONNX Runtime's CUDA execution provider for that GPU
  // first; when it cannot have it (an ONNX Runtime built without CUDA, no CUDA libraries, no
  // such GPU), the model runs on the CPU, device() says so and device_note() says why.
  static absl::StatusOr<std::unique_ptr<OnnxSession>> Open(const std::filesystem::path& path,
                                                           int intra_op_threads,
                                                           std::optional<int> gpu_device = {});
  ~OnnxSession();
  OnnxSession(const OnnxSession&) = delete;
  OnnxSession& operator=(const OnnxSession&) = delete;

  // The model's inputs and outputs in the model's order, with the shapes the model declares
  // (-1 for a dynamic or symbolic dimension).
  const std::vector<TensorSpec>& inputs() const { return inputs_; }
  const std::vector<TensorSpec>& outputs() const { return outputs_; }
  // Where the model runs: "cpu" or "cuda:N"; and, when a GPU was asked for and not had, why.
  const std::string& device() const { return device_; }
  const std::string& device_note() const { return device_note_; }

  // Runs the model once. `inputs` (borrowed for the call; ONNX Runtime reads them in place)
  // are in inputs() order with matching datatypes and raw sizes that fit their shapes
  // (InvalidArgument otherwise; shapes are checked by ONNX Runtime). Returns every output in
  // outputs() order. ONNX Runtime's errors become Internal. Thread-safe: ONNX Runtime allows
  // concurrent Run() calls on one session.
  absl::StatusOr<std::vector<Tensor>> Run(absl::Span<const Tensor* const> inputs) const;

 private:
  struct Impl;
  OnnxSession(std::unique_ptr<Impl> impl, std::vector<TensorSpec> inputs,
              std::vector<TensorSpec> outputs);

  std::unique_ptr<Impl> impl_;
  std::vector<TensorSpec> inputs_;
  std::vector<TensorSpec> outputs_;
  std::string device_ = "cpu";
  std::string device_note_;
};

// The ONNX Runtime library's version, e.g. "1.29.0".
std::string OnnxRuntimeVersion();

}  // namespace galley::model
