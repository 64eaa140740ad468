// FileSdJson and WriteFileAtomically on their own, and FileSdWriter against a real Supervisor
// running fake_replica children on real sockets: the file follows the replica set as it scales.
#include "local/file_sd.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "boost/json/parse.hpp"
#include "common/strings.h"
#include "gtest/gtest.h"
#include "local/supervisor.h"

#ifndef GALLEY_FAKE_REPLICA
#error "GALLEY_FAKE_REPLICA must name the fake_replica binary"
#endif

namespace galley::local {
namespace {

using std::chrono::milliseconds;

std::string TempDir() {
  std::string tmpl = StrCat(::testing::TempDir(), "file_sd_test.XXXXXX");
  EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
  return tmpl;
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(FileSdJsonTest, OneGroupPerReplicaWithItsIdAsLabel) {
  EXPECT_EQ(FileSdJson({}), "[]\n");
  const std::string doc =
      FileSdJson({{"replica-0", "127.0.0.1", 40001, true}, {"replica-3", "::1", 40002, false}});
  EXPECT_EQ(doc, R"([{"targets":["127.0.0.1:40001"],"labels":{"replica":"replica-0"}},)"
                 R"({"targets":["[::1]:40002"],"labels":{"replica":"replica-3"}}])"
                 "\n");
  boost::system::error_code ec;
  boost::json::parse(doc, ec);
  EXPECT_FALSE(ec) << ec.message();
}

TEST(WriteFileAtomicallyTest, ReplacesTheFileAndLeavesNoTemporary) {
  const std::string dir = TempDir();
  const std::string path = dir + "/targets.json";
  ASSERT_TRUE(WriteFileAtomically(path, "one").ok());
  EXPECT_EQ(Read(path), "one");
  ASSERT_TRUE(WriteFileAtomically(path, "two, longer").ok());
  EXPECT_EQ(Read(path), "two, longer");
  EXPECT_NE(::access(StrCat(path, ".tmp.", static_cast<long>(getpid())).c_str(), F_OK), 0);

  const absl::Status st = WriteFileAtomically(dir + "/no/such/folder/targets.json", "x");
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  EXPECT_NE(std::string(st.message()).find("no/such/folder"), std::string::npos) << st;
}

// Polls the file (the writer's thread writes it) until `pred` holds or 20 s pass.
bool FileBecomes(const std::string& path, const std::function<bool(const std::string&)>& pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred(Read(path))) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return pred(Read(path));
}

TEST(FileSdWriterTest, FollowsTheSupervisorsReplicas) {
  const std::string dir = TempDir();
  const std::string path = dir + "/targets.json";
  SupervisorOptions o;
  o.binary = GALLEY_FAKE_REPLICA;
  o.replicas = 1;
  o.drain_delay = milliseconds(0);
  o.grace_period = std::chrono::seconds(5);
  o.forward_logs = false;
  auto sup = Supervisor::Create(o);
  ASSERT_TRUE(sup.ok()) << sup.status();
  FileSdWriter writer(path, **sup);
  ASSERT_TRUE(writer.Start().ok());
  EXPECT_EQ(Read(path), "[]\n");  // nothing runs yet
  ASSERT_TRUE((*sup)->Start().ok());

  const auto ports = [&] {
    std::vector<fleet::ReplicaEndpoint> eps = (*sup)->Replicas();
    return eps;
  };
  ASSERT_TRUE((*sup)->WaitFor(
      [](const std::vector<local::ReplicaInfo>& r) { return r.size() == 1 && r[0].port != 0; },
      std::chrono::seconds(20)));
  std::string want = FileSdJson(ports());
  EXPECT_TRUE(FileBecomes(path, [&](const std::string& s) { return s == want; })) << Read(path);
  EXPECT_NE(want.find("replica-0"), std::string::npos);

  ASSERT_TRUE((*sup)->SetReplicas(2).ok());
  ASSERT_TRUE((*sup)->WaitFor(
      [](const std::vector<local::ReplicaInfo>& r) {
        return r.size() == 2 && r[0].port != 0 && r[1].port != 0;
      },
      std::chrono::seconds(20)));
  want = FileSdJson(ports());
  EXPECT_NE(want.find("replica-1"), std::string::npos);
  EXPECT_TRUE(FileBecomes(path, [&](const std::string& s) { return s == want; })) << Read(path);

  ASSERT_TRUE((*sup)->SetReplicas(1).ok());
  EXPECT_TRUE(FileBecomes(path, [&](const std::string& s) {
    return s.find("replica-0") != std::string::npos && s.find("replica-1") == std::string::npos;
  })) << Read(path);

  (*sup)->Stop();
  writer.Stop();
  EXPECT_EQ(Read(path), "[]\n");  // Prometheus stops scraping replicas that are gone
}

}  // namespace
}  // namespace galley::local
