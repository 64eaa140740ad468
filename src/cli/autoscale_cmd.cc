// `galley autoscale`: the autoscaling controller's command-line front end.
//   galley autoscale plan < document.json
// reads one plan document (docs/autoscaling.md) from stdin, runs the recommender
// and prints the decision as one JSON line. Exit 0 on a decision, 2 on bad input (the message,
// naming the offending field, goes to stderr).
//   galley autoscale run --model NAMESPACE/NAME
// runs the controller for one InferenceModel on Kubernetes (cli/autoscale_run_cmd.cc).
#include <iostream>
#include <iterator>
#include <string>

#include "autoscale/plan_json.h"
#include "autoscale/recommender.h"
#include "cli/commands.h"

namespace galley::cli {

Runner AddAutoscaleCommand(CLI::App& app) {
  CLI::App* cmd =
      app.add_subcommand("autoscale", "Autoscaling controller: replica recommendations");
  cmd->require_subcommand(1);
  CLI::App* plan = cmd->add_subcommand(
      "plan", "Read one JSON document (spec, pods, history, now) from stdin; print the decision");
  Runner run = AddAutoscaleRunCommand(cmd);
  return [cmd, plan, run]() -> int {
    if (!cmd->parsed()) return -1;
    if (int rc = run(); rc != -1) return rc;
    if (!plan->parsed()) return 2;
    const std::string text{std::istreambuf_iterator<char>(std::cin),
                           std::istreambuf_iterator<char>()};
    auto input = autoscale::ParsePlanInput(text);
    if (!input.ok()) {
      std::cerr << "galley autoscale plan: " << input.status().message() << "\n";
      return 2;
    }
    const autoscale::Decision decision =
        autoscale::Recommend(input->snapshot, input->spec, input->history, input->now);
    std::cout << autoscale::DecisionToJson(decision, *input) << "\n";
    return 0;
  };
}

}  // namespace galley::cli
