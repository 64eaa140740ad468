#include "kube/retry.h"

#include "gtest/gtest.h"
#include "kube/api_error.h"

namespace galley::kube {
namespace {

using std::chrono::milliseconds;

absl::Status Conflict() {
  return ApiErrorFromResponse(409, R"({"kind":"Status","reason":"Conflict","code":409})");
}

TEST(RetryDelayTest, FollowsWaitBackoffStep) {
  // DefaultRetry: factor 1 -> 10 ms every time, plus up to 10% jitter.
  EXPECT_EQ(RetryDelay(kDefaultRetry, 1, 0.0), milliseconds(10));
  EXPECT_EQ(RetryDelay(kDefaultRetry, 4, 0.0), milliseconds(10));
  EXPECT_NEAR(std::chrono::duration<double>(RetryDelay(kDefaultRetry, 2, 0.5)).count(), 0.0105,
              1e-9);
  // DefaultBackoff: factor 5 -> 10, 50, 250 ms.
  EXPECT_EQ(RetryDelay(kDefaultBackoff, 1, 0.0), milliseconds(10));
  EXPECT_NEAR(std::chrono::duration<double>(RetryDelay(kDefaultBackoff, 2, 0.0)).count(), 0.05,
              1e-9);
  EXPECT_NEAR(std::chrono::duration<double>(RetryDelay(kDefaultBackoff, 3, 0.0)).count(), 0.25,
              1e-9);
  RetryBackoff capped{10, milliseconds(100), 2.0, 0.0, milliseconds(300)};
  EXPECT_EQ(RetryDelay(capped, 9, 0.0), milliseconds(300));
}

TEST(RetryOnConflictTest, RetriesConflictsUntilSuccess) {
  int calls = 0;
  const absl::Status s = RetryOnConflict(kDefaultRetry, [&] {
    ++calls;
    return calls < 3 ? Conflict() : absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(calls, 3);
}

TEST(RetryOnConflictTest, GivesUpAfterStepsWithTheLastConflict) {
  int calls = 0;
  const absl::Status s = RetryOnConflict(kDefaultRetry, [&] {
    ++calls;
    return Conflict();
  });
  EXPECT_TRUE(IsConflict(s));
  EXPECT_EQ(calls, kDefaultRetry.steps);
}

TEST(RetryOnConflictTest, OtherErrorsAreNotRetried) {
  int calls = 0;
  const absl::Status s = RetryOnConflict(kDefaultRetry, [&] {
    ++calls;
    return ApiErrorFromResponse(409, R"({"kind":"Status","reason":"AlreadyExists"})");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace galley::kube
