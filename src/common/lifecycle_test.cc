#include "common/lifecycle.h"

#include <signal.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace galley {
namespace {

using std::chrono::milliseconds;

// A part that writes what is asked of it, with the time, into a shared journal.
struct Journal {
  std::vector<std::string> events;
  std::vector<TimePoint> times;
  void Add(std::string e) {
    events.push_back(std::move(e));
    times.push_back(SteadyClock::Get().Now());
  }
};

class Part final : public Component {
 public:
  Part(std::string name, Journal& journal, absl::Status start = absl::OkStatus())
      : name_(std::move(name)), journal_(journal), start_(std::move(start)) {}
  std::string_view component_name() const override { return name_; }
  absl::Status Start() override {
    journal_.Add("start " + name_);
    return start_;
  }
  void BeginDrain() override { journal_.Add("begin " + name_); }
  void StopAccepting() override { journal_.Add("close " + name_); }
  bool Drain(TimePoint deadline) override {
    journal_.Add("drain " + name_);
    deadline_ = deadline;
    return true;
  }
  void Stop() override { journal_.Add("stop " + name_); }
  TimePoint deadline_{};

 private:
  std::string name_;
  Journal& journal_;
  absl::Status start_;
};

TEST(ProcessRunnerTest, DrainsAndStopsTheOutermostPartFirst) {
  Journal j;
  Part service("service", j), server("server", j), consumer("consumer", j);
  ProcessRunner runner({milliseconds(0), std::chrono::seconds(30)}, SteadyClock::Get());
  ASSERT_TRUE(runner.Start(service).ok());
  ASSERT_TRUE(runner.Start(server).ok());
  ASSERT_TRUE(runner.Start(consumer).ok());
  const TimePoint before = SteadyClock::Get().Now();
  EXPECT_EQ(runner.RunAfter(SIGTERM), 0);
  EXPECT_EQ(j.events, (std::vector<std::string>{"start service", "start server", "start consumer",
                                                "begin service", "begin server", "begin consumer",
                                                "close consumer", "close server", "close service",
                                                "drain consumer", "drain server", "drain service",
                                                "stop consumer", "stop server", "stop service"}));
  // Every drain shares one deadline: the signal + the grace period.
  EXPECT_EQ(service.deadline_, server.deadline_);
  EXPECT_GE(service.deadline_, before + std::chrono::seconds(30));
}

TEST(ProcessRunnerTest, AStartFailureStopsWhatStartedAndNothingElse) {
  Journal j;
  Part a("a", j), b("b", j), bad("bad", j, absl::UnavailableError("port in use")), late("late", j);
  ProcessRunner runner({}, SteadyClock::Get());
  ASSERT_TRUE(runner.Start(a).ok());
  ASSERT_TRUE(runner.Start(b).ok());
  const absl::Status st = runner.Start(bad);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(st.message(), "port in use");
  EXPECT_EQ(runner.Abort(), 1);  // nothing is left to stop twice
  EXPECT_EQ(j.events,
            (std::vector<std::string>{"start a", "start b", "start bad", "stop b", "stop a"}));
}

TEST(ProcessRunnerTest, AbortStopsThePartsStartedWithoutDrainingThem) {
  Journal j;
  Part a("a", j), b("b", j);
  ProcessRunner runner({}, SteadyClock::Get());
  ASSERT_TRUE(runner.Start(a).ok());
  ASSERT_TRUE(runner.Start(b).ok());
  EXPECT_EQ(runner.Abort(), 1);
  EXPECT_EQ(j.events, (std::vector<std::string>{"start a", "start b", "stop b", "stop a"}));
}

TEST(ProcessRunnerTest, TheDrainDelayPassesBetweenTheAnnouncementAndTheDrains) {
  Journal j;
  Part server("server", j);
  ProcessRunner runner({milliseconds(150), std::chrono::seconds(30)}, SteadyClock::Get());
  ASSERT_TRUE(runner.Start(server).ok());
  runner.RunAfter(SIGTERM);
  ASSERT_EQ(j.events, (std::vector<std::string>{"start server", "begin server", "close server",
                                                "drain server", "stop server"}));
  EXPECT_GE(j.times[2] - j.times[1], milliseconds(150));
}

TEST(ProcessRunnerTest, ADrainDelayLongerThanTheGracePeriodIsCutToIt) {
  Journal j;
  Part server("server", j);
  ProcessRunner runner({std::chrono::hours(1), milliseconds(100)}, SteadyClock::Get());
  ASSERT_TRUE(runner.Start(server).ok());
  runner.RunAfter(SIGINT);  // returns: the delay ends at the grace deadline
  EXPECT_EQ(j.events.back(), "stop server");
  // The drain starts at the deadline, not an hour later.
  EXPECT_GE(j.times[3], server.deadline_);
  EXPECT_LT(j.times[3], server.deadline_ + std::chrono::minutes(1));
}

TEST(ProcessRunnerTest, RunWaitsForARealStopSignal) {
  Journal j;
  Part server("server", j);
  ProcessRunner runner({}, SteadyClock::Get());  // blocks SIGTERM in this thread and its children
  ASSERT_TRUE(runner.Start(server).ok());
  std::thread sender([] { kill(getpid(), SIGTERM); });
  EXPECT_EQ(runner.Run(), 0);
  sender.join();
  EXPECT_EQ(j.events.back(), "stop server");
}

}  // namespace
}  // namespace galley
