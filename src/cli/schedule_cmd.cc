#include "cli/schedule_cmd.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/flags.h"
#include "common/strings.h"
#include "schedule/policy.h"
#include "sim/replay.h"
#include "sim/synth.h"
#include "sim/trace.h"

namespace galley::cli {
namespace {

struct Inputs {
  std::vector<schedule::Node> nodes;
  std::vector<schedule::Pod> pods;
};

bool Load(const std::string& nodes_path, const std::string& pods_path, Inputs& in) {
  auto nodes_text = sim::ReadFile(nodes_path);
  auto pods_text = nodes_text.ok() ? sim::ReadFile(pods_path) : nodes_text;
  if (!pods_text.ok()) {
    std::cerr << "galley schedule: " << pods_text.status().message() << "\n";
    return false;
  }
  auto nodes = sim::ParseNodesCsv(*nodes_text, nodes_path);
  auto pods = nodes.ok() ? sim::ParsePodsCsv(*pods_text, pods_path) : nodes.status();
  if (!pods.ok()) {
    std::cerr << "galley schedule: " << pods.status().message() << "\n";
    return false;
  }
  in.nodes = std::move(*nodes);
  in.pods = std::move(*pods);
  return true;
}

class ScheduleCommand {
 public:
  explicit ScheduleCommand(CLI::App& app) {
    cmd_ = app.add_subcommand("schedule", "GPU-aware scheduler: trace replay and benchmarks");
    cmd_->require_subcommand(1);
    replay_ = cmd_->add_subcommand("replay", "Replay a trace with the FGD paper's protocol");
    Flag(replay_, "nodes", nodes_, "node list, openb CSV (sn,cpu_milli,memory_mib,gpu,model)")
        ->required();
    Flag(replay_, "pods", pods_,
         "pod list, openb CSV (name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec)")
        ->required();
    Flag(replay_, "policy", policy_,
         "galley, fgd, bestfit, gpupacking, gpuclustering, dotprod, random, kube");
    Flag(replay_, "seed", seed_, "first seed");
    Flag(replay_, "seeds", seeds_,
         "number of seeds (seed, seed+1, ...); the headline is their median")
        ->check(CLI::Range(1, 1000));
    Flag(replay_, "target-ratio", target_ratio_, "arrivals stop at this multiple of GPU capacity")
        ->check(CLI::Range(1.0, 10.0));
    Flag(replay_, "percentage-of-nodes-to-score", percentage_,
         "kube-scheduler's percentageOfNodesToScore: 100 = every node, 0 = adaptive "
         "(50 - nodes/125, at least 5%), else that percent; at least 100 feasible nodes")
        ->check(CLI::Range(0, 100));
    Flag(replay_, "curve-step", curve_step_, "print the curve every this many percent")
        ->check(CLI::Range(1, 130));

    synth_ = cmd_->add_subcommand("synth", "Write a seeded synthetic variant of a trace");
    Flag(synth_, "nodes", nodes_, "node list to draw GPU models and node types from")->required();
    Flag(synth_, "pods", pods_, "pod list to resample")->required();
    Flag(synth_, "variant", variant_, "share, multigpu, gpuspec or cpu (empty: no pod file)");
    Flag(synth_, "percent", percent_, "share of the variant's category, 0..100")
        ->check(CLI::Range(0.0, 100.0));
    Flag(synth_, "seed", seed_, "generator seed");
    Flag(synth_, "out", out_, "where to write the pod CSV");
    Flag(synth_, "cluster-size", cluster_size_, "also write a cluster of this many nodes (0: none)")
        ->check(CLI::Range(0, 1000000));
    Flag(synth_, "nodes-out", nodes_out_, "where to write the synthetic node CSV");
    run_ = AddScheduleRunCommand(cmd_);
  }

  int Run() {
    if (!cmd_->parsed()) return -1;
    if (const int rc = run_(); rc != -1) return rc;
    if (replay_->parsed()) return RunReplay();
    return RunSynth();
  }

 private:
  int RunReplay() {
    if (auto p = schedule::PolicyProfile(policy_); !p.ok()) {
      std::cerr << "--policy: " << p.status().message() << "\n";
      return 2;
    }
    Inputs in;
    if (!Load(nodes_, pods_, in)) return 1;
    int64_t gpus = 0;
    for (const auto& n : in.nodes) gpus += static_cast<int64_t>(n.gpus.size());
    std::printf(
        "# replay policy=%s nodes=%zu gpus=%lld pods=%zu seeds=%llu..%llu target=%.0f%% "
        "nodes_to_score=%d%%\n",
        policy_.c_str(), in.nodes.size(), static_cast<long long>(gpus), in.pods.size(),
        static_cast<unsigned long long>(seed_),
        static_cast<unsigned long long>(seed_ + static_cast<uint64_t>(seeds_) - 1),
        100 * target_ratio_, percentage_);
    std::printf("# seed unallocated_pct_at_100 decisions placed failed decisions_per_s\n");
    std::vector<sim::SeedRun> runs;
    sim::ReplayConfig config{policy_, target_ratio_, percentage_};
    for (int k = 0; k < seeds_; ++k) {
      const auto start = std::chrono::steady_clock::now();
      auto run = sim::ReplayOnce(in.nodes, in.pods, config, seed_ + static_cast<uint64_t>(k));
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!run.ok()) {
        std::cerr << "galley schedule replay: " << run.status().message() << "\n";
        return 1;
      }
      std::printf("seed %llu %.2f %lld %lld %lld %.0f\n",
                  static_cast<unsigned long long>(run->seed), run->unallocated_pct_at_100,
                  static_cast<long long>(run->decisions), static_cast<long long>(run->placed),
                  static_cast<long long>(run->failed),
                  static_cast<double>(run->decisions) / std::max(secs, 1e-9));
      std::fflush(stdout);
      runs.push_back(std::move(*run));
    }
    PrintCurve(runs);
    std::vector<double> headline;
    for (const auto& r : runs) headline.push_back(r.unallocated_pct_at_100);
    std::printf("# peak_rss_mib %.1f\n", PeakRssMib());
    std::printf(
        "unallocated GPU at 100%% arrival: %.2f%% of capacity (policy %s, median of %d seeds)\n",
        sim::Median(headline), policy_.c_str(), seeds_);
    return 0;
  }

  void PrintCurve(const std::vector<sim::SeedRun>& runs) const {
    std::printf("# arrived_pct allocated_pct_median unallocated_pct_median\n");
    for (int p = curve_step_; p <= 130; p += curve_step_) {
      std::vector<double> v;
      for (const auto& r : runs) {
        const double a = r.curve_allocated_pct[static_cast<size_t>(p)];
        if (!std::isnan(a)) v.push_back(a);
      }
      if (v.empty()) continue;
      const double alloc = sim::Median(v);
      std::printf("curve %d %.2f %.2f\n", p, alloc, std::max(0.0, static_cast<double>(p) - alloc));
    }
  }

  int RunSynth() {
    Inputs in;
    if (!Load(nodes_, pods_, in)) return 1;
    if (!variant_.empty()) {
      auto kind = sim::ParseVariant(variant_);
      if (!kind.ok()) {
        std::cerr << "--variant: " << kind.status().message() << "\n";
        return 2;
      }
      auto pods = sim::MakeVariant(in.pods, in.nodes, *kind, percent_, seed_);
      if (!pods.ok() || out_.empty()) {
        std::cerr << "galley schedule synth: "
                  << (pods.ok() ? std::string("--out is required")
                                : std::string(pods.status().message()))
                  << "\n";
        return pods.ok() ? 2 : 1;
      }
      if (!WriteText(out_, sim::WritePodsCsv(*pods))) return 1;
    }
    if (cluster_size_ > 0) {
      if (nodes_out_.empty()) {
        std::cerr << "--nodes-out is required with --cluster-size\n";
        return 2;
      }
      if (!WriteText(nodes_out_,
                     sim::WriteNodesCsv(sim::MakeCluster(in.nodes, cluster_size_, seed_))))
        return 1;
    }
    return 0;
  }

  static bool WriteText(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.good()) {
      std::cerr << "galley schedule synth: cannot write " << path << "\n";
      return false;
    }
    return true;
  }

  CLI::App* cmd_ = nullptr;
  CLI::App* replay_ = nullptr;
  CLI::App* synth_ = nullptr;
  Runner run_;  // `galley schedule run`
  std::string nodes_, pods_, out_, nodes_out_, variant_;
  std::string policy_ = std::string(schedule::kDefaultPolicy);
  uint64_t seed_ = 42;
  int seeds_ = 10;
  double target_ratio_ = 1.3;
  int curve_step_ = 5;
  int percentage_ = 100;
  double percent_ = 50;
  int cluster_size_ = 0;
};

}  // namespace

std::function<int()> AddScheduleCommand(CLI::App& app) {
  auto command = std::make_shared<ScheduleCommand>(app);
  return [command] { return command->Run(); };
}

}  // namespace galley::cli
