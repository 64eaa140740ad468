// Model delivery: what the init container of an InferenceModel's pods runs (`galley model
// fetch`) before the server starts. It gets the model named by a source URI, checks its SHA-256,
// keeps a copy in a node-local cache (content-addressed, so a replica placed again on a node that
// had the model does not fetch it again), and lays it out as a model repository that `galley
// serve --model-repository` reads (docs/model-repository.md).
//
// Sources: `file:///PATH` (a path in the container: the image, or a mounted volume),
// `pvc://CLAIM/PATH` (PATH inside the claim, mounted by the operator at `pvc_root`), and
// `http://` / `https://` (GET, redirects followed, the server's certificate checked against
// `ca_file` or the system's CAs). A source that is a single file is the model file (ONNX): it
// becomes NAME/VERSION/model.onnx with a generated config.json. A source that is a folder holding
// config.json is a whole model folder (its config, vocabularies, version folders), copied as it
// is; a SHA-256 is refused for a folder (there is no one file to check).
//
// Nothing is left half-written: files are written under a temporary name in the same folder and
// renamed into place, and a failure removes what this call wrote.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace galley::delivery {

enum class Scheme { kFile, kPvc, kHttp, kHttps };

struct Source {
  Scheme scheme = Scheme::kFile;
  std::string host;   // http(s): the host (no port); pvc: the claim
  uint16_t port = 0;  // http(s): the port (80 / 443 when the URI gives none)
  std::string path;   // file: absolute path; pvc: path in the claim; http(s): target with query
};

// Parses a source URI; InvalidArgument naming what is wrong (an unknown scheme, a relative or
// empty path, "..", a bad port).
absl::StatusOr<Source> ParseSource(std::string_view uri);

// The SHA-256 of a file, as 64 lower-case hex digits.
absl::StatusOr<std::string> Sha256File(const std::filesystem::path& file);

// The config.json written beside a single model file: ONNX Runtime, and when max_batch_size > 0
// dynamic batching with that batch and queue delay.
std::string GeneratedConfig(int max_batch_size, int64_t max_queue_delay_us);

struct FetchOptions {
  std::string source;
  std::string name;  // the model's folder in `dest` (the name clients use)
  std::string version = "1";
  std::string sha256;           // 64 hex digits; empty: not checked, and the cache is not used
  std::filesystem::path dest;   // the model repository to put the model in
  std::filesystem::path cache;  // node-local cache folder; empty: none
  std::filesystem::path pvc_root = "/mnt/pvc";
  std::string ca_file;     // https: PEM bundle; empty: the system's CAs
  int max_batch_size = 0;  // for the generated config.json
  int64_t max_queue_delay_us = 0;
  std::chrono::seconds timeout{600};  // the whole download
  uint64_t max_bytes = uint64_t{8} << 30;
};

struct FetchResult {
  bool from_cache = false;
  uint64_t bytes = 0;
  std::string sha256;  // of the model file (empty for a folder)
  std::filesystem::path model_dir;
};

// Fetches and places the model. Errors: InvalidArgument (a bad option or source),
// NotFound (no such file, claim path or HTTP 404), FailedPrecondition (the SHA-256 differs:
// "sha256 of SOURCE is X, the resource says Y"), Unavailable (the server cannot be reached, or
// answers an error), ResourceExhausted (larger than max_bytes), Internal (the file system).
absl::StatusOr<FetchResult> FetchModel(const FetchOptions& options);

}  // namespace galley::delivery
