#include "common/thread_name.h"

#include <pthread.h>

namespace galley {

namespace {
constexpr size_t kMaxName = 15;  // TASK_COMM_LEN (16) less the terminating NUL
}  // namespace

void SetThreadName(std::string_view name, std::string_view suffix) {
  suffix = suffix.substr(0, kMaxName);
  std::string full(name.substr(0, kMaxName - suffix.size()));
  full += suffix;
  pthread_setname_np(pthread_self(), full.c_str());
}

std::string ThreadName() {
  char buf[kMaxName + 1] = {};
  if (pthread_getname_np(pthread_self(), buf, sizeof(buf)) != 0) return "";
  return buf;
}

}  // namespace galley
