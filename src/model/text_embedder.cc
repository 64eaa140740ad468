#include "model/text_embedder.h"

#include <algorithm>

#include "common/strings.h"
#include "model/token_rows.h"

namespace galley::model {

absl::StatusOr<std::unique_ptr<TextEmbedder>> TextEmbedder::Create(std::unique_ptr<Backend> inner,
                                                                   WordpieceTokenizer tokenizer,
                                                                   TextEmbedderOptions options) {
  const ModelMetadata& in = inner->Metadata();
  std::vector<std::string> wanted = {options.ids_input, options.mask_input};
  if (!options.type_input.empty()) wanted.push_back(options.type_input);
  std::vector<std::string> order;
  for (const TensorSpec& spec : in.inputs) {
    if (std::find(wanted.begin(), wanted.end(), spec.name) == wanted.end()) {
      return absl::InvalidArgumentError(StrCat("model '", in.name, "': input '", spec.name,
                                               "' is none of the text embedder's inputs (",
                                               Join(wanted, ", "), ")"));
    }
    if (spec.datatype != DataType::kInt64 || spec.shape.size() != 2) {
      return absl::InvalidArgumentError(StrCat("model '", in.name, "': input '", spec.name,
                                               "' must be INT64 of shape [batch, tokens]"));
    }
    order.push_back(spec.name);
  }
  if (order.size() != wanted.size()) {
    return absl::InvalidArgumentError(StrCat("model '", in.name, "': a text embedder needs inputs ",
                                             Join(wanted, ", "), "; the model has ",
                                             in.inputs.size()));
  }
  size_t out_index = in.outputs.size();
  for (size_t i = 0; i < in.outputs.size(); ++i) {
    if (in.outputs[i].name == options.output) out_index = i;
  }
  if (out_index == in.outputs.size() || in.outputs[out_index].datatype != DataType::kFp32 ||
      in.outputs[out_index].shape.size() != 2) {
    return absl::InvalidArgumentError(StrCat("model '", in.name,
                                             "': a text embedder needs an FP32 output '",
                                             options.output, "' of shape [batch, dim]"));
  }
  if (in.max_batch_size < 1) {
    return absl::InvalidArgumentError(StrCat(
        "model '", in.name, "': a text embedder needs a batch dimension (max_batch_size > 0)"));
  }
  ModelMetadata md;
  md.name = in.name;
  md.version = in.version;
  md.platform = in.platform;
  md.max_batch_size = in.max_batch_size;
  md.inputs = {{"text", DataType::kBytes, {-1}}};
  md.outputs = {{"embedding", DataType::kFp32, {-1, in.outputs[out_index].shape[1]}}};
  auto e = std::unique_ptr<TextEmbedder>(new TextEmbedder(
      std::move(inner), std::move(tokenizer), std::move(options), std::move(md), out_index));
  e->inner_order_ = std::move(order);
  return e;
}

TextEmbedder::TextEmbedder(std::unique_ptr<Backend> inner, WordpieceTokenizer tokenizer,
                           TextEmbedderOptions options, ModelMetadata metadata, size_t output_index)
    : inner_(std::move(inner)),
      tokenizer_(std::move(tokenizer)),
      options_(std::move(options)),
      metadata_(std::move(metadata)),
      output_index_(output_index) {}

absl::StatusOr<int64_t> TextEmbedder::Prepare(InferInput& input) const {
  if (input.inputs.size() != 1 || input.inputs[0].datatype != DataType::kBytes) {
    return absl::InvalidArgumentError("expected one BYTES input 'text'");
  }
  auto rows = TokenizeRows(input.inputs[0], [this](std::string_view t, std::vector<int64_t>& ids) {
    tokenizer_.Encode(t, ids);
  });
  if (!rows.ok()) return rows.status();
  Tensor ids = rows->Padded(options_.ids_input);
  Tensor mask = ids;  // same shape; 1 where a token is, 0 in the padding
  mask.name = options_.mask_input;
  auto* m = reinterpret_cast<int64_t*>(mask.raw.data());
  std::fill(m, m + rows->rows() * rows->longest, 0);
  for (size_t i = 0; i < rows->rows(); ++i) {
    std::fill(m + i * rows->longest, m + i * rows->longest + rows->length(i), 1);
  }
  Tensor types = mask;  // token types: all 0 (made before `mask` moves below)
  types.name = options_.type_input;
  std::fill(types.raw.begin(), types.raw.end(), 0);
  input.inputs.clear();
  for (const std::string& name : inner_order_) {
    if (name == options_.ids_input) {
      input.inputs.push_back(std::move(ids));
    } else if (name == options_.mask_input) {
      input.inputs.push_back(std::move(mask));
    } else {
      input.inputs.push_back(std::move(types));
    }
  }
  return static_cast<int64_t>(rows->longest);
}

std::vector<absl::StatusOr<InferOutput>> TextEmbedder::Infer(
    absl::Span<const InferInput* const> batch) {
  std::vector<absl::StatusOr<InferOutput>> results = inner_->Infer(batch);
  for (auto& r : results) {
    if (!r.ok()) continue;
    if (output_index_ >= r->outputs.size()) {
      r = absl::InternalError("the model returned no embedding");
      continue;
    }
    Tensor out = std::move(r->outputs[output_index_]);
    out.name = "embedding";
    r->outputs.clear();
    r->outputs.push_back(std::move(out));
  }
  return results;
}

}  // namespace galley::model
