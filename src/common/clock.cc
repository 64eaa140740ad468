#include "common/clock.h"

namespace galley {

const Clock& SteadyClock::Get() {
  static const SteadyClock* const clock = new SteadyClock();
  return *clock;
}

}  // namespace galley
