#include "retrieval/retrieval_backend.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"
#include "common/json.h"
#include "common/strings.h"

namespace galley::retrieval {
namespace fs = std::filesystem;
using model::DataType;
using model::Tensor;

absl::Status WriteManifest(const fs::path& folder, const IndexManifest& m) {
  boost::json::object o;
  o["embedding_model"] = m.embedding_model;
  o["dim"] = m.dim;
  o["count"] = m.count;
  std::ofstream out(folder / "manifest.json", std::ios::binary | std::ios::trunc);
  out << JsonSerialize(o) << "\n";
  out.close();
  if (!out)
    return absl::InternalError(StrCat("cannot write ", (folder / "manifest.json").string()));
  return absl::OkStatus();
}

absl::StatusOr<IndexManifest> ReadManifest(const fs::path& folder) {
  const fs::path file = folder / "manifest.json";
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot open ", file.string()));
  std::ostringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text.str(), ec);
  const boost::json::object* o = ec ? nullptr : v.if_object();
  const auto* model = o ? o->if_contains("embedding_model") : nullptr;
  const auto* dim = o ? o->if_contains("dim") : nullptr;
  const auto* count = o ? o->if_contains("count") : nullptr;
  if (model == nullptr || !model->is_string() || dim == nullptr || !dim->is_int64() ||
      count == nullptr || !count->is_int64()) {
    return absl::DataLossError(StrCat(file.string(), ": not an index manifest"));
  }
  return IndexManifest{std::string(model->as_string()), static_cast<int>(dim->as_int64()),
                       static_cast<size_t>(count->as_int64())};
}

absl::StatusOr<std::vector<float>> EmbedAll(model::Backend& embedder,
                                            const std::vector<std::string>& texts, size_t batch) {
  const model::ModelMetadata& md = embedder.Metadata();
  if (md.inputs.size() != 1 || md.outputs.size() != 1 || md.outputs[0].shape.size() != 2) {
    return absl::InvalidArgumentError(StrCat("model '", md.name, "' is not an embedding model"));
  }
  batch = std::max<size_t>(
      1, std::min<size_t>(batch, static_cast<size_t>(std::max(1, md.max_batch_size))));
  std::vector<size_t> order(texts.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return texts[a].size() < texts[b].size(); });
  std::vector<float> out;
  size_t dim = 0;
  for (size_t from = 0; from < order.size(); from += batch) {
    const size_t n = std::min(batch, order.size() - from);
    Tensor t{md.inputs[0].name, DataType::kBytes, {static_cast<int64_t>(n)}, {}, {}};
    for (size_t i = 0; i < n; ++i) t.bytes.push_back(texts[order[from + i]]);
    model::InferInput in{{std::move(t)}};
    if (auto st = embedder.Prepare(in); !st.ok()) {
      return absl::InvalidArgumentError(StrCat("embedding texts ", from, "..", from + n - 1,
                                               " (by length): ", st.status().message()));
    }
    auto r = embedder.Infer({&in});
    if (!r[0].ok()) return r[0].status();
    const Tensor& e = r[0]->outputs[0];
    if (dim == 0) {
      dim = static_cast<size_t>(e.shape[1]);
      out.resize(texts.size() * dim);
    }
    const auto* data = reinterpret_cast<const float*>(e.raw.data());
    for (size_t i = 0; i < n; ++i) {
      std::copy(data + i * dim, data + (i + 1) * dim,
                out.begin() + static_cast<std::ptrdiff_t>(order[from + i] * dim));
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<RetrievalBackend>> RetrievalBackend::Create(
    std::unique_ptr<model::Backend> embedder, const fs::path& index_folder,
    RetrievalOptions options) {
  const model::ModelMetadata& em = embedder->Metadata();
  if (em.inputs.size() != 1 || em.inputs[0].datatype != DataType::kBytes ||
      em.outputs.size() != 1 || em.outputs[0].datatype != DataType::kFp32 ||
      em.outputs[0].shape.size() != 2 || em.max_batch_size < 1) {
    return absl::InvalidArgumentError(
        StrCat("model '", options.name, "': embedding model '", em.name,
               "' must take one BYTES input and give one FP32 [batch, dim] output"));
  }
  auto manifest = ReadManifest(index_folder);
  if (!manifest.ok()) return manifest.status();
  if (manifest->embedding_model != options.embedding_model ||
      (em.outputs[0].shape[1] > 0 && em.outputs[0].shape[1] != manifest->dim)) {
    return absl::FailedPreconditionError(
        StrCat("model '", options.name, "': the index in ", index_folder.string(),
               " was built with '", manifest->embedding_model, "' (", manifest->dim,
               " dimensions), not '", options.embedding_model, "' (", em.outputs[0].shape[1],
               "): rebuild it with galley index build"));
  }
  auto index = VectorIndex::Load(index_folder, options.ef_search);
  if (!index.ok()) return index.status();
  auto passages = ReadPassages(index_folder / "passages.jsonl");
  if (!passages.ok()) return passages.status();
  if (passages->size() != index->size() || index->dim() != manifest->dim) {
    return absl::DataLossError(StrCat(index_folder.string(), ": ", passages->size(),
                                      " passages but ", index->size(), " vectors"));
  }
  const size_t k = std::min(static_cast<size_t>(options.top_k), passages->size());
  const auto kk = static_cast<int64_t>(k);
  model::ModelMetadata md;
  md.name = options.name;
  md.version = options.version;
  md.platform = "galley_retrieval";
  md.max_batch_size = em.max_batch_size;
  md.inputs = {{"query", DataType::kBytes, {-1}}};
  md.outputs = {{"passages", DataType::kBytes, {-1, kk}},
                {"sources", DataType::kBytes, {-1, kk}},
                {"scores", DataType::kFp32, {-1, kk}}};
  return std::unique_ptr<RetrievalBackend>(
      new RetrievalBackend(std::move(embedder), std::move(index).value(),
                           std::move(passages).value(), std::move(md), k));
}

RetrievalBackend::RetrievalBackend(std::unique_ptr<model::Backend> embedder, VectorIndex index,
                                   std::vector<Passage> passages, model::ModelMetadata metadata,
                                   size_t k)
    : embedder_(std::move(embedder)),
      index_(std::move(index)),
      passages_(std::move(passages)),
      metadata_(std::move(metadata)),
      k_(k) {}

absl::StatusOr<int64_t> RetrievalBackend::Prepare(model::InferInput& input) const {
  if (input.inputs.size() != 1 || input.inputs[0].datatype != DataType::kBytes) {
    return absl::InvalidArgumentError("expected one BYTES input 'query'");
  }
  input.inputs[0].name = embedder_->Metadata().inputs[0].name;
  return embedder_->Prepare(input);
}

absl::StatusOr<model::InferOutput> RetrievalBackend::Answer(
    const model::InferOutput& embedded) const {
  if (embedded.outputs.size() != 1 || embedded.outputs[0].shape.size() != 2 ||
      embedded.outputs[0].shape[1] != index_.dim()) {
    return absl::InternalError("the embedding model returned an unexpected shape");
  }
  const Tensor& e = embedded.outputs[0];
  const auto rows = static_cast<size_t>(e.shape[0]);
  const auto dim = static_cast<size_t>(index_.dim());
  const std::vector<int64_t> shape = {static_cast<int64_t>(rows), static_cast<int64_t>(k_)};
  model::InferOutput out;
  out.outputs = {Tensor{"passages", DataType::kBytes, shape, {}, {}},
                 Tensor{"sources", DataType::kBytes, shape, {}, {}},
                 Tensor{"scores", DataType::kFp32, shape, {}, {}}};
  const auto* data = reinterpret_cast<const float*>(e.raw.data());
  for (size_t r = 0; r < rows; ++r) {
    std::vector<Hit> hits = index_.Search({data + r * dim, dim}, k_);
    for (size_t i = 0; i < k_; ++i) {
      const bool have = i < hits.size();
      out.outputs[0].bytes.push_back(have ? passages_[hits[i].id].text : std::string());
      out.outputs[1].bytes.push_back(have ? passages_[hits[i].id].source : std::string());
      out.outputs[2].Append<float>(have ? hits[i].score : 0.0f);
    }
  }
  return out;
}

std::vector<absl::StatusOr<model::InferOutput>> RetrievalBackend::Infer(
    absl::Span<const model::InferInput* const> batch) {
  std::vector<absl::StatusOr<model::InferOutput>> results = embedder_->Infer(batch);
  for (auto& r : results) {
    if (r.ok()) r = Answer(*r);
  }
  return results;
}

}  // namespace galley::retrieval
