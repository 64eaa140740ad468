// Tests for WordTokenizer: every golden case of tests/data/tokenizer_golden.jsonl (written by
// models/training/train_sentiment.py --golden, with the vocabulary the models ship), the rules one
// by one on a small vocabulary, and vocabulary files that must be refused with a clear error.
#include "model/word_tokenizer.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"
#include "common/strings.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace galley::model {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Message(const absl::Status& status) { return std::string(ToStd(status.message())); }

struct GoldenCase {
  std::string text;
  std::vector<int64_t> ids;
};

std::vector<GoldenCase> ReadGolden() {
  const std::string path = GALLEY_TEST_DATA_DIR "/tokenizer_golden.jsonl";
  std::ifstream file(path, std::ios::binary);
  EXPECT_TRUE(file.is_open()) << path;
  std::vector<GoldenCase> cases;
  std::string line;
  while (std::getline(file, line)) {
    if (line.empty()) continue;
    boost::json::error_code ec;
    const boost::json::value value = boost::json::parse(line, ec);
    EXPECT_FALSE(ec) << ec.message() << ": " << line;
    if (ec) continue;
    const boost::json::string& text = value.at("text").as_string();
    GoldenCase golden{std::string(text.data(), text.size()), {}};
    for (const boost::json::value& id : value.at("ids").as_array()) {
      golden.ids.push_back(id.as_int64());
    }
    cases.push_back(std::move(golden));
  }
  return cases;
}

// Escapes a golden text for a failure message.
std::string Printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 120)) {
    const auto b = static_cast<unsigned char>(c);
    out += b < 0x20 || b == 0x7f ? StrCat("\\x", static_cast<int>(b)) : std::string(1, c);
  }
  return out;
}

std::vector<int64_t> Encode(const WordTokenizer& tokenizer, std::string_view text) {
  std::vector<int64_t> ids;
  tokenizer.Encode(text, ids);
  return ids;
}

// The vocabulary files the models ship with (the same file twice).
class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, MatchesEveryGoldenCase) {
  absl::StatusOr<WordTokenizer> tokenizer =
      WordTokenizer::FromFile(GALLEY_MODELS_DIR "/" + GetParam() + "/vocab.txt");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ(tokenizer->max_length(), 128);
  EXPECT_GT(tokenizer->vocab_size(), 1000u);
  EXPECT_EQ(tokenizer->token(0), "[PAD]");
  EXPECT_EQ(tokenizer->token(1), "[UNK]");

  const std::vector<GoldenCase> cases = ReadGolden();
  EXPECT_GE(cases.size(), 200u);
  size_t truncated = 0;
  size_t unknown_only = 0;
  for (const GoldenCase& golden : cases) {
    SCOPED_TRACE("text: \"" + Printable(golden.text) + "\"");
    EXPECT_EQ(Encode(*tokenizer, golden.text), golden.ids);
    truncated += golden.ids.size() == 128;
    unknown_only += golden.ids == std::vector<int64_t>{1};
  }
  // The file covers the edges: truncation and texts with no (known) tokens.
  EXPECT_GE(truncated, 3u);
  EXPECT_GE(unknown_only, 10u);
}

INSTANTIATE_TEST_SUITE_P(ShippedVocabularies, GoldenTest,
                         ::testing::Values("sentiment", "sentiment_transformer", "sentiment_lstm",
                                           "sentiment_lstm_int8"));

WordTokenizer Small(int max_length = 128) {
  absl::StatusOr<WordTokenizer> tokenizer =
      WordTokenizer::FromVocab({"[PAD]", "[UNK]", "good", "bad", "don't", "caf\xc3\xa9", "10",
                                "\xf0\x9f\x98\x80", "a'b", std::string(100, 'x')},
                               max_length);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return std::move(tokenizer).value();
}

TEST(WordTokenizerTest, AppliesEachRule) {
  const WordTokenizer tokenizer = Small();
  EXPECT_EQ(tokenizer.vocab_size(), 10u);
  EXPECT_THAT(Encode(tokenizer, "good bad"), ElementsAre(2, 3));
  EXPECT_THAT(Encode(tokenizer, "GOOD, Bad!"), ElementsAre(2, 3));  // A-Z lowercased
  EXPECT_THAT(Encode(tokenizer, "good-bad_good\tbad\ngood\r\n"), ElementsAre(2, 3, 2, 3, 2));
  EXPECT_THAT(Encode(tokenizer, "'don't' ''DON'T''"), ElementsAre(4, 4));  // outer ' stripped
  EXPECT_THAT(Encode(tokenizer, "a'b 'a'b' a''b"), ElementsAre(8, 8, 1));  // inner ' kept
  EXPECT_THAT(Encode(tokenizer, "' '' good '''"), ElementsAre(2));  // only apostrophes: dropped
  EXPECT_THAT(Encode(tokenizer, "10/10 100"), ElementsAre(6, 6, 1));
  EXPECT_THAT(Encode(tokenizer, "caf\xc3\xa9 CAF\xc3\xa9 CAF\xc3\x89"), ElementsAre(5, 5, 1));
  EXPECT_THAT(Encode(tokenizer, "\xf0\x9f\x98\x80 good\xf0\x9f\x98\x80"), ElementsAre(7, 1));
  EXPECT_THAT(Encode(tokenizer, "good\u2014bad"), ElementsAre(1));        // em dash joins
  EXPECT_THAT(Encode(tokenizer, std::string(100, 'X')), ElementsAre(9));  // long, uppercase
  EXPECT_THAT(Encode(tokenizer, std::string(101, 'x')), ElementsAre(1));  // longer than any
  EXPECT_THAT(Encode(tokenizer, std::string_view("good\0bad", 8)), ElementsAre(2, 3));
  EXPECT_THAT(Encode(tokenizer, "unknown words"), ElementsAre(1, 1));
}

TEST(WordTokenizerTest, NeverReturnsNothing) {
  const WordTokenizer tokenizer = Small();
  for (std::string_view text : {"", " ", "!!!", "'''", "\t\n", "- ' -"}) {
    EXPECT_THAT(Encode(tokenizer, text), ElementsAre(1)) << text;
  }
}

TEST(WordTokenizerTest, TruncatesToMaxLength) {
  const WordTokenizer tokenizer = Small(3);
  EXPECT_EQ(tokenizer.max_length(), 3);
  EXPECT_THAT(Encode(tokenizer, "good bad good bad"), ElementsAre(2, 3, 2));
  EXPECT_THAT(Encode(tokenizer, "' good ' bad ''' x good"), ElementsAre(2, 3, 1));
  std::string many;
  for (int i = 0; i < 1000; ++i) many += "bad ";
  EXPECT_EQ(Encode(Small(), many), std::vector<int64_t>(128, 3));
}

TEST(WordTokenizerTest, AppendsToWhatIdsHold) {
  const WordTokenizer tokenizer = Small(2);
  std::vector<int64_t> ids = {7, 7, 7};
  tokenizer.Encode("good bad good", ids);
  tokenizer.Encode("", ids);
  EXPECT_THAT(ids, ElementsAre(7, 7, 7, 2, 3, 1));
}

TEST(WordTokenizerTest, SurvivesMoves) {
  WordTokenizer moved = Small();
  WordTokenizer target = std::move(moved);
  EXPECT_THAT(Encode(target, "good bad"), ElementsAre(2, 3));
  target = WordTokenizer::FromVocab({"[PAD]", "[UNK]", "x"}).value();
  EXPECT_THAT(Encode(target, "x good"), ElementsAre(2, 1));
}

TEST(WordTokenizerTest, RejectsBadVocabularies) {
  struct Case {
    std::vector<std::string> vocab;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{}, "needs at least two lines, \"[PAD]\" (id 0) and \"[UNK]\" (id 1); it has 0"},
      {{"[PAD]"}, "it has 1"},
      {{"[UNK]", "[PAD]", "good"}, "line 1 (id 0) must be \"[PAD]\", got \"[UNK]\""},
      {{"[PAD]", "good"}, "line 2 (id 1) must be \"[UNK]\", got \"good\""},
      {{"[PAD]", "[UNK]", "good", "bad", "good"},
       "line 5 (id 4): duplicate token \"good\" (first on line 3)"},
      {{"[PAD]", "[UNK]", "good", ""}, "line 4 (id 3): token \"\" can never match: the line is"},
      {{"[PAD]", "[UNK]", "Good"}, "token \"Good\" can never match: it holds an uppercase"},
      {{"[PAD]", "[UNK]", "good bad"}, "can never match: it holds a separator"},
      {{"[PAD]", "[UNK]", "tab\there"}, "token \"tab\\x09here\" can never match"},
      {{"[PAD]", "[UNK]", "'quoted'"}, "starts or ends with an apostrophe"},
      {{"[PAD]", "[UNK]", "[PAD]"}, "line 3 (id 2): token \"[PAD]\" can never match"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<WordTokenizer> tokenizer = WordTokenizer::FromVocab(c.vocab);
    ASSERT_FALSE(tokenizer.ok()) << c.message;
    EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(tokenizer.status()), HasSubstr(c.message));
  }
  for (int max_length : {0, -1}) {
    absl::StatusOr<WordTokenizer> tokenizer =
        WordTokenizer::FromVocab({"[PAD]", "[UNK]"}, max_length);
    EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(tokenizer.status()), HasSubstr("max_length must be at least 1"));
  }
}

class VocabFileTest : public ::testing::Test {
 protected:
  std::string Write(std::string_view name, std::string_view contents) {
    const std::filesystem::path dir =
        std::filesystem::path(::testing::TempDir()) /
        StrCat("word_tokenizer_test_",
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir);
    const std::string path = (dir / name).string();
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }
};

TEST_F(VocabFileTest, ReadsLinesWithOrWithoutFinalNewline) {
  for (std::string_view contents : {"[PAD]\n[UNK]\ngood\nbad\n", "[PAD]\n[UNK]\ngood\nbad",
                                    "[PAD]\r\n[UNK]\r\ngood\r\nbad\r\n"}) {
    absl::StatusOr<WordTokenizer> tokenizer =
        WordTokenizer::FromFile(Write("vocab.txt", contents), 5);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    EXPECT_EQ(tokenizer->vocab_size(), 4u);
    EXPECT_EQ(tokenizer->max_length(), 5);
    EXPECT_THAT(Encode(*tokenizer, "bad good ugly"), ElementsAre(3, 2, 1));
  }
}

TEST_F(VocabFileTest, MissingFileIsNotFound) {
  const std::string path = Write("present.txt", "[PAD]\n[UNK]\n") + ".missing";
  absl::StatusOr<WordTokenizer> tokenizer = WordTokenizer::FromFile(path);
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(tokenizer.status()), HasSubstr("cannot open vocab file " + path));
}

TEST_F(VocabFileTest, RefusesBadFilesNamingFileAndLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "is empty: line 1 must be \"[PAD]\""},
      {"\n", "needs at least two lines, \"[PAD]\" (id 0) and \"[UNK]\" (id 1); it has 1"},
      {"[PAD]\n", "needs at least two lines"},
      {"[UNK]\n[PAD]\n", "line 1 (id 0) must be \"[PAD]\", got \"[UNK]\""},
      {"[PAD]\n[unk]\n", "line 2 (id 1) must be \"[UNK]\", got \"[unk]\""},
      {"[PAD]\n[UNK]\ngood\nbad\ngood\n", "line 5 (id 4): duplicate token \"good\""},
      {"[PAD]\n[UNK]\ngood\n\nbad\n", "line 4 (id 3): token \"\" can never match"},
      {"[PAD]\n[UNK]\ngood\n\n", "line 4 (id 3)"},  // one final newline only
      {"[PAD]\n[UNK]\ngood\tbad\n", "line 3 (id 2): token \"good\\x09bad\""},
  };
  for (const auto& [contents, message] : cases) {
    const std::string path = Write("bad.txt", contents);
    absl::StatusOr<WordTokenizer> tokenizer = WordTokenizer::FromFile(path);
    ASSERT_FALSE(tokenizer.ok()) << message;
    EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument) << message;
    EXPECT_THAT(Message(tokenizer.status()), HasSubstr("vocab file " + path));
    EXPECT_THAT(Message(tokenizer.status()), HasSubstr(message));
  }
}

}  // namespace
}  // namespace galley::model
