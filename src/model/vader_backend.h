// The CPU sentiment model: VADER behind the Backend interface. Input "text" (BYTES, [-1]: one
// element per text); outputs "label" (BYTES), "probability" (FP32, the label's confidence) and
// "compound" (FP32, VADER's compound score), each [-1]. Thread-safe: one instance may serve
// several workers.
#pragma once

#include <memory>
#include <string>

#include "model/backend.h"
#include "model/sentiment.h"
#include "model/vader.h"

namespace galley::model {

class VaderBackend final : public Backend {
 public:
  // `name` is the model's name in the protocol; max_batch_size counts texts.
  explicit VaderBackend(std::string name, int max_batch_size = 256, std::string version = "1");

  const ModelMetadata& Metadata() const override { return metadata_; }
  absl::Status Load() override;
  std::vector<absl::StatusOr<InferOutput>> Infer(
      absl::Span<const InferInput* const> batch) override;

  // One text through the whole pipeline, for the in-process fallback path.
  absl::StatusOr<Sentiment> Analyze(std::string_view text) const;

 private:
  absl::StatusOr<InferOutput> InferOne(const InferInput& input) const;

  ModelMetadata metadata_;
  std::unique_ptr<VaderAnalyzer> analyzer_;
};

}  // namespace galley::model
