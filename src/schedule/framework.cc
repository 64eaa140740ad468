#include "schedule/framework.h"

#include <algorithm>

#include "common/status_macros.h"
#include "common/strings.h"

namespace galley::schedule {

absl::Status Registry::Register(std::string name, PluginFactory factory) {
  if (factories_.count(name) != 0) {
    return absl::AlreadyExistsError(StrCat("plugin \"", name, "\" is already registered"));
  }
  factories_.emplace(std::move(name), std::move(factory));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Plugin>> Registry::Build(std::string_view name,
                                                        const PluginContext& ctx) const {
  auto it = factories_.find(name);
  if (it == factories_.end()) {
    return absl::NotFoundError(StrCat("no plugin named \"", name, "\""));
  }
  return it->second(ctx);
}

std::vector<std::string> Registry::Names() const {
  std::vector<std::string> out;
  for (const auto& [name, f] : factories_) out.push_back(name);
  return out;
}

std::string Unschedulable::Message() const {
  std::map<std::string, int> counts;
  for (const NodeReason& r : reasons) ++counts[r.reason];
  std::string out = StrCat("0/", total_nodes, " nodes are available");
  const char* sep = ": ";
  for (const auto& [reason, n] : counts) {
    out += StrCat(sep, n, " ", reason);
    sep = ", ";
  }
  out += ".";
  return out;
}

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(const Registry& registry,
                                                            const ProfileConfig& config,
                                                            const PluginContext& ctx) {
  std::unique_ptr<Scheduler> s(new Scheduler());
  for (const std::string& name : config.filters) {
    ASSIGN_OR_RETURN(auto plugin, registry.Build(name, ctx));
    if (!plugin->IsFilter()) return absl::InvalidArgumentError(StrCat(name, " is not a filter"));
    s->filters_.push_back(std::move(plugin));
  }
  for (const auto& [name, weight] : config.scores) {
    ASSIGN_OR_RETURN(auto plugin, registry.Build(name, ctx));
    if (!plugin->IsScore()) return absl::InvalidArgumentError(StrCat(name, " is not a score plugin"));
    s->scores_.emplace_back(std::move(plugin), weight);
  }
  s->random_ties_ = config.random_ties;
  ASSIGN_OR_RETURN(s->selector_, registry.Build(config.gpu_selector, ctx));
  if (!s->selector_->IsGpuSelector()) {
    return absl::InvalidArgumentError(StrCat(config.gpu_selector, " is not a GPU selector"));
  }
  return s;
}

ScheduleResult Scheduler::Schedule(const Pod& pod, const ClusterSnapshot& snapshot, Rng& rng) const {
  CycleState state;
  for (const auto& f : filters_) f->PreFilter(pod, snapshot, state);

  std::vector<int> feasible;
  Unschedulable diagnosis;
  diagnosis.total_nodes = static_cast<int>(snapshot.nodes.size());
  for (size_t i = 0; i < snapshot.nodes.size(); ++i) {
    const Node& node = snapshot.nodes[i];
    bool ok = true;
    for (const auto& f : filters_) {
      if (auto reason = f->Filter(pod, node, state)) {
        diagnosis.reasons.push_back({node.name, std::string(f->Name()), std::move(*reason)});
        ok = false;
        break;
      }
    }
    if (ok) feasible.push_back(static_cast<int>(i));
  }
  if (feasible.empty()) return diagnosis;

  std::vector<double> total(feasible.size(), 0.0);
  std::vector<double> scores(feasible.size());
  for (const auto& [plugin, weight] : scores_) {
    plugin->PreScore(pod, snapshot, feasible, state, rng);
    for (size_t k = 0; k < feasible.size(); ++k) {
      scores[k] = plugin->Score(pod, snapshot.nodes[static_cast<size_t>(feasible[k])], state);
    }
    plugin->NormalizeScores(scores);
    for (size_t k = 0; k < feasible.size(); ++k) total[k] += weight * scores[k];
  }

  // selectHost: the best score; ties uniformly at random (reservoir sampling) or the first.
  size_t best = 0;
  uint64_t ties = 1;
  for (size_t k = 1; k < feasible.size(); ++k) {
    if (total[k] > total[best]) {
      best = k;
      ties = 1;
    } else if (total[k] == total[best] && random_ties_) {
      ++ties;
      if (rng.Below(ties) == 0) best = k;
    }
  }
  const int index = feasible[best];
  const Node& chosen = snapshot.nodes[static_cast<size_t>(index)];
  Placement placement;
  placement.node_index = index;
  placement.node_name = chosen.name;
  if (pod.WantsGpu()) placement.gpu_indices = selector_->SelectGpus(pod, chosen, rng);
  return placement;
}

}  // namespace galley::schedule
