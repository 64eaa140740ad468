// A model repository in the manner of Triton's: one folder per model holding `config.json`
// (inference/model_config.h) and numbered version folders; the highest-numbered version that holds
// the model's file is served (Triton's default version policy, "latest 1").
//
//   models/
//     sentiment/
//       config.json
//       vocab.txt
//       1/model.onnx
//
// Backends are made by factories registered per platform (BackendRegistry); the built-in ones
// are listed by one function outside this library (inference/builtin_backends.h), so that the
// serving core does not depend on any model runtime.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "inference/model_config.h"
#include "model/backend.h"

namespace galley::inference {

// Where one model's files are.
struct ModelLocation {
  std::string name;           // the folder's name
  std::filesystem::path dir;  // <repository>/<name>
  std::string version;        // e.g. "3"
  std::filesystem::path version_dir;
};

// Makes one backend instance (not yet loaded) of a model. Called once per instance.
using BackendFactory = std::function<absl::StatusOr<std::unique_ptr<model::Backend>>(
    const ModelConfig& config, const ModelLocation& location)>;

class BackendRegistry {
 public:
  // Fails (AlreadyExists) when the platform already has a factory.
  absl::Status Register(std::string platform, BackendFactory factory);
  const BackendFactory* Find(std::string_view platform) const;

 private:
  std::map<std::string, BackendFactory, std::less<>> factories_;
};

// One model found in the repository: its config and location, or why it cannot be served.
struct RepositoryEntry {
  std::string name;
  absl::Status status;     // OK, or the error that keeps this model from loading
  ModelConfig config;      // valid when status is OK
  ModelLocation location;  // valid when status is OK
};

// Lists the models of `repository` (every sub-folder, sorted by name; hidden folders skipped).
// A folder without a readable, valid config.json, or without a version folder that holds the
// model's file, is an entry with an error; only an unreadable repository is an error itself.
absl::StatusOr<std::vector<RepositoryEntry>> ScanRepository(
    const std::filesystem::path& repository);

// One model folder, as ScanRepository reports it (its name is the folder's).
RepositoryEntry ScanModelFolder(const std::filesystem::path& dir);

// The file a platform needs in a version folder ("model.onnx"), or empty if none.
std::string_view ModelFileName(std::string_view platform);

}  // namespace galley::inference
