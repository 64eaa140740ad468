#include "fuzz/fuzz_models.h"

#include <optional>

#include "common/strings.h"
#include "protocol/oip_json.h"

namespace galley::fuzz {

const model::ModelMetadata& TextModel() {
  static const model::ModelMetadata* const md = [] {
    auto* m = new model::ModelMetadata;
    m->name = "text";
    m->version = "1";
    m->max_batch_size = 8;
    m->inputs = {{"text", model::DataType::kBytes, {-1}}};
    m->outputs = {{"label", model::DataType::kBytes, {-1}}};
    return m;
  }();
  return *md;
}

const model::ModelMetadata& NumericModel() {
  static const model::ModelMetadata* const md = [] {
    auto* m = new model::ModelMetadata;
    m->name = "numeric";
    m->version = "1";
    m->max_batch_size = 0;
    m->inputs = {{"a", model::DataType::kFp32, {-1, 3}},
                 {"b", model::DataType::kInt64, {-1}},
                 {"c", model::DataType::kBool, {2}},
                 {"d", model::DataType::kUint16, {-1}},
                 {"e", model::DataType::kFp64, {1}}};
    m->outputs = {{"a", model::DataType::kFp32, {-1, 3}}};
    return m;
  }();
  return *md;
}

void DecodeEverything(std::string_view body) {
  // Also as the binary tensor data extension: the JSON is the body up to its first NUL byte
  // (the Inference-Header-Content-Length), binary data after it.
  std::optional<size_t> header_length;
  std::string joined;  // the body without that NUL
  if (size_t nul = body.find('\0'); nul != std::string_view::npos) {
    header_length = nul;
    joined = StrCat(body.substr(0, nul), body.substr(nul + 1));
  }
  for (const model::ModelMetadata* md : {&TextModel(), &NumericModel()}) {
    for (auto length : {std::optional<size_t>(), header_length}) {
      auto r = protocol::DecodeInferRequest(length ? std::string_view(joined) : body, *md, length);
      if (r.ok()) {
        model::InferOutput out;
        out.outputs = r->input.inputs;
        (void)protocol::EncodeInferResponse(*md, r->id, out, {}, r->binary_outputs,
                                            r->binary_data_output);
      }
      if (!header_length) break;
    }
  }
  (void)protocol::DecodeAnalyzeRequest(body);
}

}  // namespace galley::fuzz
