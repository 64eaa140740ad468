#include "kube/resource.h"

#include "boost/json/parse.hpp"
#include "gtest/gtest.h"
#include "kube/client.h"
#include "kube/transport.h"

namespace galley::kube {
namespace {

TEST(PathForTest, CoreGroupNamedGroupsAndSubresources) {
  EXPECT_EQ(PathFor(resources::kConfigMaps, "ns", "cm"), "/api/v1/namespaces/ns/configmaps/cm");
  EXPECT_EQ(PathFor(resources::kConfigMaps, "ns"), "/api/v1/namespaces/ns/configmaps");
  EXPECT_EQ(PathFor(resources::kConfigMaps, ""), "/api/v1/configmaps");
  EXPECT_EQ(PathFor(resources::kNodes, "ignored", "n1"), "/api/v1/nodes/n1");
  EXPECT_EQ(PathFor(resources::kDeployments, "d", "web", "scale"),
            "/apis/apps/v1/namespaces/d/deployments/web/scale");
  EXPECT_EQ(PathFor(resources::kPods, "d", "p", "binding"), "/api/v1/namespaces/d/pods/p/binding");
  EXPECT_EQ(PathFor(resources::kLeases, "kube-system", "galley"),
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/galley");
  // Segments are percent-encoded, so a hostile name cannot change the path.
  EXPECT_EQ(PathFor(resources::kConfigMaps, "a/b", "x?y z"),
            "/api/v1/namespaces/a%2Fb/configmaps/x%3Fy%20z");
  EXPECT_EQ(ApiVersion(resources::kDeployments), "apps/v1");
  EXPECT_EQ(ApiVersion(resources::kPods), "v1");
}

TEST(QueryForTest, OnlySetFieldsAreSent) {
  EXPECT_EQ(QueryFor({}, false), "");
  EXPECT_EQ(QueryFor({}, true), "?watch=true");
  ListOptions o;
  o.label_selector = "app=web,tier in (a,b)";
  o.field_selector = "spec.nodeName=";
  o.resource_version = "0";
  o.limit = 50;
  o.continue_token = "abc=";
  o.timeout_seconds = 300;
  o.allow_watch_bookmarks = true;
  EXPECT_EQ(QueryFor(o, false),
            "?labelSelector=app%3Dweb%2Ctier%20in%20%28a%2Cb%29&fieldSelector=spec.nodeName%3D"
            "&resourceVersion=0&limit=50&continue=abc%3D&timeoutSeconds=300");
  ListOptions from_now;
  from_now.resource_version = "";
  from_now.allow_watch_bookmarks = true;
  EXPECT_EQ(QueryFor(from_now, true), "?resourceVersion=&watch=true&allowWatchBookmarks=true");
}

TEST(ObjectAccessorsTest, KeysAndMetadata) {
  const auto pod = boost::json::parse(
      R"({"metadata":{"name":"p","namespace":"ns","resourceVersion":"7","uid":"u-1"}})");
  EXPECT_EQ(KeyOf(pod), "ns/p");
  EXPECT_EQ(ResourceVersionOf(pod), "7");
  EXPECT_EQ(UidOf(pod), "u-1");
  EXPECT_EQ(KeyOf(boost::json::parse(R"({"metadata":{"name":"node-1"}})")), "node-1");
  EXPECT_EQ(NameOf(boost::json::parse("[]")), "");
  EXPECT_EQ(NameOf(boost::json::parse(R"({"metadata":{"name":5}})")), "");
}

TEST(ServerUrlTest, ParsesHostsPortsAndPrefixes) {
  auto a = internal::ParseServerUrl("https://127.0.0.1:6443");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, "6443");
  EXPECT_TRUE(a->host_is_ip);
  EXPECT_EQ(a->HostHeader(), "127.0.0.1:6443");
  auto b = internal::ParseServerUrl("https://kube.example/prefix/");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->port, "443");
  EXPECT_EQ(b->path_prefix, "/prefix");
  EXPECT_FALSE(b->host_is_ip);
  EXPECT_EQ(b->HostHeader(), "kube.example");
  auto c = internal::ParseServerUrl("https://[::1]:8443");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  EXPECT_TRUE(c->host_is_ip);
  EXPECT_EQ(c->HostHeader(), "[::1]:8443");
  for (const char* bad : {"http://127.0.0.1:8080", "https://", "https://h:port", "https://[::1",
                          "https://h:123456"}) {
    EXPECT_EQ(internal::ParseServerUrl(bad).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(TimeTest, FormatsAndParsesMetaTimes) {
  const auto t = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000)) +
                 std::chrono::microseconds(123456);
  EXPECT_EQ(FormatMicroTime(t), "2023-11-14T22:13:20.123456Z");
  EXPECT_EQ(FormatTime(t), "2023-11-14T22:13:20Z");
  auto back = ParseTime("2023-11-14T22:13:20.123456Z");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, t);
  auto offset = ParseTime("2023-11-15T00:13:20+02:00");
  ASSERT_TRUE(offset.ok());
  EXPECT_EQ(*offset, std::chrono::system_clock::time_point(std::chrono::seconds(1700000000)));
  for (const char* bad :
       {"", "2023-11-14", "2023-11-14T22:13:20", "2023-11-14T22:13:20.Z", "2023-11-14 22:13:20Z"}) {
    EXPECT_FALSE(ParseTime(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace galley::kube
