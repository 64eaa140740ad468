// The backends this build of Galley has, one factory per platform, listed in one place
// (STYLE.md: plugins register explicitly):
//   "onnxruntime_onnx": any ONNX model on ONNX Runtime (CPU); with a word_tokenizer
//                       pre-processing and a classifier post-processing it becomes a text
//                       classifier (model/text_classifier.h).
//                       With a wordpiece pre-processing and an embedding post-processing it
//                       becomes a text embedder (model/text_embedder.h).
//   "galley_vader":     the VADER sentiment model (model/vader_backend.h), no model file.
//   "galley_retrieval": the retrieval agent (retrieval/retrieval_backend.h): an embedding model
//                       of the same repository and an index (`galley index build`).
#pragma once

#include <filesystem>
#include <memory>

#include "inference/model_repository.h"

namespace galley::inference {

BackendRegistry BuiltinBackends();

// One instance of the model in folder `dir` (its config.json and latest version), made by the
// built-in backends and loaded: for commands that run a model in-process (`galley index`).
absl::StatusOr<std::unique_ptr<model::Backend>> LoadModelFolder(const std::filesystem::path& dir);

}  // namespace galley::inference
