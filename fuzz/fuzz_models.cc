#include "fuzz/fuzz_models.h"

#include "serve/oip_json.h"

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
  for (const model::ModelMetadata* md : {&TextModel(), &NumericModel()}) {
    auto r = serve::DecodeInferRequest(body, *md);
    if (r.ok()) {
      model::InferOutput out;
      out.outputs = r->input.inputs;
      (void)serve::EncodeInferResponse(*md, r->id, out, {});
    }
  }
  (void)serve::DecodeAnalyzeRequest(body);
}

}  // namespace galley::fuzz
