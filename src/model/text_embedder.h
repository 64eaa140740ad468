// A sentence-embedding pipeline around any Backend of the BERT family: pre-processing turns
// each text into WordPiece ids with their attention mask (on the submitting thread, so that the
// batcher knows each request's length), the inner model runs on padded batches, and its vector
// per text is the output.
//
// Public contract: input "text" (BYTES, [-1], one text per row); output "embedding" (FP32,
// [-1, dim]). The inner model's contract: INT64 inputs [-1, -1] for the ids, the attention mask
// (1 per token, 0 for padding, which must not change a row's result) and optionally the token
// types (all 0), and one FP32 output [-1, dim].
#pragma once

#include <memory>
#include <string>

#include "model/backend.h"
#include "model/wordpiece_tokenizer.h"

namespace galley::model {

struct TextEmbedderOptions {
  std::string ids_input;   // e.g. "input_ids"
  std::string mask_input;  // e.g. "attention_mask"
  std::string type_input;  // e.g. "token_type_ids"; empty when the model has none
  std::string output;      // e.g. "sentence_embedding"
};

class TextEmbedder final : public Backend {
 public:
  // Checks that `inner` has the contract above. Errors name the tensor that does not fit.
  static absl::StatusOr<std::unique_ptr<TextEmbedder>> Create(std::unique_ptr<Backend> inner,
                                                              WordpieceTokenizer tokenizer,
                                                              TextEmbedderOptions options);

  const ModelMetadata& Metadata() const override { return metadata_; }
  absl::Status Load() override { return inner_->Load(); }
  // Texts -> the inner inputs, each [rows, longest]; returns the longest text's token count.
  absl::StatusOr<int64_t> Prepare(InferInput& input) const override;
  std::vector<absl::StatusOr<InferOutput>> Infer(
      absl::Span<const InferInput* const> batch) override;

  // The vector's length (the inner output's second dimension; -1 when the model leaves it open).
  int64_t dimension() const { return metadata_.outputs[0].shape[1]; }

 private:
  TextEmbedder(std::unique_ptr<Backend> inner, WordpieceTokenizer tokenizer,
               TextEmbedderOptions options, ModelMetadata metadata, size_t output_index);

  std::unique_ptr<Backend> inner_;
  WordpieceTokenizer tokenizer_;
  TextEmbedderOptions options_;
  ModelMetadata metadata_;
  size_t output_index_;
  std::vector<std::string> inner_order_;  // the inner model's input names, in its order
};

}  // namespace galley::model
