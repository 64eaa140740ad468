// Tests of the plan document: parsing, quantities, errors naming their field, and output.
#include "autoscale/plan_json.h"

#include "gtest/gtest.h"

namespace galley::autoscale {
namespace {

TEST(ParseQuantityTest, Suffixes) {
  EXPECT_DOUBLE_EQ(*ParseQuantity("500m"), 0.5);
  EXPECT_DOUBLE_EQ(*ParseQuantity("2"), 2);
  EXPECT_DOUBLE_EQ(*ParseQuantity("1Gi"), 1073741824.0);
  EXPECT_DOUBLE_EQ(*ParseQuantity("10k"), 10000);
  EXPECT_FALSE(ParseQuantity("ten").ok());
  EXPECT_FALSE(ParseQuantity("").ok());
}

constexpr char kHpaDoc[] = R"({
  "now": "2024-05-01T12:00:00Z",
  "spec": {"minReplicas": 1, "maxReplicas": 10, "metrics": [
    {"type": "Resource", "resource": {"name": "cpu",
      "target": {"type": "Utilization", "averageUtilization": 30}}}]},
  "currentReplicas": 3,
  "pods": [
    {"name": "a", "phase": "Running", "ready": true, "startTime": "2024-05-01T11:00:00Z",
     "readyTime": "2024-05-01T11:00:20Z", "requests": {"cpu": "1"}, "metrics": {"cpu": "300m"}},
    {"name": "b", "phase": "Running", "ready": true, "startTime": "2024-05-01T11:00:00Z",
     "readyTime": "2024-05-01T11:00:20Z", "requests": {"cpu": "1"}, "metrics": {"cpu": "500m"}},
    {"name": "c", "phase": "Running", "ready": true, "startTime": "2024-05-01T11:00:00Z",
     "readyTime": "2024-05-01T11:00:20Z", "requests": {"cpu": "1"},
     "metrics": {"cpu": {"value": "700m", "timestamp": "2024-05-01T11:59:50Z", "windowSeconds": 15}}}],
  "history": {"recommendations": [{"time": "2024-05-01T11:58:00Z", "replicas": 3}]}
})";

TEST(PlanJsonTest, HpaDocumentRoundTrip) {
  auto in = ParsePlanInput(kHpaDoc);
  ASSERT_TRUE(in.ok()) << in.status();
  ASSERT_EQ(in->snapshot.pods.size(), 3u);
  EXPECT_DOUBLE_EQ(in->snapshot.pods[0].metrics["cpu"].value, 0.3);
  const Decision d = Recommend(in->snapshot, in->spec, in->history, in->now);
  EXPECT_EQ(d.replicas, 5);
  const std::string out = DecisionToJson(d, *in);
  EXPECT_NE(out.find("\"replicas\":5"), std::string::npos) << out;
  EXPECT_NE(out.find("\"metric\":\"resource/cpu\""), std::string::npos) << out;
}

TEST(PlanJsonTest, GalleyMode) {
  auto in = ParsePlanInput(R"({"now": "2024-05-01T12:00:00Z", "mode": "galley",
    "spec": {"minReplicas": 1, "maxReplicas": 8, "targetConcurrency": 10},
    "currentReplicas": 1,
    "pods": [{"name": "a", "phase": "Running", "ready": true, "startTime": "2024-05-01T11:00:00Z"}],
    "observations": [{"time": "2024-05-01T11:59:30Z", "inflight": 12, "queued": 3},
                     {"time": "2024-05-01T11:59:59Z", "inflight": 12, "queued": 3}]})");
  ASSERT_TRUE(in.ok()) << in.status();
  const Decision d = Recommend(in->snapshot, in->spec, in->history, in->now);
  EXPECT_EQ(d.replicas, 2);
  EXPECT_NE(DecisionToJson(d, *in).find("\"panic\":false"), std::string::npos);
}

// The burst-recurrence hold over the plan surface: history.burstOnsets in, the updated onsets and
// the scale-down delay in force out.
TEST(PlanJsonTest, GalleyBurstHold) {
  auto in = ParsePlanInput(R"({"now": "2024-05-01T12:00:00Z", "mode": "galley",
    "spec": {"minReplicas": 1, "maxReplicas": 20, "targetConcurrency": 10,
             "burstGapMaxSeconds": 900},
    "currentReplicas": 12,
    "observations": [{"time": "2024-05-01T11:59:30Z", "inflight": 5},
                     {"time": "2024-05-01T11:59:59Z", "inflight": 5}],
    "history": {"recommendations": [{"time": "2024-05-01T11:51:40Z", "replicas": 12}],
                "burstOnsets": ["2024-05-01T11:50:00Z", "2024-05-01T11:55:00Z"]}})");
  ASSERT_TRUE(in.ok()) << in.status();
  const Decision d = Recommend(in->snapshot, in->spec, in->history, in->now);
  EXPECT_EQ(d.replicas, 12);
  EXPECT_EQ(d.reason, "BurstHold");
  const std::string out = DecisionToJson(d, *in);
  EXPECT_NE(out.find(R"("burstOnsets":["2024-05-01T11:50:00+00:00","2024-05-01T11:55:00+00:00"])"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find(R"("scaleDownDelaySeconds":600)"), std::string::npos) << out;
  // The same with a gap limit below the 300 s gap: no series, the fleet halves.
  in->spec = Spec{[&] {
    InferencePolicy p = std::get<InferencePolicy>(in->spec.policy);
    p.burst_gap_max = absl::Seconds(299);
    return p;
  }()};
  EXPECT_EQ(Recommend(in->snapshot, in->spec, in->history, in->now).replicas, 6);
}

// Rate sizing over the plan surface: the spec's capacity, the observations' request rates and the
// remembered rates in; the rate proposals, the burst floor and this tick's rate out.
TEST(PlanJsonTest, GalleyRateSizingAndBurstFloor) {
  auto in = ParsePlanInput(R"({"now": "2024-05-01T12:00:00Z", "mode": "galley",
    "spec": {"minReplicas": 1, "maxReplicas": 20, "replicaCapacityRps": 1000,
             "targetUtilization": 0.5},
    "currentReplicas": 2,
    "observations": [{"time": "2024-05-01T11:59:30Z", "inflight": 1, "requestRate": 2600},
                     {"time": "2024-05-01T11:59:59Z", "inflight": 1, "requestRate": 2600}]})");
  ASSERT_TRUE(in.ok()) << in.status();
  Decision d = Recommend(in->snapshot, in->spec, in->history, in->now);
  EXPECT_EQ(d.replicas, 6) << d.message;  // ceil(2600 / 500)
  std::string out = DecisionToJson(d, *in);
  EXPECT_NE(out.find(R"("metric":"rate/stable","replicas":6)"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("requestRate":2600)"), std::string::npos) << out;
  // Quiet now, but bursts recur and the remembered rates hold 4,000 req/s bursts: the floor is the
  // fleet that serves them at 500 req/s per replica.
  auto held = ParsePlanInput(R"({"now": "2024-05-01T12:00:00Z", "mode": "galley",
    "spec": {"maxReplicas": 20, "replicaCapacityRps": 1000, "targetUtilization": 0.5},
    "currentReplicas": 8,
    "observations": [{"time": "2024-05-01T11:59:58Z", "requestRate": 100}],
    "history": {"burstOnsets": ["2024-05-01T11:56:00Z", "2024-05-01T11:58:00Z"],
                "rates": [{"time": "2024-05-01T11:57:58Z", "rate": 100},
                          {"time": "2024-05-01T11:58:00Z", "rate": 4000},
                          {"time": "2024-05-01T11:58:02Z", "rate": 4000},
                          {"time": "2024-05-01T11:58:04Z", "rate": 100}]}})");
  ASSERT_TRUE(held.ok()) << held.status();
  d = Recommend(held->snapshot, held->spec, held->history, held->now);
  EXPECT_EQ(d.replicas, 8) << d.message;
  EXPECT_EQ(d.reason, "BurstFloor");
}

TEST(PlanJsonTest, ErrorsNameTheField) {
  struct Bad {
    const char* doc;
    const char* want;
  };
  const Bad cases[] = {
      {"{", "not valid JSON"},
      {R"({"spec": {"maxReplicas": 3}, "currentReplicas": 1})", "now"},
      {R"({"now": "yesterday", "spec": {"maxReplicas": 3}, "currentReplicas": 1})", "now"},
      {R"({"now": "2024-05-01T12:00:00Z", "spec": {}, "currentReplicas": 1})", "maxReplicas"},
      {R"({"now": "2024-05-01T12:00:00Z", "spec": {"maxReplicas": 3, "metrics": [{"type": "Resource",
          "resource": {"name": "cpu", "target": {"type": "Percent"}}}]}, "currentReplicas": 1})",
       "spec.metrics[0].resource.target.type"},
      {R"({"now": "2024-05-01T12:00:00Z", "spec": {"maxReplicas": 3}, "currentReplicas": 1,
          "pods": [{"name": "a", "requests": {"cpu": "lots"}}]})",
       "pods[0].requests.cpu"},
      {R"({"now": "2024-05-01T12:00:00Z", "mode": "kpa", "spec": {}, "currentReplicas": 1})",
       "mode"},
      {R"({"now": "2024-05-01T12:00:00Z", "mode": "galley", "spec": {"maxReplicas": 3},
          "currentReplicas": 1, "history": {"burstOnsets": ["2024-05-01T11:55:00Z",
          "2024-05-01T11:50:00Z"]}})",
       "history.burstOnsets"},
      {R"({"now": "2024-05-01T12:00:00Z", "mode": "galley", "spec": {"maxReplicas": 3},
          "currentReplicas": 1, "history": {"burstOnsets": [7]}})",
       "history.burstOnsets[0]"},
      {R"({"now": "2024-05-01T12:00:00Z", "mode": "galley", "spec": {"maxReplicas": 3,
          "replicaCapacityRps": 0}, "currentReplicas": 1})",
       "spec.replicaCapacityRps"},
      {R"({"now": "2024-05-01T12:00:00Z", "mode": "galley", "spec": {"maxReplicas": 3,
          "targetUtilization": 1.5}, "currentReplicas": 1})",
       "spec.targetUtilization"},
      {R"({"now": "2024-05-01T12:00:00Z", "mode": "galley", "spec": {"maxReplicas": 3},
          "currentReplicas": 1, "history": {"rates": [{"time": "2024-05-01T11:55:00Z"}]}})",
       "history.rates[0]"},
      {R"({"now": "2024-05-01T12:00:00Z", "mode": "galley", "spec": {"maxReplicas": 3},
          "currentReplicas": 1, "observations": [{"time": "2024-05-01T11:55:00Z",
          "requestRate": -1}]})",
       "observations[0]"},
  };
  for (const Bad& b : cases) {
    auto in = ParsePlanInput(b.doc);
    ASSERT_FALSE(in.ok()) << b.doc;
    EXPECT_EQ(in.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(in.status().message()).find(b.want), std::string::npos)
        << in.status().message();
  }
}

}  // namespace
}  // namespace galley::autoscale
