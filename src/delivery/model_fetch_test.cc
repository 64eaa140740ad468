// Model delivery from local sources (file://, pvc://) into a scratch folder: layout, SHA-256,
// the node cache, bad input. HTTP(S) sources are tested end to end against a real server in
// tests/integration/test_model_fetch.py.
#include "delivery/model_fetch.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace galley::delivery {
namespace {

namespace fs = std::filesystem;

std::string Read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Write(const fs::path& p, std::string_view data) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << data;
}

// sha256("abc"), FIPS 180-2 appendix B.1.
constexpr char kAbcSha[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

class ModelFetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/model_fetch_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    Write(dir_ / "src" / "model.onnx", "abc");
  }
  void TearDown() override { fs::remove_all(dir_); }

  FetchOptions Options(std::string source) {
    FetchOptions o;
    o.source = std::move(source);
    o.name = "m";
    o.dest = dir_ / "repo";
    return o;
  }

  // Everything under `p` (leftovers included), as relative paths.
  std::vector<std::string> Tree(const fs::path& p) {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(p)) {
      out.push_back(fs::relative(e.path(), p).string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  fs::path dir_;
};

TEST(ParseSourceTest, Schemes) {
  auto f = ParseSource("file:///models/a.onnx");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->scheme, Scheme::kFile);
  EXPECT_EQ(f->path, "/models/a.onnx");
  auto p = ParseSource("pvc://claim-1/models/a.onnx");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->scheme, Scheme::kPvc);
  EXPECT_EQ(p->host, "claim-1");
  EXPECT_EQ(p->path, "models/a.onnx");
  auto h = ParseSource("https://models.example.com:8443/m/a.onnx?v=2#frag");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->scheme, Scheme::kHttps);
  EXPECT_EQ(h->host, "models.example.com");
  EXPECT_EQ(h->port, 8443);
  EXPECT_EQ(h->path, "/m/a.onnx?v=2");
  auto plain = ParseSource("http://[::1]/a");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->host, "::1");
  EXPECT_EQ(plain->port, 80);
}

TEST(ParseSourceTest, BadSourcesSayWhy) {
  for (const auto& [uri, words] : std::vector<std::pair<std::string, std::string>>{
           {"models/a.onnx", "not a URI"},
           {"s3://bucket/a", "not one of file, pvc, http, https"},
           {"file://relative/a", "absolute path"},
           {"file:///models/../etc/shadow", "'..'"},
           {"pvc://claim", "pvc://CLAIM/PATH"},
           {"pvc://claim/../x", "'..'"},
           {"http://host:99999/a", "bad port"},
           {"http://user:pw@host/a", "credentials"},
           {"https:///a", "no host"}}) {
    auto s = ParseSource(uri);
    ASSERT_FALSE(s.ok()) << uri;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << uri;
    EXPECT_NE(s.status().message().find(words), std::string_view::npos)
        << uri << ": " << s.status();
  }
}

TEST_F(ModelFetchTest, Sha256OfAKnownVector) {
  auto sum = Sha256File(dir_ / "src" / "model.onnx");
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(*sum, kAbcSha);
  EXPECT_EQ(Sha256File(dir_ / "missing").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ModelFetchTest, AFileBecomesAModelFolderWithAGeneratedConfig) {
  FetchOptions o = Options("file://" + (dir_ / "src" / "model.onnx").string());
  o.version = "3";
  o.sha256 = kAbcSha;
  o.max_batch_size = 16;
  o.max_queue_delay_us = 500;
  auto r = FetchModel(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->from_cache);
  EXPECT_EQ(r->bytes, 3u);
  EXPECT_EQ(r->sha256, kAbcSha);
  EXPECT_EQ(Tree(dir_ / "repo"),
            (std::vector<std::string>{"m", "m/3", "m/3/model.onnx", "m/config.json"}));
  EXPECT_EQ(Read(dir_ / "repo" / "m" / "3" / "model.onnx"), "abc");
  EXPECT_EQ(
      Read(dir_ / "repo" / "m" / "config.json"),
      R"({"platform":"onnxruntime_onnx","max_batch_size":16,"dynamic_batching":{"max_queue_delay_microseconds":500}})"
      "\n");
}

TEST_F(ModelFetchTest, AWrongSha256LeavesNothingBehind) {
  FetchOptions o = Options("file://" + (dir_ / "src" / "model.onnx").string());
  o.sha256 = std::string(64, '0');
  o.cache = dir_ / "cache";
  auto r = FetchModel(o);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status().message(), "sha256 of file://" + (dir_ / "src" / "model.onnx").string() +
                                      " is " + kAbcSha + ", the resource says " + o.sha256);
  EXPECT_TRUE(Tree(dir_ / "repo").empty());
  EXPECT_FALSE(fs::exists(dir_ / "cache" / "sha256" / o.sha256));
}

TEST_F(ModelFetchTest, TheNodeCacheServesASecondFetchWithoutTheSource) {
  FetchOptions o = Options("file://" + (dir_ / "src" / "model.onnx").string());
  o.sha256 = kAbcSha;
  o.cache = dir_ / "cache";
  ASSERT_TRUE(FetchModel(o).ok());
  EXPECT_EQ(Read(dir_ / "cache" / "sha256" / kAbcSha), "abc");
  fs::remove(dir_ / "src" / "model.onnx");  // the source is gone
  o.dest = dir_ / "repo2";
  auto r = FetchModel(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->from_cache);
  EXPECT_EQ(Read(dir_ / "repo2" / "m" / "1" / "model.onnx"), "abc");
  // A damaged cache entry is not trusted: without the source, the fetch now fails.
  Write(dir_ / "cache" / "sha256" / kAbcSha, "abd");
  o.dest = dir_ / "repo3";
  EXPECT_EQ(FetchModel(o).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(dir_ / "cache" / "sha256" / kAbcSha));
}

TEST_F(ModelFetchTest, AFolderFromAClaimIsCopiedAsItIs) {
  Write(dir_ / "pvc" / "models" / "m" / "config.json", R"({"platform":"galley_vader"})");
  Write(dir_ / "pvc" / "models" / "m" / "2" / "vocab.txt", "a\nb\n");
  FetchOptions o = Options("pvc://claim/models/m");
  o.pvc_root = dir_ / "pvc";
  auto r = FetchModel(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Tree(dir_ / "repo"),
            (std::vector<std::string>{"m", "m/2", "m/2/vocab.txt", "m/config.json"}));
  // Fetched again (a new version of the folder): replaced, not merged.
  fs::remove_all(dir_ / "pvc" / "models" / "m" / "2");
  Write(dir_ / "pvc" / "models" / "m" / "3" / "x", "x");
  ASSERT_TRUE(FetchModel(o).ok());
  EXPECT_EQ(Tree(dir_ / "repo"), (std::vector<std::string>{"m", "m/3", "m/3/x", "m/config.json"}));
  // A folder has no one file to check.
  o.sha256 = kAbcSha;
  auto bad = FetchModel(o);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("is a folder"), std::string_view::npos);
}

TEST_F(ModelFetchTest, BadOptionsAndMissingSourcesSayWhy) {
  FetchOptions o = Options("file://" + (dir_ / "nope.onnx").string());
  auto missing = FetchModel(o);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("no such file"), std::string_view::npos);
  Write(dir_ / "notamodel" / "readme", "x");
  o.source = "file://" + (dir_ / "notamodel").string();
  EXPECT_NE(FetchModel(o).status().message().find("without config.json"), std::string_view::npos);
  o.source = "file://" + (dir_ / "src" / "model.onnx").string();
  for (const char* name : {"", "..", "a/b"}) {
    o.name = name;
    EXPECT_EQ(FetchModel(o).status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
  o.name = "m";
  o.version = "v1";
  EXPECT_EQ(FetchModel(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.version = "1";
  o.sha256 = "ABC";
  EXPECT_EQ(FetchModel(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.sha256.clear();
  o.max_bytes = 2;
  EXPECT_EQ(FetchModel(o).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(!fs::exists(dir_ / "repo") || Tree(dir_ / "repo").empty());
}

}  // namespace
}  // namespace galley::delivery
