// Tests for WordpieceTokenizer: every case of tests/data/wordpiece_golden.jsonl (the reference
// tokenizer's ids, written by models/training/minilm_golden.py) with the vocabulary
// scripts/fetch_minilm.sh installs, the rules one by one on a small vocabulary, and vocabularies
// that must be refused with a clear error.
#include "model/wordpiece_tokenizer.h"

#include <fstream>
#include <string>
#include <vector>

#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace galley::model {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<int64_t> Ids(const WordpieceTokenizer& t, std::string_view text) {
  std::vector<int64_t> ids;
  t.Encode(text, ids);
  return ids;
}

TEST(WordpieceTokenizerTest, MatchesTheReferenceOnEveryGoldenText) {
  auto t = WordpieceTokenizer::FromFile(GALLEY_MINILM_DIR "/vocab.txt", 256);
  ASSERT_TRUE(t.ok()) << t.status() << " (scripts/fetch_minilm.sh installs the vocabulary)";
  EXPECT_EQ(t->vocab_size(), 30522u);
  std::ifstream file(GALLEY_TEST_DATA_DIR "/wordpiece_golden.jsonl", std::ios::binary);
  ASSERT_TRUE(file.is_open());
  int cases = 0;
  for (std::string line; std::getline(file, line);) {
    const boost::json::value v = boost::json::parse(line);
    const boost::json::string& text = v.at("text").as_string();
    std::vector<int64_t> want;
    for (const auto& id : v.at("ids").as_array()) want.push_back(id.as_int64());
    EXPECT_EQ(Ids(*t, std::string_view(text.data(), text.size())), want) << line.substr(0, 120);
    ++cases;
  }
  EXPECT_EQ(cases, 211);
}

WordpieceTokenizer Small(int max_length = 256) {
  // 0 [PAD], 1 [UNK], 2 [CLS], 3 [SEP], 4 [MASK], then words and pieces.
  auto t =
      WordpieceTokenizer::FromVocab({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff",
                                     "##able", "hello", ",", "!", "cafe", "中", "i", "##s", "a"},
                                    max_length);
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(t).value();
}

TEST(WordpieceTokenizerTest, GreedyLongestMatchWithContinuationPieces) {
  EXPECT_THAT(Ids(Small(), "unaffable"), ElementsAre(2, 5, 6, 7, 3));
  // A word with any unmatched rest is one [UNK], not a partial match.
  EXPECT_THAT(Ids(Small(), "unaffablez hello"), ElementsAre(2, 1, 8, 3));
}

TEST(WordpieceTokenizerTest, LowercasesStripsAccentsAndSplitsPunctuation) {
  EXPECT_THAT(Ids(Small(), "HELLO,Café!"), ElementsAre(2, 8, 9, 11, 10, 3));
  EXPECT_THAT(Ids(Small(), "  hello\t\u00a0hello\n"), ElementsAre(2, 8, 8, 3));
}

TEST(WordpieceTokenizerTest, CjkIdeographsAreWordsOfTheirOwn) {
  EXPECT_THAT(Ids(Small(), "中中"), ElementsAre(2, 12, 12, 3));
}

TEST(WordpieceTokenizerTest, ControlCharactersAreDroppedNotSplitOn) {
  EXPECT_THAT(Ids(Small(), std::string("hel\x07lo\x00", 7)), ElementsAre(2, 8, 3));
  EXPECT_THAT(Ids(Small(), "hel\u200blo"), ElementsAre(2, 8, 3));  // a format character
}

TEST(WordpieceTokenizerTest, SpecialTokensInTheTextAreTakenAsThemselves) {
  EXPECT_THAT(Ids(Small(), "hello[MASK]hello"), ElementsAre(2, 8, 4, 8, 3));
  // Case matters: [mask] is punctuation and a word.
  EXPECT_THAT(Ids(Small(), "[mask]"), ElementsAre(2, 1, 1, 1, 3));
}

TEST(WordpieceTokenizerTest, TooLongWordsAreUnknownAndTheResultIsCutToMaxLength) {
  EXPECT_THAT(Ids(Small(), std::string(101, 'a')), ElementsAre(2, 1, 3));
  EXPECT_THAT(Ids(Small(5), "hello hello hello hello"), ElementsAre(2, 8, 8, 8, 3));
  EXPECT_THAT(Ids(Small(), ""), ElementsAre(2, 3));
}

TEST(WordpieceTokenizerTest, RefusesBadVocabulariesWithTheReason) {
  auto missing = WordpieceTokenizer::FromVocab({"[PAD]", "[UNK]", "[CLS]"});
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("no [SEP]"));
  auto repeat = WordpieceTokenizer::FromVocab({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "a"});
  ASSERT_FALSE(repeat.ok());
  EXPECT_THAT(std::string(repeat.status().message()), HasSubstr("line 6 repeats 'a' of line 5"));
  auto empty = WordpieceTokenizer::FromVocab({"[PAD]", "", "[UNK]", "[CLS]", "[SEP]"});
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("line 2 is empty"));
  auto absent = WordpieceTokenizer::FromFile("/nonexistent/vocab.txt");
  EXPECT_EQ(absent.status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(WordpieceTokenizer::FromVocab({"[PAD]", "[UNK]", "[CLS]", "[SEP]"}, 2).ok());
}

}  // namespace
}  // namespace galley::model
