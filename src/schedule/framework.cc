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

int Unschedulable::RejectedNodes() const {
  int n = 0;
  for (const ReasonCount& r : reasons) n += r.nodes;
  return n;
}

std::string Unschedulable::Message() const {
  std::map<std::string, int> counts;
  for (const ReasonCount& r : reasons) counts[r.reason] += r.nodes;
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
                                                             const PluginContext& caller_ctx) {
  std::unique_ptr<Scheduler> s(new Scheduler());
  PluginContext ctx = caller_ctx;
  ctx.shared = std::make_shared<SchedulerShared>();
  for (const std::string& name : config.filters) {
    ASSIGN_OR_RETURN(auto plugin, registry.Build(name, ctx));
    if (!plugin->IsFilter()) return absl::InvalidArgumentError(StrCat(name, " is not a filter"));
    s->filters_.push_back(std::move(plugin));
  }
  for (const auto& [name, weight] : config.scores) {
    ASSIGN_OR_RETURN(auto plugin, registry.Build(name, ctx));
    if (!plugin->IsScore())
      return absl::InvalidArgumentError(StrCat(name, " is not a score plugin"));
    s->scores_.emplace_back(std::move(plugin), weight);
  }
  s->random_ties_ = config.random_ties;
  s->percentage_of_nodes_to_score_ = config.percentage_of_nodes_to_score;
  ASSIGN_OR_RETURN(s->selector_, registry.Build(config.gpu_selector, ctx));
  if (!s->selector_->IsGpuSelector()) {
    return absl::InvalidArgumentError(StrCat(config.gpu_selector, " is not a GPU selector"));
  }
  return s;
}

int NumFeasibleNodesToFind(int percentage, int num_nodes) {
  constexpr int kMinFeasibleNodesToFind = 100;
  constexpr int kMinFeasibleNodesPercentageToFind = 5;
  if (num_nodes < kMinFeasibleNodesToFind || percentage >= 100) return num_nodes;
  if (percentage <= 0) {
    percentage = std::max(50 - num_nodes / 125, kMinFeasibleNodesPercentageToFind);
  }
  const int n = static_cast<int>(static_cast<int64_t>(num_nodes) * percentage / 100);
  return std::max(n, kMinFeasibleNodesToFind);
}

Unschedulable Scheduler::Diagnose(const Pod& pod, const ClusterSnapshot& snapshot,
                                  const CycleState& state) const {
  Unschedulable diagnosis;
  diagnosis.total_nodes = static_cast<int>(snapshot.nodes.size());
  for (const Node& node : snapshot.nodes) {
    for (const Plugin* f : active_filters_) {
      // The fast path first: only a node the filter rejects gets its reason worded.
      if (f->Passes(pod, node, state)) continue;
      std::optional<std::string> reason = f->Filter(pod, node, state);
      if (!reason) continue;  // cannot happen: Passes and Filter agree
      auto it = std::find_if(diagnosis.reasons.begin(), diagnosis.reasons.end(),
                             [&](const Unschedulable::ReasonCount& r) {
                               return r.reason == *reason && r.plugin == f->Name();
                             });
      if (it == diagnosis.reasons.end()) {
        diagnosis.reasons.push_back({std::string(f->Name()), std::move(*reason), 1});
      } else {
        ++it->nodes;
      }
      break;
    }
  }
  return diagnosis;
}

ScheduleResult Scheduler::Schedule(const Pod& pod, const ClusterSnapshot& snapshot,
                                   Rng& rng) const {
  CycleState state;
  active_filters_.clear();
  for (const auto& f : filters_) {
    if (!f->AppliesTo(pod)) continue;
    f->PreFilter(pod, snapshot, state);
    active_filters_.push_back(f.get());
  }

  // Filter, from the rotating start index, until enough feasible nodes are found (all by default).
  const size_t n = snapshot.nodes.size();
  const size_t want = static_cast<size_t>(
      NumFeasibleNodesToFind(percentage_of_nodes_to_score_, static_cast<int>(n)));
  const size_t start = want < n && n > 0 ? next_start_node_index_ % n : 0;
  std::vector<int>& feasible = feasible_;
  feasible.clear();
  size_t processed = 0;
  for (; processed < n && feasible.size() < want; ++processed) {
    size_t i = start + processed;
    if (i >= n) i -= n;
    const Node& node = snapshot.nodes[i];
    bool ok = true;
    for (const Plugin* f : active_filters_) {
      if (!f->Passes(pod, node, state)) {
        ok = false;
        break;
      }
    }
    if (ok) feasible.push_back(static_cast<int>(i));
  }
  if (want < n && n > 0) next_start_node_index_ = (start + processed) % n;
  if (feasible.empty()) return Diagnose(pod, snapshot, state);

  std::vector<double>& total = total_;
  std::vector<double>& scores = scores_scratch_;
  total.assign(feasible.size(), 0.0);
  scores.resize(feasible.size());
  for (const auto& [plugin, weight] : scores_) {
    plugin->PreScore(pod, snapshot, feasible, state, rng);
    plugin->ScoreNodes(pod, snapshot, feasible, state, scores);
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
