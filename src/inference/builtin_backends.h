// The backends this build of Galley has, one factory per platform, listed in one place
// (STYLE.md: plugins register explicitly):
//   "onnxruntime_onnx": any ONNX model on ONNX Runtime (CPU); with a word_tokenizer
//                       pre-processing and a classifier post-processing it becomes a text
//                       classifier (model/text_classifier.h).
//   "galley_vader":     the VADER sentiment model (model/vader_backend.h), no model file.
#pragma once

#include "inference/model_repository.h"

namespace galley::inference {

BackendRegistry BuiltinBackends();

}  // namespace galley::inference
