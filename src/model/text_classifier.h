// A text classification pipeline around any Backend that takes token ids: pre-processing turns
// each text into ids with a WordTokenizer (on the submitting thread, so that the batcher knows
// each request's length), the inner model runs on padded id batches, and post-processing turns
// the class probabilities into a label and its probability.
//
// Public contract (what clients see): input "text" (BYTES, [-1], one text per row); outputs
// "label" (BYTES, [-1]), "probability" (FP32, [-1], the label's probability) and "probabilities"
// (FP32, [-1, classes]). The inner model's contract: one INT64 input [-1, -1] of token ids
// (0 = padding, which must not change a row's result) and one FP32 output [-1, classes].
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/backend.h"
#include "model/word_tokenizer.h"

namespace galley::model {

struct TextClassifierOptions {
  std::string ids_input;             // the inner model's INT64 input, e.g. "input_ids"
  std::string probabilities_output;  // the inner model's FP32 output, e.g. "probabilities"
  std::vector<std::string> labels;   // one per class, in the model's output order
};

class TextClassifier final : public Backend {
 public:
  // Checks that `inner` has the contract above and that labels match its classes (when its
  // output's class dimension is fixed). Errors name the tensor that does not fit.
  static absl::StatusOr<std::unique_ptr<TextClassifier>> Create(std::unique_ptr<Backend> inner,
                                                                WordTokenizer tokenizer,
                                                                TextClassifierOptions options);

  const ModelMetadata& Metadata() const override { return metadata_; }
  absl::Status Load() override { return inner_->Load(); }
  // Texts -> one INT64 ids tensor [rows, longest]; returns the longest text's token count.
  absl::StatusOr<int64_t> Prepare(InferInput& input) const override;
  std::vector<absl::StatusOr<InferOutput>> Infer(
      absl::Span<const InferInput* const> batch) override;

 private:
  TextClassifier(std::unique_ptr<Backend> inner, WordTokenizer tokenizer,
                 TextClassifierOptions options, ModelMetadata metadata, size_t probs_index);
  absl::StatusOr<InferOutput> Postprocess(const InferOutput& inner_out) const;

  std::unique_ptr<Backend> inner_;
  WordTokenizer tokenizer_;
  TextClassifierOptions options_;
  ModelMetadata metadata_;
  size_t probs_index_;  // position of the probabilities among the inner model's outputs
};

}  // namespace galley::model
