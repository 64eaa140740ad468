// OnnxBackend against real ONNX Runtime on the tiny models in tests/data/onnx
// (tools/make_test_models.py).
#include "model/onnx_backend.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <string>
#include <thread>

#include "common/strings.h"
#include "model/onnx_session.h"

namespace galley::model {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ONNX Runtime's telemetry client writes mat-debug-<pid>.log and .ses into $TMPDIR when the
// first Ort::Env is made. Point TMPDIR at a folder of this process's own, removed at the end, so
// that running the tests leaves nothing behind (not even in /tmp when TMPDIR is unset).
class PrivateTmpdir : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* parent = getenv("TMPDIR");
    std::string pattern = StrCat(parent && *parent ? parent : "/tmp", "/onnx_backend_test.XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) return;
    dir_ = pattern;
    setenv("TMPDIR", dir_.c_str(), 1);
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

 private:
  std::string dir_;
};
const auto* const kPrivateTmpdir = ::testing::AddGlobalTestEnvironment(new PrivateTmpdir);

std::filesystem::path Model(const std::string& file) {
  return std::filesystem::path(GALLEY_TEST_DATA_DIR) / "onnx" / file;
}

OnnxBackendOptions Options(const std::string& file, int max_batch_size) {
  OnnxBackendOptions o;
  o.name = "m";
  o.model_path = Model(file);
  o.max_batch_size = max_batch_size;
  return o;
}

std::unique_ptr<OnnxBackend> MustCreate(OnnxBackendOptions options) {
  auto b = OnnxBackend::Create(std::move(options));
  EXPECT_TRUE(b.ok()) << b.status();
  if (!b.ok()) return nullptr;
  EXPECT_TRUE((*b)->Load().ok());
  return *std::move(b);
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

template <typename T>
Tensor Make(std::string name, DataType type, std::vector<int64_t> shape, std::vector<T> values) {
  Tensor t{std::move(name), type, std::move(shape), {}, {}};
  for (T v : values) t.Append<T>(v);
  return t;
}
Tensor F32(std::string name, std::vector<int64_t> shape, std::vector<float> values) {
  return Make<float>(std::move(name), DataType::kFp32, std::move(shape), std::move(values));
}
Tensor I64(std::string name, std::vector<int64_t> shape, std::vector<int64_t> values) {
  return Make<int64_t>(std::move(name), DataType::kInt64, std::move(shape), std::move(values));
}

template <typename T>
std::vector<T> Values(const Tensor& t) {
  std::vector<T> out;
  for (int64_t i = 0; i < t.element_count(); ++i) out.push_back(t.At<T>(i));
  return out;
}

// add_mul's inputs: `rows` rows of a = base + i, b = 2.
InferInput AddMulRequest(int64_t rows, float base) {
  std::vector<float> a, b;
  for (int64_t i = 0; i < rows * 4; ++i) {
    a.push_back(base + static_cast<float>(i));
    b.push_back(2.0f);
  }
  return InferInput{{F32("a", {rows, 4}, a), F32("b", {rows, 4}, b)}};
}

std::vector<absl::StatusOr<InferOutput>> InferAll(OnnxBackend& b,
                                                  const std::vector<InferInput>& requests) {
  std::vector<const InferInput*> batch;
  for (const InferInput& r : requests) batch.push_back(&r);
  return b.Infer(batch);
}

TEST(OnnxRuntimeTest, VersionIsReported) {
  EXPECT_THAT(OnnxRuntimeVersion(), ::testing::StartsWith("1."));
}

TEST(OnnxBackendTest, MetadataComesFromTheModel) {
  auto b = MustCreate(Options("add_mul.onnx", 8));
  ASSERT_TRUE(b);
  const ModelMetadata& md = b->Metadata();
  EXPECT_EQ(md.name, "m");
  EXPECT_EQ(md.version, "1");
  EXPECT_EQ(md.platform, "onnxruntime_onnx");
  EXPECT_EQ(md.max_batch_size, 8);
  ASSERT_EQ(md.inputs.size(), 2u);
  EXPECT_EQ(md.inputs[0].name, "a");
  EXPECT_EQ(md.inputs[0].datatype, DataType::kFp32);
  EXPECT_THAT(md.inputs[0].shape, ElementsAre(-1, 4));
  EXPECT_EQ(md.inputs[1].name, "b");
  ASSERT_EQ(md.outputs.size(), 2u);
  EXPECT_EQ(md.outputs[0].name, "sum");
  EXPECT_EQ(md.outputs[1].name, "product");
  EXPECT_THAT(md.outputs[1].shape, ElementsAre(-1, 4));

  auto seq = MustCreate(Options("seq_sum.onnx", 4));
  ASSERT_TRUE(seq);
  EXPECT_EQ(seq->Metadata().inputs[0].datatype, DataType::kInt64);
  EXPECT_THAT(seq->Metadata().inputs[0].shape, ElementsAre(-1, -1));
  EXPECT_THAT(seq->Metadata().outputs[0].shape, ElementsAre(-1, 1));
}

// A model asked to run on a GPU where ONNX Runtime has none (this build is CPU only) loads and
// answers on the CPU; the warning names why.
TEST(OnnxBackendTest, AGpuModelWithoutAGpuRunsOnTheCpu) {
  OnnxBackendOptions o = Options("add_mul.onnx", 8);
  o.gpu_device = 0;
  auto b = MustCreate(o);
  ASSERT_TRUE(b);
  const std::vector<InferInput> requests = {
      {{F32("a", {1, 4}, {1, 2, 3, 4}), F32("b", {1, 4}, {1, 1, 1, 1})}}};
  auto results = InferAll(*b, requests);
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  EXPECT_THAT(Values<float>(results[0]->outputs[0]), ElementsAre(2, 3, 4, 5));
  auto session = OnnxSession::Open(Model("add_mul.onnx"), 1, 0);
  ASSERT_TRUE(session.ok()) << session.status();
  if ((*session)->device() == "cpu") {  // the CPU-only ONNX Runtime this project ships
    EXPECT_FALSE((*session)->device_note().empty());
  } else {
    EXPECT_EQ((*session)->device(), "cuda:0");
  }
}

TEST(OnnxBackendTest, FixedShapeModelWithoutBatching) {
  auto b = MustCreate(Options("fixed.onnx", 0));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->Metadata().max_batch_size, 0);
  EXPECT_THAT(b->Metadata().inputs[0].shape, ElementsAre(2, 3));
  EXPECT_THAT(b->Metadata().outputs[0].shape, ElementsAre(3));
  const std::vector<InferInput> requests = {
      {{F32("x", {2, 3}, {1, 2, 3, 10, 20, 30})}},
      {{F32("x", {3, 2}, {1, 2, 3, 4, 5, 6})}},  // wrong shape: fails alone
      {{F32("x", {2, 3}, {0, 0, 0, 1, 1, 1})}},
  };
  auto results = InferAll(*b, requests);
  ASSERT_EQ(results.size(), 3u);
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  EXPECT_THAT(results[0]->outputs[0].shape, ElementsAre(3));
  EXPECT_THAT(Values<float>(results[0]->outputs[0]), ElementsAre(11, 22, 33));
  EXPECT_EQ(results[1].status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(results[1].status()), HasSubstr("'x'"));
  ASSERT_TRUE(results[2].ok()) << results[2].status();
  EXPECT_THAT(Values<float>(results[2]->outputs[0]), ElementsAre(1, 1, 1));
}

TEST(OnnxBackendTest, BatchingNeedsADynamicFirstDimension) {
  auto b = OnnxBackend::Create(Options("fixed.onnx", 4));
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(b.status()), HasSubstr("'x'"));
  EXPECT_THAT(Message(b.status()), HasSubstr("batch dimension"));
}

TEST(OnnxBackendTest, BatchGivesTheSameOutputsAsOneByOne) {
  auto b = MustCreate(Options("add_mul.onnx", 16));
  ASSERT_TRUE(b);
  const std::vector<InferInput> requests = {AddMulRequest(1, 0), AddMulRequest(3, 100),
                                            AddMulRequest(0, 7), AddMulRequest(2, -50)};
  auto together = InferAll(*b, requests);
  ASSERT_EQ(together.size(), requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    auto alone = InferAll(*b, {requests[i]});
    ASSERT_TRUE(alone[0].ok()) << alone[0].status();
    ASSERT_TRUE(together[i].ok()) << together[i].status();
    ASSERT_EQ(together[i]->outputs.size(), 2u);
    for (size_t k = 0; k < 2; ++k) {
      const Tensor& t = together[i]->outputs[k];
      const Tensor& a = alone[0]->outputs[k];
      EXPECT_EQ(t.name, k == 0 ? "sum" : "product");
      EXPECT_EQ(t.shape, requests[i].inputs[0].shape);
      EXPECT_EQ(t.shape, a.shape);
      EXPECT_EQ(t.raw, a.raw);
    }
    // And the arithmetic is the model's.
    const Tensor& a = requests[i].inputs[0];
    for (int64_t e = 0; e < a.element_count(); ++e) {
      EXPECT_EQ(together[i]->outputs[0].At<float>(e), a.At<float>(e) + 2.0f);
      EXPECT_EQ(together[i]->outputs[1].At<float>(e), a.At<float>(e) * 2.0f);
    }
  }
}

TEST(OnnxBackendTest, PadsInputsToTheLongestInTheBatch) {
  OnnxBackendOptions o = Options("seq_sum.onnx", 8);
  o.pad_inputs = {"ids"};
  auto b = MustCreate(o);
  ASSERT_TRUE(b);
  const std::vector<InferInput> requests = {
      {{I64("ids", {1, 2}, {1, 2})}},
      {{I64("ids", {2, 4}, {1, 1, 1, 1, 5, 6, 7, 8})}},
      {{I64("ids", {1, 1}, {9})}},
  };
  auto results = InferAll(*b, requests);
  ASSERT_EQ(results.size(), 3u);
  for (const auto& r : results) ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(results[0]->outputs[0].shape, ElementsAre(1, 1));
  EXPECT_THAT(Values<float>(results[0]->outputs[0]), ElementsAre(3));
  EXPECT_THAT(results[1]->outputs[0].shape, ElementsAre(2, 1));
  EXPECT_THAT(Values<float>(results[1]->outputs[0]), ElementsAre(4, 26));
  EXPECT_THAT(Values<float>(results[2]->outputs[0]), ElementsAre(9));
  // An output that follows the padded length keeps it (documented).
  EXPECT_THAT(results[0]->outputs[1].shape, ElementsAre(1, 4));
  EXPECT_THAT(Values<int64_t>(results[0]->outputs[1]), ElementsAre(1, 2, 0, 0));
  EXPECT_THAT(Values<int64_t>(results[2]->outputs[1]), ElementsAre(9, 0, 0, 0));
}

TEST(OnnxBackendTest, UnpaddedDynamicDimensionsRunInSeparateGroups) {
  auto b = MustCreate(Options("seq_sum.onnx", 8));  // no pad_inputs
  ASSERT_TRUE(b);
  const std::vector<InferInput> requests = {
      {{I64("ids", {1, 2}, {1, 2})}},
      {{I64("ids", {1, 3}, {1, 2, 3})}},
      {{I64("ids", {2, 2}, {4, 5, 6, 7})}},
  };
  auto results = InferAll(*b, requests);
  for (const auto& r : results) ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Values<float>(results[0]->outputs[0]), ElementsAre(3));
  EXPECT_THAT(Values<float>(results[1]->outputs[0]), ElementsAre(6));
  EXPECT_THAT(Values<float>(results[2]->outputs[0]), ElementsAre(9, 13));
  EXPECT_THAT(results[1]->outputs[1].shape, ElementsAre(1, 3));  // nothing padded
}

TEST(OnnxBackendTest, ABadRequestFailsAlone) {
  auto b = MustCreate(Options("add_mul.onnx", 16));
  ASSERT_TRUE(b);
  InferInput wrong_dims = AddMulRequest(1, 0);
  wrong_dims.inputs[1] = F32("b", {1, 5}, {1, 1, 1, 1, 1});
  InferInput wrong_type = AddMulRequest(1, 0);
  wrong_type.inputs[0].datatype = DataType::kInt32;
  InferInput missing = AddMulRequest(1, 0);
  missing.inputs.pop_back();
  InferInput wrong_rank = AddMulRequest(1, 0);
  wrong_rank.inputs[0].shape = {4};
  InferInput rows_differ = AddMulRequest(2, 0);
  rows_differ.inputs[1] = F32("b", {1, 4}, {1, 1, 1, 1});
  InferInput unknown = AddMulRequest(1, 0);
  unknown.inputs.push_back(F32("c", {1, 4}, {1, 1, 1, 1}));
  InferInput short_data = AddMulRequest(1, 0);
  short_data.inputs[0].raw.resize(3);
  const std::vector<InferInput> requests = {
      AddMulRequest(2, 1), wrong_dims,  wrong_type, missing,
      wrong_rank,          rows_differ, unknown,    short_data,
      AddMulRequest(1, 5)};
  auto results = InferAll(*b, requests);
  ASSERT_EQ(results.size(), requests.size());
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  EXPECT_THAT(Values<float>(results[0]->outputs[0]), ElementsAre(3, 4, 5, 6, 7, 8, 9, 10));
  ASSERT_TRUE(results.back().ok()) << results.back().status();
  EXPECT_THAT(Values<float>(results.back()->outputs[1]), ElementsAre(10, 12, 14, 16));
  const char* expected[] = {"'b'",  "'a'", "missing input 'b'", "'a'", "rows", "unknown input 'c'",
                            "bytes"};
  for (size_t i = 1; i + 1 < results.size(); ++i) {
    EXPECT_EQ(results[i].status().code(), absl::StatusCode::kInvalidArgument) << i;
    EXPECT_THAT(Message(results[i].status()), HasSubstr(expected[i - 1])) << i;
  }
}

TEST(OnnxBackendTest, MissingAndBrokenFilesGiveClearErrors) {
  auto missing = OnnxBackend::Create(Options("no_such_model.onnx", 0));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(missing.status()), HasSubstr("no_such_model.onnx"));

  auto broken = OnnxBackend::Create(Options("broken.onnx", 0));
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(broken.status()), HasSubstr("broken.onnx"));

  auto dir = OnnxBackend::Create(Options("", 0));  // the folder itself
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kNotFound);
}

Tensor Strings(std::string name, std::vector<int64_t> shape, std::vector<std::string> values) {
  Tensor t;
  t.name = std::move(name);
  t.datatype = DataType::kBytes;
  t.shape = std::move(shape);
  t.bytes = std::move(values);
  return t;
}

// ONNX STRING tensors are the protocol's BYTES (Triton's mapping): requests batched into one run
// come back to their own callers, element for element, embedded NUL bytes and empty strings
// included; a request whose elements do not fit its shape fails alone.
TEST(OnnxBackendTest, StringTensorsAreServedAsBytes) {
  auto b = MustCreate(Options("strings.onnx", 4));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->Metadata().inputs[0].datatype, DataType::kBytes);
  EXPECT_EQ(b->Metadata().outputs[0].datatype, DataType::kBytes);
  const std::string with_nul("a\0b", 3);
  const std::vector<InferInput> requests = {
      {{Strings("s", {2}, {"first", ""})}},
      {{Strings("s", {2}, {"only one element"})}},  // does not fit [2]
      {{Strings("s", {1}, {with_nul})}},
  };
  auto results = InferAll(*b, requests);
  ASSERT_EQ(results.size(), 3u);
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  EXPECT_THAT(results[0]->outputs[0].shape, ElementsAre(2));
  EXPECT_THAT(results[0]->outputs[0].bytes, ElementsAre("first", ""));
  EXPECT_EQ(results[1].status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(results[1].status()), HasSubstr("'s'"));
  ASSERT_TRUE(results[2].ok()) << results[2].status();
  EXPECT_THAT(results[2]->outputs[0].bytes, ElementsAre(with_nul));
}

TEST(OnnxBackendTest, BadOptionsAreRefused) {
  OnnxBackendOptions o = Options("seq_sum.onnx", 4);
  o.pad_inputs = {"tokens"};
  EXPECT_THAT(Message(OnnxBackend::Create(o).status()), HasSubstr("'tokens'"));
  o = Options("seq_sum.onnx", 0);
  o.pad_inputs = {"ids"};
  EXPECT_EQ(OnnxBackend::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = Options("seq_sum.onnx", 4);
  o.intra_op_threads = 0;
  EXPECT_EQ(OnnxBackend::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = Options("seq_sum.onnx", -1);
  EXPECT_EQ(OnnxBackend::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OnnxBackendTest, ConfigSpecsMustAgreeWithTheModel) {
  struct Case {
    const char* what;
    std::vector<TensorSpec> inputs;
    std::vector<TensorSpec> outputs;
    const char* error;  // nullptr: accepted
  };
  const Case cases[] = {
      {"agrees", {{"b", DataType::kFp32, {4}}, {"a", DataType::kFp32, {-1}}}, {}, nullptr},
      {"wrong datatype", {{"a", DataType::kFp64, {4}}, {"b", DataType::kFp32, {4}}}, {}, "'a'"},
      {"wrong dims", {{"a", DataType::kFp32, {5}}, {"b", DataType::kFp32, {4}}}, {}, "'a'"},
      {"wrong rank", {{"a", DataType::kFp32, {-1, 4}}, {"b", DataType::kFp32, {4}}}, {}, "'a'"},
      {"unknown", {{"a", DataType::kFp32, {4}}, {"c", DataType::kFp32, {4}}}, {}, "'c'"},
      {"missing", {{"a", DataType::kFp32, {4}}}, {}, "'b'"},
      {"twice",
       {{"a", DataType::kFp32, {4}}, {"a", DataType::kFp32, {4}}, {"b", DataType::kFp32, {4}}},
       {},
       "'a'"},
      {"output agrees",
       {},
       {{"sum", DataType::kFp32, {4}}, {"product", DataType::kFp32, {4}}},
       nullptr},
      {"output wrong",
       {},
       {{"sum", DataType::kFp32, {4}}, {"product", DataType::kInt64, {4}}},
       "'product'"},
  };
  for (const Case& c : cases) {
    OnnxBackendOptions o = Options("add_mul.onnx", 8);
    o.inputs = c.inputs;
    o.outputs = c.outputs;
    auto b = OnnxBackend::Create(o);
    if (c.error == nullptr) {
      EXPECT_TRUE(b.ok()) << c.what << ": " << b.status();
    } else {
      EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << c.what;
      EXPECT_THAT(Message(b.status()), HasSubstr(c.error)) << c.what;
    }
  }
}

TEST(OnnxBackendTest, ConfigSpecsMayFixDynamicDimensions) {
  OnnxBackendOptions o = Options("seq_sum.onnx", 8);
  o.inputs = {{"ids", DataType::kInt64, {3}}};
  auto b = MustCreate(o);
  ASSERT_TRUE(b);
  EXPECT_THAT(b->Metadata().inputs[0].shape, ElementsAre(-1, 3));
  EXPECT_THAT(b->Metadata().outputs[1].shape, ElementsAre(-1, -1));  // no output specs given
  auto results = InferAll(*b, {{{I64("ids", {1, 2}, {1, 2})}}, {{I64("ids", {1, 3}, {1, 2, 3})}}});
  EXPECT_EQ(results[0].status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(results[1].ok()) << results[1].status();
  EXPECT_THAT(Values<float>(results[1]->outputs[0]), ElementsAre(6));
}

TEST(OnnxBackendTest, EveryFixedSizeDatatypeRoundTrips) {
  auto b = MustCreate(Options("all_types.onnx", 4));
  ASSERT_TRUE(b);
  const ModelMetadata& md = b->Metadata();
  ASSERT_EQ(md.inputs.size(), 12u);
  const DataType expected[] = {DataType::kBool,   DataType::kUint8,  DataType::kUint16,
                               DataType::kUint32, DataType::kUint64, DataType::kInt8,
                               DataType::kInt16,  DataType::kInt32,  DataType::kInt64,
                               DataType::kFp16,   DataType::kFp32,   DataType::kFp64};
  std::vector<InferInput> requests(2);
  for (size_t j = 0; j < md.inputs.size(); ++j) {
    EXPECT_EQ(md.inputs[j].datatype, expected[j]) << md.inputs[j].name;
    EXPECT_EQ(md.outputs[j].datatype, expected[j]) << md.outputs[j].name;
    for (size_t r = 0; r < requests.size(); ++r) {
      const int64_t rows = static_cast<int64_t>(r) + 1;
      Tensor t{md.inputs[j].name, expected[j], {rows, 2}, {}, {}};
      const size_t size = ElementSize(expected[j]) * static_cast<size_t>(rows) * 2;
      for (size_t k = 0; k < size; ++k) {
        // Bytes that are valid values of every type (BOOL: 0 or 1).
        t.raw.push_back(expected[j] == DataType::kBool ? (k + r) % 2 : static_cast<uint8_t>(k + r));
      }
      requests[r].inputs.push_back(std::move(t));
    }
  }
  auto results = InferAll(*b, requests);
  for (size_t r = 0; r < requests.size(); ++r) {
    ASSERT_TRUE(results[r].ok()) << results[r].status();
    for (size_t j = 0; j < md.outputs.size(); ++j) {
      const Tensor& out = results[r]->outputs[j];
      EXPECT_EQ(out.name, md.outputs[j].name);
      EXPECT_EQ(out.datatype, expected[j]);
      EXPECT_EQ(out.shape, requests[r].inputs[j].shape);
      EXPECT_EQ(out.raw, requests[r].inputs[j].raw) << out.name;
    }
  }
}

TEST(OnnxBackendTest, RunBatchRunsAlreadyBatchedInputs) {
  auto b = MustCreate(Options("add_mul.onnx", 8));
  ASSERT_TRUE(b);
  const InferInput in = AddMulRequest(2, 1);
  auto out = b->RunBatch(in.inputs);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 2u);
  EXPECT_EQ((*out)[0].name, "sum");
  EXPECT_THAT((*out)[0].shape, ElementsAre(2, 4));
  EXPECT_THAT(Values<float>((*out)[1]), ElementsAre(2, 4, 6, 8, 10, 12, 14, 16));

  const std::vector<Tensor> swapped = {in.inputs[1], in.inputs[0]};
  EXPECT_EQ(b->RunBatch(swapped).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(b->RunBatch({in.inputs[0]}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OnnxBackendTest, InferFromTwoThreadsAtOnce) {
  auto b = MustCreate(Options("add_mul.onnx", 8));
  ASSERT_TRUE(b);
  constexpr int kRounds = 200;
  std::vector<int> failures(2, 0);
  auto work = [&](int thread) {
    for (int round = 0; round < kRounds; ++round) {
      const float base = static_cast<float>(thread * 1000 + round);
      const std::vector<InferInput> requests = {AddMulRequest(1, base),
                                                AddMulRequest(2, base + 0.5f)};
      auto results = InferAll(*b, requests);
      for (size_t i = 0; i < requests.size(); ++i) {
        if (!results[i].ok()) {
          ++failures[thread];
          continue;
        }
        const Tensor& a = requests[i].inputs[0];
        for (int64_t e = 0; e < a.element_count(); ++e) {
          if (results[i]->outputs[0].At<float>(e) != a.At<float>(e) + 2.0f ||
              results[i]->outputs[1].At<float>(e) != a.At<float>(e) * 2.0f) {
            ++failures[thread];
          }
        }
      }
    }
  };
  std::thread t0(work, 0), t1(work, 1);
  t0.join();
  t1.join();
  EXPECT_EQ(failures[0], 0);
  EXPECT_EQ(failures[1], 0);
}

}  // namespace
}  // namespace galley::model
