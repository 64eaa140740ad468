// Connection settings for a Kubernetes API server: from a kubeconfig file (the format of
// k8s.io/client-go/tools/clientcmd/api/v1, "Config") or from inside a pod (the service account
// files, as client-go's rest.InClusterConfig reads them).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace galley::kube {

// Everything the client needs to reach and authenticate to one API server. PEM texts are held in
// memory (files named by a kubeconfig are read when it is loaded).
struct KubeConfig {
  std::string server;           // "https://host:port" (an http:// server is refused)
  std::string ca_pem;           // trusted CA bundle; empty: the system's default trust store
  std::string client_cert_pem;  // client certificate (chain) for mutual TLS, or empty
  std::string client_key_pem;   // its private key, or empty
  std::string token;            // bearer token, or empty
  std::string token_file;       // re-read on each new connection when set (service accounts)
  std::string tls_server_name;  // name to verify instead of the server URL's host, or empty
  bool insecure_skip_tls_verify = false;   // NOTE: disables all server verification; tests only
  std::string namespace_name = "default";  // the context's namespace (or the pod's)
};

// Parses kubeconfig YAML text. `context` picks a context by name; empty means current-context.
// Relative file paths in the config are resolved against `base_dir`. Supported user fields:
// token, tokenFile, client-certificate(-data), client-key(-data); cluster fields: server,
// certificate-authority(-data), insecure-skip-tls-verify, tls-server-name. Unsupported auth
// (exec, auth-provider, username/password) gives InvalidArgument naming the field, as does any
// missing or malformed field; a file that cannot be read gives NotFound / the read error.
absl::StatusOr<KubeConfig> ParseKubeConfig(std::string_view yaml_text, std::string_view base_dir,
                                           std::string_view context = {});

// Reads and parses the kubeconfig at `path` (relative paths inside resolve against its folder).
absl::StatusOr<KubeConfig> LoadKubeConfig(const std::string& path, std::string_view context = {});

// The in-cluster configuration: KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT from the
// environment and token, ca.crt and namespace from `sa_dir` (default
// /var/run/secrets/kubernetes.io/serviceaccount). FailedPrecondition when not in a cluster.
inline constexpr std::string_view kServiceAccountDir =
    "/var/run/secrets/kubernetes.io/serviceaccount";
absl::StatusOr<KubeConfig> InClusterConfig(std::string_view sa_dir = kServiceAccountDir);

// Same, with the host and port given (what InClusterConfig reads from the environment).
absl::StatusOr<KubeConfig> InClusterConfigFrom(std::string_view host, std::string_view port,
                                               std::string_view sa_dir);

}  // namespace galley::kube
