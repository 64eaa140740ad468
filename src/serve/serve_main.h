// The `galley serve` process: load the model, serve HTTP, drain and stop on SIGTERM/SIGINT.
#pragma once

#include <chrono>
#include <string>

#include "http/server.h"
#include "serve/http_handlers.h"
#include "serve/model_runner.h"

namespace galley::serve {

struct ServeOptions {
  http::ServerOptions http;
  HttpFrontendOptions frontend;
  RunnerOptions runner;
  int model_instances = 1;                        // backend instances (worker threads) per model
  std::chrono::milliseconds drain_delay{5'000};   // keep serving after SIGTERM, not ready
  std::chrono::milliseconds grace_period{30'000}; // from SIGTERM to exit, at most
};

// Runs the server until SIGTERM or SIGINT, then shuts down gracefully. Returns the exit code:
// 0 after a clean shutdown, 1 if start-up failed. Call from main() before starting any thread.
int RunServe(const ServeOptions& options);

}  // namespace galley::serve
