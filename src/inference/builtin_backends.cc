#include "inference/builtin_backends.h"

#include "common/status_macros.h"
#include "common/strings.h"
#include "model/onnx_backend.h"
#include "model/text_classifier.h"
#include "model/vader_backend.h"
#include "model/word_tokenizer.h"

namespace galley::inference {
namespace {

std::vector<model::TensorSpec> Specs(const std::vector<TensorConfig>& configs) {
  std::vector<model::TensorSpec> out;
  for (const TensorConfig& c : configs) out.push_back({c.name, c.datatype, c.dims});
  return out;
}

absl::StatusOr<std::unique_ptr<model::Backend>> MakeOnnx(const ModelConfig& config,
                                                         const ModelLocation& location) {
  model::OnnxBackendOptions o;
  o.name = config.name;
  o.version = location.version;
  o.model_path = location.version_dir / "model.onnx";
  o.max_batch_size = config.max_batch_size;
  o.intra_op_threads = config.intra_op_threads;
  o.gpu_device = config.gpu_device;
  o.pad_inputs = config.pad_inputs;
  o.inputs = Specs(config.inputs);
  o.outputs = Specs(config.outputs);
  auto onnx = model::OnnxBackend::Create(std::move(o));
  if (!onnx.ok()) {
    return absl::Status(onnx.status().code(),
                        StrCat("model '", config.name, "': ", onnx.status().message()));
  }
  if (!config.tokenizer) return std::unique_ptr<model::Backend>(std::move(onnx).value());

  const auto vocab_path = location.dir / config.tokenizer->vocab;
  auto tokenizer =
      model::WordTokenizer::FromFile(vocab_path.string(), config.tokenizer->max_length);
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        StrCat("model '", config.name, "': ", tokenizer.status().message()));
  }
  model::TextClassifierOptions tc;
  tc.ids_input = config.tokenizer->input;
  tc.probabilities_output = config.classifier->output;
  tc.labels = config.classifier->labels;
  ASSIGN_OR_RETURN(auto classifier,
                   model::TextClassifier::Create(std::move(onnx).value(),
                                                 std::move(tokenizer).value(), std::move(tc)));
  return std::unique_ptr<model::Backend>(std::move(classifier));
}

absl::StatusOr<std::unique_ptr<model::Backend>> MakeVader(const ModelConfig& config,
                                                          const ModelLocation& location) {
  return std::unique_ptr<model::Backend>(std::make_unique<model::VaderBackend>(
      config.name, std::max(1, config.max_batch_size), location.version));
}

}  // namespace

BackendRegistry BuiltinBackends() {
  BackendRegistry r;
  // Built-in names are distinct, so registration cannot fail.
  (void)r.Register("onnxruntime_onnx", MakeOnnx);
  (void)r.Register("galley_vader", MakeVader);
  return r;
}

}  // namespace galley::inference
