#include "model/onnx_batch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace galley::model {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Tensor I64(std::vector<int64_t> shape, std::vector<int64_t> values) {
  Tensor t{"ids", DataType::kInt64, std::move(shape), {}, {}};
  for (int64_t v : values) t.Append<int64_t>(v);
  return t;
}

std::vector<int64_t> Values(const Tensor& t) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < t.element_count(); ++i) out.push_back(t.At<int64_t>(i));
  return out;
}

TEST(OnnxBatchTest, ShapeToStringFormats) {
  EXPECT_EQ(ShapeToString({}), "[]");
  EXPECT_EQ(ShapeToString({2, -1, 4}), "[2, -1, 4]");
}

TEST(OnnxBatchTest, ConcatRowsSameShapesAreConcatenated) {
  const Tensor a = I64({1, 2}, {1, 2});
  const Tensor b = I64({2, 2}, {3, 4, 5, 6});
  auto t = ConcatRows("x", {&a, &b}, /*pad=*/false);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->name, "x");
  EXPECT_EQ(t->datatype, DataType::kInt64);
  EXPECT_THAT(t->shape, ElementsAre(3, 2));
  EXPECT_THAT(Values(*t), ElementsAre(1, 2, 3, 4, 5, 6));
}

TEST(OnnxBatchTest, ConcatRowsDifferentShapesWithoutPaddingAreRefused) {
  const Tensor a = I64({1, 2}, {1, 2});
  const Tensor b = I64({1, 3}, {3, 4, 5});
  auto t = ConcatRows("x", {&a, &b}, /*pad=*/false);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("'x'"));
}

TEST(OnnxBatchTest, ConcatRowsPadsEveryDimensionAfterTheFirstWithZeros) {
  const Tensor a = I64({1, 2}, {1, 2});
  const Tensor b = I64({2, 3}, {3, 4, 5, 6, 7, 8});
  const Tensor c = I64({0, 4}, {});
  auto t = ConcatRows("x", {&a, &b, &c}, /*pad=*/true);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(t->shape, ElementsAre(3, 4));
  EXPECT_THAT(Values(*t), ElementsAre(1, 2, 0, 0, 3, 4, 5, 0, 6, 7, 8, 0));
}

TEST(OnnxBatchTest, ConcatRowsPadsRankThree) {
  // [1, 1, 2] and [1, 2, 1] -> [2, 2, 2]
  const Tensor a = I64({1, 1, 2}, {1, 2});
  const Tensor b = I64({1, 2, 1}, {3, 4});
  auto t = ConcatRows("x", {&a, &b}, /*pad=*/true);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(t->shape, ElementsAre(2, 2, 2));
  EXPECT_THAT(Values(*t), ElementsAre(1, 2, 0, 0, 3, 0, 4, 0));
}

TEST(OnnxBatchTest, ConcatRowsRefusesMismatchedParts) {
  const Tensor a = I64({1, 2}, {1, 2});
  Tensor b = I64({1, 2}, {3, 4});
  b.datatype = DataType::kFp64;
  EXPECT_FALSE(ConcatRows("x", {&a, &b}, true).ok());
  const Tensor c = I64({2}, {3, 4});
  EXPECT_FALSE(ConcatRows("x", {&a, &c}, true).ok());
  Tensor d = I64({1, 2}, {3, 4});
  d.raw.pop_back();
  EXPECT_FALSE(ConcatRows("x", {&a, &d}, true).ok());
  const Tensor scalar = I64({}, {1});
  EXPECT_FALSE(ConcatRows("x", {&scalar}, true).ok());
}

TEST(OnnxBatchTest, SplitRowsSplitsByRows) {
  const Tensor t = I64({4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  auto pieces = SplitRows(t, {1, 0, 3});
  ASSERT_TRUE(pieces.ok()) << pieces.status();
  ASSERT_EQ(pieces->size(), 3u);
  EXPECT_THAT((*pieces)[0].shape, ElementsAre(1, 2));
  EXPECT_THAT(Values((*pieces)[0]), ElementsAre(1, 2));
  EXPECT_THAT((*pieces)[1].shape, ElementsAre(0, 2));
  EXPECT_TRUE((*pieces)[1].raw.empty());
  EXPECT_THAT((*pieces)[2].shape, ElementsAre(3, 2));
  EXPECT_THAT(Values((*pieces)[2]), ElementsAre(3, 4, 5, 6, 7, 8));
  EXPECT_EQ((*pieces)[2].name, "ids");
}

TEST(OnnxBatchTest, SplitRowsRefusesRowsThatDoNotAddUp) {
  const Tensor t = I64({2, 1}, {1, 2});
  EXPECT_EQ(SplitRows(t, {1, 2}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SplitRows(I64({}, {1}), {1}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace galley::model
