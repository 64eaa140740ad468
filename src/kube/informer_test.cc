// The informer's cache and handler logic, driven directly (no server): watch events in order,
// re-list differences, and the 410 paths that force a re-list. The same code runs against a real
// API server in kube_client_test.
#include "kube/informer.h"

#include "boost/json/parse.hpp"
#include "gtest/gtest.h"

namespace galley::kube {
namespace {

namespace json = boost::json;

json::value Cm(const std::string& name, const std::string& rv) {
  return json::parse(R"({"metadata":{"namespace":"ns","name":")" + name +
                     R"(","resourceVersion":")" + rv + R"("}})");
}

WatchEvent Event(WatchEventType type, json::value obj) { return WatchEvent{type, std::move(obj)}; }

class InformerLogicTest : public ::testing::Test {
 protected:
  InformerLogicTest() : informer_(nullptr, resources::kConfigMaps) {
    informer_.AddEventHandlers(
        {.on_add = [this](const json::value& o) { log_.push_back("add " + KeyOf(o)); },
         .on_update =
             [this](const json::value& a, const json::value& b) {
               log_.push_back("update " + KeyOf(b) + " " + std::string(ResourceVersionOf(a)) +
                              "->" + std::string(ResourceVersionOf(b)));
             },
         .on_delete = [this](const json::value& o) { log_.push_back("delete " + KeyOf(o)); }});
  }
  Informer informer_;  // never started; its client is never used
  std::vector<std::string> log_;
};

TEST_F(InformerLogicTest, WatchEventsUpdateCacheAndCallHandlersInOrder) {
  EXPECT_FALSE(informer_.HasSynced());
  informer_.ReplaceForTest({Cm("a", "1")});
  EXPECT_TRUE(informer_.HasSynced());
  ASSERT_TRUE(informer_.ApplyForTest(Event(WatchEventType::kAdded, Cm("b", "2"))).ok());
  ASSERT_TRUE(informer_.ApplyForTest(Event(WatchEventType::kModified, Cm("a", "3"))).ok());
  ASSERT_TRUE(informer_.ApplyForTest(Event(WatchEventType::kDeleted, Cm("b", "4"))).ok());
  ASSERT_TRUE(informer_
                  .ApplyForTest(Event(WatchEventType::kBookmark,
                                      json::parse(R"({"metadata":{"resourceVersion":"9"}})")))
                  .ok());
  EXPECT_EQ(log_,
            (std::vector<std::string>{"add ns/a", "add ns/b", "update ns/a 1->3", "delete ns/b"}));
  EXPECT_EQ(informer_.Keys(), (std::vector<std::string>{"ns/a"}));
  EXPECT_EQ(ResourceVersionOf(*informer_.Get("ns/a")), "3");
  EXPECT_FALSE(informer_.Get("ns/b").has_value());
  EXPECT_EQ(informer_.stats().bookmarks, 1);
  EXPECT_EQ(informer_.stats().last_resource_version, "9");
}

TEST_F(InformerLogicTest, ErrorEvent410AsksForARelist) {
  informer_.ReplaceForTest({});
  const absl::Status s = informer_.ApplyForTest(Event(
      WatchEventType::kError,
      json::parse(R"json({"kind":"Status","status":"Failure","reason":"Expired","code":410,)json"
                  R"json("message":"too old resource version: 1 (50)"})json")));
  EXPECT_TRUE(IsGone(s)) << s;
  EXPECT_EQ(informer_.stats().gone, 1);
  const absl::Status other = informer_.ApplyForTest(Event(
      WatchEventType::kError,
      json::parse(R"({"kind":"Status","status":"Failure","reason":"InternalError","code":500})")));
  EXPECT_FALSE(other.ok());
  EXPECT_FALSE(IsGone(other));
}

TEST_F(InformerLogicTest, RelistReportsWhatTheWatchMissed) {
  informer_.ReplaceForTest({Cm("a", "1"), Cm("b", "1"), Cm("c", "1")});
  log_.clear();
  // While disconnected: a deleted, b changed, c unchanged, d created.
  informer_.ReplaceForTest({Cm("b", "5"), Cm("c", "1"), Cm("d", "6")});
  EXPECT_EQ(log_, (std::vector<std::string>{"delete ns/a", "add ns/d", "update ns/b 1->5"}));
  EXPECT_EQ(informer_.Keys(), (std::vector<std::string>{"ns/b", "ns/c", "ns/d"}));
}

}  // namespace
}  // namespace galley::kube
