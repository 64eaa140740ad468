#include "inference/model_repository.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <system_error>

#include "common/strings.h"

namespace galley::inference {

namespace fs = std::filesystem;

absl::Status BackendRegistry::Register(std::string platform, BackendFactory factory) {
  if (factories_.count(platform) != 0) {
    return absl::AlreadyExistsError(
        StrCat("a backend for platform '", platform, "' is already registered"));
  }
  factories_.emplace(std::move(platform), std::move(factory));
  return absl::OkStatus();
}

const BackendFactory* BackendRegistry::Find(std::string_view platform) const {
  auto it = factories_.find(platform);
  return it == factories_.end() ? nullptr : &it->second;
}

std::string_view ModelFileName(std::string_view platform) {
  if (platform == "onnxruntime_onnx") return "model.onnx";
  if (platform == "galley_retrieval") return "index.hnsw";
  return "";
}

namespace {

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot read ", path.string()));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool IsVersionName(const std::string& s) {
  return !s.empty() && s.size() <= 18 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Fills `e` from the model folder `dir`.
void ScanModel(const fs::path& dir, RepositoryEntry& e) {
  auto text = ReadFile(dir / "config.json");
  if (!text.ok()) {
    e.status =
        absl::NotFoundError(StrCat("model '", e.name, "': no config.json in ", dir.string()));
    return;
  }
  auto config = ParseModelConfig(*text, e.name);
  if (!config.ok()) {
    e.status = absl::InvalidArgumentError(StrCat(
        "model '", e.name, "': ", (dir / "config.json").string(), ": ", config.status().message()));
    return;
  }
  e.config = std::move(config).value();
  // The highest-numbered version folder holding the platform's model file.
  const std::string_view file = ModelFileName(e.config.platform);
  std::error_code ec;
  int64_t best = -1;
  for (const auto& sub : fs::directory_iterator(dir, ec)) {
    const std::string v = sub.path().filename().string();
    if (!sub.is_directory() || !IsVersionName(v)) continue;
    if (!file.empty() && !fs::exists(sub.path() / std::string(file))) continue;
    const int64_t n = std::stoll(v);
    if (n > best) best = n;
  }
  if (best < 0) {
    e.status = absl::NotFoundError(StrCat("model '", e.name, "': no numbered version folder",
                                          file.empty() ? std::string() : StrCat(" holding ", file),
                                          " in ", dir.string()));
    return;
  }
  e.location.name = e.name;
  e.location.dir = dir;
  e.location.version = std::to_string(best);
  e.location.version_dir = dir / e.location.version;
}

}  // namespace

RepositoryEntry ScanModelFolder(const fs::path& dir) {
  RepositoryEntry e;
  e.name = dir.filename().string();
  ScanModel(dir, e);
  return e;
}

absl::StatusOr<std::vector<RepositoryEntry>> ScanRepository(const fs::path& repository) {
  std::error_code ec;
  if (!fs::is_directory(repository, ec)) {
    return absl::NotFoundError(
        StrCat("model repository ", repository.string(), " is not a folder"));
  }
  // A model is a folder with a configuration; other folders (training scripts, notes) are not
  // models and are not reported as broken ones.
  std::vector<fs::path> dirs;
  for (const auto& sub : fs::directory_iterator(repository, ec)) {
    const std::string name = sub.path().filename().string();
    std::error_code config_ec;
    if (sub.is_directory() && !name.empty() && name[0] != '.' &&
        fs::exists(sub.path() / "config.json", config_ec)) {
      dirs.push_back(sub.path());
    }
  }
  if (ec)
    return absl::UnavailableError(StrCat("reading ", repository.string(), ": ", ec.message()));
  std::sort(dirs.begin(), dirs.end());
  std::vector<RepositoryEntry> out;
  for (const fs::path& dir : dirs) {
    out.push_back(ScanModelFolder(dir));
  }
  return out;
}

}  // namespace galley::inference
