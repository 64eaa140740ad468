#include "kube/config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "yaml-cpp/yaml.h"

namespace galley::kube {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(StrCat("kubeconfig: cannot read ", what, " file '", path, "'"));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(StrCat("kubeconfig: error reading '", path, "'"));
  return ss.str();
}

std::string Resolve(std::string_view base_dir, const std::string& path) {
  if (path.empty() || path[0] == '/' || base_dir.empty()) return path;
  return StrCat(base_dir, "/", path);
}

// Finds the entry named `name` in a list of {name: ..., <field>: {...}}.
absl::StatusOr<YAML::Node> FindNamed(const YAML::Node& root, const char* list, const char* field,
                                     const std::string& name) {
  const YAML::Node entries = root[list];
  if (entries && !entries.IsSequence()) {
    return absl::InvalidArgumentError(StrCat("kubeconfig: '", list, "' is not a list"));
  }
  if (entries) {
    for (const auto& entry : entries) {
      if (!entry.IsMap() || !entry["name"] || entry["name"].as<std::string>() != name) continue;
      const YAML::Node body = entry[field];
      if (!body || body.IsNull()) return YAML::Node(YAML::NodeType::Map);
      if (!body.IsMap()) {
        return absl::InvalidArgumentError(
            StrCat("kubeconfig: ", list, " entry '", name, "' has no '", field, "' map"));
      }
      return body;
    }
  }
  return absl::InvalidArgumentError(
      StrCat("kubeconfig: no entry named '", name, "' in '", list, "'"));
}

std::string Str(const YAML::Node& map, const char* key) {
  const YAML::Node v = map[key];
  if (!v || v.IsNull()) return {};
  return v.as<std::string>();
}

// PEM from "<key>-data" (base64) or "<key>" (a file).
absl::StatusOr<std::string> Pem(const YAML::Node& map, const std::string& key,
                                std::string_view base_dir) {
  const std::string data = Str(map, (key + "-data").c_str());
  if (!data.empty()) {
    std::string out;
    if (!absl::Base64Unescape(data, &out)) {
      return absl::InvalidArgumentError(StrCat("kubeconfig: '", key, "-data' is not valid base64"));
    }
    return out;
  }
  const std::string file = Str(map, key.c_str());
  if (file.empty()) return std::string();
  return ReadFile(Resolve(base_dir, file), key);
}

absl::StatusOr<KubeConfig> Parse(const YAML::Node& root, std::string_view base_dir,
                                 std::string context_name) {
  if (!root.IsMap()) return absl::InvalidArgumentError("kubeconfig: the document is not a map");
  if (context_name.empty()) context_name = Str(root, "current-context");
  if (context_name.empty()) {
    return absl::InvalidArgumentError(
        "kubeconfig: no context given and 'current-context' is not set");
  }
  ASSIGN_OR_RETURN(const YAML::Node context, FindNamed(root, "contexts", "context", context_name));
  const std::string cluster_name = Str(context, "cluster");
  if (cluster_name.empty()) {
    return absl::InvalidArgumentError(
        StrCat("kubeconfig: context '", context_name, "' names no cluster"));
  }
  ASSIGN_OR_RETURN(const YAML::Node cluster, FindNamed(root, "clusters", "cluster", cluster_name));
  KubeConfig config;
  config.server = Str(cluster, "server");
  if (config.server.empty()) {
    return absl::InvalidArgumentError(
        StrCat("kubeconfig: cluster '", cluster_name, "' has no 'server'"));
  }
  config.tls_server_name = Str(cluster, "tls-server-name");
  if (cluster["insecure-skip-tls-verify"]) {
    config.insecure_skip_tls_verify = cluster["insecure-skip-tls-verify"].as<bool>();
  }
  ASSIGN_OR_RETURN(config.ca_pem, Pem(cluster, "certificate-authority", base_dir));
  const std::string ns = Str(context, "namespace");
  if (!ns.empty()) config.namespace_name = ns;

  const std::string user_name = Str(context, "user");
  if (user_name.empty()) return config;  // anonymous
  ASSIGN_OR_RETURN(const YAML::Node user, FindNamed(root, "users", "user", user_name));
  for (const char* unsupported : {"exec", "auth-provider", "username", "password"}) {
    if (user[unsupported] && !user[unsupported].IsNull()) {
      return absl::InvalidArgumentError(StrCat("kubeconfig: user '", user_name, "' uses '",
                                               unsupported, "', which is not supported"));
    }
  }
  config.token = Str(user, "token");
  const std::string token_file = Str(user, "tokenFile");
  if (!token_file.empty()) {
    // As rest.Config.BearerTokenFile: the file's contents take precedence and are re-read.
    config.token_file = Resolve(base_dir, token_file);
    ASSIGN_OR_RETURN(const std::string token, ReadFile(config.token_file, "tokenFile"));
    config.token = std::string(StripWhitespace(token));
  }
  ASSIGN_OR_RETURN(config.client_cert_pem, Pem(user, "client-certificate", base_dir));
  ASSIGN_OR_RETURN(config.client_key_pem, Pem(user, "client-key", base_dir));
  if (config.client_cert_pem.empty() != config.client_key_pem.empty()) {
    return absl::InvalidArgumentError(
        StrCat("kubeconfig: user '", user_name, "' needs both client-certificate and client-key"));
  }
  return config;
}

}  // namespace

absl::StatusOr<KubeConfig> ParseKubeConfig(std::string_view yaml_text, std::string_view base_dir,
                                           std::string_view context) {
  try {
    const YAML::Node root = YAML::Load(std::string(yaml_text));
    return Parse(root, base_dir, std::string(context));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat("kubeconfig: invalid YAML: ", e.what()));
  }
}

absl::StatusOr<KubeConfig> LoadKubeConfig(const std::string& path, std::string_view context) {
  ASSIGN_OR_RETURN(const std::string text, ReadFile(path, "kubeconfig"));
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  auto config = ParseKubeConfig(text, dir.empty() ? "/" : dir, context);
  if (!config.ok()) {
    return absl::Status(config.status().code(),
                        StrCat(ToStd(config.status().message()), " (in ", path, ")"));
  }
  return config;
}

absl::StatusOr<KubeConfig> InClusterConfigFrom(std::string_view host, std::string_view port,
                                               std::string_view sa_dir) {
  if (host.empty() || port.empty()) {
    return absl::FailedPreconditionError(
        "in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
  }
  KubeConfig config;
  const bool ipv6 = host.find(':') != std::string_view::npos;
  config.server = StrCat("https://", ipv6 ? "[" : "", host, ipv6 ? "]" : "", ":", port);
  config.token_file = StrCat(sa_dir, "/token");
  auto token = ReadFile(config.token_file, "service account token");
  if (!token.ok()) return absl::FailedPreconditionError(token.status().message());
  config.token = std::string(StripWhitespace(*token));
  auto ca = ReadFile(StrCat(sa_dir, "/ca.crt"), "service account CA");
  if (!ca.ok()) return absl::FailedPreconditionError(ca.status().message());
  config.ca_pem = *std::move(ca);
  if (auto ns = ReadFile(StrCat(sa_dir, "/namespace"), "namespace"); ns.ok()) {
    const std::string_view n = StripWhitespace(*ns);
    if (!n.empty()) config.namespace_name = std::string(n);
  }
  return config;
}

absl::StatusOr<KubeConfig> InClusterConfig(std::string_view sa_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  return InClusterConfigFrom(host ? host : "", port ? port : "", sa_dir);
}

}  // namespace galley::kube
