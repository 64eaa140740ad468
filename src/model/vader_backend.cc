#include "model/vader_backend.h"

#include "common/strings.h"
#include "model/sentiment.h"

namespace galley::model {

VaderBackend::VaderBackend(std::string name, int max_batch_size, std::string version) {
  metadata_.name = std::move(name);
  metadata_.version = std::move(version);
  metadata_.platform = "galley_vader";
  metadata_.max_batch_size = max_batch_size;
  metadata_.inputs = {{"text", DataType::kBytes, {-1}}};
  metadata_.outputs = {{"label", DataType::kBytes, {-1}},
                       {"probability", DataType::kFp32, {-1}},
                       {"compound", DataType::kFp32, {-1}}};
}

absl::Status VaderBackend::Load() {
  auto analyzer = VaderAnalyzer::Create();
  if (!analyzer.ok()) return analyzer.status();
  analyzer_ = std::move(analyzer).value();
  return absl::OkStatus();
}

absl::StatusOr<Sentiment> VaderBackend::Analyze(std::string_view text) const {
  if (!analyzer_) return absl::FailedPreconditionError("model not loaded");
  if (absl::Status st = CheckText(text); !st.ok()) return st;
  return SentimentFromCompound(analyzer_->PolarityScores(text).compound);
}

absl::StatusOr<InferOutput> VaderBackend::InferOne(const InferInput& input) const {
  if (input.inputs.size() != 1 || input.inputs[0].datatype != DataType::kBytes) {
    return absl::InvalidArgumentError("expected one BYTES input 'text'");
  }
  const Tensor& text = input.inputs[0];
  const size_t n = text.bytes.size();
  InferOutput out;
  out.outputs.resize(3);
  Tensor& label = out.outputs[0];
  Tensor& prob = out.outputs[1];
  Tensor& compound = out.outputs[2];
  label = {"label", DataType::kBytes, text.shape, {}, {}};
  prob = {"probability", DataType::kFp32, text.shape, {}, {}};
  compound = {"compound", DataType::kFp32, text.shape, {}, {}};
  label.bytes.reserve(n);
  prob.raw.reserve(n * sizeof(float));
  compound.raw.reserve(n * sizeof(float));
  for (size_t i = 0; i < n; ++i) {
    if (absl::Status st = CheckText(text.bytes[i]); !st.ok()) {
      return absl::InvalidArgumentError(StrCat("text[", i, "]: ", st.message()));
    }
    const double c = analyzer_->PolarityScores(text.bytes[i]).compound;
    const Sentiment s = SentimentFromCompound(c);
    label.bytes.emplace_back(s.label);
    prob.Append<float>(s.confidence);
    compound.Append<float>(static_cast<float>(c));
  }
  return out;
}

std::vector<absl::StatusOr<InferOutput>> VaderBackend::Infer(
    absl::Span<const InferInput* const> batch) {
  std::vector<absl::StatusOr<InferOutput>> results;
  results.reserve(batch.size());
  for (const InferInput* input : batch) {
    if (!analyzer_) {
      results.push_back(absl::FailedPreconditionError("model not loaded"));
    } else {
      results.push_back(InferOne(*input));
    }
  }
  return results;
}

}  // namespace galley::model
