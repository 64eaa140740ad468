#include "kube/config.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace galley::kube {
namespace {

using ::testing::HasSubstr;

std::string B64(const std::string& s) {
  std::string out;
  absl::Base64Escape(s, &out);
  return out;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kube_config_test_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  void Write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ + "/" + name) << text;
  }

 private:
  std::string path_;
};

const std::string kTwoContexts = R"(apiVersion: v1
kind: Config
current-context: tok
clusters:
- name: c1
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: )" +
                                 B64("CA PEM") + R"(
- name: c2
  cluster:
    server: https://kube.example:443
    insecure-skip-tls-verify: true
    tls-server-name: api.internal
contexts:
- name: tok
  context: {cluster: c1, user: tokuser, namespace: team-a}
- name: cert
  context: {cluster: c2, user: certuser}
users:
- name: tokuser
  user: {token: abc123}
- name: certuser
  user:
    client-certificate-data: )" + B64("CERT PEM") +
                                 R"(
    client-key-data: )" + B64("KEY PEM") +
                                 "\n";

TEST(KubeConfigTest, CurrentContextWithTokenAndCaData) {
  auto c = ParseKubeConfig(kTwoContexts, "/nowhere");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://127.0.0.1:6443");
  EXPECT_EQ(c->ca_pem, "CA PEM");
  EXPECT_EQ(c->token, "abc123");
  EXPECT_EQ(c->namespace_name, "team-a");
  EXPECT_FALSE(c->insecure_skip_tls_verify);
  EXPECT_TRUE(c->client_cert_pem.empty());
}

TEST(KubeConfigTest, ExplicitContextWithClientCertificate) {
  auto c = ParseKubeConfig(kTwoContexts, "/nowhere", "cert");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://kube.example:443");
  EXPECT_EQ(c->client_cert_pem, "CERT PEM");
  EXPECT_EQ(c->client_key_pem, "KEY PEM");
  EXPECT_TRUE(c->insecure_skip_tls_verify);
  EXPECT_EQ(c->tls_server_name, "api.internal");
  EXPECT_EQ(c->namespace_name, "default");
  EXPECT_TRUE(c->token.empty());
}

TEST(KubeConfigTest, FilesResolveAgainstTheConfigFolder) {
  TempDir dir;
  dir.Write("ca.crt", "CA FROM FILE");
  dir.Write("client.crt", "CERT FROM FILE");
  dir.Write("client.key", "KEY FROM FILE");
  dir.Write("token", "  file-token\n");
  dir.Write("config", R"(
current-context: x
clusters: [{name: c, cluster: {server: "https://[::1]:6443", certificate-authority: ca.crt}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
users: [{name: u, user: {tokenFile: token, client-certificate: client.crt, client-key: client.key}}]
)");
  auto c = LoadKubeConfig(dir.path() + "/config");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ca_pem, "CA FROM FILE");
  EXPECT_EQ(c->client_cert_pem, "CERT FROM FILE");
  EXPECT_EQ(c->client_key_pem, "KEY FROM FILE");
  EXPECT_EQ(c->token, "file-token");
  EXPECT_EQ(c->token_file, dir.path() + "/token");
}

TEST(KubeConfigTest, BadInputGivesClearErrors) {
  struct Case {
    std::string yaml;
    std::string context;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"clusters: [", "", "invalid YAML"},
      {"- a\n- b\n", "", "not a map"},
      {"clusters: []\n", "", "'current-context' is not set"},
      {kTwoContexts, "missing", "no entry named 'missing' in 'contexts'"},
      {"current-context: x\ncontexts: [{name: x, context: {user: u}}]\n", "", "names no cluster"},
      {"current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
       "clusters: [{name: c, cluster: {}}]\n",
       "", "has no 'server'"},
      {"current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
       "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
       "users: [{name: u, user: {exec: {command: aws}}}]\n",
       "", "uses 'exec', which is not supported"},
      {"current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
       "clusters: [{name: c, cluster: {server: 'https://h', certificate-authority-data: '!!!'}}]\n",
       "", "not valid base64"},
      {"current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
       "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
       "users: [{name: u, user: {client-certificate-data: QUJD}}]\n",
       "", "needs both client-certificate and client-key"},
      {"current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
       "clusters: [{name: c, cluster: {server: 'https://h', certificate-authority: "
       "/no/such.crt}}]\n",
       "", "cannot read certificate-authority file '/no/such.crt'"},
      {"current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
       "clusters: [{name: c, cluster: {server: 'https://h', insecure-skip-tls-verify: maybe}}]\n",
       "", "invalid YAML"},
  };
  for (const auto& c : cases) {
    auto config = ParseKubeConfig(c.yaml, "/nowhere", c.context);
    ASSERT_FALSE(config.ok()) << c.yaml;
    EXPECT_THAT(std::string(config.status().message()), HasSubstr(c.expect)) << c.yaml;
  }
}

TEST(KubeConfigTest, MissingFileIsNotFound) {
  auto c = LoadKubeConfig("/no/such/kubeconfig");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("/no/such/kubeconfig"));
}

TEST(InClusterConfigTest, ReadsServiceAccountFiles) {
  TempDir dir;
  dir.Write("token", "sa-token\n");
  dir.Write("ca.crt", "SA CA");
  dir.Write("namespace", "prod\n");
  auto c = InClusterConfigFrom("10.96.0.1", "443", dir.path());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->token, "sa-token");
  EXPECT_EQ(c->token_file, dir.path() + "/token");
  EXPECT_EQ(c->ca_pem, "SA CA");
  EXPECT_EQ(c->namespace_name, "prod");

  auto v6 = InClusterConfigFrom("fd00::1", "6443", dir.path());
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->server, "https://[fd00::1]:6443");
}

TEST(InClusterConfigTest, OutsideAClusterIsFailedPrecondition) {
  EXPECT_EQ(InClusterConfigFrom("", "", "/nowhere").status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto c = InClusterConfigFrom("10.0.0.1", "443", "/no/such/dir");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("/no/such/dir/token"));
}

}  // namespace
}  // namespace galley::kube
