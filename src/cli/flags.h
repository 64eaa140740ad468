// Flag helpers shared by the subcommands: every flag has an environment twin
// GALLEY_<FLAG_IN_UPPER_SNAKE_CASE>; the flag wins.
#pragma once

#include <sys/resource.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "http/server.h"

namespace galley::cli {

// GALLEY_NAME for `--name` (dashes become underscores).
inline std::string EnvName(const std::string& name) {
  std::string env = "GALLEY_";
  for (char c : name) env.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  return env;
}

// Adds `--name` with environment twin GALLEY_NAME.
template <typename T>
CLI::Option* Flag(CLI::App* app, const std::string& name, T& value, const std::string& help) {
  return app->add_option("--" + name, value, help)->envname(EnvName(name))->capture_default_str();
}

// Adds `--name` bound to a typed duration: the flag (and GALLEY_NAME) takes a whole number of
// `Unit`s, which the name ends with (`-ms`, `-s`).
template <typename Unit = std::chrono::milliseconds, typename D>
CLI::Option* DurationFlag(CLI::App* app, const std::string& name, D& value,
                          const std::string& help) {
  return app
      ->add_option_function<int64_t>(
          "--" + name,
          [&value](const int64_t& n) {
            value = std::chrono::duration_cast<D>(Unit(static_cast<typename Unit::rep>(n)));
          },
          help)
      ->envname(EnvName(name))
      ->default_str(std::to_string(std::chrono::duration_cast<Unit>(value).count()));
}

// A flag group's Validate() failed: its message on stderr, and the exit code of a usage error.
inline int FlagError(const absl::Status& st) {
  std::cerr << st.message() << "\n";
  return 2;
}

// This process's peak resident memory in MiB (getrusage; Linux reports KiB), which the
// benchmark-style subcommands print beside their speed.
inline double PeakRssMib() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

// The flags every HTTP-serving subcommand has (listen address, limits, drain, logging), bound to
// typed values. After parsing: Validate() checks them (the message names the flag), Apply()
// turns them into the listeners' options.
struct HttpFlags {
  using ms = std::chrono::milliseconds;
  std::string listen = "127.0.0.1:8080";
  std::string log_level = "info";
  int io_threads = 2;
  size_t max_body_bytes = 1 << 20;
  size_t max_header_bytes = 16 << 10;
  size_t max_connections = 4096;
  size_t max_connections_per_peer = 1024;
  ms first_byte_timeout{5'000};
  ms idle_timeout{60'000};
  ms request_timeout{10'000};
  ms write_timeout{30'000};
  ms default_timeout{30'000};  // a request's deadline when it sets none (0: none)
  ms drain_delay{5'000};       // after SIGTERM: serve, not ready, this long
  ms grace_period{30'000};     // after SIGTERM: exit within this
  std::string tls_cert, tls_key, tls_client_ca;
  std::string metrics_listen;  // empty: /metrics on --listen

  void Add(CLI::App* app);
  // --log-level, --listen and --metrics-listen parse.
  absl::Status Validate() const;
  // Sets the log level; fills the API listener's options and those of the operations listener
  // (--metrics-listen; nothing when the flag is empty). Fails only if the TLS files do not load.
  absl::Status Apply(http::ServerOptions& api, std::optional<http::ServerOptions>& ops) const;
};

}  // namespace galley::cli
