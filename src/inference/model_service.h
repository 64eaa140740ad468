// The InferenceService of one `galley serve` process: its models (each a ModelRunner), their
// readiness, and draining.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "common/lifecycle.h"
#include "inference/inference_service.h"
#include "inference/model_runner.h"

namespace galley::inference {

// Warm-up input for a model: one request of batch 1, variable dimensions 1, numbers 0 and a
// short English text for BYTES (which every built-in text model takes).
std::vector<model::InferInput> WarmupFor(const model::ModelMetadata& md);

// A Component (common/lifecycle.h): Start() loads every model with one warm-up request
// (WarmupFor) and starts it; a model that fails to load is marked failed (its requests are
// answered with the reason) and the others serve. BeginDrain() is SetDraining(). Stop() stops
// every model, finishing accepted work.
class ModelService final : public InferenceService, public Component {
 public:
  ModelService() = default;
  // Adds a model before Start(); the name comes from the runner's metadata.
  void AddModel(std::unique_ptr<ModelRunner> runner);
  ModelRunner* runner(std::string_view name) const;
  // Records a model that cannot be served at all (e.g. its config is invalid), before Start():
  // requests naming it are answered kModelNotReady with `reason` instead of "unknown model".
  void AddUnavailable(std::string name, std::string reason);
  // The model repository's folder, before Start(): clients' messages name files relative to it,
  // never by the server's absolute path (logs keep the whole path).
  void SetRepositoryRoot(std::string root) { repository_root_ = std::move(root); }

  // Marks the server as draining: Ready() turns false at once. Work is still accepted.
  void SetDraining() { draining_.store(true); }

  std::string_view component_name() const override { return "models"; }
  absl::Status Start() override;
  // How many models Start() loaded.
  int loaded_models() const { return loaded_; }
  void BeginDrain() override { SetDraining(); }
  void Stop() override;

  std::vector<model::ModelMetadata> Models() const override;
  const model::ModelMetadata* FindModel(std::string_view name,
                                        std::string_view version) const override;
  bool ModelReady(std::string_view name, std::string_view version) const override;
  bool Ready() const override;
  std::string UnavailableMessage(std::string_view name) const override;
  void Infer(InferRequest&& request, InferCallback done) override;

 private:
  ModelRunner* Find(std::string_view name, std::string_view version) const;

  std::map<std::string, std::unique_ptr<ModelRunner>, std::less<>> runners_;  // fixed after start
  std::map<std::string, std::string, std::less<>> unavailable_;               // fixed after start
  std::string repository_root_;                                               // fixed after start
  std::atomic<bool> draining_{false};
  int loaded_ = 0;  // set by Start()
};

}  // namespace galley::inference
