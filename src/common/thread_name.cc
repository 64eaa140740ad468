#include "common/thread_name.h"

#include <pthread.h>

namespace galley {

namespace {
constexpr size_t kMaxName = 15;  // TASK_COMM_LEN (16) less the terminating NUL
}  // namespace

void SetThreadName(std::string_view name) {
  const std::string cut(name.substr(0, kMaxName));
  pthread_setname_np(pthread_self(), cut.c_str());
}

std::string ThreadName() {
  char buf[kMaxName + 1] = {};
  if (pthread_getname_np(pthread_self(), buf, sizeof(buf)) != 0) return "";
  return buf;
}

}  // namespace galley
