// `galley sim`: simulators that replay traces offline.
//   galley sim autoscale --trace FILE [--policy all] [--slo-ms 25] [--scenario trace|step]
//                        [--peak-replicas 10] [--max-replicas 20] [--model-load-seconds 10]
//                        [--seed 1] [--json]
// replays the trace (scaled so its peak needs about --peak-replicas replicas) or a step from idle
// to that peak through the autoscaling simulator (sim/autoscale_sim.h), once per policy, and
// prints the policies side by side. docs/autoscale-sim.md describes the model and the numbers.
// Exit 0 on a report, 1 when the trace cannot be read or parsed, 2 on bad flags.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "boost/json.hpp"
#include "cli/commands.h"
#include "cli/flags.h"
#include "common/strings.h"
#include "sim/arrivals.h"
#include "sim/autoscale_sim.h"
#include "sim/trace.h"

namespace galley::cli {
namespace {

// A replica is "needed" per this share of its full-batch throughput: Knative's default target
// utilization (container-concurrency-target-percentage 70), so "the peak needs N replicas" means
// N replicas at 70% of what they can serve.
constexpr double kTargetUtilization = 0.7;

struct Scenario {
  std::string description;  // how the arrivals were made, for the report
  double peak_rate = 0;     // requests per second the peak asks for
  double factor = 0;        // trace: the rate multiplier
  std::optional<double> step_at;
  std::vector<double> offsets;  // trace: the original offsets
};

class SimCommand {
 public:
  explicit SimCommand(CLI::App& app) {
    cmd_ = app.add_subcommand("sim", "Offline simulators (autoscaling)");
    cmd_->require_subcommand(1);
    autoscale_ = cmd_->add_subcommand(
        "autoscale", "Replay a request trace through replicas driven by each autoscaling policy");
    Flag(autoscale_, "trace", trace_, "request trace, Azure LLM inference CSV (TIMESTAMP column)");
    Flag(autoscale_, "policy", policy_,
         "all, or a comma-separated list of hpa-cpu, hpa-queue, kpa, galley");
    Flag(autoscale_, "slo-ms", slo_ms_, "latency SLO in milliseconds")
        ->check(CLI::Range(0.01, 1e6));
    Flag(autoscale_, "scenario", scenario_,
         "trace (the scaled trace) or step (idle, then the peak)")
        ->check(CLI::IsMember({"trace", "step"}));
    Flag(autoscale_, "peak-replicas", peak_replicas_,
         "scale the trace so its peak needs this many replicas")
        ->check(CLI::Range(1, 1000));
    Flag(autoscale_, "peak-window-seconds", peak_window_s_,
         "the peak is the highest rate over a sliding window of this many seconds")
        ->check(CLI::Range(1.0, 3600.0));
    Flag(autoscale_, "max-replicas", max_replicas_, "every policy's maxReplicas")
        ->check(CLI::Range(1, 10000));
    Flag(autoscale_, "model-load-seconds", load_s_, "cold start: replica start to ready")
        ->check(CLI::Range(0.0, 3600.0));
    Flag(autoscale_, "seed", seed_, "seed for the arrivals and the balancer");
    Flag(autoscale_, "step-at", step_at_, "step scenario: seconds of idle before the step")
        ->check(CLI::Range(0.0, 86400.0));
    Flag(autoscale_, "step-seconds", step_seconds_, "step scenario: how long the peak lasts")
        ->check(CLI::Range(1.0, 86400.0));
    Flag(autoscale_, "galley-target-concurrency", galley_target_,
         "override the galley policy's target concurrency (0: its default)")
        ->check(CLI::Range(0.0, 1e6));
    Flag(autoscale_, "galley-scale-down-delay-seconds", galley_delay_s_,
         "override the galley policy's scale-down delay (negative: its default)")
        ->check(CLI::Range(-1.0, 86400.0));
    Flag(autoscale_, "galley-burst-gap-max-seconds", galley_burst_gap_s_,
         "override the galley policy's burst gap limit (0: no burst-recurrence hold; negative: "
         "its default)")
        ->check(CLI::Range(-1.0, 86400.0));
    Flag(autoscale_, "timeline", timeline_,
         "also write every controller tick to this TSV file "
         "(policy, time, desired, ready, outstanding requests, requests missed so far, reason, message)");
    autoscale_->add_flag("--json", json_, "print one JSON document instead of the table");
  }

  int Run() {
    if (!cmd_->parsed()) return -1;
    auto policies = sim::ParsePolicies(policy_);
    if (!policies.ok()) {
      std::cerr << "--policy: " << policies.status().message() << "\n";
      return 2;
    }
    if (scenario_ == "trace" && trace_.empty()) {
      std::cerr << "galley sim autoscale: --trace is required with --scenario trace\n";
      return 2;
    }
    sim::ClusterModel cluster;
    cluster.model_load_time_s = load_s_;
    Scenario sc;
    if (!MakeScenario(cluster, sc)) return 1;
    sim::SimOptions options;
    options.slo_s = slo_ms_ / 1000;
    options.seed = seed_;
    options.step_at_s = sc.step_at;
    options.keep_timeline = !timeline_.empty();

    std::vector<sim::SimResult> results;
    std::vector<sim::PolicySetup> setups;
    std::vector<double> wall;
    for (sim::PolicyKind kind : *policies) {
      setups.push_back(sim::MakePolicy(kind, max_replicas_));
      if (kind == sim::PolicyKind::kGalley) ApplyGalleyOverrides(setups.back());
      const auto start = std::chrono::steady_clock::now();
      std::unique_ptr<sim::ArrivalStream> arrivals = Arrivals(sc);
      results.push_back(sim::Simulate(*arrivals, cluster, setups.back(), options));
      wall.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    if (!timeline_.empty() && !WriteTimeline(results)) return 1;
    if (json_) {
      PrintJson(cluster, sc, setups, results, wall);
    } else {
      PrintTable(cluster, sc, setups, results, wall);
    }
    return 0;
  }

 private:
  bool MakeScenario(const sim::ClusterModel& cluster, Scenario& sc) {
    const double capacity = cluster.service.MaxThroughput();
    sc.peak_rate = peak_replicas_ * kTargetUtilization * capacity;
    if (!trace_.empty()) {
      auto text = sim::ReadFile(trace_);
      auto offsets = text.ok() ? sim::ParseAzureTrace(*text, trace_) : text.status();
      if (!offsets.ok()) {
        std::cerr << "galley sim autoscale: " << offsets.status().message() << "\n";
        return false;
      }
      sc.offsets = std::move(*offsets);
    }
    if (scenario_ == "step") {
      sc.step_at = step_at_;
      sc.description =
          StrCat("step: no requests for ", step_at_, " s, then Poisson arrivals at ",
                 Fixed(sc.peak_rate, 0), " req/s (", peak_replicas_, " replicas at 70% of ",
                 Fixed(capacity, 0), " req/s) for ", step_seconds_, " s");
      return true;
    }
    const double peak = sim::PeakRate(sc.offsets, peak_window_s_);
    sc.factor = sc.peak_rate / peak;
    const double expected = sc.factor * static_cast<double>(sc.offsets.size());
    sc.description =
        StrCat("trace ", trace_, ": ", sc.offsets.size(), " requests over ",
               Fixed(sc.offsets.back(), 0), " s, peak ", peak_window_s_, "-s rate ", Fixed(peak, 2),
               " req/s (60-s: ", Fixed(sim::PeakRate(sc.offsets, 60), 2), "); replica capacity ",
               Fixed(capacity, 0), " req/s at full batches, ",
               Fixed(kTargetUtilization * capacity, 0), " at 70%; rate x", Fixed(sc.factor, 1),
               " (each request replicated within its second) -> "
               "peak ",
               Fixed(sc.peak_rate, 0), " req/s = ", peak_replicas_, " replicas at 70%, about ",
               Fixed(expected / 1e6, 1), "M requests");
    return true;
  }

  std::unique_ptr<sim::ArrivalStream> Arrivals(const Scenario& sc) const {
    if (sc.step_at) {
      return std::make_unique<sim::StepArrivals>(0, sc.peak_rate, *sc.step_at,
                                                 *sc.step_at + step_seconds_, seed_);
    }
    return std::make_unique<sim::ScaledTraceArrivals>(sc.offsets, sc.factor, seed_);
  }

  // The --galley-* flags: each one set changes the galley policy and says so in its settings.
  void ApplyGalleyOverrides(sim::PolicySetup& setup) const {
    auto& g = std::get<autoscale::InferencePolicy>(setup.spec.policy);
    if (galley_target_ > 0) {
      g.target_concurrency = galley_target_;
      setup.settings += StrCat("; target concurrency overridden: ", galley_target_);
    }
    if (galley_delay_s_ >= 0) {
      g.scale_down_delay = absl::Seconds(galley_delay_s_);
      setup.settings += StrCat("; scale-down delay overridden: ", galley_delay_s_, " s");
    }
    if (galley_burst_gap_s_ >= 0) {
      g.burst_gap_max = absl::Seconds(galley_burst_gap_s_);
      setup.settings += StrCat("; burst gap limit overridden: ", galley_burst_gap_s_, " s");
    }
  }

  bool WriteTimeline(const std::vector<sim::SimResult>& results) const {
    std::ofstream out(timeline_, std::ios::trunc);
    out << "policy\ttime_s\tdesired\tready\toutstanding\tmissed\treason\tmessage\n";
    for (const sim::SimResult& r : results) {
      for (const sim::TickRecord& t : r.timeline) {
        out << r.policy << '\t' << t.time_s << '\t' << t.desired << '\t' << t.ready << '\t'
            << t.outstanding << '\t' << t.missed << '\t' << t.reason << '\t' << t.message << '\n';
      }
    }
    if (!out.good()) {
      std::cerr << "galley sim autoscale: cannot write " << timeline_ << "\n";
      return false;
    }
    return true;
  }

  static std::string Fixed(double v, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
    return buf;
  }

  void PrintTable(const sim::ClusterModel& cluster, const Scenario& sc,
                  const std::vector<sim::PolicySetup>& setups,
                  const std::vector<sim::SimResult>& results,
                  const std::vector<double>& wall) const {
    const sim::ServiceModel& s = cluster.service;
    std::printf("# %s\n", sc.description.c_str());
    std::printf(
        "# replica: batch time %.0f us + %.0f us x n, max batch %d, queue %d; cold start "
        "%.0f s; CPU request %.0f core; SLO %.1f ms; seed %llu\n",
        s.batch_base_s * 1e6, s.batch_per_item_s * 1e6, s.max_batch_size, s.max_queue_size,
        cluster.model_load_time_s, cluster.cpu_request_cores, slo_ms_,
        static_cast<unsigned long long>(seed_));
    for (const auto& p : setups) std::printf("# %s: %s\n", p.name.c_str(), p.settings.c_str());
    const bool step = sc.step_at.has_value();
    std::printf(
        "| policy | within SLO | p50 | p99 | dropped | replica-seconds | scale events | "
        "max replicas |%s requests | sim wall |\n",
        step ? " SLO restored after |" : "");
    std::printf("|---|---:|---:|---:|---:|---:|---:|---:|%s---:|---:|\n", step ? "---:|" : "");
    for (size_t i = 0; i < results.size(); ++i) {
      const sim::SimResult& r = results[i];
      std::string restore;
      if (step) {
        restore = r.restore_s ? StrCat(" ", Fixed(*r.restore_s, 0), " s |") : " never |";
      }
      std::printf("| %s | %.3f%% | %.2f ms | %.2f ms | %lld | %.0f | %d | %d |%s %lld | %.1f s |\n",
                  r.policy.c_str(), 100 * r.WithinSloShare(), r.p50_s * 1e3, r.p99_s * 1e3,
                  static_cast<long long>(r.dropped), r.replica_seconds, r.scale_events,
                  r.max_replicas, restore.c_str(), static_cast<long long>(r.arrived), wall[i]);
    }
    std::printf("# peak_rss_mib %.1f\n", PeakRssMib());
  }

  void PrintJson(const sim::ClusterModel& cluster, const Scenario& sc,
                 const std::vector<sim::PolicySetup>& setups,
                 const std::vector<sim::SimResult>& results,
                 const std::vector<double>& wall) const {
    boost::json::array rows;
    for (size_t i = 0; i < results.size(); ++i) {
      const sim::SimResult& r = results[i];
      boost::json::object o{{"policy", r.policy},
                            {"settings", setups[i].settings},
                            {"arrived", r.arrived},
                            {"completed", r.completed},
                            {"dropped", r.dropped},
                            {"withinSlo", r.within_slo},
                            {"withinSloShare", r.WithinSloShare()},
                            {"p50Seconds", r.p50_s},
                            {"p99Seconds", r.p99_s},
                            {"maxLatencySeconds", r.max_latency_s},
                            {"replicaSeconds", r.replica_seconds},
                            {"scaleEvents", r.scale_events},
                            {"maxReplicas", r.max_replicas},
                            {"horizonSeconds", r.horizon_s},
                            {"wallSeconds", wall[i]}};
      if (sc.step_at) {
        o["restoreSeconds"] =
            r.restore_s ? boost::json::value(*r.restore_s) : boost::json::value(nullptr);
      }
      rows.push_back(std::move(o));
    }
    const sim::ServiceModel& s = cluster.service;
    boost::json::object doc{{"scenario", scenario_},
                            {"description", sc.description},
                            {"sloSeconds", slo_ms_ / 1000},
                            {"seed", seed_},
                            {"rateFactor", sc.factor},
                            {"peakRate", sc.peak_rate},
                            {"batchBaseSeconds", s.batch_base_s},
                            {"batchPerItemSeconds", s.batch_per_item_s},
                            {"maxBatchSize", s.max_batch_size},
                            {"maxQueueSize", s.max_queue_size},
                            {"modelLoadSeconds", cluster.model_load_time_s},
                            {"peakRssMib", PeakRssMib()},
                            {"results", std::move(rows)}};
    std::cout << boost::json::serialize(doc) << "\n";
  }

  CLI::App* cmd_ = nullptr;
  CLI::App* autoscale_ = nullptr;
  std::string trace_;
  std::string timeline_;
  std::string policy_ = "all";
  std::string scenario_ = "trace";
  double slo_ms_ = 25;
  int peak_replicas_ = 10;
  int max_replicas_ = 20;
  double peak_window_s_ = 10;
  double load_s_ = 10;
  double galley_target_ = 0;
  double galley_delay_s_ = -1;
  double galley_burst_gap_s_ = -1;
  uint64_t seed_ = 1;
  double step_at_ = 120;
  double step_seconds_ = 300;
  bool json_ = false;
};

}  // namespace

Runner AddSimCommand(CLI::App& app) {
  auto command = std::make_shared<SimCommand>(app);
  return [command] { return command->Run(); };
}

}  // namespace galley::cli
