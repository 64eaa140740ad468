// The client, informer and leader election against a real kube-apiserver (over etcd) started on
// loopback by scripts/kube_control_plane.py. Needs the binaries from scripts/fetch_kube.sh; fails
// (does not skip) without them.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "boost/json/parse.hpp"
#include "common/strings.h"
#include "common/sync.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kube/client.h"
#include "kube/informer.h"
#include "kube/leader_election.h"
#include "kube/retry.h"

namespace galley::kube {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

const std::string kRepo = GALLEY_SOURCE_DIR;

// Runs a shell command; returns its exit status and stdout.
std::pair<int, std::string> Shell(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return {-1, ""};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int rc = pclose(p);
  return {WEXITSTATUS(rc), out};
}

// The string at `v`, or "<not a string>".
std::string Str(const json::value& v) {
  return v.is_string() ? std::string(v.get_string()) : "<not a string>";
}

// Polls `cond` every 20 ms until it holds or `timeout` passes.
bool WaitUntil(const std::function<bool()>& cond, Duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return cond();
}

struct Plane {
  std::string dir, kubeconfig, kubeconfig_cert, server, token, ca;
};
Plane* g_plane = nullptr;

class ControlPlaneEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const std::string apiserver = kRepo + "/.deps/kube/bin/kube-apiserver";
    ASSERT_EQ(access(apiserver.c_str(), X_OK), 0)
        << apiserver << " is missing: run scripts/fetch_kube.sh to build the Kubernetes "
        << "control-plane binaries this test needs";
    char tmpl[] = "/tmp/galley_kube_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const auto [rc, out] =
        Shell(StrCat("python3 ", kRepo, "/scripts/kube_control_plane.py start --dir ", dir_, " 2>",
                     dir_, "/start.err"));
    ASSERT_EQ(rc, 0) << "kube_control_plane.py start failed; see " << dir_ << "/start.err";
    boost::system::error_code ec;
    const json::value info = json::parse(StripWhitespace(out), ec);
    ASSERT_FALSE(ec) << "bad start output: " << out;
    auto s = [&](const char* k) { return std::string(info.at(k).as_string()); };
    plane_ =
        Plane{s("dir"), s("kubeconfig"), s("kubeconfig_cert"), s("server"), s("token"), s("ca")};
    g_plane = &plane_;
  }
  void TearDown() override {
    if (dir_.empty()) return;
    Shell(StrCat("python3 ", kRepo, "/scripts/kube_control_plane.py stop --dir ", dir_));
    if (!::testing::UnitTest::GetInstance()->Failed()) std::filesystem::remove_all(dir_);
  }

 private:
  std::string dir_;
  Plane plane_;
};

ClientOptions FastOptions() {
  ClientOptions o;
  o.rate_limit = {/*qps=*/200, /*burst=*/400};  // tests make many calls
  o.timeout = seconds(30);
  return o;
}

class KubeClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(g_plane, nullptr) << "control plane not started";
    auto c = Client::FromKubeConfig(g_plane->kubeconfig, {}, FastOptions());
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(*c);
    // One namespace per test run keeps them independent.
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    static std::atomic<int> counter{0};  // unique under --gtest_repeat too
    ns_ = StrCat("t-", name.substr(0, 50), "-", ++counter);
    auto created =
        client_->Create(resources::kNamespaces, "", json::value{{"metadata", {{"name", ns_}}}});
    ASSERT_TRUE(created.ok()) << created.status();
  }

  json::value ConfigMap(const std::string& name, json::object data) {
    return {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", {{"name", name}, {"namespace", ns_}}},
            {"data", std::move(data)}};
  }

  std::unique_ptr<Client> client_;
  std::string ns_;
};

TEST_F(KubeClientTest, TokenAndClientCertificateBothAuthenticate) {
  for (const std::string& path : {g_plane->kubeconfig, g_plane->kubeconfig_cert}) {
    auto c = Client::FromKubeConfig(path, {}, FastOptions());
    ASSERT_TRUE(c.ok()) << c.status();
    auto ns = (*c)->Get(resources::kNamespaces, "", "default");
    ASSERT_TRUE(ns.ok()) << path << ": " << ns.status();
    EXPECT_EQ(NameOf(*ns), "default");
  }
  // No credentials: the server refuses the anonymous user.
  auto config = LoadKubeConfig(g_plane->kubeconfig);
  ASSERT_TRUE(config.ok());
  config->token.clear();
  auto anon = Client::Create(*config, FastOptions());
  ASSERT_TRUE(anon.ok());
  auto refused = (*anon)->Get(resources::kNamespaces, "", "default");
  EXPECT_TRUE(HttpCode(refused.status()) == 401 || HttpCode(refused.status()) == 403)
      << refused.status();
}

TEST_F(KubeClientTest, TlsVerifiesTheCaAndTheHostName) {
  auto config = LoadKubeConfig(g_plane->kubeconfig);
  ASSERT_TRUE(config.ok());
  // A CA that did not sign the server's certificate.
  const std::string other = StrCat(g_plane->dir, "/other-ca");
  const auto [rc, out] = Shell(
      StrCat("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ",
             other, ".key -out ", other, ".crt -days 1 -subj /CN=other-ca 2>/dev/null"));
  ASSERT_EQ(rc, 0);
  std::ifstream in(other + ".crt");
  KubeConfig wrong_ca = *config;
  wrong_ca.ca_pem.assign(std::istreambuf_iterator<char>(in), {});
  auto c1 = Client::Create(wrong_ca, FastOptions());
  ASSERT_TRUE(c1.ok()) << c1.status();
  auto r1 = (*c1)->Get(resources::kNamespaces, "", "default");
  EXPECT_EQ(r1.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r1.status().message()), HasSubstr("certificate verify failed"));

  // The right CA but a name the certificate does not carry.
  KubeConfig wrong_name = *config;
  wrong_name.tls_server_name = "not-the-apiserver.example";
  auto c2 = Client::Create(wrong_name, FastOptions());
  ASSERT_TRUE(c2.ok());
  auto r2 = (*c2)->Get(resources::kNamespaces, "", "default");
  EXPECT_EQ(r2.status().code(), absl::StatusCode::kUnavailable) << r2.status();
  EXPECT_THAT(std::string(r2.status().message()), HasSubstr("hostname mismatch"));

  // A DNS name the certificate does carry.
  KubeConfig by_name = *config;
  by_name.server =
      StrCat("https://localhost:", g_plane->server.substr(g_plane->server.rfind(':') + 1));
  auto c3 = Client::Create(by_name, FastOptions());
  ASSERT_TRUE(c3.ok());
  EXPECT_TRUE((*c3)->Get(resources::kNamespaces, "", "default").ok());

  // Skipping verification (tests only) connects despite the wrong CA.
  wrong_ca.insecure_skip_tls_verify = true;
  auto c4 = Client::Create(wrong_ca, FastOptions());
  ASSERT_TRUE(c4.ok());
  EXPECT_TRUE((*c4)->Get(resources::kNamespaces, "", "default").ok());
}

TEST_F(KubeClientTest, ConfigMapCrud) {
  auto created = client_->Create(resources::kConfigMaps, ns_, ConfigMap("cm", {{"k", "v1"}}));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE(ResourceVersionOf(*created).empty());
  auto again = client_->Create(resources::kConfigMaps, ns_, ConfigMap("cm", {{"k", "v1"}}));
  EXPECT_TRUE(absl::IsAlreadyExists(again.status())) << again.status();
  EXPECT_EQ(HttpCode(again.status()), 409);
  EXPECT_EQ(ApiReason(again.status()), "AlreadyExists");

  auto got = client_->Get(resources::kConfigMaps, ns_, "cm");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->at("data").at("k"), "v1");

  json::value changed = *got;
  changed.at("data").as_object()["k"] = "v2";
  auto updated = client_->Update(resources::kConfigMaps, ns_, changed);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->at("data").at("k"), "v2");

  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        client_->Create(resources::kConfigMaps, ns_, ConfigMap(StrCat("extra-", i), {})).ok());
  }
  auto list = client_->List(resources::kConfigMaps, ns_);
  ASSERT_TRUE(list.ok());
  // kube-root-ca.crt appears only with the controller manager, which is not running here.
  EXPECT_EQ(list->at("items").as_array().size(), 4u);
  ListOptions paged;
  paged.limit = 1;
  auto all = client_->ListAll(resources::kConfigMaps, ns_, paged);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->at("items").as_array().size(), 4u);

  ASSERT_TRUE(client_->Delete(resources::kConfigMaps, ns_, "cm").ok());
  auto gone = client_->Get(resources::kConfigMaps, ns_, "cm");
  EXPECT_TRUE(absl::IsNotFound(gone.status()));
  EXPECT_EQ(HttpCode(gone.status()), 404);
  EXPECT_TRUE(absl::IsNotFound(client_->Delete(resources::kConfigMaps, ns_, "cm").status()));
}

TEST_F(KubeClientTest, MergePatchAndJsonPatch) {
  ASSERT_TRUE(
      client_->Create(resources::kConfigMaps, ns_, ConfigMap("p", {{"a", "1"}, {"b", "2"}})).ok());
  // RFC 7386: null removes a key.
  auto merged = client_->Patch(resources::kConfigMaps, ns_, "p", PatchType::kMerge,
                               json::parse(R"({"data":{"a":"10","b":null,"c":"3"}})"));
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->at("data"), json::parse(R"({"a":"10","c":"3"})"));
  // RFC 6902, with a failing test operation first.
  auto failed = client_->Patch(resources::kConfigMaps, ns_, "p", PatchType::kJson,
                               json::parse(R"([{"op":"test","path":"/data/a","value":"nope"}])"));
  EXPECT_FALSE(failed.ok());
  auto patched = client_->Patch(resources::kConfigMaps, ns_, "p", PatchType::kJson,
                                json::parse(R"([{"op":"test","path":"/data/a","value":"10"},)"
                                            R"({"op":"replace","path":"/data/a","value":"11"},)"
                                            R"({"op":"remove","path":"/data/c"}])"));
  ASSERT_TRUE(patched.ok()) << patched.status();
  EXPECT_EQ(patched->at("data"), json::parse(R"({"a":"11"})"));
  // Wrong shapes are refused before sending.
  EXPECT_EQ(client_->Patch(resources::kConfigMaps, ns_, "p", PatchType::kJson, json::object{})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(KubeClientTest, StaleWriteConflictsAndRetryOnConflictSucceeds) {
  auto created = client_->Create(resources::kConfigMaps, ns_, ConfigMap("counter", {{"n", "0"}}));
  ASSERT_TRUE(created.ok());
  json::value stale = *created;
  ASSERT_TRUE(client_
                  ->Patch(resources::kConfigMaps, ns_, "counter", PatchType::kMerge,
                          json::parse(R"({"data":{"other":"x"}})"))
                  .ok());
  stale.at("data").as_object()["n"] = "1";
  auto conflict = client_->Update(resources::kConfigMaps, ns_, stale);
  EXPECT_TRUE(IsConflict(conflict.status())) << conflict.status();
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(HttpCode(conflict.status()), 409);

  // Four threads each add 1 ten times through read-modify-write; every increment lands.
  constexpr int kThreads = 4, kEach = 10;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        RetryBackoff patient = kDefaultRetry;
        patient.steps = 100;  // 4 writers contend; DefaultRetry's 5 attempts may not be enough
        const absl::Status s = RetryOnConflict(patient, [&]() -> absl::Status {
          auto cm = client_->Get(resources::kConfigMaps, ns_, "counter");
          if (!cm.ok()) return cm.status();
          const int n = std::stoi(std::string(cm->at("data").at("n").as_string()));
          cm->at("data").as_object()["n"] = std::to_string(n + 1);
          return client_->Update(resources::kConfigMaps, ns_, *cm).status();
        });
        if (!s.ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto final_cm = client_->Get(resources::kConfigMaps, ns_, "counter");
  ASSERT_TRUE(final_cm.ok());
  EXPECT_EQ(Str(final_cm->at("data").at("n")), std::to_string(kThreads * kEach));
}

TEST_F(KubeClientTest, ScaleSubresourceOfADeployment) {
  const json::value deployment = json::parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "c", "image": "x.invalid/w"}]}}}})");
  ASSERT_TRUE(client_->Create(resources::kDeployments, ns_, deployment).ok());
  auto scale = client_->GetScale(resources::kDeployments, ns_, "web");
  ASSERT_TRUE(scale.ok()) << scale.status();
  EXPECT_EQ(scale->at("kind"), "Scale");
  EXPECT_EQ(scale->at("spec").at("replicas").to_number<int>(), 1);
  const std::string rv(ResourceVersionOf(*scale));

  auto scaled = client_->UpdateScale(resources::kDeployments, ns_, "web", 3, rv);
  ASSERT_TRUE(scaled.ok()) << scaled.status();
  EXPECT_EQ(scaled->at("spec").at("replicas").to_number<int>(), 3);
  auto d = client_->Get(resources::kDeployments, ns_, "web");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->at("spec").at("replicas").to_number<int>(), 3);
  // The old resourceVersion is stale now.
  auto stale = client_->UpdateScale(resources::kDeployments, ns_, "web", 5, rv);
  EXPECT_TRUE(IsConflict(stale.status())) << stale.status();
  // A merge patch of the scale subresource works too.
  auto patched = client_->Patch(resources::kDeployments, ns_, "web", PatchType::kMerge,
                                json::parse(R"({"spec":{"replicas":0}})"), "scale");
  ASSERT_TRUE(patched.ok()) << patched.status();
  // replicas 0 is omitted from the JSON (omitempty).
  auto zero = client_->GetScale(resources::kDeployments, ns_, "web");
  ASSERT_TRUE(zero.ok());
  const auto* replicas = zero->at("spec").as_object().if_contains("replicas");
  EXPECT_TRUE(replicas == nullptr || replicas->to_number<int>() == 0);
}

TEST_F(KubeClientTest, BindingSubresourceAssignsAPodToANode) {
  const std::string node = StrCat(ns_, "-node");
  ASSERT_TRUE(
      client_->Create(resources::kNodes, "", json::value{{"metadata", {{"name", node}}}}).ok());
  // Pods are admitted only when their service account exists (no controller manager here).
  const ResourceType service_accounts{"", "v1", "serviceaccounts", true, "ServiceAccount"};
  ASSERT_TRUE(
      client_->Create(service_accounts, ns_, json::value{{"metadata", {{"name", "default"}}}})
          .ok());
  const json::value pod = json::parse(R"({
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
    "spec": {"schedulerName": "nobody-serves-this", "automountServiceAccountToken": false,
             "containers": [{"name": "c", "image": "example.invalid/p"}]}})");
  auto created = client_->Create(resources::kPods, ns_, pod);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE(created->at("spec").as_object().contains("nodeName"));

  // A binding for another incarnation (wrong UID) is refused.
  EXPECT_FALSE(client_->Bind(ns_, "p", node, "00000000-0000-0000-0000-000000000000").ok());
  const absl::Status bound =
      client_->Bind(ns_, "p", node, UidOf(*created), {{"example.dev/given", "0,3"}});
  ASSERT_TRUE(bound.ok()) << bound;
  auto got = client_->Get(resources::kPods, ns_, "p");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(Str(got->at("spec").at("nodeName")), node);
  // The Binding's annotations land on the pod in the same write.
  EXPECT_EQ(Str(got->at("metadata").at("annotations").at("example.dev/given")), "0,3");
  // Binding twice is a conflict.
  const absl::Status twice = client_->Bind(ns_, "p", node);
  EXPECT_EQ(HttpCode(twice), 409) << twice;
}

TEST_F(KubeClientTest, EventCreation) {
  auto cm = client_->Create(resources::kConfigMaps, ns_, ConfigMap("about", {}));
  ASSERT_TRUE(cm.ok());
  EventSpec spec;
  spec.involved = *cm;
  spec.involved.as_object()["apiVersion"] = "v1";
  spec.involved.as_object()["kind"] = "ConfigMap";
  spec.reason = "Tested";
  spec.message = "an event from the client test";
  spec.type = "Warning";
  auto event = client_->CreateEvent(spec);
  ASSERT_TRUE(event.ok()) << event.status();
  ListOptions by_object;
  by_object.field_selector = "involvedObject.name=about";
  auto events = client_->List(resources::kEvents, ns_, by_object);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->at("items").as_array().size(), 1u);
  const auto& e = events->at("items").at(0);
  EXPECT_EQ(e.at("reason"), "Tested");
  EXPECT_EQ(e.at("type"), "Warning");
  EXPECT_EQ(Str(e.at("involvedObject").at("uid")), UidOf(*cm));
  EXPECT_EQ(e.at("source").at("component"), "galley");
  EXPECT_EQ(e.at("count").to_number<int>(), 1);
}

// Records handler calls, thread-safe.
struct Recorder {
  void Add(std::string s) {
    absl::MutexLock l(&mu);
    log.push_back(std::move(s));
  }
  std::vector<std::string> Snapshot() {
    absl::MutexLock l(&mu);
    return log;
  }
  EventHandlers Handlers() {
    return {.on_add = [this](const json::value& o) { Add(StrCat("add ", NameOf(o))); },
            .on_update =
                [this](const json::value&, const json::value& o) {
                  Add(StrCat("update ", NameOf(o), " ",
                             o.at("data").as_object().contains("v")
                                 ? std::string(o.at("data").at("v").as_string())
                                 : ""));
                },
            .on_delete = [this](const json::value& o) { Add(StrCat("delete ", NameOf(o))); }};
  }
  absl::Mutex mu;
  std::vector<std::string> log ABSL_GUARDED_BY(mu);
};

TEST_F(KubeClientTest, InformerSeesAddUpdateDeleteInOrder) {
  ASSERT_TRUE(client_->Create(resources::kConfigMaps, ns_, ConfigMap("before", {})).ok());
  Recorder rec;
  InformerOptions opts;
  opts.namespace_name = ns_;
  Informer informer(client_.get(), resources::kConfigMaps, opts);
  informer.AddEventHandlers(rec.Handlers());
  ASSERT_TRUE(informer.Start().ok());
  ASSERT_TRUE(informer.WaitForSync(seconds(30)));
  EXPECT_TRUE(informer.Get(StrCat(ns_, "/before")).has_value());

  ASSERT_TRUE(client_->Create(resources::kConfigMaps, ns_, ConfigMap("x", {{"v", "1"}})).ok());
  ASSERT_TRUE(client_
                  ->Patch(resources::kConfigMaps, ns_, "x", PatchType::kMerge,
                          json::parse(R"({"data":{"v":"2"}})"))
                  .ok());
  ASSERT_TRUE(client_->Delete(resources::kConfigMaps, ns_, "x").ok());
  const std::vector<std::string> want = {"add before", "add x", "update x 2", "delete x"};
  EXPECT_TRUE(WaitUntil([&] { return rec.Snapshot().size() >= want.size(); }, seconds(30)));
  EXPECT_EQ(rec.Snapshot(), want);
  EXPECT_EQ(informer.Keys(), std::vector<std::string>{StrCat(ns_, "/before")});
  informer.Stop();
}

TEST_F(KubeClientTest, WatchStopsPromptlyWhenAsked) {
  std::stop_source stop;
  std::atomic<bool> got_event{false}, returned{false};
  absl::Status result;
  std::thread t([&] {
    result = client_->Watch(
        resources::kConfigMaps, ns_, {},
        [&](WatchEvent&&) {
          got_event = true;
          return true;
        },
        stop.get_token());
    returned = true;
  });
  // The watch is open once it delivers the creation of a ConfigMap; it then blocks reading.
  ASSERT_TRUE(client_->Create(resources::kConfigMaps, ns_, ConfigMap("ping", {})).ok());
  EXPECT_TRUE(WaitUntil([&] { return got_event.load(); }, seconds(30)));
  EXPECT_FALSE(returned.load());
  stop.request_stop();
  EXPECT_TRUE(WaitUntil([&] { return returned.load(); }, seconds(5)));
  t.join();
  EXPECT_EQ(result.code(), absl::StatusCode::kCancelled);
}

TEST_F(KubeClientTest, InformerRecoversAfterApiServerRestart) {
  Recorder rec;
  InformerOptions opts;
  opts.namespace_name = ns_;
  opts.max_backoff = seconds(2);
  Informer informer(client_.get(), resources::kConfigMaps, opts);
  informer.AddEventHandlers(rec.Handlers());
  ASSERT_TRUE(informer.Start().ok());
  ASSERT_TRUE(informer.WaitForSync(seconds(30)));
  ASSERT_TRUE(client_->Create(resources::kConfigMaps, ns_, ConfigMap("a", {{"v", "1"}})).ok());
  ASSERT_TRUE(WaitUntil([&] { return informer.Get(StrCat(ns_, "/a")).has_value(); }, seconds(30)));
  const InformerStats before = informer.stats();
  // A write elsewhere moves the store's revision past the informer's resourceVersion; the
  // restarted server's watch cache starts at that revision, so resuming from the informer's
  // older one is answered with 410 Gone (an ERROR event) and the informer must re-list.
  auto elsewhere =
      client_->Create(resources::kConfigMaps, "default",
                      json::value{{"metadata", {{"name", StrCat(ns_, "-elsewhere")}}}});
  ASSERT_TRUE(elsewhere.ok()) << elsewhere.status();
  ASSERT_TRUE(client_->Delete(resources::kConfigMaps, "default", NameOf(*elsewhere)).ok());

  const auto [rc, out] = Shell(StrCat("python3 ", kRepo,
                                      "/scripts/kube_control_plane.py "
                                      "restart-apiserver --dir ",
                                      g_plane->dir, " 2>&1"));
  ASSERT_EQ(rc, 0) << out;
  ASSERT_TRUE(client_->Create(resources::kConfigMaps, ns_, ConfigMap("b", {{"v", "1"}})).ok());
  ASSERT_TRUE(client_->Delete(resources::kConfigMaps, ns_, "a").ok());
  EXPECT_TRUE(WaitUntil(
      [&] { return informer.Keys() == std::vector<std::string>{StrCat(ns_, "/b")}; }, seconds(60)));
  const InformerStats after = informer.stats();
  EXPECT_GT(after.watches, before.watches);
  EXPECT_GE(after.gone, before.gone + 1);
  EXPECT_GE(after.lists, before.lists + 1);

  // The same answer to a plain watch from the pre-restart resourceVersion. The server-side
  // timeout bounds the wait should it ever not answer.
  ListOptions old;
  old.resource_version = before.last_resource_version;
  old.timeout_seconds = 10;
  absl::Status seen;
  const absl::Status s = client_->Watch(resources::kConfigMaps, ns_, old, [&](WatchEvent&& e) {
    if (e.type == WatchEventType::kError) seen = WatchErrorStatus(e);
    return e.type != WatchEventType::kError;
  });
  // Either the request itself fails with 410 or the stream carries an ERROR event (code 410).
  EXPECT_TRUE(IsGone(s) || IsGone(seen)) << s << " / " << seen;
  const auto log = rec.Snapshot();
  EXPECT_EQ(std::count(log.begin(), log.end(), "add b"), 1);
  EXPECT_EQ(std::count(log.begin(), log.end(), "delete a"), 1);
  informer.Stop();
}

// Two electors in one process share a Lease.
class LeaderElectionTest : public KubeClientTest {
 protected:
  LeaderElectionConfig Config(const std::string& identity) {
    LeaderElectionConfig c;
    c.lease_namespace = ns_;
    c.lease_name = "galley-test";
    c.identity = identity;
    c.lease_duration = seconds(3);
    c.renew_deadline = seconds(2);
    c.retry_period = milliseconds(500);
    c.on_started_leading = [this](std::stop_token stop) {
      const int now = ++active_;
      int prev = max_active_.load();
      while (now > prev && !max_active_.compare_exchange_weak(prev, now)) {
      }
      absl::Mutex m;
      absl::CondVar cv;
      galley::StopWaker waker(stop, m, cv);
      {
        absl::MutexLock l(&m);
        while (!stop.stop_requested()) cv.Wait(&m);  // "work" until leadership ends
      }
      --active_;
    };
    c.on_stopped_leading = [this] { ++stopped_; };
    return c;
  }

  std::atomic<int> active_{0}, max_active_{0}, stopped_{0};
};

TEST_F(LeaderElectionTest, OneLeaderAndHandOverOnStop) {
  auto a = LeaderElector::Create(client_.get(), Config("a"));
  auto b = LeaderElector::Create(client_.get(), Config("b"));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*a)->Start().ok());
  ASSERT_TRUE((*b)->Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return (*a)->IsLeader() || (*b)->IsLeader(); }, seconds(20)));
  // Let a few renewals pass and check that leadership stays with one.
  const auto until = std::chrono::steady_clock::now() + seconds(2);
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_FALSE((*a)->IsLeader() && (*b)->IsLeader());
    std::this_thread::sleep_for(milliseconds(10));
  }
  LeaderElector* leader = (*a)->IsLeader() ? a->get() : b->get();
  LeaderElector* follower = leader == a->get() ? b->get() : a->get();
  const std::string leader_id = leader == a->get() ? "a" : "b";
  const std::string follower_id = leader_id == "a" ? "b" : "a";
  EXPECT_EQ(follower->GetLeader(), leader_id);
  auto lease = client_->Get(resources::kLeases, ns_, "galley-test");
  ASSERT_TRUE(lease.ok());
  const LeaseRecord first = LeaseRecordFromLease(*lease);
  EXPECT_EQ(first.holder_identity, leader_id);
  EXPECT_EQ(first.lease_duration_seconds, 3);
  EXPECT_TRUE(ParseTime(first.acquire_time).ok()) << first.acquire_time;
  EXPECT_TRUE(ParseTime(first.renew_time).ok()) << first.renew_time;

  // Graceful stop: the leader's work ends, the lease is released, the other takes over well
  // within the lease duration.
  const auto stop_at = std::chrono::steady_clock::now();
  leader->Stop();
  EXPECT_FALSE(leader->IsLeader());
  EXPECT_EQ(stopped_.load(), 1);
  ASSERT_TRUE(WaitUntil([&] { return follower->IsLeader(); }, seconds(10)));
  EXPECT_LT(std::chrono::steady_clock::now() - stop_at, seconds(3));
  auto after = client_->Get(resources::kLeases, ns_, "galley-test");
  ASSERT_TRUE(after.ok());
  const LeaseRecord second = LeaseRecordFromLease(*after);
  EXPECT_EQ(second.holder_identity, follower_id);
  EXPECT_EQ(second.lease_transitions, first.lease_transitions + 1);
  EXPECT_EQ(max_active_.load(), 1);
  follower->Stop();
  EXPECT_EQ(stopped_.load(), 2);
}

TEST_F(LeaderElectionTest, LeaderThatCannotRenewStopsWithinRenewDeadline) {
  auto a = LeaderElector::Create(client_.get(), Config("a"));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE((*a)->Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return (*a)->IsLeader(); }, seconds(20)));
  // Another party overwrites the lease: from now on every renewal finds a valid foreign holder.
  const absl::Status stolen = RetryOnConflict(kDefaultRetry, [&]() -> absl::Status {
    auto lease = client_->Get(resources::kLeases, ns_, "galley-test");
    if (!lease.ok()) return lease.status();
    LeaseRecord r = LeaseRecordFromLease(*lease);
    r.holder_identity = "intruder";
    r.lease_duration_seconds = 3600;
    r.renew_time = FormatMicroTime(std::chrono::system_clock::now());
    StoreLeaseRecord(r, *lease);
    return client_->Update(resources::kLeases, ns_, *lease).status();
  });
  ASSERT_TRUE(stolen.ok()) << stolen;
  const auto stolen_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitUntil([&] { return !(*a)->IsLeader(); }, seconds(10)));
  // renew_deadline (2 s) after the last good renewal, plus one retry period of slack.
  EXPECT_LT(std::chrono::steady_clock::now() - stolen_at, milliseconds(2500));
  EXPECT_TRUE(WaitUntil([&] { return (*a)->Done(); }, seconds(5)));
  EXPECT_EQ(active_.load(), 0);
  EXPECT_EQ(stopped_.load(), 1);
  EXPECT_EQ((*a)->GetLeader(), "intruder");
  // It did not release someone else's lease.
  auto lease = client_->Get(resources::kLeases, ns_, "galley-test");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(LeaseRecordFromLease(*lease).holder_identity, "intruder");
}

}  // namespace
}  // namespace galley::kube

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new galley::kube::ControlPlaneEnvironment);
  return RUN_ALL_TESTS();
}
