// The JSON surface of the recommender, used by `galley autoscale plan`: one input document
// (the spec in autoscaling/v2 field names, the current replicas, the pods, the history and
// `now`) in, one Decision document out. The format is described in docs/autoscaling.md.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "autoscale/recommender.h"

namespace galley::autoscale {

struct PlanInput {
  Snapshot snapshot;
  Spec spec;
  History history;
  absl::Time now;
};

// Parses one plan document. InvalidArgument, naming the offending field (e.g.
// "spec.metrics[0].resource.target.type: unknown target type \"Percent\""), on bad input.
absl::StatusOr<PlanInput> ParsePlanInput(std::string_view json);

// Parses a Kubernetes quantity ("500m", "1.5", "2Gi", "10k") or a plain number string.
absl::StatusOr<double> ParseQuantity(std::string_view text);

// The decision as a JSON object (one line): replicas, reason, message, currentReplicas,
// recommendation, proposals[], and for the inference policy panic, panicSince, lastActive.
std::string DecisionToJson(const Decision& decision, const PlanInput& input);

}  // namespace galley::autoscale
