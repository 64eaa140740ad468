// An approximate nearest-neighbour index over unit vectors: a Hierarchical Navigable Small World
// graph (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search using
// Hierarchical Navigable Small World graphs", TPAMI 2018), as Debian's libhnswlib-dev implements
// it, with inner-product distance (cosine similarity for unit vectors). Also exact search, to
// measure the approximate search's recall.
//
// On disk (a folder): index.hnsw (hnswlib's own format) and index.json, which records the
// dimension, count, graph parameters and the index file's size and FNV-1a checksum; Load checks
// both before it lets hnswlib read the file, so a truncated or altered index is a clear error
// rather than a crash.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace galley::retrieval {

struct Hit {
  uint32_t id;  // the vector's position when the index was built
  float score;  // inner product with the query (cosine similarity for unit vectors)
};

struct IndexParams {
  int m = 16;                 // graph degree (links per node and layer; 2*m on the base layer)
  int ef_construction = 200;  // candidates kept while inserting
  int ef_search = 64;         // candidates kept while searching (at least k)
};

class VectorIndex {
 public:
  ~VectorIndex();
  VectorIndex(VectorIndex&&) noexcept;
  VectorIndex& operator=(VectorIndex&&) noexcept;

  // Builds over `vectors` (count * dim floats, row i is id i). Deterministic: the same vectors
  // and parameters give the same graph. InvalidArgument for dim < 1, an empty or ragged input.
  static absl::StatusOr<VectorIndex> Build(absl::Span<const float> vectors, int dim,
                                           IndexParams params);
  // Reads a folder written by Save. NotFound when a file is missing; DataLoss when the index
  // file does not match its record.
  static absl::StatusOr<VectorIndex> Load(const std::filesystem::path& folder, int ef_search);
  absl::Status Save(const std::filesystem::path& folder) const;

  // The k nearest (highest score first). Not safe to call from two threads at once.
  std::vector<Hit> Search(absl::Span<const float> query, size_t k) const;

  int dim() const { return dim_; }
  size_t size() const { return count_; }
  const IndexParams& params() const { return params_; }

 private:
  struct Impl;
  VectorIndex(std::unique_ptr<Impl> impl, int dim, size_t count, IndexParams params);
  std::unique_ptr<Impl> impl_;
  int dim_ = 0;
  size_t count_ = 0;
  IndexParams params_;
};

// The k nearest by brute force over `vectors` (count * dim floats), highest score first.
std::vector<Hit> ExactSearch(absl::Span<const float> vectors, int dim,
                             absl::Span<const float> query, size_t k);

// Recall@k of `approx` against `exact`: the share of the exact top k that the approximate
// result holds.
double RecallAtK(const std::vector<Hit>& approx, const std::vector<Hit>& exact);

}  // namespace galley::retrieval
