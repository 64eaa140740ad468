#include "model/text_classifier.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace galley::model {
namespace {

using ::testing::HasSubstr;

// An inner model with the text classifier's contract: ids [batch, tokens] -> probabilities
// [batch, 2], where a row's positive probability grows with the count of id 2 ("good") and
// padding (0) changes nothing. Records the ids tensors it was given.
class CountingModel final : public Backend {
 public:
  CountingModel() {
    md_.name = "toy";
    md_.version = "3";
    md_.platform = "test";
    md_.max_batch_size = 8;
    md_.inputs = {{"input_ids", DataType::kInt64, {-1, -1}}};
    md_.outputs = {{"probabilities", DataType::kFp32, {-1, 2}}};
  }
  const ModelMetadata& Metadata() const override { return md_; }
  absl::Status Load() override { return absl::OkStatus(); }
  std::vector<absl::StatusOr<InferOutput>> Infer(
      absl::Span<const InferInput* const> batch) override {
    std::vector<absl::StatusOr<InferOutput>> out;
    for (const InferInput* in : batch) {
      const Tensor& ids = in->inputs.at(0);
      seen.push_back(ids.shape);
      InferOutput o;
      Tensor p{"probabilities", DataType::kFp32, {ids.shape[0], 2}, {}, {}};
      for (int64_t r = 0; r < ids.shape[0]; ++r) {
        int good = 0;
        for (int64_t t = 0; t < ids.shape[1]; ++t)
          good += ids.At<int64_t>(r * ids.shape[1] + t) == 2;
        const float pos = 1.0f - 1.0f / static_cast<float>(2 + good);
        p.Append<float>(1.0f - pos);
        p.Append<float>(pos);
      }
      o.outputs.push_back(std::move(p));
      out.push_back(std::move(o));
    }
    return out;
  }
  std::vector<std::vector<int64_t>> seen;

 private:
  ModelMetadata md_;
};

TextClassifierOptions Options() { return {"input_ids", "probabilities", {"Negative", "Positive"}}; }

WordTokenizer Tokenizer() {
  auto t = WordTokenizer::FromVocab({"[PAD]", "[UNK]", "good", "bad"}, 4);
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(t).value();
}

TEST(TextClassifierTest, PublicContract) {
  auto tc = TextClassifier::Create(std::make_unique<CountingModel>(), Tokenizer(), Options());
  ASSERT_TRUE(tc.ok()) << tc.status();
  const ModelMetadata& md = (*tc)->Metadata();
  EXPECT_EQ(md.name, "toy");
  EXPECT_EQ(md.version, "3");
  EXPECT_EQ(md.max_batch_size, 8);
  ASSERT_EQ(md.inputs.size(), 1u);
  EXPECT_EQ(md.inputs[0].name, "text");
  EXPECT_EQ(md.inputs[0].datatype, DataType::kBytes);
  ASSERT_EQ(md.outputs.size(), 3u);
  EXPECT_EQ(md.outputs[0].name, "label");
  EXPECT_EQ(md.outputs[1].name, "probability");
  EXPECT_EQ(md.outputs[2].shape, (std::vector<int64_t>{-1, 2}));
}

TEST(TextClassifierTest, PrepareTokenizesAndPadsWithinARequest) {
  auto tc = TextClassifier::Create(std::make_unique<CountingModel>(), Tokenizer(), Options());
  ASSERT_TRUE(tc.ok());
  InferInput in;
  in.inputs.push_back({"text", DataType::kBytes, {2}, {}, {"good good bad", "meh"}});
  auto len = (*tc)->Prepare(in);
  ASSERT_TRUE(len.ok()) << len.status();
  EXPECT_EQ(*len, 3);
  ASSERT_EQ(in.inputs.size(), 1u);
  const Tensor& ids = in.inputs[0];
  EXPECT_EQ(ids.name, "input_ids");
  EXPECT_EQ(ids.shape, (std::vector<int64_t>{2, 3}));
  std::vector<int64_t> got;
  for (int i = 0; i < 6; ++i) got.push_back(ids.At<int64_t>(i));
  EXPECT_EQ(got, (std::vector<int64_t>{2, 2, 3, 1, 0, 0}));
}

TEST(TextClassifierTest, InferLabelsEachRow) {
  auto tc = TextClassifier::Create(std::make_unique<CountingModel>(), Tokenizer(), Options());
  ASSERT_TRUE(tc.ok());
  InferInput a, b;
  a.inputs.push_back({"text", DataType::kBytes, {1}, {}, {"good good"}});
  b.inputs.push_back({"text", DataType::kBytes, {2}, {}, {"bad", "GOOD!"}});
  ASSERT_TRUE((*tc)->Prepare(a).ok());
  ASSERT_TRUE((*tc)->Prepare(b).ok());
  std::vector<const InferInput*> batch = {&a, &b};
  auto results = (*tc)->Infer(batch);
  ASSERT_EQ(results.size(), 2u);
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  ASSERT_TRUE(results[1].ok()) << results[1].status();
  const InferOutput& ra = *results[0];
  EXPECT_EQ(ra.outputs[0].bytes, (std::vector<std::string>{"Positive"}));
  EXPECT_FLOAT_EQ(ra.outputs[1].At<float>(0), 0.75f);
  const InferOutput& rb = *results[1];
  EXPECT_EQ(rb.outputs[0].bytes, (std::vector<std::string>{"Negative", "Positive"}));
  EXPECT_FLOAT_EQ(rb.outputs[1].At<float>(0), 0.5f);  // a tie goes to the first label
  EXPECT_FLOAT_EQ(rb.outputs[1].At<float>(1), 1.0f - 1.0f / 3.0f);
  EXPECT_EQ(rb.outputs[2].shape, (std::vector<int64_t>{2, 2}));
}

TEST(TextClassifierTest, BadTextFailsPrepareWithAClearError) {
  auto tc = TextClassifier::Create(std::make_unique<CountingModel>(), Tokenizer(), Options());
  ASSERT_TRUE(tc.ok());
  InferInput in;
  in.inputs.push_back({"text", DataType::kBytes, {2}, {}, {"fine", std::string("\xff\xfe", 2)}});
  auto len = (*tc)->Prepare(in);
  ASSERT_FALSE(len.ok());
  EXPECT_EQ(len.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(len.status().message()), HasSubstr("text[1]"));
  EXPECT_THAT(std::string(len.status().message()), HasSubstr("UTF-8"));
}

TEST(TextClassifierTest, CreateRejectsModelsThatDoNotFit) {
  auto wrong_input = Options();
  wrong_input.ids_input = "tokens";
  auto r1 = TextClassifier::Create(std::make_unique<CountingModel>(), Tokenizer(), wrong_input);
  ASSERT_FALSE(r1.ok());
  EXPECT_THAT(std::string(r1.status().message()), HasSubstr("'tokens'"));
  auto wrong_labels = Options();
  wrong_labels.labels = {"a", "b", "c"};
  auto r2 = TextClassifier::Create(std::make_unique<CountingModel>(), Tokenizer(), wrong_labels);
  ASSERT_FALSE(r2.ok());
  EXPECT_THAT(std::string(r2.status().message()), HasSubstr("2 classes but 3 labels"));
}

}  // namespace
}  // namespace galley::model
