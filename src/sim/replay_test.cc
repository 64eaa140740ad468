// The trace reader, the replay protocol and the synthetic generators, on small CSVs in
// tests/data/schedule (hermetic: the shared Alibaba trace is for the benchmark only).
#include "sim/replay.h"

#include <gtest/gtest.h>

#include <cmath>

#include "sim/synth.h"
#include "sim/trace.h"

namespace galley::sim {
namespace {

std::string Data(const std::string& name) {
  auto text = ReadFile(std::string(GALLEY_TEST_DATA) + "/" + name);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : std::string();
}

struct Trace {
  std::vector<schedule::Node> nodes;
  std::vector<schedule::Pod> pods;
};

Trace Load() {
  auto nodes = ParseNodesCsv(Data("nodes.csv"), "nodes.csv");
  auto pods = ParsePodsCsv(Data("pods.csv"), "pods.csv");
  EXPECT_TRUE(nodes.ok() && pods.ok());
  return Trace{*nodes, *pods};
}

TEST(TraceTest, ParsesOpenbSchema) {
  const Trace t = Load();
  ASSERT_EQ(t.nodes.size(), 3u);
  EXPECT_EQ(t.nodes[2].gpus.size(), 4u);
  EXPECT_EQ(t.nodes[2].gpus[0].model, "V100M32");
  EXPECT_EQ(t.nodes[2].gpus[0].memory_mib, 32510);
  ASSERT_EQ(t.pods.size(), 6u);
  EXPECT_EQ(t.pods[1].gpu_milli, 500);
  EXPECT_EQ(t.pods[3].gpu_models, (std::vector<std::string>{"V100M32"}));
  EXPECT_FALSE(t.pods[4].WantsGpu());
}

TEST(TraceTest, BadFilesSayWhatIsWrong) {
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {
      {"", "empty file"},
      {"sn,cpu_milli,memory_mib,gpu\nn,1,1,1\n", "missing column \"model\""},
      {"sn,cpu_milli,memory_mib,gpu,model\nn,abc,1,1,T4\n", "x.csv:2: cpu_milli"},
      {"sn,cpu_milli,memory_mib,gpu,model\nn,1,-5,1,T4\n", "memory_mib"},
      {"sn,cpu_milli,memory_mib,gpu,model\nn,1,1\n", "expected 5 fields"},
  };
  for (const auto& c : cases) {
    auto r = ParseNodesCsv(c.text, "x.csv");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(std::string(r.status().message()).find(c.expect), std::string::npos) << r.status();
  }
  auto bad = ParsePodsCsv(Data("pods_bad_share.csv"), "pods_bad_share.csv");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("whole GPUs"), std::string::npos);
  EXPECT_FALSE(ReadFile("/nonexistent/galley.csv").ok());
}

TEST(ReplayTest, ArrivalSequenceFollowsTheProtocol) {
  const Trace t = Load();
  const int64_t capacity = 8000;  // 2 + 2 + 4 GPUs
  const auto seq = ArrivalSequence(t.pods, capacity, 1.3, 7);
  int64_t total = 0;
  for (const auto& p : seq) total += p.TotalGpuMilli();
  EXPECT_LE(total, 1.3 * capacity);
  EXPECT_GT(total, 1.3 * capacity - 2000) << "sampling stops only when the next pod would overflow";
  // Every trace pod arrives once before the samples (the trace asks for 5450 < 10400).
  std::vector<std::string> first;
  for (size_t i = 0; i < t.pods.size(); ++i) first.push_back(seq[i].name);
  std::sort(first.begin(), first.end());
  EXPECT_EQ(first,
            (std::vector<std::string>{"pod-0", "pod-1", "pod-2", "pod-3", "pod-4", "pod-5"}));
  EXPECT_EQ(ArrivalSequence(t.pods, capacity, 1.3, 7).size(), seq.size()) << "deterministic";
  // A trace above the target is thinned instead.
  const auto thin = ArrivalSequence(t.pods, 2000, 1.3, 7);
  int64_t thin_total = 0;
  for (const auto& p : thin) thin_total += p.TotalGpuMilli();
  EXPECT_LE(thin_total, 2600);
}

TEST(ReplayTest, OneSeedEndToEnd) {
  const Trace t = Load();
  for (const char* policy : {"galley", "fgd", "bestfit", "random"}) {
    auto run = ReplayOnce(t.nodes, t.pods, ReplayConfig{policy, 1.3}, 42);
    ASSERT_TRUE(run.ok()) << policy << ": " << run.status();
    EXPECT_EQ(run->placed + run->failed, run->decisions);
    EXPECT_GE(run->unallocated_pct_at_100, 0);
    EXPECT_LE(run->unallocated_pct_at_100, 100);
    EXPECT_GT(run->failed, 0) << "130% of capacity cannot all fit";
    auto again = ReplayOnce(t.nodes, t.pods, ReplayConfig{policy, 1.3}, 42);
    EXPECT_EQ(again->unallocated_pct_at_100, run->unallocated_pct_at_100) << "seeded";
  }
  EXPECT_FALSE(ReplayOnce(t.nodes, t.pods, ReplayConfig{"nope", 1.3}, 1).ok());
}

TEST(ReplayTest, Median) {
  EXPECT_EQ(Median({3, 1, 2}), 2);
  EXPECT_EQ(Median({4, 1, 2, 3}), 2.5);
  EXPECT_TRUE(std::isnan(Median({})));
}

TEST(SynthTest, VariantsHitTheirShare) {
  const Trace t = Load();
  std::vector<schedule::Pod> many;
  for (int i = 0; i < 200; ++i) many.insert(many.end(), t.pods.begin(), t.pods.end());
  auto cpu = MakeVariant(many, t.nodes, Variant::kCpu, 50, 3);
  ASSERT_TRUE(cpu.ok());
  int cpu_only = 0;
  for (const auto& p : *cpu) cpu_only += p.WantsGpu() ? 0 : 1;
  EXPECT_NEAR(cpu_only / static_cast<double>(cpu->size()), 0.5, 0.05);
  auto spec = MakeVariant(many, t.nodes, Variant::kGpuSpec, 100, 3);
  ASSERT_TRUE(spec.ok());
  for (const auto& p : *spec) {
    if (p.WantsGpu()) {
      EXPECT_EQ(p.gpu_models.size(), 1u);
    }
  }
  EXPECT_EQ(MakeCluster(t.nodes, 50, 1).size(), 50u);
  EXPECT_FALSE(ParseVariant("bogus").ok());
}

}  // namespace
}  // namespace galley::sim
