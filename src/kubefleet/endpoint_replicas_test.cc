#include "kubefleet/endpoint_replicas.h"

#include "boost/json/parse.hpp"
#include "gtest/gtest.h"

namespace galley::kubefleet {
namespace {

// A slice as the EndpointSlice controller writes one for a model's Service.
boost::json::value Slice(
    const char* endpoints,
    const char* ports = R"([{"name":"http","port":8080},{"name":"grpc","port":8081}])",
    const char* labels =
        R"({"galley.dev/model":"sentiment","kubernetes.io/service-name":"sentiment"})") {
  return boost::json::parse(
      std::string(R"({"metadata":{"name":"sentiment-abc","namespace":"ml","labels":)") + labels +
      R"(},"addressType":"IPv4","ports":)" + ports + R"(,"endpoints":)" + endpoints + "}");
}

TEST(ReplicasOfSliceTest, EndpointsFollowTheApisConditions) {
  auto r = ReplicasOfSlice(Slice(R"([
      {"addresses":["10.0.0.1"],"conditions":{"ready":true},"targetRef":{"kind":"Pod","name":"p1"}},
      {"addresses":["10.0.0.2"],"targetRef":{"kind":"Pod","name":"p2"}},
      {"addresses":["10.0.0.3"],"conditions":{"ready":false}},
      {"addresses":["10.0.0.4"],"conditions":{"ready":true,"serving":true,"terminating":true},
       "targetRef":{"kind":"Pod","name":"p4"}},
      {"addresses":[]}])"));
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].id, "ml/p1");
  EXPECT_EQ(r[0].host, "10.0.0.1");
  EXPECT_EQ(r[0].port, 8080);
  EXPECT_TRUE(r[0].ready);
  EXPECT_EQ(r[0].models, std::vector<std::string>{"sentiment"});
  EXPECT_TRUE(r[1].ready);  // ready unset: ready, as the API defines it
  EXPECT_EQ(r[2].id, "ml/10.0.0.3:8080");
  EXPECT_FALSE(r[2].ready);
  EXPECT_FALSE(r[3].ready);  // terminating: no new requests
}

TEST(ReplicasOfSliceTest, SlicesWithoutAModelOrAnHttpPortGiveNoReplica) {
  const char* one = R"([{"addresses":["10.0.0.1"]}])";
  EXPECT_TRUE(ReplicasOfSlice(Slice(one, R"([{"name":"grpc","port":8081}])")).empty());
  EXPECT_TRUE(ReplicasOfSlice(Slice(one, R"([{"name":"http","port":0}])")).empty());
  EXPECT_TRUE(
      ReplicasOfSlice(Slice(one, R"([{"name":"http","port":8080}])", R"({"x":"y"})")).empty());
  auto fqdn =
      boost::json::parse(R"({"metadata":{"labels":{"galley.dev/model":"m"}},"addressType":"FQDN",
      "ports":[{"name":"http","port":80}],"endpoints":[{"addresses":["a.example"]}]})");
  EXPECT_TRUE(ReplicasOfSlice(fqdn).empty());
}

}  // namespace
}  // namespace galley::kubefleet
