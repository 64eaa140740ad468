// The retrieval agent as a model: questions in, the passages nearest in meaning out. It owns a
// text embedder (any Backend with one BYTES input "text" and one FP32 output [-1, dim], e.g.
// models-retrieval/minilm) and an index folder written by `galley index build`: index.hnsw,
// index.json (vector_index.h), passages.jsonl (passages.h) and manifest.json (which embedding
// model made the vectors). The embedder's batching applies: a batch of questions is one
// embedding run, then one index search per question.
//
// Public contract: input "query" (BYTES, [-1]); outputs "passages" (BYTES, [-1, k]), "sources"
// (BYTES, [-1, k]) and "scores" (FP32, [-1, k], cosine similarity, highest first), k = top_k
// (or the index's size when smaller).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "model/backend.h"
#include "retrieval/passages.h"
#include "retrieval/vector_index.h"

namespace galley::retrieval {

struct RetrievalOptions {
  std::string name;
  std::string version;
  std::string embedding_model;  // must equal the name the index was built with
  int top_k = 3;
  int ef_search = 64;
};

// manifest.json of an index folder: what built it.
struct IndexManifest {
  std::string embedding_model;
  int dim = 0;
  size_t count = 0;
};
absl::Status WriteManifest(const std::filesystem::path& folder, const IndexManifest& m);
absl::StatusOr<IndexManifest> ReadManifest(const std::filesystem::path& folder);

// Runs `embedder` (one BYTES input, one FP32 [rows, dim] output) over `texts`, `batch` texts per
// run, shortest first so that batches pad little; returns texts.size() * dim floats in the
// order of `texts`. Stops at the first error, naming the text.
absl::StatusOr<std::vector<float>> EmbedAll(model::Backend& embedder,
                                            const std::vector<std::string>& texts, size_t batch);

class RetrievalBackend final : public model::Backend {
 public:
  // Reads the index folder. FailedPrecondition when it was built with another embedding model
  // or dimension; DataLoss when its files disagree.
  static absl::StatusOr<std::unique_ptr<RetrievalBackend>> Create(
      std::unique_ptr<model::Backend> embedder, const std::filesystem::path& index_folder,
      RetrievalOptions options);

  const model::ModelMetadata& Metadata() const override { return metadata_; }
  absl::Status Load() override { return embedder_->Load(); }
  absl::StatusOr<int64_t> Prepare(model::InferInput& input) const override;
  std::vector<absl::StatusOr<model::InferOutput>> Infer(
      absl::Span<const model::InferInput* const> batch) override;

 private:
  RetrievalBackend(std::unique_ptr<model::Backend> embedder, VectorIndex index,
                   std::vector<Passage> passages, model::ModelMetadata metadata, size_t k);
  absl::StatusOr<model::InferOutput> Answer(const model::InferOutput& embedded) const;

  std::unique_ptr<model::Backend> embedder_;
  VectorIndex index_;
  std::vector<Passage> passages_;
  model::ModelMetadata metadata_;
  size_t k_;
};

}  // namespace galley::retrieval
