#include "common/json.h"

#include "boost/json/parse.hpp"
#include "gtest/gtest.h"

namespace galley {
namespace {

TEST(JsonSerializeTest, NumbersAreShortestPlainForm) {
  boost::json::object o{
      {"a", 0.8316}, {"b", 60.0}, {"c", 1e-7}, {"d", -3}, {"e", 18446744073709551615ull}};
  EXPECT_EQ(JsonSerialize(o), R"({"a":0.8316,"b":60,"c":1e-07,"d":-3,"e":18446744073709551615})");
}

TEST(JsonSerializeTest, EscapesAndRoundTrips) {
  boost::json::value v =
      boost::json::object{{"s", "quote\" backslash\\ nl\n tab\t ctl\x01 caf\xc3\xa9"},
                          {"arr", boost::json::array{true, false, nullptr, 1.5}},
                          {"nan", std::nan("")}};
  const std::string text = JsonSerialize(v);
  EXPECT_NE(text.find(R"(\u0001)"), std::string::npos);
  EXPECT_NE(text.find(R"("nan":null)"), std::string::npos);
  boost::json::value back = boost::json::parse(text);
  EXPECT_EQ(back.at("s"), v.at("s"));
  EXPECT_EQ(back.at("arr"), v.at("arr"));
}

TEST(FindDuplicateKeyTest, FindsARepeatInAnyObjectOnly) {
  EXPECT_EQ(FindDuplicateKey(R"({"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]})"), std::nullopt);
  EXPECT_EQ(FindDuplicateKey(R"({"text":"x","text":"y"})"), "text");
  EXPECT_EQ(FindDuplicateKey(R"({"inputs":[{"name":"t","shape":[1],"name":"u"}]})"), "name");
  // Escapes spell the same name.
  EXPECT_EQ(FindDuplicateKey(R"({"id":1,"\u0069d":2})"), "id");
  EXPECT_EQ(FindDuplicateKey(R"([1,2,"a","a"])"), std::nullopt);
  // Many keys in one object (past the linear search), unique and then one repeated.
  std::string many = "{";
  for (int i = 0; i < 20000; ++i) many += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":0";
  EXPECT_EQ(FindDuplicateKey(many + "}"), std::nullopt);
  EXPECT_EQ(FindDuplicateKey(many + ",\"k7\":1}"), "k7");
  // Deeper than Boost's default limit of 32, as the request parser allows.
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += "{\"a\":";
  deep += "{\"x\":1,\"x\":2}";
  for (int i = 0; i < 40; ++i) deep += "}";
  EXPECT_EQ(FindDuplicateKey(deep), "x");
}

}  // namespace
}  // namespace galley
