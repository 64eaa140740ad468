#include "model/vader_backend.h"

#include "gtest/gtest.h"

namespace galley::model {
namespace {

InferInput Texts(std::vector<std::string> texts) {
  InferInput in;
  Tensor t{"text", DataType::kBytes, {static_cast<int64_t>(texts.size())}, {}, std::move(texts)};
  in.inputs.push_back(std::move(t));
  return in;
}

TEST(VaderBackendTest, MetadataDescribesTheProtocolSurface) {
  VaderBackend b("vader", 32);
  const ModelMetadata& md = b.Metadata();
  EXPECT_EQ(md.name, "vader");
  EXPECT_EQ(md.max_batch_size, 32);
  ASSERT_EQ(md.inputs.size(), 1u);
  EXPECT_EQ(md.inputs[0].datatype, DataType::kBytes);
  ASSERT_EQ(md.outputs.size(), 3u);
  EXPECT_EQ(md.outputs[0].name, "label");
  EXPECT_EQ(md.outputs[1].name, "probability");
  EXPECT_EQ(md.outputs[1].datatype, DataType::kFp32);
}

TEST(VaderBackendTest, BatchOfRequestsKeepsOrderAndIsolatesErrors) {
  VaderBackend b("vader");
  ASSERT_TRUE(b.Load().ok());
  const InferInput good =
      Texts({"VADER is smart, handsome, and funny.", "Today SUX!", "It is a table."});
  const InferInput bad = Texts({"fine", "\xff\xfe"});
  const InferInput one = Texts({"The book was good."});
  const InferInput* batch[] = {&good, &bad, &one};
  auto results = b.Infer(batch);
  ASSERT_EQ(results.size(), 3u);
  ASSERT_TRUE(results[0].ok());
  const auto& outs = results[0]->outputs;
  EXPECT_EQ(outs[0].bytes, (std::vector<std::string>{"Positive", "Negative", "Neutral"}));
  EXPECT_NEAR(outs[2].At<float>(0), 0.8316f, 1e-4);  // published compound scores
  EXPECT_NEAR(outs[2].At<float>(1), -0.5461f, 1e-4);
  EXPECT_NEAR(outs[1].At<float>(0), 0.5f + 0.8316f / 2, 1e-4);
  EXPECT_EQ(outs[0].shape, (std::vector<int64_t>{3}));
  ASSERT_FALSE(results[1].ok());
  EXPECT_EQ(results[1].status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(results[1].status().message().find("text[1]"), absl::string_view::npos);
  ASSERT_TRUE(results[2].ok());
  EXPECT_NEAR(results[2]->outputs[2].At<float>(0), 0.4404f, 1e-4);
}

TEST(VaderBackendTest, InferBeforeLoadFails) {
  VaderBackend b("vader");
  const InferInput in = Texts({"hello"});
  const InferInput* batch[] = {&in};
  auto results = b.Infer(batch);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace galley::model
