#include "model/text_classifier.h"

#include <algorithm>

#include "common/strings.h"
#include "model/token_rows.h"

namespace galley::model {

absl::StatusOr<std::unique_ptr<TextClassifier>> TextClassifier::Create(
    std::unique_ptr<Backend> inner, WordTokenizer tokenizer, TextClassifierOptions options) {
  const ModelMetadata& in = inner->Metadata();
  if (in.inputs.size() != 1 || in.inputs[0].name != options.ids_input ||
      in.inputs[0].datatype != DataType::kInt64 || in.inputs[0].shape.size() != 2) {
    return absl::InvalidArgumentError(StrCat("model '", in.name,
                                             "': a text classifier needs exactly one INT64 input '",
                                             options.ids_input, "' of shape [batch, tokens]"));
  }
  size_t probs_index = in.outputs.size();
  for (size_t i = 0; i < in.outputs.size(); ++i) {
    if (in.outputs[i].name == options.probabilities_output) probs_index = i;
  }
  if (probs_index == in.outputs.size() || in.outputs[probs_index].datatype != DataType::kFp32 ||
      in.outputs[probs_index].shape.size() != 2) {
    return absl::InvalidArgumentError(
        StrCat("model '", in.name, "': a text classifier needs an FP32 output '",
               options.probabilities_output, "' of shape [batch, classes]"));
  }
  const int64_t classes = in.outputs[probs_index].shape[1];
  if (options.labels.empty() ||
      (classes >= 0 && static_cast<size_t>(classes) != options.labels.size())) {
    return absl::InvalidArgumentError(
        StrCat("model '", in.name, "': output '", options.probabilities_output, "' has ", classes,
               " classes but ", options.labels.size(), " labels are configured"));
  }
  if (in.max_batch_size < 1) {
    return absl::InvalidArgumentError(StrCat(
        "model '", in.name, "': a text classifier needs a batch dimension (max_batch_size > 0)"));
  }
  ModelMetadata md;
  md.name = in.name;
  md.version = in.version;
  md.platform = in.platform;
  md.max_batch_size = in.max_batch_size;
  md.inputs = {{"text", DataType::kBytes, {-1}}};
  md.outputs = {
      {"label", DataType::kBytes, {-1}},
      {"probability", DataType::kFp32, {-1}},
      {"probabilities", DataType::kFp32, {-1, static_cast<int64_t>(options.labels.size())}}};
  return std::unique_ptr<TextClassifier>(new TextClassifier(
      std::move(inner), std::move(tokenizer), std::move(options), std::move(md), probs_index));
}

TextClassifier::TextClassifier(std::unique_ptr<Backend> inner, WordTokenizer tokenizer,
                               TextClassifierOptions options, ModelMetadata metadata,
                               size_t probs_index)
    : inner_(std::move(inner)),
      tokenizer_(std::move(tokenizer)),
      options_(std::move(options)),
      metadata_(std::move(metadata)),
      probs_index_(probs_index) {}

absl::StatusOr<int64_t> TextClassifier::Prepare(InferInput& input) const {
  if (input.inputs.size() != 1 || input.inputs[0].datatype != DataType::kBytes) {
    return absl::InvalidArgumentError("expected one BYTES input 'text'");
  }
  auto rows = TokenizeRows(input.inputs[0], [this](std::string_view t, std::vector<int64_t>& ids) {
    tokenizer_.Encode(t, ids);
  });
  if (!rows.ok()) return rows.status();
  Tensor ids = rows->Padded(options_.ids_input);
  const auto longest = static_cast<int64_t>(rows->longest);
  input.inputs.clear();
  input.inputs.push_back(std::move(ids));
  return longest;
}

absl::StatusOr<InferOutput> TextClassifier::Postprocess(const InferOutput& inner_out) const {
  if (probs_index_ >= inner_out.outputs.size()) {
    return absl::InternalError("the model returned no probabilities");
  }
  const Tensor& probs = inner_out.outputs[probs_index_];
  const size_t classes = options_.labels.size();
  if (probs.shape.size() != 2 || probs.shape[1] != static_cast<int64_t>(classes) ||
      probs.raw.size() != static_cast<size_t>(probs.shape[0]) * classes * sizeof(float)) {
    return absl::InternalError("the model's probabilities have an unexpected shape");
  }
  const auto rows = static_cast<size_t>(probs.shape[0]);
  InferOutput out;
  out.outputs.resize(3);
  Tensor& label = out.outputs[0];
  Tensor& prob = out.outputs[1];
  label = {"label", DataType::kBytes, {static_cast<int64_t>(rows)}, {}, {}};
  prob = {"probability", DataType::kFp32, {static_cast<int64_t>(rows)}, {}, {}};
  label.bytes.reserve(rows);
  prob.raw.reserve(rows * sizeof(float));
  for (size_t r = 0; r < rows; ++r) {
    size_t best = 0;
    for (size_t c = 1; c < classes; ++c) {
      if (probs.At<float>(r * classes + c) > probs.At<float>(r * classes + best)) best = c;
    }
    label.bytes.push_back(options_.labels[best]);
    prob.Append<float>(probs.At<float>(r * classes + best));
  }
  out.outputs[2] = probs;
  out.outputs[2].name = "probabilities";
  return out;
}

std::vector<absl::StatusOr<InferOutput>> TextClassifier::Infer(
    absl::Span<const InferInput* const> batch) {
  std::vector<absl::StatusOr<InferOutput>> results = inner_->Infer(batch);
  for (auto& r : results) {
    if (r.ok()) r = Postprocess(*r);
  }
  return results;
}

}  // namespace galley::model
