#include "sim/trace.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "common/status_macros.h"
#include "common/strings.h"

namespace galley::sim {
namespace {

using schedule::Gpu;
using schedule::kMilliPerGpu;
using schedule::Node;
using schedule::Pod;

struct Table {
  std::vector<std::string_view> header;
  std::vector<std::pair<int, std::vector<std::string_view>>> rows;  // line number, fields
};

absl::StatusOr<Table> SplitCsv(std::string_view text, std::string_view origin) {
  Table t;
  int line_no = 0;
  for (std::string_view line : Split(text, '\n')) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (StripWhitespace(line).empty()) continue;
    std::vector<std::string_view> fields = Split(line, ',');
    for (auto& f : fields) f = StripWhitespace(f);
    if (t.header.empty()) {
      t.header = std::move(fields);
      continue;
    }
    if (fields.size() < t.header.size()) {
      return absl::InvalidArgumentError(StrCat(origin, ":", line_no, ": expected ", t.header.size(),
                                               " fields, got ", fields.size()));
    }
    t.rows.emplace_back(line_no, std::move(fields));
  }
  if (t.header.empty()) return absl::InvalidArgumentError(StrCat(origin, ": empty file"));
  if (t.rows.empty()) return absl::InvalidArgumentError(StrCat(origin, ": no data rows"));
  return t;
}

absl::StatusOr<size_t> Column(const Table& t, std::string_view name, std::string_view origin) {
  for (size_t i = 0; i < t.header.size(); ++i) {
    if (t.header[i] == name) return i;
  }
  return absl::InvalidArgumentError(StrCat(origin, ": missing column \"", name, "\""));
}

absl::StatusOr<int64_t> Number(std::string_view s, std::string_view column, int64_t max,
                               std::string_view origin, int line) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || v < 0 || v > max) {
    return absl::InvalidArgumentError(StrCat(
        origin, ":", line, ": ", column, ": expected an integer 0..", max, ", got \"", s, "\""));
  }
  return v;
}

constexpr int64_t kBig = int64_t{1} << 40;

}  // namespace

int64_t GpuMemoryMib(std::string_view model) {
  static const std::map<std::string_view, int64_t> kMemory = {
      {"P4", 7611},   {"T4", 15109},      {"V100M16", 16160}, {"P100", 16280},
      {"A10", 22731}, {"V100M32", 32510}, {"A100", 81251},    {"H100", 81559},
  };
  auto it = kMemory.find(model);
  return it == kMemory.end() ? 0 : it->second;
}

absl::StatusOr<std::vector<Node>> ParseNodesCsv(std::string_view text, std::string_view origin) {
  ASSIGN_OR_RETURN(const Table t, SplitCsv(text, origin));
  ASSIGN_OR_RETURN(const size_t c_name, Column(t, "sn", origin));
  ASSIGN_OR_RETURN(const size_t c_cpu, Column(t, "cpu_milli", origin));
  ASSIGN_OR_RETURN(const size_t c_mem, Column(t, "memory_mib", origin));
  ASSIGN_OR_RETURN(const size_t c_gpu, Column(t, "gpu", origin));
  ASSIGN_OR_RETURN(const size_t c_model, Column(t, "model", origin));
  std::vector<Node> nodes;
  for (const auto& [line, f] : t.rows) {
    Node n;
    n.name = std::string(f[c_name]);
    ASSIGN_OR_RETURN(n.cpu_milli, Number(f[c_cpu], "cpu_milli", kBig, origin, line));
    ASSIGN_OR_RETURN(n.memory_mib, Number(f[c_mem], "memory_mib", kBig, origin, line));
    ASSIGN_OR_RETURN(const int64_t gpus, Number(f[c_gpu], "gpu", 64, origin, line));
    const std::string model(f[c_model]);
    if (gpus > 0 && model.empty()) {
      return absl::InvalidArgumentError(StrCat(origin, ":", line, ": model: empty for a GPU node"));
    }
    for (int64_t i = 0; i < gpus; ++i) n.gpus.push_back(Gpu{model, GpuMemoryMib(model), 0, 0});
    nodes.push_back(std::move(n));
  }
  return nodes;
}

absl::StatusOr<std::vector<Pod>> ParsePodsCsv(std::string_view text, std::string_view origin) {
  ASSIGN_OR_RETURN(const Table t, SplitCsv(text, origin));
  ASSIGN_OR_RETURN(const size_t c_name, Column(t, "name", origin));
  ASSIGN_OR_RETURN(const size_t c_cpu, Column(t, "cpu_milli", origin));
  ASSIGN_OR_RETURN(const size_t c_mem, Column(t, "memory_mib", origin));
  ASSIGN_OR_RETURN(const size_t c_num, Column(t, "num_gpu", origin));
  ASSIGN_OR_RETURN(const size_t c_milli, Column(t, "gpu_milli", origin));
  const auto c_spec = Column(t, "gpu_spec", origin);
  std::vector<Pod> pods;
  for (const auto& [line, f] : t.rows) {
    Pod p;
    p.name = std::string(f[c_name]);
    ASSIGN_OR_RETURN(p.cpu_milli, Number(f[c_cpu], "cpu_milli", kBig, origin, line));
    ASSIGN_OR_RETURN(p.memory_mib, Number(f[c_mem], "memory_mib", kBig, origin, line));
    ASSIGN_OR_RETURN(const int64_t num, Number(f[c_num], "num_gpu", 64, origin, line));
    ASSIGN_OR_RETURN(const int64_t milli,
                     Number(f[c_milli], "gpu_milli", kMilliPerGpu, origin, line));
    if ((num == 0) != (milli == 0)) {
      return absl::InvalidArgumentError(
          StrCat(origin, ":", line, ": num_gpu and gpu_milli must both be 0 or both positive"));
    }
    if (num > 1 && milli != kMilliPerGpu) {
      return absl::InvalidArgumentError(StrCat(
          origin, ":", line, ": a pod with num_gpu > 1 must take whole GPUs (gpu_milli 1000)"));
    }
    p.gpu_count = static_cast<int32_t>(num);
    p.gpu_milli = static_cast<int32_t>(milli);
    if (c_spec.ok() && !f[*c_spec].empty()) {
      for (std::string_view m : Split(f[*c_spec], '|')) {
        if (!m.empty()) p.gpu_models.emplace_back(m);
      }
    }
    pods.push_back(std::move(p));
  }
  return pods;
}

std::string WriteNodesCsv(const std::vector<Node>& nodes) {
  std::string out = "sn,cpu_milli,memory_mib,gpu,model\n";
  for (const Node& n : nodes) {
    out += StrCat(n.name, ",", n.cpu_milli, ",", n.memory_mib, ",", n.gpus.size(), ",",
                  n.gpus.empty() ? std::string() : n.gpus[0].model, "\n");
  }
  return out;
}

std::string WritePodsCsv(const std::vector<Pod>& pods) {
  std::string out = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\n";
  for (const Pod& p : pods) {
    std::string spec;
    for (const std::string& m : p.gpu_models) spec += (spec.empty() ? "" : "|") + m;
    out += StrCat(p.name, ",", p.cpu_milli, ",", p.memory_mib, ",", p.gpu_count, ",", p.gpu_milli,
                  ",", spec, "\n");
  }
  return out;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    const std::string msg = StrCat(path, ": ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::InvalidArgumentError(msg);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace galley::sim
