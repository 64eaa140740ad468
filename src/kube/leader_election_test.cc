#include "kube/leader_election.h"

#include "boost/json/parse.hpp"
#include "gtest/gtest.h"

namespace galley::kube {
namespace {

using std::chrono::seconds;

const Duration kLease = seconds(15);

TEST(NextLeaseRecordTest, CreatesWhenAbsent) {
  const TimePoint now{seconds(100)};
  auto r = NextLeaseRecord(std::nullopt, now, now, "T1", "me", kLease);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->holder_identity, "me");
  EXPECT_EQ(r->lease_duration_seconds, 15);
  EXPECT_EQ(r->acquire_time, "T1");
  EXPECT_EQ(r->renew_time, "T1");
  EXPECT_EQ(r->lease_transitions, 0);
}

TEST(NextLeaseRecordTest, OtherHolderBlocksUntilLeaseDurationAfterObservation) {
  const LeaseRecord other{"them", 15, "T0", "T0", 4};
  const TimePoint observed{seconds(100)};
  // Still valid 14.9 s after this candidate saw the record change, whatever renewTime says.
  EXPECT_FALSE(NextLeaseRecord(other, observed, observed + seconds(14), "T2", "me", kLease));
  // Expired: take over, new acquireTime, one more transition.
  auto r = NextLeaseRecord(other, observed, observed + seconds(15), "T2", "me", kLease);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->holder_identity, "me");
  EXPECT_EQ(r->acquire_time, "T2");
  EXPECT_EQ(r->renew_time, "T2");
  EXPECT_EQ(r->lease_transitions, 5);
}

TEST(NextLeaseRecordTest, HolderRenewsKeepingAcquireTimeAndTransitions) {
  const LeaseRecord mine{"me", 15, "T0", "T1", 4};
  const TimePoint observed{seconds(100)};
  auto r = NextLeaseRecord(mine, observed, observed + seconds(1), "T3", "me", kLease);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->acquire_time, "T0");
  EXPECT_EQ(r->renew_time, "T3");
  EXPECT_EQ(r->lease_transitions, 4);
}

TEST(NextLeaseRecordTest, ReleasedLeaseIsFreeAtOnce) {
  const LeaseRecord released{"", 1, "T0", "T0", 2};
  const TimePoint observed{seconds(100)};
  auto r = NextLeaseRecord(released, observed, observed, "T4", "me", kLease);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->holder_identity, "me");
  EXPECT_EQ(r->lease_transitions, 3);
}

TEST(LeaseRecordTest, RoundTripsThroughALease) {
  auto lease = boost::json::parse(
      R"({"metadata":{"name":"l","resourceVersion":"9"},"spec":{"holderIdentity":"a",)"
      R"("leaseDurationSeconds":15,"acquireTime":"2024-01-01T00:00:00.000000Z",)"
      R"("renewTime":"2024-01-01T00:00:05.000000Z","leaseTransitions":3}})");
  const LeaseRecord r = LeaseRecordFromLease(lease);
  EXPECT_EQ(
      r, (LeaseRecord{"a", 15, "2024-01-01T00:00:00.000000Z", "2024-01-01T00:00:05.000000Z", 3}));
  LeaseRecord changed = r;
  changed.holder_identity = "b";
  changed.lease_transitions = 4;
  StoreLeaseRecord(changed, lease);
  EXPECT_EQ(LeaseRecordFromLease(lease), changed);
  EXPECT_EQ(lease.at("metadata").at("resourceVersion"), "9");
}

TEST(LeaderElectionConfigTest, RejectsDurationsOutOfOrder) {
  LeaderElectionConfig c;
  c.lease_name = "l";
  c.identity = "me";
  EXPECT_TRUE(ValidateLeaderElectionConfig(c).ok());
  c.renew_deadline = seconds(20);  // > lease_duration
  EXPECT_EQ(ValidateLeaderElectionConfig(c).code(), absl::StatusCode::kInvalidArgument);
  c.renew_deadline = seconds(2);  // <= 1.2 * retry_period
  EXPECT_EQ(ValidateLeaderElectionConfig(c).code(), absl::StatusCode::kInvalidArgument);
  c.renew_deadline = seconds(10);
  c.identity = "";
  EXPECT_EQ(ValidateLeaderElectionConfig(c).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LeaderElector::Create(nullptr, LeaderElectionConfig{}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace galley::kube
