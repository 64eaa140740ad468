// Tests for VectorIndex: recall against exact search on random unit vectors, a save/load round
// trip that answers the same, and index folders that must be refused (missing, truncated,
// altered) with a clear error instead of a crash.
#include "retrieval/vector_index.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace galley::retrieval {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::vector<float> UnitVectors(size_t count, int dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(count * static_cast<size_t>(dim));
  for (size_t i = 0; i < count; ++i) {
    float norm = 0;
    for (int j = 0; j < dim; ++j) {
      float& x = v[i * static_cast<size_t>(dim) + static_cast<size_t>(j)];
      x = normal(rng);
      norm += x * x;
    }
    for (int j = 0; j < dim; ++j)
      v[i * static_cast<size_t>(dim) + static_cast<size_t>(j)] /= std::sqrt(norm);
  }
  return v;
}

class TempDir {
 public:
  TempDir()
      : path_(fs::temp_directory_path() /
              ("galley-index-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++))) {
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

TEST(VectorIndexTest, ApproximateSearchRecallsWhatExactSearchFinds) {
  constexpr int kDim = 32;
  const std::vector<float> data = UnitVectors(3000, kDim, 1);
  const std::vector<float> queries = UnitVectors(100, kDim, 2);
  auto index = VectorIndex::Build(data, kDim, {16, 200, 64});
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->size(), 3000u);
  double recall = 0;
  for (size_t q = 0; q < 100; ++q) {
    absl::Span<const float> query(queries.data() + q * kDim, kDim);
    const std::vector<Hit> approx = index->Search(query, 10);
    const std::vector<Hit> exact = ExactSearch(data, kDim, query, 10);
    ASSERT_EQ(approx.size(), 10u);
    for (size_t i = 1; i < approx.size(); ++i) EXPECT_GE(approx[i - 1].score, approx[i].score);
    recall += RecallAtK(approx, exact);
  }
  // Random 32-dimensional vectors are the hard case for a graph index; real embeddings do better.
  EXPECT_GT(recall / 100, 0.9);
}

TEST(VectorIndexTest, AVectorFindsItselfFirstWithScoreOne) {
  constexpr int kDim = 16;
  const std::vector<float> data = UnitVectors(500, kDim, 3);
  auto index = VectorIndex::Build(data, kDim, {});
  ASSERT_TRUE(index.ok());
  for (uint32_t id : {0u, 17u, 499u}) {
    auto hits = index->Search({data.data() + id * kDim, kDim}, 3);
    ASSERT_FALSE(hits.empty());
    EXPECT_EQ(hits[0].id, id);
    EXPECT_NEAR(hits[0].score, 1.0f, 1e-5);
  }
}

TEST(VectorIndexTest, SavedIndexLoadsAndAnswersTheSame) {
  constexpr int kDim = 24;
  const std::vector<float> data = UnitVectors(800, kDim, 4);
  const std::vector<float> queries = UnitVectors(20, kDim, 5);
  auto built = VectorIndex::Build(data, kDim, {8, 100, 50});
  ASSERT_TRUE(built.ok());
  TempDir dir;
  ASSERT_TRUE(built->Save(dir.path()).ok());
  auto loaded = VectorIndex::Load(dir.path(), 50);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->size(), 800u);
  EXPECT_EQ(loaded->dim(), kDim);
  EXPECT_EQ(loaded->params().m, 8);
  for (size_t q = 0; q < 20; ++q) {
    absl::Span<const float> query(queries.data() + q * kDim, kDim);
    auto a = built->Search(query, 5);
    auto b = loaded->Search(query, 5);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].id, b[i].id);
  }
}

TEST(VectorIndexTest, BrokenIndexFoldersAreClearErrors) {
  constexpr int kDim = 8;
  const std::vector<float> data = UnitVectors(200, kDim, 6);
  auto built = VectorIndex::Build(data, kDim, {});
  ASSERT_TRUE(built.ok());
  TempDir dir;
  EXPECT_EQ(VectorIndex::Load(dir.path(), 10).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(built->Save(dir.path()).ok());
  const fs::path file = dir.path() / "index.hnsw";
  const auto size = fs::file_size(file);
  {  // one byte changed
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2));
    f.put('\x5a');
  }
  auto altered = VectorIndex::Load(dir.path(), 10);
  EXPECT_EQ(altered.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(altered.status().message()), HasSubstr("rebuild the index"));
  fs::resize_file(file, size / 3);  // truncated
  EXPECT_EQ(VectorIndex::Load(dir.path(), 10).status().code(), absl::StatusCode::kDataLoss);
  std::ofstream(dir.path() / "index.json") << "{\"format\": \"something else\"}";
  EXPECT_EQ(VectorIndex::Load(dir.path(), 10).status().code(), absl::StatusCode::kDataLoss);
}

TEST(VectorIndexTest, BuildRefusesBadInput) {
  EXPECT_FALSE(VectorIndex::Build({}, 4, {}).ok());
  const std::vector<float> ragged(10, 0.5f);
  EXPECT_THAT(std::string(VectorIndex::Build(ragged, 4, {}).status().message()),
              HasSubstr("whole number of 4-float vectors"));
  EXPECT_FALSE(VectorIndex::Build(ragged, 0, {}).ok());
  EXPECT_FALSE(VectorIndex::Build(ragged, 5, {1, 10, 10}).ok());
}

}  // namespace
}  // namespace galley::retrieval
