#include "kube/yaml_json.h"

#include <charconv>
#include <regex>
#include <string>

#include "boost/json/array.hpp"
#include "boost/json/object.hpp"
#include "common/strings.h"
#include "yaml-cpp/yaml.h"

namespace galley::kube {
namespace {

namespace json = boost::json;

json::value Scalar(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return json::string(s);  // quoted: always a string
  // YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
  static const std::regex kNull("^(null|Null|NULL|~|)$");
  static const std::regex kTrue("^(true|True|TRUE)$");
  static const std::regex kFalse("^(false|False|FALSE)$");
  static const std::regex kInt("^[-+]?[0-9]+$");
  static const std::regex kFloat(R"(^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$)");
  if (std::regex_match(s, kNull)) return nullptr;
  if (std::regex_match(s, kTrue)) return true;
  if (std::regex_match(s, kFalse)) return false;
  if (std::regex_match(s, kInt)) {
    int64_t v = 0;
    const char* begin = s.data() + (s[0] == '+' ? 1 : 0);
    auto [end, ec] = std::from_chars(begin, s.data() + s.size(), v);
    if (ec == std::errc() && end == s.data() + s.size()) return v;
  }
  if (std::regex_match(s, kFloat)) return std::stod(s);
  return json::string(s);
}

json::value Convert(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json::object o;
      for (const auto& kv : node) o[kv.first.as<std::string>()] = Convert(kv.second);
      return o;
    }
    case YAML::NodeType::Sequence: {
      json::array a;
      for (const auto& item : node) a.push_back(Convert(item));
      return a;
    }
    case YAML::NodeType::Scalar:
      return Scalar(node);
    default:
      return nullptr;
  }
}

}  // namespace

absl::StatusOr<json::value> YamlToJson(std::string_view yaml) {
  try {
    YAML::Node node = YAML::Load(std::string(yaml));
    if (!node.IsDefined() || node.IsNull())
      return absl::InvalidArgumentError("empty YAML document");
    return Convert(node);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        StrCat("YAML line ", e.mark.line + 1, ", column ", e.mark.column + 1, ": ", e.msg));
  }
}

}  // namespace galley::kube
