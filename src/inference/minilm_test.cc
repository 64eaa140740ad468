// The sentence-embedding model of models-retrieval/minilm (scripts/fetch_minilm.sh builds it) as
// the server loads it: its vectors against the reference implementation's
// (tests/data/minilm_golden.jsonl, sentence-transformers), alone and in one padded batch, and its
// public contract.
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"
#include "gtest/gtest.h"
#include "inference/builtin_backends.h"
#include "inference/model_repository.h"

namespace galley::inference {
namespace {

struct Golden {
  std::string text;
  std::vector<float> embedding;
};

std::vector<Golden> ReadGolden() {
  std::ifstream file(GALLEY_TEST_DATA_DIR "/minilm_golden.jsonl", std::ios::binary);
  EXPECT_TRUE(file.is_open());
  std::vector<Golden> out;
  for (std::string line; std::getline(file, line);) {
    const boost::json::value v = boost::json::parse(line);
    Golden g;
    g.text = std::string(v.at("text").as_string());
    for (const auto& x : v.at("embedding").as_array()) {
      g.embedding.push_back(static_cast<float>(x.as_double()));
    }
    out.push_back(std::move(g));
  }
  return out;
}

std::unique_ptr<model::Backend> LoadMinilm() {
  auto entries = ScanRepository(GALLEY_RETRIEVAL_MODELS_DIR);
  EXPECT_TRUE(entries.ok()) << entries.status();
  if (!entries.ok()) return nullptr;
  for (RepositoryEntry& e : *entries) {
    if (e.name != "minilm") continue;
    EXPECT_TRUE(e.status.ok()) << e.status << " (scripts/fetch_minilm.sh builds the model)";
    if (!e.status.ok()) return nullptr;
    BackendRegistry backends = BuiltinBackends();
    auto backend = (*backends.Find(e.config.platform))(e.config, e.location);
    EXPECT_TRUE(backend.ok()) << backend.status();
    if (!backend.ok()) return nullptr;
    EXPECT_TRUE((*backend)->Load().ok());
    return std::move(backend).value();
  }
  ADD_FAILURE() << "no minilm model in " << GALLEY_RETRIEVAL_MODELS_DIR;
  return nullptr;
}

model::InferInput TextInput(const std::vector<std::string>& texts) {
  model::Tensor t{"text", model::DataType::kBytes, {static_cast<int64_t>(texts.size())}, {}, {}};
  t.bytes = texts;
  return model::InferInput{{std::move(t)}};
}

// Largest absolute difference between row `row` of `out` and `want`.
double MaxDiff(const model::Tensor& out, size_t row, const std::vector<float>& want) {
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    worst = std::max(worst, std::abs(double(out.At<float>(row * want.size() + i)) - want[i]));
  }
  return worst;
}

TEST(MinilmTest, HasTheTextToEmbeddingContract) {
  auto m = LoadMinilm();
  ASSERT_NE(m, nullptr);
  const model::ModelMetadata& md = m->Metadata();
  ASSERT_EQ(md.inputs.size(), 1u);
  EXPECT_EQ(md.inputs[0].name, "text");
  ASSERT_EQ(md.outputs.size(), 1u);
  EXPECT_EQ(md.outputs[0].name, "embedding");
  EXPECT_EQ(md.outputs[0].shape, (std::vector<int64_t>{-1, 384}));
}

TEST(MinilmTest, MatchesTheReferenceAloneAndInOnePaddedBatch) {
  auto m = LoadMinilm();
  ASSERT_NE(m, nullptr);
  const std::vector<Golden> golden = ReadGolden();
  ASSERT_EQ(golden.size(), 50u);
  // Each text alone, then the texts as separate requests in one batch (padded to the longest).
  std::vector<model::InferInput> inputs;
  for (const Golden& g : golden) {
    inputs.push_back(TextInput({g.text}));
    ASSERT_TRUE(m->Prepare(inputs.back()).ok());
  }
  std::vector<const model::InferInput*> batch;
  for (const auto& in : inputs) batch.push_back(&in);
  auto together = m->Infer(batch);
  ASSERT_EQ(together.size(), golden.size());
  for (size_t i = 0; i < golden.size(); ++i) {
    auto alone = m->Infer({&inputs[i]});
    ASSERT_TRUE(alone[0].ok()) << alone[0].status();
    ASSERT_TRUE(together[i].ok()) << together[i].status();
    EXPECT_LT(MaxDiff(alone[0]->outputs[0], 0, golden[i].embedding), 1e-5) << golden[i].text;
    EXPECT_LT(MaxDiff(together[i]->outputs[0], 0, golden[i].embedding), 1e-5) << golden[i].text;
  }
}

TEST(MinilmTest, ManyTextsInOneRequestGiveOneRowEach) {
  auto m = LoadMinilm();
  ASSERT_NE(m, nullptr);
  const std::vector<Golden> golden = ReadGolden();
  model::InferInput in = TextInput({golden[0].text, golden[9].text, golden[1].text});
  ASSERT_TRUE(m->Prepare(in).ok());
  auto out = m->Infer({&in});
  ASSERT_TRUE(out[0].ok()) << out[0].status();
  const model::Tensor& e = out[0]->outputs[0];
  EXPECT_EQ(e.shape, (std::vector<int64_t>{3, 384}));
  EXPECT_LT(MaxDiff(e, 0, golden[0].embedding), 1e-5);
  EXPECT_LT(MaxDiff(e, 1, golden[9].embedding), 1e-5);
  EXPECT_LT(MaxDiff(e, 2, golden[1].embedding), 1e-5);
}

TEST(MinilmTest, RefusesInvalidTextWithTheRow) {
  auto m = LoadMinilm();
  ASSERT_NE(m, nullptr);
  model::InferInput in = TextInput({"fine", std::string("\xff\xfe", 2)});
  auto st = m->Prepare(in);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(st.status().message()).find("text[1]"), std::string::npos);
}

}  // namespace
}  // namespace galley::inference
