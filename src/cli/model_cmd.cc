// `galley model fetch`: the init container of an InferenceModel's pods (delivery/model_fetch.h).
// Exit 0 with a `model_fetched` line; on failure exit 1 with a `model_fetch_failed` line, and the
// reason written to the container's termination message file, where Kubernetes (and so the
// operator, into the model's status) reads it.
#include <chrono>
#include <fstream>

#include "cli/commands.h"
#include "cli/flags.h"
#include "common/log.h"
#include "delivery/model_fetch.h"

namespace galley::cli {

Runner AddModelCommand(CLI::App& app) {
  CLI::App* model = app.add_subcommand("model", "Model delivery");
  model->require_subcommand(1);
  CLI::App* cmd = model->add_subcommand(
      "fetch",
      "Fetch a model by URI, check its SHA-256, cache it on the node and lay it out as a "
      "model repository (what an InferenceModel's init container runs)");
  auto o = std::make_shared<delivery::FetchOptions>();
  auto dest = std::make_shared<std::string>();
  auto cache = std::make_shared<std::string>();
  auto pvc_root = std::make_shared<std::string>(o->pvc_root.string());
  auto termination_log = std::make_shared<std::string>("/dev/termination-log");
  Flag(cmd, "source", o->source, "file:///PATH, pvc://CLAIM/PATH, http(s)://HOST/PATH")->required();
  Flag(cmd, "name", o->name, "the model's name (its folder in --dest)")->required();
  Flag(cmd, "version", o->version, "the version folder for a single model file");
  Flag(cmd, "sha256", o->sha256, "expected SHA-256 of a single model file (64 hex digits)");
  Flag(cmd, "dest", *dest, "the model repository to write")->required();
  Flag(cmd, "cache", *cache, "the node's model cache (by SHA-256); empty: none");
  Flag(cmd, "pvc-root", *pvc_root, "where the claim of a pvc:// source is mounted");
  Flag(cmd, "ca-file", o->ca_file, "https: PEM CA bundle (default: the system's)");
  Flag(cmd, "max-batch-size", o->max_batch_size,
       "generated config.json: largest batch (0: no batching)")
      ->check(CLI::Range(0, 4096));
  Flag(cmd, "max-queue-delay-us", o->max_queue_delay_us, "generated config.json: batching delay")
      ->check(CLI::NonNegativeNumber);
  DurationFlag<std::chrono::seconds>(cmd, "timeout-s", o->timeout, "limit on the whole download")
      ->check(CLI::PositiveNumber);
  Flag(cmd, "termination-log", *termination_log,
       "where the reason of a failure is written (Kubernetes' terminationMessagePath); empty: "
       "nowhere");
  return [cmd, o, dest, cache, pvc_root, termination_log]() -> int {
    if (!cmd->parsed()) return -1;
    o->dest = *dest;
    o->cache = *cache;
    o->pvc_root = *pvc_root;
    const auto start = std::chrono::steady_clock::now();
    auto r = delivery::FetchModel(*o);
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!r.ok()) {
      const std::string reason(r.status().message());
      log::Error("model_fetch_failed", {{"source", o->source},
                                        {"model", o->name},
                                        {"code", absl::StatusCodeToString(r.status().code())},
                                        {"error", reason}});
      if (!termination_log->empty()) std::ofstream(*termination_log, std::ios::trunc) << reason;
      return 1;
    }
    log::Info("model_fetched", {{"source", o->source},
                                {"model", o->name},
                                {"dir", r->model_dir.string()},
                                {"bytes", r->bytes},
                                {"sha256", r->sha256},
                                {"from_cache", r->from_cache},
                                {"duration_s", took}});
    return 0;
  };
}

}  // namespace galley::cli
