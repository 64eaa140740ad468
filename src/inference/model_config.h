// A model's configuration in a model repository: `<repository>/<model>/config.json`, in the
// manner of Triton's config.pbtxt (same field names where Triton has one; JSON because the
// server already speaks it). Parsing is pure; docs/model-repository.md documents every field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "inference/batch_policy.h"
#include "model/tensor.h"

namespace galley::inference {

// An input or output as the config declares it. `dims` exclude the batch dimension, as in
// Triton; -1 is variable.
struct TensorConfig {
  std::string name;
  model::DataType datatype = model::DataType::kFp32;
  std::vector<int64_t> dims;
};

// Text pre-processing: texts -> token ids for the model input `input`.
struct TokenizerConfig {
  // "word_tokenizer" (model/word_tokenizer.h, for the sentiment models) or "wordpiece"
  // (model/wordpiece_tokenizer.h, BERT-family models).
  std::string kind = "word_tokenizer";
  std::string vocab;       // file name relative to the model's folder
  int max_length = 128;    // tokens kept per text (wordpiece: 256 unless given)
  std::string input;       // the model's INT64 ids input
  std::string mask_input;  // wordpiece: the INT64 attention mask input (1 per token, 0 padding)
  std::string type_input;  // wordpiece, optional: the INT64 token type input (all 0)
};

// Classification post-processing: class probabilities -> label and probability.
struct ClassifierConfig {
  std::string output;               // the model's FP32 [batch, classes] output
  std::vector<std::string> labels;  // one per class
};

// Embedding post-processing: the model's FP32 [batch, dim] output is the text's vector.
struct EmbeddingConfig {
  std::string output;
};

// A retrieval agent (platform "galley_retrieval"): a question in, the passages of its index
// nearest in meaning out. The index is the version folder (`galley index build`).
struct RetrievalConfig {
  std::string embedding_model;  // a model of the same repository with an embedding output
  int top_k = 3;                // passages per question
  int ef_search = 64;           // search breadth (at least top_k)
};

struct ModelConfig {
  std::string name;
  std::string platform;              // "onnxruntime_onnx", "galley_vader" or "galley_retrieval"
  int max_batch_size = 0;            // 0: requests carry no batch dimension
  std::vector<TensorConfig> inputs;  // optional: checked against the model when given
  std::vector<TensorConfig> outputs;
  // Dynamic batching; absent in the file means off (each request runs alone), as in Triton.
  bool dynamic_batching = false;
  BatchPolicy batch;                    // max_batch_size copied in; delay, preferred, buckets
  size_t max_queue_size = 1024;         // queued requests before 429
  int instance_count = 1;               // worker threads (instances) for this model
  std::optional<int> gpu_device;        // instance_group kind KIND_GPU: the GPU (gpus[0], or 0)
  int intra_op_threads = 1;             // ONNX Runtime threads per run
  std::vector<std::string> pad_inputs;  // inputs padded with 0 to the longest in a batch
  std::optional<TokenizerConfig> tokenizer;
  std::optional<ClassifierConfig> classifier;  // with a word_tokenizer
  std::optional<EmbeddingConfig> embedding;    // with a wordpiece tokenizer
  std::optional<RetrievalConfig> retrieval;    // platform galley_retrieval
};

// Parses config.json text. `folder` is the model's folder name: the config's "name" may be left
// out and must equal it when given. Unknown fields, wrong types and out-of-range values are
// InvalidArgument errors that name the field.
absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json, std::string_view folder);

}  // namespace galley::inference
