#include "autoscale/recommender.h"

#include "autoscale/hpa.h"
#include "autoscale/inference_policy.h"

namespace galley::autoscale {

Decision Recommend(const Snapshot& snapshot, const Spec& spec, const History& history,
                   absl::Time now) {
  if (const auto* hpa = std::get_if<HpaSpec>(&spec.policy)) {
    return RecommendHpa(snapshot, *hpa, history, now);
  }
  return RecommendInference(snapshot, std::get<InferencePolicy>(spec.policy), history, now);
}

}  // namespace galley::autoscale
