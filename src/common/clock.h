// The Clock seam: everything that needs "now" takes a Clock so tests can drive time by hand.
#pragma once

#include <atomic>
#include <chrono>

namespace galley {

using Duration = std::chrono::steady_clock::duration;
using TimePoint = std::chrono::steady_clock::time_point;

// Monotonic time source. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

// The production clock: std::chrono::steady_clock.
class SteadyClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  // A process-wide instance; never destroyed.
  static const Clock& Get();
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = TimePoint{}) : now_(start.time_since_epoch().count()) {}
  TimePoint Now() const override { return TimePoint(Duration(now_.load())); }
  void Advance(Duration d) { now_.fetch_add(d.count()); }
  void Set(TimePoint t) { now_.store(t.time_since_epoch().count()); }

 private:
  std::atomic<Duration::rep> now_;
};

}  // namespace galley
