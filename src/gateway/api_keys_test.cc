#include "gateway/api_keys.h"

#include <openssl/sha.h>

#include "gtest/gtest.h"

namespace galley::gateway {
namespace {

using std::chrono::milliseconds;

std::string Sha256Hex(std::string_view s) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : d) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

http::Request WithBearer(std::string_view key) {
  http::Request r{http::Verb::post, "/v2/models/m/infer", 11};
  r.set(boost::beast::http::field::authorization, std::string("Bearer ") + std::string(key));
  return r;
}

TEST(ApiKeysTest, ParsesHashesAndSettingsAndRejectsBadLines) {
  auto keys = ApiKeys::Parse(
      "# team keys\n"
      "alpha " +
      std::string(64, 'a') +
      " rate=5 burst=10 models=m,n  # trailing comment\n"
      "\n"
      "beta\t" +
      std::string(64, 'B') + "\n");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ((*keys)->size(), 2u);
  for (const char* bad :
       {"alpha", "alpha abc",
        "alpha zz00000000000000000000000000000000000000000000000000000000000000",
        "a aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa rate=-1",
        "a aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa color=red",
        "a aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa rate=1 burst=0.5",
        ""}) {
    auto r = ApiKeys::Parse(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
  auto twice = ApiKeys::Parse("a " + std::string(64, 'a') + "\na " + std::string(64, 'b') + "\n");
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(std::string(twice.status().message()).find("line 2"), std::string::npos);
}

TEST(ApiKeysTest, DecidesByKeyModelAndRate) {
  auto keys = ApiKeys::Parse("alpha " + Sha256Hex("alpha-key") + " rate=2 burst=2 models=m\n" +
                             "beta " + Sha256Hex("beta-key") + "\n");
  ASSERT_TRUE(keys.ok()) << keys.status();
  ApiKeys& k = **keys;
  const TimePoint t0{};
  http::Request none{http::Verb::get, "/v2", 11};
  EXPECT_EQ(k.Check(none, "", t0).outcome, AuthOutcome::kMissing);
  EXPECT_EQ(k.Check(WithBearer("wrong"), "m", t0).outcome, AuthOutcome::kInvalid);
  EXPECT_EQ(k.Check(WithBearer("alpha-key"), "other", t0).outcome, AuthOutcome::kForbidden);
  http::Request x_api{http::Verb::post, "/", 11};
  x_api.set("X-API-Key", "beta-key");
  EXPECT_EQ(k.Check(x_api, "anything", t0).outcome, AuthOutcome::kAllowed);
  // alpha: a burst of 2, then 2 per second.
  EXPECT_EQ(k.Check(WithBearer("alpha-key"), "m", t0).outcome, AuthOutcome::kAllowed);
  EXPECT_EQ(k.Check(WithBearer("alpha-key"), "m", t0).outcome, AuthOutcome::kAllowed);
  auto limited = k.Check(WithBearer("alpha-key"), "m", t0);
  EXPECT_EQ(limited.outcome, AuthOutcome::kRateLimited);
  EXPECT_NEAR(limited.retry_after_s, 0.5, 1e-9);
  EXPECT_EQ(k.Check(WithBearer("alpha-key"), "m", t0 + milliseconds(500)).outcome,
            AuthOutcome::kAllowed);
  // beta has no limit.
  for (int i = 0; i < 100; ++i) EXPECT_EQ(k.Check(x_api, "m", t0).outcome, AuthOutcome::kAllowed);
}

TEST(ApiKeysTest, ErrorAnswersSayNothingAboutKeys) {
  AuthDecision d;
  d.outcome = AuthOutcome::kInvalid;
  http::Response r = AuthErrorResponse(d);
  EXPECT_EQ(r.result(), http::Status::unauthorized);
  EXPECT_EQ(r[boost::beast::http::field::www_authenticate], "Bearer");
  EXPECT_EQ(r.body(), R"({"error":"authentication required"})");
  d.outcome = AuthOutcome::kRateLimited;
  d.retry_after_s = 0.2;
  r = AuthErrorResponse(d);
  EXPECT_EQ(r.result(), http::Status::too_many_requests);
  EXPECT_EQ(r[boost::beast::http::field::retry_after], "1");
}

}  // namespace
}  // namespace galley::gateway
