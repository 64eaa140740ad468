// ConversationStore against a real redis-server (Debian's, or $REDIS_SERVER_BIN) that each test
// starts on a free loopback port, with its append-only file fsynced on every write, and stops.
#include "agents/conversation_store.h"

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace galley::agents {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

uint16_t FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// redis-server as a child process, bound to 127.0.0.1, data in a folder of its own.
class RedisProcess {
 public:
  RedisProcess() : port_(FreePort()) {
    dir_ = std::filesystem::temp_directory_path() /
           ("galley-conv-" + std::to_string(getpid()) + "-" + std::to_string(port_));
    std::filesystem::create_directories(dir_);
    Start();
  }
  ~RedisProcess() {
    Kill(SIGTERM);
    std::filesystem::remove_all(dir_);
  }

  void Start() {
    const char* bin = std::getenv("REDIS_SERVER_BIN");
    std::vector<std::string> args = {bin ? bin : "redis-server",
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "yes",
                                     "--appendfsync",
                                     "always",
                                     "--dir",
                                     dir_.string(),
                                     "--logfile",
                                     (dir_ / "redis.log").string()};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ASSERT_EQ(posix_spawnp(&pid_, argv[0], nullptr, nullptr, argv.data(), environ), 0)
        << "cannot start " << argv[0] << " (scripts/deps.sh installs redis-server)";
    redis::RedisClient probe(address(), std::chrono::milliseconds(500));
    for (int i = 0; i < 400; ++i) {  // up to 20 s for the server to answer
      auto r = probe.Command({"PING"});
      if (r.ok() && r->str == "PONG") return;
      usleep(50'000);  // polling a port that is not open yet, bounded
    }
    FAIL() << "redis-server did not answer on port " << port_;
  }

  void Kill(int sig) {
    if (pid_ <= 0) return;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  redis::RedisAddress address() const { return {"127.0.0.1", port_}; }

 private:
  uint16_t port_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
};

constexpr std::chrono::milliseconds kTimeout{2000};

TEST(ConversationStoreTest, EachTurnOnAnotherReplicaSeesTheWholeConversation) {
  RedisProcess redis;
  ConversationStore a(redis.address(), kTimeout), b(redis.address(), kTimeout);
  auto empty = a.Load("c1");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->version, 0);
  EXPECT_TRUE(empty->entries.empty());

  auto r1 = a.Append("c1", "t1", {"user: hello", "agent: hi"});
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_EQ(r1->version, 1);
  EXPECT_FALSE(r1->duplicate);
  auto seen = b.Load("c1");  // the next turn lands on another replica
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen->version, 1);
  EXPECT_THAT(seen->entries, ElementsAre("user: hello", "agent: hi"));
  ASSERT_TRUE(b.Append("c1", "t2", {"user: and then?", "agent: then this"}, seen->version).ok());
  auto back = a.Load("c1");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->version, 2);
  EXPECT_EQ(back->turns, 2);
  EXPECT_THAT(back->entries,
              ElementsAre("user: hello", "agent: hi", "user: and then?", "agent: then this"));
  EXPECT_EQ(back->bytes, 11 + 9 + 15 + 16);
}

TEST(ConversationStoreTest, ARetriedTurnAddsNoDuplicateEntry) {
  RedisProcess redis;
  ConversationStore a(redis.address(), kTimeout), b(redis.address(), kTimeout);
  ASSERT_TRUE(a.Append("c", "turn-1", {"user: q", "agent: a"}).ok());
  // The replica that wrote it died before answering; the client retries the turn elsewhere.
  auto again = b.Append("c", "turn-1", {"user: q", "agent: a (second run)"});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->version, 1);
  auto c = b.Load("c");
  ASSERT_TRUE(c.ok());
  EXPECT_THAT(c->entries, ElementsAre("user: q", "agent: a"));
  EXPECT_EQ(c->turns, 1);
}

TEST(ConversationStoreTest, ConcurrentTurnsOnOneConversationLoseNoEntry) {
  RedisProcess redis;
  ConversationOptions o;
  o.max_entries = 10'000;
  constexpr int kThreads = 4, kTurns = 50;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ConversationStore s(redis.address(), kTimeout, o);
      for (int i = 0; i < kTurns; ++i) {
        const std::string id = std::to_string(t) + "-" + std::to_string(i);
        if (!s.Append("busy", "turn-" + id, {"user " + id, "agent " + id}).ok()) ++failures[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_THAT(failures, ElementsAre(0, 0, 0, 0));
  ConversationStore s(redis.address(), kTimeout, o);
  auto c = s.Load("busy");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->version, kThreads * kTurns);
  ASSERT_EQ(c->entries.size(), 2u * kThreads * kTurns);
  std::set<std::string> distinct(c->entries.begin(), c->entries.end());
  EXPECT_EQ(distinct.size(), c->entries.size());
  // Each turn's two entries stay together and in order.
  for (size_t i = 0; i < c->entries.size(); i += 2) {
    EXPECT_EQ(c->entries[i].substr(5), c->entries[i + 1].substr(6)) << i;
  }
}

TEST(ConversationStoreTest, AStaleVersionIsRefusedAndARetryFromAFreshReadSucceeds) {
  RedisProcess redis;
  ConversationStore a(redis.address(), kTimeout), b(redis.address(), kTimeout);
  ASSERT_TRUE(a.Append("c", "t1", {"x"}).ok());
  auto ra = a.Load("c");
  auto rb = b.Load("c");
  ASSERT_TRUE(ra.ok() && rb.ok());
  ASSERT_TRUE(a.Append("c", "t2", {"from a"}, ra->version).ok());
  auto stale = b.Append("c", "t3", {"from b"}, rb->version);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(stale.status().message()), HasSubstr("version 2"));
  auto fresh = b.Load("c");
  ASSERT_TRUE(fresh.ok());
  auto retried = b.Append("c", "t3", {"from b"}, fresh->version);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->version, 3);
  EXPECT_THAT(b.Load("c")->entries, ElementsAre("x", "from a", "from b"));
}

TEST(ConversationStoreTest, TheHistoryStaysWithinItsBoundsAndATooLargeTurnIsRefused) {
  RedisProcess redis;
  ConversationOptions o;
  o.max_entries = 5;
  o.max_bytes = 20;
  ConversationStore s(redis.address(), kTimeout, o);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(s.Append("c", "t" + std::to_string(i), {"q" + std::to_string(i), "a"}).ok());
  }
  auto c = s.Load("c");
  ASSERT_TRUE(c.ok());
  EXPECT_THAT(c->entries, ElementsAre("a", "q2", "a", "q3", "a"));  // the newest five
  EXPECT_EQ(c->bytes, 7);
  ASSERT_TRUE(s.Append("c", "long", {"0123456789abcdef"}).ok());  // 16 bytes: older ones go
  c = s.Load("c");
  EXPECT_THAT(c->entries, ElementsAre("a", "q3", "a", "0123456789abcdef"));  // 20 bytes
  EXPECT_EQ(c->bytes, 20);
  auto big = s.Append("c", "huge", {std::string(21, 'x')});
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(big.status().message()), HasSubstr("21 bytes"));
  auto after = s.Load("c");
  EXPECT_EQ(after->version, c->version);  // nothing written
  EXPECT_EQ(after->entries, c->entries);
}

TEST(ConversationStoreTest, EveryReadAndWriteRenewsTheExpiry) {
  RedisProcess redis;
  ConversationOptions o;
  o.ttl = std::chrono::seconds(100);
  ConversationStore s(redis.address(), kTimeout, o);
  ASSERT_TRUE(s.Append("c", "t1", {"x"}).ok());
  redis::RedisClient raw(redis.address(), kTimeout);
  for (const char* part : {"history", "meta", "turns"}) {
    const std::string key = std::string("galley:conv:{c}:") + part;
    EXPECT_GT(raw.Command({"PTTL", key})->integer, 90'000) << key;
    ASSERT_EQ(raw.Command({"PEXPIRE", key, "1000"})->integer, 1);  // as if 99 s had passed
  }
  ASSERT_TRUE(s.Load("c").ok());
  for (const char* part : {"history", "meta", "turns"}) {
    EXPECT_GT(raw.Command({"PTTL", std::string("galley:conv:{c}:") + part})->integer, 90'000);
  }
}

TEST(ConversationStoreTest, ARedisRestartKeepsTheConversationAndAnOutageIsAClearError) {
  auto redis = std::make_unique<RedisProcess>();
  ConversationStore s(redis->address(), kTimeout);
  ASSERT_TRUE(s.Append("c", "t1", {"before the crash"}).ok());
  redis->Kill(SIGKILL);
  auto down = s.Load("c");
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable);
  auto lost = s.Append("c", "t2", {"during"});
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable);
  redis->Start();  // the same port and folder: the append-only file
  auto c = s.Load("c");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->entries, ElementsAre("before the crash"));
  auto r = s.Append("c", "t2", {"after"});  // the retry of the turn that failed
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->version, 2);
}

TEST(ConversationStoreTest, BadIdsAndABrokenLayoutAreClearErrors) {
  RedisProcess redis;
  ConversationStore s(redis.address(), kTimeout);
  for (const std::string& id :
       std::vector<std::string>{"", "has space", "slash/no", std::string(129, 'a'), "{tag}"}) {
    EXPECT_EQ(s.Load(id).status().code(), absl::StatusCode::kInvalidArgument) << id;
    EXPECT_EQ(s.Append(id, "t", {"x"}).status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(s.Append("c", "bad turn", {"x"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Append("c", "t", {}).status().code(), absl::StatusCode::kInvalidArgument);
  redis::RedisClient raw(redis.address(), kTimeout);
  ASSERT_TRUE(raw.Command({"RPUSH", "galley:conv:{orphan}:history", "x"}).ok());
  EXPECT_EQ(s.Load("orphan").status().code(), absl::StatusCode::kDataLoss);
  ASSERT_TRUE(raw.Command({"HSET", "galley:conv:{odd}:meta", "version", "many"}).ok());
  EXPECT_EQ(s.Load("odd").status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace galley::agents
