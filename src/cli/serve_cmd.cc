// `galley serve`: the model server.
#include "cli/commands.h"
#include "cli/flags.h"
#include "serve/serve_main.h"

namespace galley::cli {

Runner AddServeCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("serve", "Run the model server");
  auto flags = std::make_shared<HttpFlags>();
  auto opts = std::make_shared<serve::ServeOptions>();
  flags->Add(cmd);
  Flag(cmd, "model-instances", opts->model_instances,
       "model instances (worker threads) per model")->check(CLI::Range(1, 64));
  Flag(cmd, "max-batch-size", opts->runner.batch.max_batch_size,
       "largest batch, in rows (1 turns batching off)")->check(CLI::Range(1, 4096));
  Flag(cmd, "queue-capacity", opts->runner.queue_capacity, "queued requests per model before 429");
  Flag(cmd, "model", opts->frontend.analyze_model, "name of the sentiment model");
  return [cmd, flags, opts]() -> int {
    if (!cmd->parsed()) return -1;
    if (!flags->Apply(opts->http)) return 2;
    opts->frontend.default_timeout = std::chrono::milliseconds(flags->default_timeout_ms);
    opts->drain_delay = std::chrono::milliseconds(flags->drain_delay_ms);
    opts->grace_period = std::chrono::milliseconds(flags->grace_period_ms);
    return serve::RunServe(*opts);
  };
}

}  // namespace galley::cli
