#include "schedule/kube_match.h"

#include <algorithm>
#include <charconv>
#include <cstdint>

namespace galley::schedule {
namespace {

std::optional<int64_t> ParseInt(std::string_view s) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

bool Contains(const std::vector<std::string>& values, std::string_view v) {
  return std::find(values.begin(), values.end(), v) != values.end();
}

std::optional<std::string_view> Lookup(const Labels& labels, std::string_view key) {
  if (auto it = labels.find(key); it != labels.end()) return it->second;
  return std::nullopt;
}

}  // namespace

bool ToleratesTaint(const Toleration& toleration, const Taint& taint) {
  if (toleration.effect.has_value() && *toleration.effect != taint.effect) return false;
  if (!toleration.key.empty() && toleration.key != taint.key) return false;
  switch (toleration.op) {
    case TolerationOperator::kExists:
      return true;
    case TolerationOperator::kEqual:
      // As kube does: with an empty key only the value is compared (API validation rejects
      // that combination, but the matcher itself allows it).
      return toleration.value == taint.value;
  }
  return false;
}

bool TaintToleratedBy(const Taint& taint, const std::vector<Toleration>& tolerations) {
  return std::any_of(tolerations.begin(), tolerations.end(),
                     [&](const Toleration& t) { return ToleratesTaint(t, taint); });
}

std::optional<Taint> FirstUntoleratedHardTaint(const Node& node,
                                               const std::vector<Toleration>& tolerations) {
  for (const Taint& taint : node.taints) {
    if (taint.effect == TaintEffect::kPreferNoSchedule) continue;
    if (!TaintToleratedBy(taint, tolerations)) return taint;
  }
  return std::nullopt;
}

bool RequirementMatches(const SelectorRequirement& req, std::optional<std::string_view> value) {
  switch (req.op) {
    case SelectorOperator::kIn:
      return value.has_value() && Contains(req.values, *value);
    case SelectorOperator::kNotIn:
      return !value.has_value() || !Contains(req.values, *value);
    case SelectorOperator::kExists:
      return value.has_value();
    case SelectorOperator::kDoesNotExist:
      return !value.has_value();
    case SelectorOperator::kGt:
    case SelectorOperator::kLt: {
      if (!value.has_value() || req.values.size() != 1) return false;
      const auto have = ParseInt(*value);
      const auto want = ParseInt(req.values[0]);
      if (!have || !want) return false;
      return req.op == SelectorOperator::kGt ? *have > *want : *have < *want;
    }
  }
  return false;
}

bool NodeSelectorTermMatches(const NodeSelectorTerm& term, const Node& node) {
  if (term.match_expressions.empty()) return false;
  for (const SelectorRequirement& req : term.match_expressions) {
    if (!RequirementMatches(req, node.LabelValue(req.key))) return false;
  }
  return true;
}

bool NodeMatchesPodRequirements(const Pod& pod, const Node& node) {
  for (const auto& [key, want] : pod.node_selector) {
    const auto have = node.LabelValue(key);
    if (!have.has_value() || *have != want) return false;
  }
  if (pod.required_node_affinity.empty()) return true;
  return std::any_of(pod.required_node_affinity.begin(), pod.required_node_affinity.end(),
                     [&](const NodeSelectorTerm& t) { return NodeSelectorTermMatches(t, node); });
}

bool LabelSelectorMatches(const LabelSelector& selector, const Labels& labels) {
  for (const auto& [key, want] : selector.match_labels) {
    const auto have = Lookup(labels, key);
    if (!have.has_value() || *have != want) return false;
  }
  for (const SelectorRequirement& req : selector.match_expressions) {
    if (req.op == SelectorOperator::kGt || req.op == SelectorOperator::kLt) return false;
    if (!RequirementMatches(req, Lookup(labels, req.key))) return false;
  }
  return true;
}

}  // namespace galley::schedule
