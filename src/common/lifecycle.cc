#include "common/lifecycle.h"

#include <algorithm>
#include <thread>

#include "common/log.h"
#include "common/signals.h"

namespace galley {

namespace {

double Seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

ProcessRunner::ProcessRunner(ProcessOptions options, const Clock& clock)
    : options_(options), clock_(clock) {
  BlockStopSignals();
}

absl::Status ProcessRunner::Start(Component& part) {
  if (absl::Status st = part.Start(); !st.ok()) {
    log::Error("start_failed", {{"component", std::string(part.component_name())},
                                {"error", std::string(st.message())}});
    StopAll();
    return st;
  }
  started_.push_back(&part);
  return absl::OkStatus();
}

int ProcessRunner::Abort() {
  StopAll();
  return 1;
}

int ProcessRunner::Run() { return RunAfter(WaitForStopSignal()); }

int ProcessRunner::RunAfter(int signal) {
  const TimePoint stop_start = clock_.Now();
  const TimePoint deadline = stop_start + options_.grace_period;
  for (Component* part : started_) part->BeginDrain();
  log::Info("draining",
            {{"signal", StopSignalName(signal)}, {"drain_delay_s", Seconds(options_.drain_delay)}});
  // Keep serving while load balancers notice that ready is false (a real wait, not a sync).
  const TimePoint drain_end = std::min(stop_start + options_.drain_delay, deadline);
  while (clock_.Now() < drain_end) std::this_thread::sleep_for(drain_end - clock_.Now());
  for (auto it = started_.rbegin(); it != started_.rend(); ++it) (*it)->StopAccepting();
  bool clean = true;
  for (auto it = started_.rbegin(); it != started_.rend(); ++it) {
    if (!(*it)->Drain(deadline)) {
      clean = false;
      log::Warn("drain_incomplete", {{"component", std::string((*it)->component_name())}});
    }
  }
  StopAll();
  log::Stopped(Seconds(clock_.Now() - stop_start), clean);
  return 0;
}

void ProcessRunner::StopAll() {
  while (!started_.empty()) {
    started_.back()->Stop();
    started_.pop_back();
  }
}

}  // namespace galley
