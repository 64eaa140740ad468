#include "inference/builtin_backends.h"

#include "common/status_macros.h"
#include "common/strings.h"
#include "model/onnx_backend.h"
#include "model/text_classifier.h"
#include "model/text_embedder.h"
#include "model/vader_backend.h"
#include "model/word_tokenizer.h"
#include "model/wordpiece_tokenizer.h"
#include "retrieval/retrieval_backend.h"

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
  if (config.tokenizer->kind == "wordpiece") {
    auto wordpiece =
        model::WordpieceTokenizer::FromFile(vocab_path.string(), config.tokenizer->max_length);
    if (!wordpiece.ok()) {
      return absl::Status(wordpiece.status().code(),
                          StrCat("model '", config.name, "': ", wordpiece.status().message()));
    }
    model::TextEmbedderOptions te;
    te.ids_input = config.tokenizer->input;
    te.mask_input = config.tokenizer->mask_input;
    te.type_input = config.tokenizer->type_input;
    te.output = config.embedding->output;
    ASSIGN_OR_RETURN(auto embedder,
                     model::TextEmbedder::Create(std::move(onnx).value(),
                                                 std::move(wordpiece).value(), std::move(te)));
    return std::unique_ptr<model::Backend>(std::move(embedder));
  }
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

// The retrieval agent: its embedding model is the folder beside it in the repository, made as
// that model's own config says; its index is this model's version folder.
absl::StatusOr<std::unique_ptr<model::Backend>> MakeRetrieval(const ModelConfig& config,
                                                              const ModelLocation& location) {
  const RetrievalConfig& rc = *config.retrieval;
  RepositoryEntry embedding = ScanModelFolder(location.dir.parent_path() / rc.embedding_model);
  if (!embedding.status.ok()) {
    return absl::FailedPreconditionError(
        StrCat("model '", config.name, "': its embedding model: ", embedding.status.message()));
  }
  if (embedding.config.platform != "onnxruntime_onnx" || !embedding.config.embedding) {
    return absl::FailedPreconditionError(
        StrCat("model '", config.name, "': '", rc.embedding_model,
               "' is not an embedding model (onnxruntime_onnx with an embedding postprocess)"));
  }
  ASSIGN_OR_RETURN(auto embedder, MakeOnnx(embedding.config, embedding.location));
  retrieval::RetrievalOptions ro;
  ro.name = config.name;
  ro.version = location.version;
  ro.embedding_model = rc.embedding_model;
  ro.top_k = rc.top_k;
  ro.ef_search = rc.ef_search;
  auto backend =
      retrieval::RetrievalBackend::Create(std::move(embedder), location.version_dir, std::move(ro));
  if (!backend.ok()) {
    return absl::Status(backend.status().code(),
                        StrCat("model '", config.name, "': ", backend.status().message()));
  }
  return std::unique_ptr<model::Backend>(std::move(backend).value());
}

}  // namespace

BackendRegistry BuiltinBackends() {
  BackendRegistry r;
  // Built-in names are distinct, so registration cannot fail.
  (void)r.Register("onnxruntime_onnx", MakeOnnx);
  (void)r.Register("galley_vader", MakeVader);
  (void)r.Register("galley_retrieval", MakeRetrieval);
  return r;
}

absl::StatusOr<std::unique_ptr<model::Backend>> LoadModelFolder(const std::filesystem::path& dir) {
  RepositoryEntry e = ScanModelFolder(dir);
  if (!e.status.ok()) return e.status;
  const BackendRegistry backends = BuiltinBackends();
  const BackendFactory* factory = backends.Find(e.config.platform);
  if (factory == nullptr) {
    return absl::UnimplementedError(
        StrCat("model '", e.name, "': no backend for platform '", e.config.platform, "'"));
  }
  ASSIGN_OR_RETURN(auto backend, (*factory)(e.config, e.location));
  RETURN_IF_ERROR(backend->Load());
  return backend;
}

}  // namespace galley::inference
