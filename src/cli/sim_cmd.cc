// `galley sim`: simulators that replay traces offline.
//   galley sim autoscale --trace FILE [--policy all] [--slo-ms 25] [--slo-target 0.995]
//                        [--scenario trace|step|diurnal|bursts|climb|flash|quiet]
//                        [--peak-replicas 10] [--max-replicas 20] [--model-load-seconds 10]
//                        [--seed 1] [--no-baselines] [--json] [--queue [--prefetch 64]]
// replays the trace (scaled so its peak needs about --peak-replicas replicas), a step from idle
// to that peak, or a synthetic pattern (sim/patterns.h) through the autoscaling simulator
// (sim/autoscale_sim.h), once per policy, beside the baselines (sim/baselines.h: the cheapest
// static fleet, the static fleet of the peak's need, the clairvoyant oracle), and prints them
// side by side. With --queue the requests are messages on a durable queue that replicas consume
// (the policies then scale on its backlog). docs/autoscale-sim.md describes the model and the
// numbers.
// Exit 0 on a report, 1 when the trace cannot be read or parsed, 2 on bad flags.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "boost/json.hpp"
#include "cli/commands.h"
#include "cli/flags.h"
#include "common/strings.h"
#include "sim/arrivals.h"
#include "sim/autoscale_sim.h"
#include "sim/baselines.h"
#include "sim/patterns.h"
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
  std::vector<double> rates;    // pattern: requests per second, per second
};

// One line of the report: a policy's run or a baseline's.
struct Row {
  sim::SimResult result;
  std::string settings;
  double wall_s = 0;
  bool baseline = false;
  int runs = 1;  // simulations behind it (the baselines' searches)
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
         "all, or a comma-separated list of hpa-cpu, hpa-queue, kpa, keda, keda-pending, galley, "
         "galley-concurrency");
    Flag(autoscale_, "slo-ms", slo_ms_, "latency SLO in milliseconds")
        ->check(CLI::Range(0.01, 1e6));
    Flag(autoscale_, "scenario", scenario_,
         "trace (the scaled trace), step (idle, then the peak), or a synthetic pattern: diurnal, "
         "bursts, climb, flash, quiet")
        ->check(CLI::IsMember({"trace", "step", "diurnal", "bursts", "climb", "flash", "quiet"}));
    Flag(autoscale_, "duration-seconds", duration_s_, "synthetic patterns: length of the run")
        ->check(CLI::Range(60, 86400));
    Flag(autoscale_, "slo-target", slo_target_,
         "share of requests within the SLO the baselines' searches must reach")
        ->check(CLI::Range(0.0, 1.0));
    autoscale_->add_flag("--no-baselines", no_baselines_,
                         "run the named policies only (no static fleets, no oracle)");
    Flag(autoscale_, "policy-target", policy_target_,
         "override each policy's main knob (hpa-cpu: utilization percent; hpa-queue: queue per "
         "pod; kpa, galley-concurrency: target concurrency; galley: target utilization; keda: "
         "backlog per replica; 0: their defaults)")
        ->check(CLI::Range(0.0, 1e6));
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
    Flag(autoscale_, "galley-target-utilization", galley_utilization_,
         "override the galley policy's target utilization of a replica's full-batch throughput "
         "(0: its default)")
        ->check(CLI::Range(0.0, 1.0));
    Flag(autoscale_, "galley-burst-cover-share", galley_cover_,
         "override the share of remembered requests the galley policy's burst floor covers "
         "(0: its default)")
        ->check(CLI::Range(0.0, 1.0));
    Flag(autoscale_, "galley-burst-gap-max-seconds", galley_burst_gap_s_,
         "override the galley policy's burst gap limit (0: no burst-recurrence hold; negative: "
         "its default)")
        ->check(CLI::Range(-1.0, 86400.0));
    Flag(autoscale_, "timeline", timeline_,
         "also write every controller tick to this TSV file "
         "(policy, time, desired, ready, outstanding requests, requests missed so far, reason, "
         "message)");
    autoscale_->add_flag("--json", json_, "print one JSON document instead of the table");
    autoscale_->add_flag("--queue", queue_,
                         "requests arrive as messages on a durable queue the replicas consume "
                         "(never dropped; the report adds how long they waited in the broker)");
    Flag(autoscale_, "prefetch", prefetch_, "queue: messages a replica holds at most")
        ->check(CLI::Range(1, 1'000'000));
  }

  int Run() {
    if (!cmd_->parsed()) return -1;
    auto policies = sim::ParsePolicies(policy_, queue_);
    if (!policies.ok()) {
      std::cerr << "--policy: " << policies.status().message() << "\n";
      return 2;
    }
    if (policy_target_ > 1 && !queue_ &&
        std::find(policies->begin(), policies->end(), sim::PolicyKind::kGalley) !=
            policies->end()) {
      std::cerr << "--policy-target: galley's knob is its target utilization, in (0, 1]; run "
                   "galley on its own or name galley-concurrency for a concurrency target\n";
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
    options.queue = queue_;
    options.prefetch = prefetch_;

    std::vector<Row> rows;
    for (sim::PolicyKind kind : *policies) {
      sim::PolicySetup setup =
          sim::MakePolicy(kind, max_replicas_, queue_, cluster.service.MaxThroughput());
      ApplyOverrides(setup);
      Timed(rows, [&] {
        std::unique_ptr<sim::ArrivalStream> arrivals = Arrivals(sc);
        return Row{sim::Simulate(*arrivals, cluster, setup, options), setup.settings};
      });
    }
    if (!no_baselines_) AddBaselines(cluster, sc, options, rows);
    if (!timeline_.empty() && !WriteTimeline(rows)) return 1;
    if (json_) {
      PrintJson(cluster, sc, rows);
    } else {
      PrintTable(cluster, sc, rows);
    }
    return 0;
  }

 private:
  // Runs make() and appends its row with the wall time it took.
  template <typename Make>
  static void Timed(std::vector<Row>& rows, Make make) {
    const auto start = std::chrono::steady_clock::now();
    Row row = make();
    row.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rows.push_back(std::move(row));
  }

  static Row BaselineRow(sim::BaselineRun run, std::string name) {
    run.result.policy = std::move(name);
    Row row{std::move(run.result), run.setup.settings};
    row.baseline = true;
    row.runs = run.runs;
    return row;
  }

  // The oracle (searched over u), the cheapest static fleet that keeps --slo-target (searched
  // over N) and the static fleet of the peak's need (N = --peak-replicas).
  void AddBaselines(const sim::ClusterModel& cluster, const Scenario& sc,
                    const sim::SimOptions& options, std::vector<Row>& rows) const {
    sim::SimOptions quiet = options;
    quiet.keep_timeline = false;
    const sim::ArrivalFactory arrivals = [&] { return Arrivals(sc); };
    constexpr double kTick = 2;  // Galley's and KPA's tick
    Timed(rows, [&] {
      sim::BaselineRun o = sim::SearchOracle(arrivals, cluster, quiet, slo_target_, kTick);
      const std::string name = StrCat("oracle (u=", Fixed(o.utilization, 2),
                                      o.reached ? "" : ", target not reached", ")");
      return BaselineRow(std::move(o), name);
    });
    Timed(rows, [&] {
      sim::BaselineRun s = sim::SearchStatic(arrivals, cluster, quiet, slo_target_, max_replicas_);
      const std::string name =
          StrCat("static-min (N=", s.replicas, s.reached ? "" : ", target not reached", ")");
      return BaselineRow(std::move(s), name);
    });
    Timed(rows, [&] {
      sim::BaselineRun s = sim::RunStatic(peak_replicas_, arrivals, cluster, quiet, slo_target_);
      return BaselineRow(std::move(s), StrCat("static-peak (N=", peak_replicas_, ")"));
    });
  }

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
    if (auto pattern = sim::ParsePattern(scenario_); pattern.ok()) {
      // A different stream from the arrivals' (which use seed_ itself).
      sc.rates = sim::PatternShape(*pattern, duration_s_, seed_ ^ 0x9e3779b97f4a7c15ULL);
      double total = 0;
      for (double& r : sc.rates) total += r *= sc.peak_rate;
      sc.description =
          StrCat("pattern ", scenario_, ": ", duration_s_, " s, peak ", Fixed(sc.peak_rate, 0),
                 " req/s (", peak_replicas_, " replicas at 70% of ", Fixed(capacity, 0),
                 " req/s), mean ", Fixed(total / duration_s_, 0), " req/s, about ",
                 Fixed(total / 1e6, 1), "M requests (Poisson within each second)");
      return true;
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
    if (!sc.rates.empty()) return std::make_unique<sim::RateArrivals>(sc.rates, seed_);
    return std::make_unique<sim::ScaledTraceArrivals>(sc.offsets, sc.factor, seed_);
  }

  // --policy-target: the main knob of each policy; says so in its settings.
  void ApplyTarget(sim::PolicySetup& setup) const {
    if (policy_target_ <= 0) return;
    if (auto* h = std::get_if<autoscale::HpaSpec>(&setup.spec.policy)) {
      autoscale::MetricSpec& m = h->metrics.front();
      (m.target_type == autoscale::TargetType::kUtilization ? m.average_utilization : m.value) =
          policy_target_;
    } else if (auto& g = std::get<autoscale::InferencePolicy>(setup.spec.policy);
               g.replica_capacity_rps) {
      g.target_utilization = std::min(policy_target_, 1.0);  // Run() refuses more than 1
    } else {
      g.target_concurrency = policy_target_;
    }
    setup.settings += StrCat("; main target overridden: ", policy_target_);
  }

  // --policy-target, then the --galley-* flags: each one set changes the galley policy and says
  // so in its settings.
  void ApplyOverrides(sim::PolicySetup& setup) const {
    ApplyTarget(setup);
    if (setup.kind != sim::PolicyKind::kGalley &&
        setup.kind != sim::PolicyKind::kGalleyConcurrency) {
      return;
    }
    auto& g = std::get<autoscale::InferencePolicy>(setup.spec.policy);
    if (galley_target_ > 0) {
      g.target_concurrency = galley_target_;
      setup.settings += StrCat("; target concurrency overridden: ", galley_target_);
    }
    if (galley_delay_s_ >= 0) {
      g.scale_down_delay = absl::Seconds(galley_delay_s_);
      setup.settings += StrCat("; scale-down delay overridden: ", galley_delay_s_, " s");
    }
    if (galley_utilization_ > 0) {
      g.target_utilization = galley_utilization_;
      setup.settings += StrCat("; target utilization overridden: ", galley_utilization_);
    }
    if (galley_cover_ > 0) {
      g.burst_cover_share = galley_cover_;
      setup.settings += StrCat("; burst cover share overridden: ", galley_cover_);
    }
    if (galley_burst_gap_s_ >= 0) {
      g.burst_gap_max = absl::Seconds(galley_burst_gap_s_);
      setup.settings += StrCat("; burst gap limit overridden: ", galley_burst_gap_s_, " s");
    }
  }

  bool WriteTimeline(const std::vector<Row>& rows) const {
    std::ofstream out(timeline_, std::ios::trunc);
    out << "policy\ttime_s\tdesired\tready\toutstanding\tmissed\treason\tmessage\n";
    for (const Row& row : rows) {
      const sim::SimResult& r = row.result;
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

  // A duration for the table: ms below a second, s above.
  static std::string Seconds(double s) {
    return s < 1 ? StrCat(Fixed(s * 1e3, 1), " ms") : StrCat(Fixed(s, 1), " s");
  }

  static std::string Fixed(double v, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
    return buf;
  }

  // The oracle's replica-seconds, when it ran.
  static std::optional<double> OracleCost(const std::vector<Row>& rows) {
    for (const Row& row : rows) {
      if (row.result.policy.starts_with("oracle")) return row.result.replica_seconds;
    }
    return std::nullopt;
  }

  // The proven lower bound (baselines.h) for serving --slo-target of the requests.
  double WorkBound(const sim::ClusterModel& cluster, const std::vector<Row>& rows) const {
    const double arrived = rows.empty() ? 0 : static_cast<double>(rows.front().result.arrived);
    return sim::WorkBoundReplicaSeconds(slo_target_ * arrived, cluster.service);
  }

  void PrintTable(const sim::ClusterModel& cluster, const Scenario& sc,
                  const std::vector<Row>& rows) const {
    const sim::ServiceModel& s = cluster.service;
    std::printf("# %s\n", sc.description.c_str());
    std::printf(
        "# replica: batch time %.0f us + %.0f us x n, max batch %d, queue %d; cold start "
        "%.0f s; CPU request %.0f core; SLO %.1f ms, target %.2f%%; seed %llu\n",
        s.batch_base_s * 1e6, s.batch_per_item_s * 1e6, s.max_batch_size, s.max_queue_size,
        cluster.model_load_time_s, cluster.cpu_request_cores, slo_ms_, 100 * slo_target_,
        static_cast<unsigned long long>(seed_));
    for (const Row& row : rows) {
      std::printf("# %s: %s\n", row.result.policy.c_str(), row.settings.c_str());
    }
    std::printf(
        "# lower bound (work: %.2f%% of the requests at full batches): %.0f replica-seconds\n",
        100 * slo_target_, WorkBound(cluster, rows));
    const std::optional<double> oracle = OracleCost(rows);
    const bool step = sc.step_at.has_value();
    if (queue_) {
      std::printf(
          "# queue: messages wait in the broker until a ready replica with room fetches them "
          "(prefetch %d); dropped = never fetched within %.0f s of the last arrival\n",
          prefetch_, sim::SimOptions{}.drain_limit_s);
    }
    std::printf(
        "| policy | within SLO | dropped | p99 |%s replica-seconds | / oracle | scale events | "
        "max replicas |%s requests | sim wall |\n",
        queue_ ? " wait p50 | wait p99 | wait max | most waiting |" : "",
        step ? " SLO restored after |" : "");
    std::printf("|---|---:|---:|---:|%s---:|---:|---:|---:|%s---:|---:|\n",
                queue_ ? "---:|---:|---:|---:|" : "", step ? "---:|" : "");
    for (const Row& row : rows) {
      const sim::SimResult& r = row.result;
      std::string restore;
      if (step) {
        restore = r.restore_s ? StrCat(" ", Fixed(*r.restore_s, 0), " s |") : " never |";
      }
      const std::string ratio = oracle && *oracle > 0 ? Fixed(r.replica_seconds / *oracle, 2) : "-";
      std::string wait;
      if (queue_) {
        wait = StrCat(" ", Seconds(r.age_p50_s), " | ", Seconds(r.age_p99_s), " | ",
                      Seconds(r.age_max_s), " | ", r.max_lag, " |");
      }
      std::printf("| %s | %.3f%% | %lld | %.2f ms |%s %.0f | %s | %d | %d |%s %lld | %.1f s%s |\n",
                  r.policy.c_str(), 100 * r.WithinSloShare(), static_cast<long long>(r.dropped),
                  r.p99_s * 1e3, wait.c_str(), r.replica_seconds, ratio.c_str(), r.scale_events,
                  r.max_replicas, restore.c_str(), static_cast<long long>(r.arrived), row.wall_s,
                  row.runs > 1 ? StrCat(" (", row.runs, " runs)").c_str() : "");
    }
    std::printf("# peak_rss_mib %.1f\n", PeakRssMib());
  }

  void PrintJson(const sim::ClusterModel& cluster, const Scenario& sc,
                 const std::vector<Row>& rows) const {
    const std::optional<double> oracle = OracleCost(rows);
    boost::json::array out;
    for (const Row& row : rows) {
      const sim::SimResult& r = row.result;
      boost::json::object o{{"policy", r.policy},
                            {"baseline", row.baseline},
                            {"settings", row.settings},
                            {"arrived", r.arrived},
                            {"completed", r.completed},
                            {"dropped", r.dropped},
                            {"withinSlo", r.within_slo},
                            {"withinSloShare", r.WithinSloShare()},
                            {"reachedTarget", r.WithinSloShare() >= slo_target_},
                            {"p50Seconds", r.p50_s},
                            {"p99Seconds", r.p99_s},
                            {"maxLatencySeconds", r.max_latency_s},
                            {"replicaSeconds", r.replica_seconds},
                            {"scaleEvents", r.scale_events},
                            {"maxReplicas", r.max_replicas},
                            {"horizonSeconds", r.horizon_s},
                            {"wallSeconds", row.wall_s},
                            {"runs", row.runs}};
      o["replicaSecondsOverOracle"] = oracle && *oracle > 0
                                          ? boost::json::value(r.replica_seconds / *oracle)
                                          : boost::json::value(nullptr);
      if (queue_) {
        o["waitP50Seconds"] = r.age_p50_s;
        o["waitP99Seconds"] = r.age_p99_s;
        o["waitMaxSeconds"] = r.age_max_s;
        o["mostWaiting"] = r.max_lag;
        o["stranded"] = r.stranded;
      }
      if (sc.step_at) {
        o["restoreSeconds"] =
            r.restore_s ? boost::json::value(*r.restore_s) : boost::json::value(nullptr);
      }
      out.push_back(std::move(o));
    }
    const sim::ServiceModel& s = cluster.service;
    boost::json::object doc{{"scenario", scenario_},
                            {"description", sc.description},
                            {"sloSeconds", slo_ms_ / 1000},
                            {"sloTarget", slo_target_},
                            {"seed", seed_},
                            {"rateFactor", sc.factor},
                            {"peakRate", sc.peak_rate},
                            {"batchBaseSeconds", s.batch_base_s},
                            {"batchPerItemSeconds", s.batch_per_item_s},
                            {"maxBatchSize", s.max_batch_size},
                            {"maxQueueSize", s.max_queue_size},
                            {"modelLoadSeconds", cluster.model_load_time_s},
                            {"workBoundReplicaSeconds", WorkBound(cluster, rows)},
                            {"peakRssMib", PeakRssMib()},
                            {"queue", queue_},
                            {"results", std::move(out)}};
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
  double galley_utilization_ = 0;
  double galley_cover_ = 0;
  double galley_delay_s_ = -1;
  double galley_burst_gap_s_ = -1;
  double policy_target_ = 0;
  double slo_target_ = 0.995;
  int duration_s_ = 1800;
  bool no_baselines_ = false;
  uint64_t seed_ = 1;
  double step_at_ = 120;
  double step_seconds_ = 300;
  bool json_ = false;
  bool queue_ = false;
  int prefetch_ = 64;
};

}  // namespace

Runner AddSimCommand(CLI::App& app) {
  auto command = std::make_shared<SimCommand>(app);
  return [command] { return command->Run(); };
}

}  // namespace galley::cli
