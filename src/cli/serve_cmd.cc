// `galley serve`: the model server.
#include <filesystem>

#include "cli/commands.h"
#include "cli/flags.h"
#include "inference/builtin_backends.h"
#include "serve/serve_main.h"

namespace galley::cli {

Runner AddServeCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("serve", "Run the model server");
  auto flags = std::make_shared<HttpFlags>();
  auto opts = std::make_shared<serve::ServeOptions>();
  flags->Add(cmd);
  // Default: the models/ folder of the source tree this binary was built from, when it exists.
  std::error_code ec;
  if (std::filesystem::is_directory(GALLEY_SOURCE_MODELS, ec)) opts->model_repository = GALLEY_SOURCE_MODELS;
  Flag(cmd, "model-repository", opts->model_repository,
       "folder of models (one sub-folder each, see docs/model-repository.md); empty: the "
       "built-in VADER model only");
  Flag(cmd, "model-instances", opts->model_instances,
       "built-in model: instances (worker threads)")->check(CLI::Range(1, 64));
  Flag(cmd, "max-batch-size", opts->runner.batch.max_batch_size,
       "built-in model: largest batch, in rows (1 turns batching off)")->check(CLI::Range(1, 4096));
  Flag(cmd, "grpc-port", opts->grpc_port,
       "gRPC (Open Inference Protocol) port on the --listen host; 0: a free port; -1: off")
      ->check(CLI::Range(-1, 65535));
  Flag(cmd, "queue-capacity", opts->runner.queue_capacity, "built-in model: queued requests before 429");
  CLI::Option* model = Flag(cmd, "model", opts->frontend.analyze_model,
       "the model behind POST /inference/analyze (default: sentiment with a repository, else "
       "vader, which also names the built-in model)");
  return [cmd, flags, opts, model]() -> int {
    if (!cmd->parsed()) return -1;
    if (model->count() == 0 && !opts->model_repository.empty()) {
      opts->frontend.analyze_model = "sentiment";
    }
    if (!flags->Apply(opts->http) || !flags->ApplyMetrics(opts->http, opts->metrics_http)) return 2;
    opts->frontend.default_timeout = std::chrono::milliseconds(flags->default_timeout_ms);
    opts->drain_delay = std::chrono::milliseconds(flags->drain_delay_ms);
    opts->grace_period = std::chrono::milliseconds(flags->grace_period_ms);
    return serve::RunServe(*opts, inference::BuiltinBackends());
  };
}

}  // namespace galley::cli
