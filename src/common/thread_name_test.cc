#include "common/thread_name.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace galley {
namespace {

// The name the kernel shows for the calling thread.
std::string KernelName() {
  std::ifstream in("/proc/self/task/" + std::to_string(syscall(SYS_gettid)) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

TEST(ThreadNameTest, NamesTheCallingThreadOnly) {
  const std::string before = ThreadName();
  std::string inside, kernel;
  std::thread t([&] {
    SetThreadName("http-io-3");
    inside = ThreadName();
    kernel = KernelName();
  });
  t.join();
  EXPECT_EQ(inside, "http-io-3");
  EXPECT_EQ(kernel, "http-io-3");
  EXPECT_EQ(ThreadName(), before);
}

TEST(ThreadNameTest, LongNamesKeepTheirFirstFifteenBytes) {
  std::string got;
  std::thread t([&] {
    SetThreadName("sentiment_transformer/12");
    got = ThreadName();
  });
  t.join();
  EXPECT_EQ(got, "sentiment_trans");
}

TEST(ThreadNameTest, ASuffixShowsWhateverTheNameIsCutTo) {
  std::string got, short_name;
  std::thread t([&] {
    SetThreadName("sentiment_transformer", "/12");
    got = ThreadName();
    SetThreadName("vader", "/0");
    short_name = ThreadName();
  });
  t.join();
  EXPECT_EQ(got, "sentiment_tr/12");
  EXPECT_EQ(short_name, "vader/0");
}

}  // namespace
}  // namespace galley
