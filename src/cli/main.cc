// The `galley` command. Subcommands: serve (more arrive with their components).
// Every flag has an environment twin, GALLEY_<FLAG_IN_UPPER_SNAKE_CASE>; the flag wins.
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "cli/listen.h"
#include "common/log.h"
#include "serve/serve_main.h"

#ifndef GALLEY_VERSION
#define GALLEY_VERSION "dev"
#endif

namespace {

// Adds `--name` with environment twin GALLEY_NAME (dashes become underscores).
template <typename T>
CLI::Option* Flag(CLI::App* app, const std::string& name, T& value, const std::string& help) {
  std::string env = "GALLEY_";
  for (char c : name) env.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  return app->add_option("--" + name, value, help)->envname(env)->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Galley: serve AI models as cloud-native microservices"};
  app.require_subcommand(1);
  app.set_version_flag("--version", GALLEY_VERSION);

  galley::serve::ServeOptions opts;
  std::string listen = "0.0.0.0:8080";
  std::string log_level = "info";
  int64_t idle_ms = opts.http.idle_timeout.count();
  int64_t request_ms = opts.http.request_timeout.count();
  int64_t write_ms = opts.http.write_timeout.count();
  int64_t default_timeout_ms = opts.frontend.default_timeout.count();
  int64_t drain_ms = opts.drain_delay.count();
  int64_t grace_ms = opts.grace_period.count();

  CLI::App* serve = app.add_subcommand("serve", "Run the model server");
  Flag(serve, "listen", listen, "HOST:PORT to listen on (port 0 picks a free port)");
  Flag(serve, "io-threads", opts.http.io_threads, "HTTP I/O threads")->check(CLI::Range(1, 64));
  Flag(serve, "model-instances", opts.model_instances,
       "model instances (worker threads) per model")->check(CLI::Range(1, 64));
  Flag(serve, "max-batch-size", opts.runner.batch.max_batch_size,
       "largest batch, in rows (1 turns batching off)")->check(CLI::Range(1, 4096));
  Flag(serve, "queue-capacity", opts.runner.queue_capacity,
       "queued requests per model before 429");
  Flag(serve, "default-timeout-ms", default_timeout_ms,
       "deadline of a request that sets none (0: none)")->check(CLI::NonNegativeNumber);
  Flag(serve, "max-body-bytes", opts.http.max_body_bytes, "largest request body (413 beyond)");
  Flag(serve, "max-header-bytes", opts.http.max_header_bytes, "largest request header (431 beyond)");
  Flag(serve, "max-connections", opts.http.max_connections, "open connections (503 beyond)");
  Flag(serve, "idle-timeout-ms", idle_ms, "keep-alive idle time before closing")->check(CLI::PositiveNumber);
  Flag(serve, "request-timeout-ms", request_ms,
       "time to receive a whole request once it starts (408 beyond)")->check(CLI::PositiveNumber);
  Flag(serve, "write-timeout-ms", write_ms, "time to send a response")->check(CLI::PositiveNumber);
  Flag(serve, "drain-delay-ms", drain_ms, "after SIGTERM: serve, not ready, this long")->check(CLI::NonNegativeNumber);
  Flag(serve, "grace-period-ms", grace_ms, "after SIGTERM: exit within this")->check(CLI::PositiveNumber);
  Flag(serve, "model", opts.frontend.analyze_model, "name of the sentiment model");
  Flag(serve, "log-level", log_level, "debug, info, warn or error");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2, with CLI11's message on stderr.
    return app.exit(e) == 0 ? 0 : 2;
  }

  galley::log::Level level;
  if (!galley::log::ParseLevel(log_level, &level)) {
    std::cerr << "--log-level: expected debug, info, warn or error, got '" << log_level << "'\n";
    return 2;
  }
  galley::log::SetLevel(level);

  if (serve->parsed()) {
    auto hp = galley::cli::ParseListen(listen);
    if (!hp.ok()) {
      std::cerr << "--listen: " << hp.status().message() << "\n";
      return 2;
    }
    opts.http.host = hp->host;
    opts.http.port = hp->port;
    opts.http.idle_timeout = std::chrono::milliseconds(idle_ms);
    opts.http.request_timeout = std::chrono::milliseconds(request_ms);
    opts.http.write_timeout = std::chrono::milliseconds(write_ms);
    opts.frontend.default_timeout = std::chrono::milliseconds(default_timeout_ms);
    opts.drain_delay = std::chrono::milliseconds(drain_ms);
    opts.grace_period = std::chrono::milliseconds(grace_ms);
    return galley::serve::RunServe(opts);
  }
  return 0;
}
