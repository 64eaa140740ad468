#include "inference/model_config.h"

#include <chrono>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace galley::inference {
namespace {

using ::testing::HasSubstr;

TEST(ModelConfigTest, FullConfig) {
  const char* text = R"({
    "name": "sentiment", "platform": "onnxruntime_onnx", "max_batch_size": 64,
    "input": [{"name": "input_ids", "datatype": "INT64", "dims": [-1]}],
    "output": [{"name": "probabilities", "datatype": "FP32", "dims": [2]}],
    "dynamic_batching": {"preferred_batch_size": [32, 16], "max_queue_delay_microseconds": 500,
                         "max_queue_size": 256, "length_buckets": [8, 16, 32]},
    "instance_group": {"count": 2},
    "parameters": {"intra_op_threads": 1},
    "preprocess": {"kind": "word_tokenizer", "vocab": "vocab.txt", "max_length": 96,
                   "input": "input_ids"},
    "postprocess": {"kind": "classifier", "output": "probabilities",
                    "labels": ["Negative", "Positive"]}
  })";
  auto c = ParseModelConfig(text, "sentiment");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->platform, "onnxruntime_onnx");
  EXPECT_EQ(c->max_batch_size, 64);
  ASSERT_EQ(c->inputs.size(), 1u);
  EXPECT_EQ(c->inputs[0].datatype, model::DataType::kInt64);
  EXPECT_EQ(c->inputs[0].dims, (std::vector<int64_t>{-1}));
  EXPECT_TRUE(c->dynamic_batching);
  EXPECT_EQ(c->batch.max_batch_size, 64);
  EXPECT_EQ(c->batch.preferred_batch_sizes, (std::vector<int>{16, 32}));
  EXPECT_EQ(c->batch.max_queue_delay, std::chrono::microseconds(500));
  EXPECT_EQ(c->batch.length_buckets, (std::vector<int64_t>{8, 16, 32}));
  EXPECT_EQ(c->batch.length_fill_ratio, 0.0);  // off unless set
  EXPECT_EQ(c->max_queue_size, 256u);
  EXPECT_EQ(c->instance_count, 2);
  ASSERT_TRUE(c->tokenizer.has_value());
  EXPECT_EQ(c->tokenizer->max_length, 96);
  ASSERT_TRUE(c->classifier.has_value());
  EXPECT_EQ(c->classifier->labels.size(), 2u);
  EXPECT_EQ(c->pad_inputs, (std::vector<std::string>{"input_ids"}));  // added for the tokenizer
}

TEST(ModelConfigTest, MinimalConfigHasBatchingOff) {
  auto c = ParseModelConfig(R"({"platform": "onnxruntime_onnx", "max_batch_size": 8})", "m");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->name, "m");
  EXPECT_FALSE(c->dynamic_batching);
  EXPECT_FALSE(c->batch.batching());
  EXPECT_EQ(c->instance_count, 1);
  EXPECT_FALSE(c->gpu_device.has_value());  // KIND_CPU unless asked
}

// Triton's instance kinds: KIND_GPU runs the model on the first of `gpus`, GPU 0 by default.
TEST(ModelConfigTest, GpuInstances) {
  auto c = ParseModelConfig(
      R"({"platform": "onnxruntime_onnx", "instance_group": {"kind": "KIND_GPU", "gpus": [3]}})",
      "m");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->gpu_device, 3);
  c = ParseModelConfig(
      R"({"platform": "onnxruntime_onnx", "instance_group": {"kind": "KIND_GPU"}})", "m");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->gpu_device, 0);
  c = ParseModelConfig(
      R"({"platform": "onnxruntime_onnx", "instance_group": {"kind": "KIND_CPU"}})", "m");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->gpu_device.has_value());
}

TEST(ModelConfigTest, LengthFillRatio) {
  const char* text = R"({"platform": "onnxruntime_onnx", "max_batch_size": 8,
    "dynamic_batching": {"length_buckets": [8, 16], "length_fill_ratio": 0.75,
                         "length_fill_rows": 6}})";
  auto c = ParseModelConfig(text, "m");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->batch.length_fill_ratio, 0.75);
  EXPECT_EQ(c->batch.length_fill_rows, 6);
  auto one = ParseModelConfig(R"({"platform": "onnxruntime_onnx", "max_batch_size": 8,
    "dynamic_batching": {"length_buckets": [8], "length_fill_ratio": 1}})",
                              "m");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->batch.length_fill_ratio, 1.0);
  EXPECT_EQ(one->batch.length_fill_rows, 0);  // max_batch_size
}

TEST(ModelConfigTest, WordpieceEmbeddingPadsEveryTokenInput) {
  auto c = ParseModelConfig(R"({"platform": "onnxruntime_onnx", "max_batch_size": 8,
      "preprocess": {"kind": "wordpiece", "vocab": "vocab.txt", "input": "ids",
                     "mask_input": "mask", "type_input": "types"},
      "postprocess": {"kind": "embedding", "output": "vec"}})",
                            "minilm");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->tokenizer->kind, "wordpiece");
  EXPECT_EQ(c->tokenizer->max_length, 256);
  EXPECT_EQ(c->embedding->output, "vec");
  EXPECT_FALSE(c->classifier.has_value());
  EXPECT_EQ(c->pad_inputs, (std::vector<std::string>{"ids", "mask", "types"}));
}

TEST(ModelConfigTest, ErrorsNameTheField) {
  struct Case {
    const char* text;
    const char* error;
  };
  const Case cases[] = {
      {"not json", "not valid JSON"},
      {"[1]", "must be a JSON object"},
      {R"({"max_batch_size": 8})", "'platform': is required"},
      {R"({"platform": "tensorflow"})", "unknown platform 'tensorflow'"},
      {R"({"platform": "galley_vader", "name": "other"})", "differs from the model's folder"},
      {R"({"platform": "galley_vader", "colour": 1})", "'colour': unknown field"},
      {R"({"platform": "galley_vader", "max_batch_size": -1})", "'max_batch_size': must be in"},
      {R"({"platform": "galley_vader", "max_batch_size": "8"})", "must be an integer"},
      {R"({"platform": "galley_vader", "dynamic_batching": {}})", "needs max_batch_size"},
      {R"({"platform": "galley_vader", "max_batch_size": 8,
           "dynamic_batching": {"preferred_batch_size": [16]}})",
       "larger than max_batch_size"},
      {R"({"platform": "galley_vader", "max_batch_size": 8,
           "dynamic_batching": {"length_buckets": [16, 8]}})",
       "strictly ascending"},
      {R"({"platform": "galley_vader", "max_batch_size": 8,
           "dynamic_batching": {"length_buckets": [8], "length_fill_ratio": 0}})",
       "'dynamic_batching.length_fill_ratio': must be in (0, 1]"},
      {R"({"platform": "galley_vader", "max_batch_size": 8,
           "dynamic_batching": {"length_buckets": [8], "length_fill_ratio": 1.5}})",
       "'dynamic_batching.length_fill_ratio': must be in (0, 1]"},
      {R"({"platform": "galley_vader", "max_batch_size": 8,
           "dynamic_batching": {"length_buckets": [8], "length_fill_ratio": "0.5"}})",
       "'dynamic_batching.length_fill_ratio': must be a number"},
      {R"({"platform": "galley_vader", "max_batch_size": 8,
           "dynamic_batching": {"length_fill_ratio": 0.5}})",
       "needs dynamic_batching.length_buckets"},
      {R"({"platform": "galley_vader", "max_batch_size": 8,
           "dynamic_batching": {"length_buckets": [8], "length_fill_ratio": 0.5,
                                "length_fill_rows": 9}})",
       "'dynamic_batching.length_fill_rows': must be in [2, 8]"},
      {R"({"platform": "galley_vader", "max_batch_size": 8,
           "dynamic_batching": {"length_buckets": [8], "length_fill_rows": 4}})",
       "'dynamic_batching.length_fill_rows': needs dynamic_batching.length_fill_ratio"},
      {R"({"platform": "galley_vader", "max_batch_size": 8,
           "dynamic_batching": {"max_queue_delay": 5}})",
       "'dynamic_batching.max_queue_delay': unknown"},
      {R"({"platform": "galley_vader", "input": [{"name": "x", "datatype": "FP33", "dims": [1]}]})",
       "unknown datatype 'FP33'"},
      {R"({"platform": "galley_vader", "input": [{"name": "x", "datatype": "FP32"}]})",
       "'input[].dims': is required"},
      {R"({"platform": "galley_vader", "input": [{"name": "x", "datatype": "FP32", "dims": [1]},
                                                 {"name": "x", "datatype": "FP32", "dims": [1]}]})",
       "appears twice"},
      {R"({"platform": "onnxruntime_onnx", "max_batch_size": 8,
           "preprocess": {"kind": "word_tokenizer", "vocab": "v.txt", "input": "ids"}})",
       "go together"},
      {R"({"platform": "onnxruntime_onnx", "max_batch_size": 8,
           "preprocess": {"kind": "bpe", "vocab": "v.txt", "input": "ids"}})",
       "unknown kind 'bpe'"},
      {R"({"platform": "onnxruntime_onnx", "max_batch_size": 8,
           "preprocess": {"kind": "wordpiece", "vocab": "v.txt", "input": "ids",
                          "mask_input": "m"},
           "postprocess": {"kind": "classifier", "output": "p", "labels": ["a", "b"]}})",
       "a wordpiece pre-processing and an embedding post-processing go together"},
      {R"({"platform": "onnxruntime_onnx", "max_batch_size": 8,
           "preprocess": {"kind": "wordpiece", "vocab": "v.txt", "input": "ids"},
           "postprocess": {"kind": "embedding", "output": "e"}})",
       "'preprocess.mask_input'"},
      {R"({"platform": "onnxruntime_onnx", "max_batch_size": 8,
           "preprocess": {"kind": "word_tokenizer", "vocab": "v.txt", "input": "ids",
                          "mask_input": "m"},
           "postprocess": {"kind": "classifier", "output": "p", "labels": ["a", "b"]}})",
       "'preprocess.mask_input': unknown"},
      {R"({"platform": "onnxruntime_onnx", "max_batch_size": 8,
           "preprocess": {"kind": "wordpiece", "vocab": "v.txt", "input": "ids",
                          "mask_input": "m", "max_length": 2},
           "postprocess": {"kind": "embedding", "output": "e"}})",
       "'preprocess.max_length': must be in [3, 65536]"},
      {R"({"platform": "onnxruntime_onnx", "max_batch_size": 8,
           "preprocess": {"kind": "word_tokenizer", "vocab": "../etc/passwd", "input": "ids"},
           "postprocess": {"kind": "classifier", "output": "p", "labels": ["a", "b"]}})",
       "must be a file name in the model's folder"},
      {R"({"platform": "onnxruntime_onnx", "max_batch_size": 8,
           "preprocess": {"kind": "word_tokenizer", "vocab": "v.txt", "input": "ids"},
           "postprocess": {"kind": "classifier", "output": "p", "labels": ["only"]}})",
       "at least two labels"},
      {R"({"platform": "galley_vader", "instance_group": {"count": 0}})", "instance_group.count"},
      {R"({"platform": "onnxruntime_onnx", "instance_group": {"kind": "KIND_TPU"}})",
       "instance_group.kind"},
      {R"({"platform": "onnxruntime_onnx", "instance_group": {"gpus": [0]}})",
       "needs kind KIND_GPU"},
      {R"({"platform": "onnxruntime_onnx", "instance_group": {"kind": "KIND_GPU", "gpus": [0, 1]}})",
       "exactly one GPU"},
      {R"({"platform": "onnxruntime_onnx", "instance_group": {"kind": "KIND_GPU", "gpus": [-1]}})",
       "instance_group.gpus[0]"},
  };
  for (const Case& c : cases) {
    auto r = ParseModelConfig(c.text, "m");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.error)) << c.text;
  }
}

}  // namespace
}  // namespace galley::inference
