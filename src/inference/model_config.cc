#include "inference/model_config.h"

#include <algorithm>
#include <set>

#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"
#include "common/status_macros.h"
#include "common/strings.h"

namespace galley::inference {
namespace {

namespace json = boost::json;

absl::Status Bad(std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(StrCat("config field '", field, "': ", what));
}

// Rejects keys of `obj` not in `known`.
absl::Status OnlyKnown(const json::object& obj, std::string_view where,
                       std::initializer_list<std::string_view> known) {
  for (const auto& kv : obj) {
    const std::string_view key(kv.key().data(), kv.key().size());
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return Bad(StrCat(where, key), "unknown field");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> GetString(const json::object& obj, std::string_view key,
                                      std::string_view field) {
  const json::value* v = obj.if_contains(json::string_view(key.data(), key.size()));
  if (v == nullptr) return Bad(field, "is required");
  if (!v->is_string()) return Bad(field, "must be a string");
  return std::string(v->as_string().data(), v->as_string().size());
}

absl::StatusOr<int64_t> GetInt(const json::value& v, std::string_view field, int64_t lo,
                               int64_t hi) {
  int64_t n = 0;
  if (v.is_int64()) {
    n = v.as_int64();
  } else if (v.is_uint64() && v.as_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    n = static_cast<int64_t>(v.as_uint64());
  } else {
    return Bad(field, "must be an integer");
  }
  if (n < lo || n > hi) return Bad(field, StrCat("must be in [", lo, ", ", hi, "]"));
  return n;
}

// A JSON number (integer or not) in (lo, hi].
absl::StatusOr<double> GetNumberAbove(const json::value& v, std::string_view field, double lo,
                                      double hi) {
  if (!v.is_number()) return Bad(field, "must be a number");
  const double x = v.to_number<double>();
  if (!(x > lo && x <= hi)) return Bad(field, StrCat("must be in (", lo, ", ", hi, "]"));
  return x;
}

absl::StatusOr<std::vector<int64_t>> GetIntArray(const json::value& v, std::string_view field,
                                                 int64_t lo, int64_t hi) {
  if (!v.is_array()) return Bad(field, "must be an array of integers");
  std::vector<int64_t> out;
  for (const auto& e : v.as_array()) {
    ASSIGN_OR_RETURN(int64_t n, GetInt(e, field, lo, hi));
    out.push_back(n);
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> GetStringArray(const json::value& v,
                                                        std::string_view field) {
  if (!v.is_array()) return Bad(field, "must be an array of strings");
  std::vector<std::string> out;
  for (const auto& e : v.as_array()) {
    if (!e.is_string()) return Bad(field, "must be an array of strings");
    out.emplace_back(e.as_string().data(), e.as_string().size());
  }
  return out;
}

absl::StatusOr<std::vector<TensorConfig>> ParseTensors(const json::value& v,
                                                       std::string_view field) {
  if (!v.is_array()) return Bad(field, "must be an array of tensors");
  std::vector<TensorConfig> out;
  std::set<std::string, std::less<>> names;
  for (const auto& e : v.as_array()) {
    if (!e.is_object()) return Bad(field, "each tensor must be an object");
    const json::object& t = e.as_object();
    RETURN_IF_ERROR(OnlyKnown(t, StrCat(field, "[]."), {"name", "datatype", "dims"}));
    TensorConfig tc;
    ASSIGN_OR_RETURN(tc.name, GetString(t, "name", StrCat(field, "[].name")));
    ASSIGN_OR_RETURN(std::string dt, GetString(t, "datatype", StrCat(field, "[].datatype")));
    auto parsed = model::ParseDataType(dt);
    if (!parsed) return Bad(StrCat(field, "[].datatype"), StrCat("unknown datatype '", dt, "'"));
    tc.datatype = *parsed;
    const json::value* dims = t.if_contains("dims");
    if (dims == nullptr) return Bad(StrCat(field, "[].dims"), "is required");
    ASSIGN_OR_RETURN(tc.dims, GetIntArray(*dims, StrCat(field, "[].dims"), -1, INT32_MAX));
    if (!names.insert(tc.name).second)
      return Bad(field, StrCat("tensor '", tc.name, "' appears twice"));
    out.push_back(std::move(tc));
  }
  return out;
}

absl::Status ParseBatching(const json::value& v, ModelConfig& c) {
  if (!v.is_object()) return Bad("dynamic_batching", "must be an object");
  const json::object& b = v.as_object();
  RETURN_IF_ERROR(
      OnlyKnown(b, "dynamic_batching.",
                {"preferred_batch_size", "max_queue_delay_microseconds", "max_queue_size",
                 "length_buckets", "length_fill_ratio", "length_fill_rows"}));
  c.dynamic_batching = true;
  if (const auto* p = b.if_contains("preferred_batch_size")) {
    ASSIGN_OR_RETURN(auto sizes,
                     GetIntArray(*p, "dynamic_batching.preferred_batch_size", 1, 1 << 20));
    std::sort(sizes.begin(), sizes.end());
    for (int64_t s : sizes) {
      if (s > c.max_batch_size) {
        return Bad("dynamic_batching.preferred_batch_size",
                   StrCat(s, " is larger than max_batch_size ", c.max_batch_size));
      }
      c.batch.preferred_batch_sizes.push_back(static_cast<int>(s));
    }
  }
  if (const auto* d = b.if_contains("max_queue_delay_microseconds")) {
    ASSIGN_OR_RETURN(int64_t us,
                     GetInt(*d, "dynamic_batching.max_queue_delay_microseconds", 0, 60'000'000));
    c.batch.max_queue_delay = std::chrono::microseconds(us);
  }
  if (const auto* q = b.if_contains("max_queue_size")) {
    ASSIGN_OR_RETURN(int64_t n, GetInt(*q, "dynamic_batching.max_queue_size", 1, 1 << 20));
    c.max_queue_size = static_cast<size_t>(n);
  }
  if (const auto* l = b.if_contains("length_buckets")) {
    ASSIGN_OR_RETURN(c.batch.length_buckets,
                     GetIntArray(*l, "dynamic_batching.length_buckets", 1, 1 << 20));
    if (!std::is_sorted(c.batch.length_buckets.begin(), c.batch.length_buckets.end()) ||
        std::adjacent_find(c.batch.length_buckets.begin(), c.batch.length_buckets.end()) !=
            c.batch.length_buckets.end()) {
      return Bad("dynamic_batching.length_buckets", "must be strictly ascending");
    }
  }
  if (const auto* r = b.if_contains("length_fill_ratio")) {
    ASSIGN_OR_RETURN(c.batch.length_fill_ratio,
                     GetNumberAbove(*r, "dynamic_batching.length_fill_ratio", 0, 1));
    if (c.batch.length_buckets.empty()) {
      return Bad("dynamic_batching.length_fill_ratio",
                 "fills batches across length buckets: needs dynamic_batching.length_buckets");
    }
  }
  if (const auto* r = b.if_contains("length_fill_rows")) {
    ASSIGN_OR_RETURN(int64_t n,
                     GetInt(*r, "dynamic_batching.length_fill_rows", 2, c.max_batch_size));
    if (c.batch.length_fill_ratio == 0) {
      return Bad("dynamic_batching.length_fill_rows", "needs dynamic_batching.length_fill_ratio");
    }
    c.batch.length_fill_rows = static_cast<int>(n);
  }
  return absl::OkStatus();
}

absl::Status ParseTokenizer(const json::value& v, ModelConfig& c) {
  if (!v.is_object()) return Bad("preprocess", "must be an object");
  const json::object& o = v.as_object();
  ASSIGN_OR_RETURN(std::string kind, GetString(o, "kind", "preprocess.kind"));
  TokenizerConfig t;
  t.kind = kind;
  if (kind == "word_tokenizer") {
    RETURN_IF_ERROR(OnlyKnown(o, "preprocess.", {"kind", "vocab", "max_length", "input"}));
  } else if (kind == "wordpiece") {
    RETURN_IF_ERROR(OnlyKnown(
        o, "preprocess.", {"kind", "vocab", "max_length", "input", "mask_input", "type_input"}));
    t.max_length = 256;
    ASSIGN_OR_RETURN(t.mask_input, GetString(o, "mask_input", "preprocess.mask_input"));
    if (o.contains("type_input")) {
      ASSIGN_OR_RETURN(t.type_input, GetString(o, "type_input", "preprocess.type_input"));
    }
  } else {
    return Bad("preprocess.kind",
               StrCat("unknown kind '", kind, "' (known: word_tokenizer, wordpiece)"));
  }
  ASSIGN_OR_RETURN(t.vocab, GetString(o, "vocab", "preprocess.vocab"));
  ASSIGN_OR_RETURN(t.input, GetString(o, "input", "preprocess.input"));
  if (const auto* m = o.if_contains("max_length")) {
    ASSIGN_OR_RETURN(int64_t n,
                     GetInt(*m, "preprocess.max_length", kind == "wordpiece" ? 3 : 1, 1 << 16));
    t.max_length = static_cast<int>(n);
  }
  if (t.vocab.find('/') != std::string::npos || t.vocab == "..") {
    return Bad("preprocess.vocab", "must be a file name in the model's folder");
  }
  c.tokenizer = std::move(t);
  return absl::OkStatus();
}

absl::Status ParsePostprocess(const json::value& v, ModelConfig& c) {
  if (!v.is_object()) return Bad("postprocess", "must be an object");
  const json::object& o = v.as_object();
  ASSIGN_OR_RETURN(std::string kind, GetString(o, "kind", "postprocess.kind"));
  if (kind == "embedding") {
    RETURN_IF_ERROR(OnlyKnown(o, "postprocess.", {"kind", "output"}));
    EmbeddingConfig e;
    ASSIGN_OR_RETURN(e.output, GetString(o, "output", "postprocess.output"));
    c.embedding = std::move(e);
    return absl::OkStatus();
  }
  if (kind != "classifier") {
    return Bad("postprocess.kind",
               StrCat("unknown kind '", kind, "' (known: classifier, embedding)"));
  }
  RETURN_IF_ERROR(OnlyKnown(o, "postprocess.", {"kind", "output", "labels"}));
  ClassifierConfig k;
  ASSIGN_OR_RETURN(k.output, GetString(o, "output", "postprocess.output"));
  const json::value* labels = o.if_contains("labels");
  if (labels == nullptr) return Bad("postprocess.labels", "is required");
  ASSIGN_OR_RETURN(k.labels, GetStringArray(*labels, "postprocess.labels"));
  if (k.labels.size() < 2) return Bad("postprocess.labels", "needs at least two labels");
  c.classifier = std::move(k);
  return absl::OkStatus();
}

absl::Status ParseRetrieval(const json::value& v, ModelConfig& c) {
  if (!v.is_object()) return Bad("retrieval", "must be an object");
  const json::object& o = v.as_object();
  RETURN_IF_ERROR(OnlyKnown(o, "retrieval.", {"embedding_model", "top_k", "ef_search"}));
  RetrievalConfig r;
  ASSIGN_OR_RETURN(r.embedding_model, GetString(o, "embedding_model", "retrieval.embedding_model"));
  if (r.embedding_model.find('/') != std::string::npos || r.embedding_model == ".." ||
      r.embedding_model == "." || r.embedding_model == c.name) {
    return Bad("retrieval.embedding_model", "must name another model of the repository");
  }
  if (const auto* n = o.if_contains("top_k")) {
    ASSIGN_OR_RETURN(int64_t k, GetInt(*n, "retrieval.top_k", 1, 100));
    r.top_k = static_cast<int>(k);
  }
  if (const auto* n = o.if_contains("ef_search")) {
    ASSIGN_OR_RETURN(int64_t ef, GetInt(*n, "retrieval.ef_search", 1, 10000));
    r.ef_search = static_cast<int>(ef);
  }
  if (r.ef_search < r.top_k) return Bad("retrieval.ef_search", "must be at least retrieval.top_k");
  c.retrieval = std::move(r);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view text, std::string_view folder) {
  boost::system::error_code ec;
  json::value doc = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return absl::InvalidArgumentError(StrCat("config is not valid JSON: ", ec.message()));
  if (!doc.is_object()) return absl::InvalidArgumentError("config must be a JSON object");
  const json::object& o = doc.as_object();
  RETURN_IF_ERROR(
      OnlyKnown(o, "",
                {"name", "platform", "max_batch_size", "input", "output", "dynamic_batching",
                 "instance_group", "parameters", "preprocess", "postprocess", "retrieval"}));
  ModelConfig c;
  c.name = std::string(folder);
  if (o.contains("name")) {
    ASSIGN_OR_RETURN(c.name, GetString(o, "name", "name"));
    if (c.name != folder) {
      return Bad("name", StrCat("'", c.name, "' differs from the model's folder '", folder, "'"));
    }
  }
  ASSIGN_OR_RETURN(c.platform, GetString(o, "platform", "platform"));
  if (c.platform != "onnxruntime_onnx" && c.platform != "galley_vader" &&
      c.platform != "galley_retrieval") {
    return Bad("platform", StrCat("unknown platform '", c.platform,
                                  "' (known: onnxruntime_onnx, galley_vader, galley_retrieval)"));
  }
  if (const auto* m = o.if_contains("max_batch_size")) {
    ASSIGN_OR_RETURN(int64_t n, GetInt(*m, "max_batch_size", 0, 1 << 20));
    c.max_batch_size = static_cast<int>(n);
  }
  c.batch.max_batch_size = 1;  // off unless dynamic_batching is given
  if (const auto* v = o.if_contains("input")) {
    ASSIGN_OR_RETURN(c.inputs, ParseTensors(*v, "input"));
  }
  if (const auto* v = o.if_contains("output")) {
    ASSIGN_OR_RETURN(c.outputs, ParseTensors(*v, "output"));
  }
  if (const auto* v = o.if_contains("dynamic_batching")) {
    if (c.max_batch_size < 2) {
      return Bad("dynamic_batching", "needs max_batch_size of at least 2");
    }
    RETURN_IF_ERROR(ParseBatching(*v, c));
    c.batch.max_batch_size = c.max_batch_size;
  }
  if (const auto* v = o.if_contains("instance_group")) {
    if (!v->is_object()) return Bad("instance_group", "must be an object");
    RETURN_IF_ERROR(OnlyKnown(v->as_object(), "instance_group.", {"count", "kind", "gpus"}));
    if (const auto* n = v->as_object().if_contains("count")) {
      ASSIGN_OR_RETURN(int64_t count, GetInt(*n, "instance_group.count", 1, 64));
      c.instance_count = static_cast<int>(count);
    }
    // Triton's instance kinds: KIND_CPU (the default) or KIND_GPU, on the first of `gpus`.
    std::string kind = "KIND_CPU";
    if (v->as_object().contains("kind")) {
      ASSIGN_OR_RETURN(kind, GetString(v->as_object(), "kind", "instance_group.kind"));
      if (kind != "KIND_CPU" && kind != "KIND_GPU") {
        return Bad("instance_group.kind", StrCat("is '", kind, "' (known: KIND_CPU, KIND_GPU)"));
      }
    }
    if (const auto* g = v->as_object().if_contains("gpus")) {
      if (kind != "KIND_GPU") return Bad("instance_group.gpus", "needs kind KIND_GPU");
      if (!g->is_array() || g->as_array().size() != 1) {
        return Bad("instance_group.gpus", "must list exactly one GPU (a model runs on one)");
      }
      ASSIGN_OR_RETURN(int64_t gpu, GetInt(g->as_array()[0], "instance_group.gpus[0]", 0, 1023));
      c.gpu_device = static_cast<int>(gpu);
    } else if (kind == "KIND_GPU") {
      c.gpu_device = 0;
    }
  }
  if (const auto* v = o.if_contains("parameters")) {
    if (!v->is_object()) return Bad("parameters", "must be an object");
    const json::object& p = v->as_object();
    RETURN_IF_ERROR(OnlyKnown(p, "parameters.", {"intra_op_threads", "pad_inputs"}));
    if (const auto* n = p.if_contains("intra_op_threads")) {
      ASSIGN_OR_RETURN(int64_t t, GetInt(*n, "parameters.intra_op_threads", 1, 256));
      c.intra_op_threads = static_cast<int>(t);
    }
    if (const auto* n = p.if_contains("pad_inputs")) {
      ASSIGN_OR_RETURN(c.pad_inputs, GetStringArray(*n, "parameters.pad_inputs"));
    }
  }
  if (const auto* v = o.if_contains("preprocess")) RETURN_IF_ERROR(ParseTokenizer(*v, c));
  if (const auto* v = o.if_contains("postprocess")) RETURN_IF_ERROR(ParsePostprocess(*v, c));
  if (const auto* v = o.if_contains("retrieval")) RETURN_IF_ERROR(ParseRetrieval(*v, c));
  if (c.retrieval.has_value() != (c.platform == "galley_retrieval")) {
    return Bad("retrieval", "is needed by, and only by, platform galley_retrieval");
  }
  if (c.retrieval && c.max_batch_size < 1) {
    return Bad("max_batch_size", "a retrieval agent needs max_batch_size of at least 1");
  }
  // Each pre-processing has its post-processing: word_tokenizer with classifier, wordpiece with
  // embedding.
  const bool wordpiece = c.tokenizer && c.tokenizer->kind == "wordpiece";
  const bool words = c.tokenizer && !wordpiece;
  if ((wordpiece && !c.embedding) || (c.embedding && !wordpiece)) {
    return Bad(wordpiece ? "postprocess" : "preprocess",
               "a wordpiece pre-processing and an embedding post-processing go together");
  }
  if ((words && !c.classifier) || (c.classifier && !words)) {
    return Bad(words ? "postprocess" : "preprocess",
               "a word_tokenizer pre-processing and a classifier post-processing go together");
  }
  if (c.tokenizer && c.max_batch_size < 1) {
    return Bad("max_batch_size", "a text model needs max_batch_size of at least 1");
  }
  if (c.tokenizer) {  // texts of different lengths share batches: pad every token input with 0
    for (const std::string* in :
         {&c.tokenizer->input, &c.tokenizer->mask_input, &c.tokenizer->type_input}) {
      if (!in->empty() &&
          std::find(c.pad_inputs.begin(), c.pad_inputs.end(), *in) == c.pad_inputs.end()) {
        c.pad_inputs.push_back(*in);
      }
    }
  }
  return c;
}

}  // namespace galley::inference
