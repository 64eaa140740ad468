// Tests for the document set: Markdown split into passages under their headings (anchors as
// GitHub writes them, code left out, long sections cut), JSON Lines with its errors naming the
// line, and the passages file's round trip.
#include "retrieval/passages.h"

#include <unistd.h>

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace galley::retrieval {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("galley-passages-" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  void Write(const std::string& name, const std::string& text) const {
    fs::create_directories((path_ / name).parent_path());
    std::ofstream(path_ / name, std::ios::binary) << text;
  }

 private:
  fs::path path_;
};

TEST(PassagesTest, HeadingAnchorsAreGithubs) {
  EXPECT_EQ(HeadingAnchor("Redis Streams (v7)"), "redis-streams-v7");
  EXPECT_EQ(HeadingAnchor("`galley up`: the local stack"), "galley-up-the-local-stack");
  EXPECT_EQ(HeadingAnchor("What's not done"), "whats-not-done");
}

TEST(PassagesTest, MarkdownSplitsAtHeadingsAndLeavesCodeOut) {
  const std::string md =
      "Intro line one\nline two.\n\n# Queues\n\nRedis streams keep messages.\n\n"
      "```bash\ncurl localhost\n```\n\n<!-- hidden\nnote -->\n## Dead letters\n\n"
      "A message that fails five times goes to the dead stream.\n";
  const auto p = SplitMarkdown("docs/q.md", md, 100);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].text, "Intro line one line two.");
  EXPECT_EQ(p[0].source, "docs/q.md");
  EXPECT_EQ(p[1].text, "Queues: Redis streams keep messages.");
  EXPECT_EQ(p[1].source, "docs/q.md#queues");
  EXPECT_EQ(p[2].text, "Dead letters: A message that fails five times goes to the dead stream.");
  EXPECT_EQ(p[2].source, "docs/q.md#dead-letters");
}

TEST(PassagesTest, LongSectionsAreCutAtParagraphsThenWords) {
  std::string para1, para2;
  for (int i = 0; i < 6; ++i) para1 += "alpha ";
  for (int i = 0; i < 25; ++i) para2 += "beta ";
  const auto p = SplitMarkdown("x.md", "# H\n" + para1 + "\n\n" + para2, 10);
  // 6 words, then 25 words in pieces of at most 10.
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0].text, "H: alpha alpha alpha alpha alpha alpha");
  EXPECT_EQ(p[1].text, "H: beta beta beta beta beta beta beta beta beta beta");
  EXPECT_EQ(p[3].text, "H: beta beta beta beta beta");
}

TEST(PassagesTest, FoldersAreReadRecursivelyInPathOrderWithRelativeLabels) {
  TempDir dir;
  dir.Write("b.md", "# Bee\nbuzz\n");
  dir.Write("a/z.md", "# Zed\nzzz\n");
  dir.Write("notes.txt", "not markdown");
  auto p = CollectPassages(dir.path(), 100);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->size(), 2u);
  EXPECT_EQ((*p)[0].source, "a/z.md#zed");
  EXPECT_EQ((*p)[1].source, "b.md#bee");
}

TEST(PassagesTest, JsonLinesErrorsNameTheLineAndNothingIsHalfRead) {
  TempDir dir;
  dir.Write("good.jsonl", "{\"text\": \"one\", \"source\": \"s1\"}\n\n{\"text\": \"two\"}\n");
  auto good = CollectPassages(dir.path() / "good.jsonl", 100);
  ASSERT_TRUE(good.ok()) << good.status();
  ASSERT_EQ(good->size(), 2u);
  EXPECT_EQ((*good)[0].source, "s1");
  EXPECT_EQ((*good)[1].source, "good.jsonl:3");
  dir.Write("bad.jsonl", "{\"text\": \"one\"}\n{\"text\": 5}\n");
  auto bad = CollectPassages(dir.path() / "bad.jsonl", 100);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("bad.jsonl:2"));
  dir.Write("broken.jsonl", "{\"text\": \"one\"\n");
  EXPECT_THAT(std::string(CollectPassages(dir.path() / "broken.jsonl", 100).status().message()),
              HasSubstr("broken.jsonl:1: not JSON"));
  dir.Write("latin1.md", "caf\xe9\n");
  EXPECT_THAT(std::string(CollectPassages(dir.path() / "latin1.md", 100).status().message()),
              HasSubstr("not valid UTF-8"));
  EXPECT_EQ(CollectPassages(dir.path() / "absent", 100).status().code(),
            absl::StatusCode::kNotFound);
  dir.Write("empty/x.txt", "");
  EXPECT_THAT(std::string(CollectPassages(dir.path() / "empty", 100).status().message()),
              HasSubstr("no passages found"));
}

TEST(PassagesTest, PassagesFileRoundTrips) {
  TempDir dir;
  const std::vector<Passage> in = {{"line \"quoted\"\nnext", "a.md#x"}, {"ünïcode ✓", "b"}};
  ASSERT_TRUE(WritePassages(dir.path() / "p.jsonl", in).ok());
  auto out = ReadPassages(dir.path() / "p.jsonl");
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 2u);
  EXPECT_EQ((*out)[0].text, in[0].text);
  EXPECT_EQ((*out)[1].source, "b");
  dir.Write("bad.jsonl", "{\"text\": \"x\"}\n");
  EXPECT_EQ(ReadPassages(dir.path() / "bad.jsonl").status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace galley::retrieval
