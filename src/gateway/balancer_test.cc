#include "gateway/balancer.h"

#include <map>

#include "gtest/gtest.h"

namespace galley::gateway {
namespace {

TEST(PickTwoChoicesTest, NoneOneAndIneligible) {
  std::mt19937_64 rng(1);
  EXPECT_FALSE(PickTwoChoices({}, rng).has_value());
  EXPECT_FALSE(PickTwoChoices({{0, false}, {0, false}}, rng).has_value());
  EXPECT_EQ(PickTwoChoices({{5, false}, {9, true}, {0, false}}, rng), 1u);
}

TEST(PickTwoChoicesTest, TwoCandidatesAlwaysPicksTheLessLoaded) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(PickTwoChoices({{3, true}, {1, true}}, rng), 1u);
}

TEST(PickTwoChoicesTest, NeverPicksTheMostLoadedOfManyAndSpreadsTheRest) {
  std::mt19937_64 rng(42);
  std::vector<Candidate> c = {{0, true}, {0, true}, {0, true}, {100, true}};
  std::map<size_t, int> picks;
  for (int i = 0; i < 3000; ++i) ++picks[*PickTwoChoices(c, rng)];
  EXPECT_EQ(picks.count(3), 0u);  // the busiest loses every comparison it is in
  for (size_t i = 0; i < 3; ++i) EXPECT_GT(picks[i], 700) << i;
}

TEST(PickTwoChoicesTest, DeterministicPerSeed) {
  std::vector<Candidate> c = {{1, true}, {1, true}, {1, true}, {1, true}};
  std::mt19937_64 a(9), b(9);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(PickTwoChoices(c, a), PickTwoChoices(c, b));
}

}  // namespace
}  // namespace galley::gateway
