#include "model/sentiment.h"

#include <string>

#include "gtest/gtest.h"
#include "model/utf8.h"

namespace galley::model {
namespace {

TEST(SentimentFromCompoundTest, ThresholdsAndConfidence) {
  struct Case {
    double compound;
    const char* label;
    float confidence;
  };
  const Case cases[] = {
      {0.8316, "Positive", 0.9158f}, {0.05, "Positive", 0.525f},     {1.0, "Positive", 1.0f},
      {0.0499, "Neutral", 0.501f},   {0.0, "Neutral", 1.0f},         {-0.0499, "Neutral", 0.501f},
      {-0.05, "Negative", 0.525f},   {-0.7424, "Negative", 0.8712f}, {-1.0, "Negative", 1.0f},
  };
  for (const Case& c : cases) {
    const Sentiment s = SentimentFromCompound(c.compound);
    EXPECT_EQ(s.label, c.label) << c.compound;
    EXPECT_NEAR(s.confidence, c.confidence, 1e-4) << c.compound;
    EXPECT_GE(s.confidence, 0.5f);
    EXPECT_LE(s.confidence, 1.0f);
  }
}

TEST(CheckTextTest, Utf8AndSize) {
  EXPECT_TRUE(CheckText("plain ascii").ok());
  EXPECT_TRUE(CheckText("caf\xc3\xa9 \xf0\x9f\x98\x81").ok());  // café 😁
  EXPECT_FALSE(CheckText("\xff\xfe").ok());
  EXPECT_FALSE(CheckText("\xc0\xaf").ok());          // overlong '/'
  EXPECT_FALSE(CheckText("\xed\xa0\x80").ok());      // UTF-16 surrogate
  EXPECT_FALSE(CheckText("\xf4\x90\x80\x80").ok());  // above U+10FFFF
  EXPECT_FALSE(CheckText("abc\xe2\x82").ok());       // truncated sequence
  const absl::Status big = CheckText(std::string(kMaxTextBytes + 1, 'a'));
  EXPECT_EQ(big.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(big.message().find("limit"), absl::string_view::npos);
  EXPECT_TRUE(CheckText(std::string(kMaxTextBytes, 'a')).ok());
}

}  // namespace
}  // namespace galley::model
