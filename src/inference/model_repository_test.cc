#include "inference/model_repository.h"

#include <fstream>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace galley::inference {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class ModelRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    root_ = fs::temp_directory_path() / ("galley-repo-" + std::to_string(rd()));
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  void Write(const fs::path& rel, const std::string& text) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel) << text;
  }

  fs::path root_;
};

TEST_F(ModelRepositoryTest, PicksTheHighestVersionHoldingTheModelFile) {
  Write("a/config.json", R"({"platform": "onnxruntime_onnx", "max_batch_size": 4})");
  Write("a/1/model.onnx", "x");
  Write("a/3/model.onnx", "x");
  Write("a/10/model.onnx", "x");
  Write("a/11/README", "a version folder without the model file is skipped");
  Write("a/latest/model.onnx", "not a number: ignored");
  auto entries = ScanRepository(root_);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 1u);
  const RepositoryEntry& e = (*entries)[0];
  ASSERT_TRUE(e.status.ok()) << e.status;
  EXPECT_EQ(e.location.version, "10");
  EXPECT_EQ(e.location.version_dir, root_ / "a" / "10");
  EXPECT_EQ(e.config.max_batch_size, 4);
}

TEST_F(ModelRepositoryTest, BrokenModelsAreEntriesWithErrorsAndDoNotHideOthers) {
  Write("good/config.json", R"({"platform": "galley_vader", "max_batch_size": 8})");
  Write("good/1/.keep", "");
  Write("no_config/1/model.onnx", "x");
  Write("bad_config/config.json", R"({"platform": "galley_vader", "max_batch_size": "many"})");
  Write("no_version/config.json", R"({"platform": "onnxruntime_onnx"})");
  Write("no_version/model.onnx", "not in a version folder");
  Write(".hidden/config.json", "{}");
  auto entries = ScanRepository(root_);
  ASSERT_TRUE(entries.ok()) << entries.status();
  // Sorted by name; the hidden folder and the folder without a configuration are not models.
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].name, "bad_config");
  EXPECT_THAT(std::string((*entries)[0].status.message()), HasSubstr("'max_batch_size'"));
  EXPECT_EQ((*entries)[1].name, "good");
  EXPECT_TRUE((*entries)[1].status.ok());
  EXPECT_EQ((*entries)[1].location.version, "1");
  EXPECT_EQ((*entries)[2].name, "no_version");
  EXPECT_THAT(std::string((*entries)[2].status.message()),
              HasSubstr("no numbered version folder holding model.onnx"));
}

TEST_F(ModelRepositoryTest, MissingRepositoryIsAnError) {
  auto entries = ScanRepository(root_ / "nope");
  ASSERT_FALSE(entries.ok());
  EXPECT_THAT(std::string(entries.status().message()), HasSubstr("is not a folder"));
}

TEST(BackendRegistryTest, RejectsDuplicatePlatforms) {
  BackendRegistry r;
  auto factory = [](const ModelConfig&,
                    const ModelLocation&) -> absl::StatusOr<std::unique_ptr<model::Backend>> {
    return absl::UnimplementedError("x");
  };
  ASSERT_TRUE(r.Register("p", factory).ok());
  EXPECT_EQ(r.Register("p", factory).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(r.Find("p"), nullptr);
  EXPECT_EQ(r.Find("q"), nullptr);
}

}  // namespace
}  // namespace galley::inference
