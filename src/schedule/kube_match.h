// Kubernetes' matching rules, as pure functions: tolerations against taints
// (k8s.io/api/core/v1 Toleration.ToleratesTaint), node-selector requirements and terms
// (component-helpers nodeaffinity), and label selectors (apimachinery labels).
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "schedule/cluster.h"

namespace galley::schedule {

// kube's ToleratesTaint: effects must match unless the toleration names none; an empty key with
// Exists matches every key; Exists ignores the value; Equal (the default) compares values.
bool ToleratesTaint(const Toleration& toleration, const Taint& taint);
bool TaintToleratedBy(const Taint& taint, const std::vector<Toleration>& tolerations);

// The first taint with an effect in {NoSchedule, NoExecute} that no toleration tolerates.
std::optional<Taint> FirstUntoleratedHardTaint(const Node& node,
                                               const std::vector<Toleration>& tolerations);

// One requirement against a label value (nullopt = label absent). In/NotIn compare strings;
// Exists/DoesNotExist test presence; Gt/Lt parse both sides as integers (a parse failure or an
// absent label does not match; Gt/Lt need exactly one value).
bool RequirementMatches(const SelectorRequirement& req, std::optional<std::string_view> value);

// A node-selector term: every requirement holds. An empty term matches nothing.
bool NodeSelectorTermMatches(const NodeSelectorTerm& term, const Node& node);

// The pod's nodeSelector and required node affinity (terms ORed) both hold.
bool NodeMatchesPodRequirements(const Pod& pod, const Node& node);

// Label selector against a label set (Gt/Lt never match here).
bool LabelSelectorMatches(const LabelSelector& selector, const Labels& labels);

}  // namespace galley::schedule
