// Flag helpers shared by the subcommands: every flag has an environment twin
// GALLEY_<FLAG_IN_UPPER_SNAKE_CASE>; the flag wins.
#pragma once

#include <sys/resource.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "http/server.h"

namespace galley::cli {

// Adds `--name` with environment twin GALLEY_NAME (dashes become underscores).
template <typename T>
CLI::Option* Flag(CLI::App* app, const std::string& name, T& value, const std::string& help) {
  std::string env = "GALLEY_";
  for (char c : name) env.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  return app->add_option("--" + name, value, help)->envname(env)->capture_default_str();
}

// This process's peak resident memory in MiB (getrusage; Linux reports KiB), which the
// benchmark-style subcommands print beside their speed.
inline double PeakRssMib() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

// The flags every HTTP-serving subcommand has (listen address, limits, drain, logging), as
// plain values; Apply() turns them into options after parsing.
struct HttpFlags {
  std::string listen = "127.0.0.1:8080";
  std::string log_level = "info";
  int io_threads = 2;
  size_t max_body_bytes = 1 << 20;
  size_t max_header_bytes = 16 << 10;
  size_t max_connections = 4096;
  size_t max_connections_per_peer = 1024;
  int64_t first_byte_timeout_ms = 5'000;
  int64_t idle_timeout_ms = 60'000;
  int64_t request_timeout_ms = 10'000;
  int64_t write_timeout_ms = 30'000;
  int64_t default_timeout_ms = 30'000;
  int64_t drain_delay_ms = 5'000;
  int64_t grace_period_ms = 30'000;
  std::string tls_cert, tls_key, tls_client_ca;
  std::string metrics_listen;  // empty: /metrics on --listen

  void Add(CLI::App* app);
  // Fills `out` from the flags; on a bad value prints to stderr and returns false.
  bool Apply(http::ServerOptions& out) const;
  // The operations listener's options (--metrics-listen), from those of the API's listener;
  // nothing when the flag is empty. On a bad value prints to stderr and returns false.
  bool ApplyMetrics(const http::ServerOptions& api, std::optional<http::ServerOptions>& out) const;
};

}  // namespace galley::cli
