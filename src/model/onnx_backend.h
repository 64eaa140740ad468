// A Backend that serves any ONNX model through ONNX Runtime (CPU), as long as every input and
// output is a tensor of a datatype Galley has (BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32,
// FP64; not STRING). Platform "onnxruntime_onnx".
//
// Metadata comes from the model itself (ONNX Runtime's type info), optionally refined by a
// config's tensor specs. With max_batch_size > 0 the first dimension of every input and output is
// the batch dimension: Infer() concatenates the requests of a batch along it, runs the model
// once and splits every output back by rows. With max_batch_size == 0 requests run one by one,
// each exactly as given.
//
// Thread safety: Infer() and RunBatch() may be called from several threads at once on one
// instance (ONNX Runtime's Session::Run is thread-safe and the backend keeps no other mutable
// state), so one instance may serve several model workers. Create() and Load() are not to be
// called concurrently with anything else on the same instance.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/backend.h"
#include "model/tensor.h"

namespace galley::model {

class OnnxSession;

struct OnnxBackendOptions {
  std::string name;                  // the model's name in the protocol
  std::string version = "1";         // the version this backend serves
  std::filesystem::path model_path;  // e.g. <repository>/<model>/1/model.onnx
  // 0: no batch dimension, requests run one by one. > 0: the first dimension of every input and
  // output is the batch dimension, which the model must declare as dynamic.
  int max_batch_size = 0;
  int intra_op_threads = 1;  // ONNX Runtime threads per run (>= 1)
  // Run on this GPU through ONNX Runtime's CUDA execution provider (Triton's KIND_GPU), or on
  // the CPU with a `gpu_unavailable` warning naming why when it cannot be had. Unset: the CPU.
  std::optional<int> gpu_device;
  // Inputs whose dimensions after the batch dimension may differ between the requests of a
  // batch: each dynamic one is padded with zeros (false for BOOL) to the longest in the batch.
  // Needs max_batch_size > 0. NOTE: outputs are split by rows only, so an output whose other
  // dimensions depend on a padded length (e.g. per-token outputs) keeps the padded length.
  std::vector<std::string> pad_inputs;
  // Optional tensor specs from a config, as in Triton's config: shapes exclude the batch
  // dimension when max_batch_size > 0; -1 is variable. When given, they must name exactly the
  // model's inputs (outputs), in any order, with the model's datatypes and shapes of the same
  // rank whose fixed dimensions agree with the model's. A dimension fixed on either side is
  // fixed in the metadata. Metadata keeps the model's order.
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
};

class OnnxBackend final : public Backend {
 public:
  // Opens the model (creates the ONNX Runtime session, since the metadata, valid from
  // construction, comes from it) and checks it against `options`. Errors: NotFound (no model
  // file), InvalidArgument (not a valid ONNX model, an unsupported datatype, a model without a
  // dynamic first dimension while max_batch_size > 0, specs or pad_inputs that do not fit the
  // model, bad options; the message names the path or the tensor), Internal (other ONNX Runtime
  // failures). Never throws.
  static absl::StatusOr<std::unique_ptr<OnnxBackend>> Create(OnnxBackendOptions options);
  ~OnnxBackend() override;

  const ModelMetadata& Metadata() const override { return metadata_; }

  // The session already exists (see Create()), so this only reports OK; kept so that the
  // lifecycle is the same as every backend's. NOTE: loading is done by Create() because
  // Backend::Metadata() must be valid from construction and ONNX Runtime gives a model's type
  // information only through a session.
  absl::Status Load() override;

  // Runs a batch; see the file comment. Each request must carry every model input (by name;
  // order is free), each with the model's datatype and rank, a first dimension equal across
  // the request's inputs (max_batch_size > 0), and dimensions that match the model's fixed
  // ones. A request that does not fit fails alone with InvalidArgument; the others run.
  // Requests whose unpadded dynamic dimensions differ cannot share one run: they are run in
  // separate groups (one ONNX Runtime run per distinct shape). An ONNX Runtime error fails
  // every request of its run (Internal). Each result holds every output in metadata order.
  // Thread-safe.
  std::vector<absl::StatusOr<InferOutput>> Infer(
      absl::Span<const InferInput* const> batch) override;

  // One ONNX Runtime run on inputs that are already batched, in metadata order (names,
  // datatypes and shapes checked against the metadata: InvalidArgument). Returns the outputs
  // in metadata order. The in-process limit for benchmarks: no grouping, padding or splitting;
  // ONNX Runtime reads the inputs in place, and each output is copied once out of ONNX
  // Runtime's buffer. Thread-safe.
  absl::StatusOr<std::vector<Tensor>> RunBatch(const std::vector<Tensor>& inputs) const;

 private:
  OnnxBackend(ModelMetadata metadata, std::unique_ptr<OnnxSession> session,
              std::vector<bool> padded);

  // Runs requests that can share one run (same unpadded dimensions); `rows` per request.
  absl::StatusOr<std::vector<InferOutput>> RunGroup(
      const std::vector<std::vector<const Tensor*>>& requests,
      const std::vector<int64_t>& rows) const;

  ModelMetadata metadata_;
  std::unique_ptr<OnnxSession> session_;
  std::vector<bool> padded_;  // per input, in metadata order: listed in pad_inputs
};

}  // namespace galley::model
