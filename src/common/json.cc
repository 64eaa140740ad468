#include "common/json.h"

#include <charconv>
#include <cmath>
#include <vector>

#include "boost/json/basic_parser_impl.hpp"

namespace galley {

void JsonAppendString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

void JsonAppendDouble(std::string& out, double d) {
  if (!std::isfinite(d)) {  // JSON has no NaN or infinity
    out += "null";
    return;
  }
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), d);
  out.append(buf, r.ptr);
}

void JsonAppend(std::string& out, const boost::json::value& v) {
  char buf[64];
  switch (v.kind()) {
    case boost::json::kind::null: out += "null"; return;
    case boost::json::kind::bool_: out += v.get_bool() ? "true" : "false"; return;
    case boost::json::kind::int64: {
      auto r = std::to_chars(buf, buf + sizeof(buf), v.get_int64());
      out.append(buf, r.ptr);
      return;
    }
    case boost::json::kind::uint64: {
      auto r = std::to_chars(buf, buf + sizeof(buf), v.get_uint64());
      out.append(buf, r.ptr);
      return;
    }
    case boost::json::kind::double_: JsonAppendDouble(out, v.get_double()); return;
    case boost::json::kind::string: {
      const auto& s = v.get_string();
      JsonAppendString(out, std::string_view(s.data(), s.size()));
      return;
    }
    case boost::json::kind::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out.push_back(',');
        first = false;
        JsonAppend(out, e);
      }
      out.push_back(']');
      return;
    }
    case boost::json::kind::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out.push_back(',');
        first = false;
        JsonAppendString(out, std::string_view(kv.key().data(), kv.key().size()));
        out.push_back(':');
        JsonAppend(out, kv.value());
      }
      out.push_back('}');
      return;
    }
  }
}

std::string JsonSerialize(const boost::json::value& value) {
  std::string out;
  out.reserve(128);
  JsonAppend(out, value);
  return out;
}

namespace {

// A SAX pass that keeps, per open object, the keys seen so far (objects in requests are small,
// so a linear search is cheapest) and stops at the first repeat.
class DuplicateKeyHandler {
 public:
  static constexpr std::size_t max_array_size = -1;
  static constexpr std::size_t max_object_size = -1;
  static constexpr std::size_t max_string_size = -1;
  static constexpr std::size_t max_key_size = -1;

  std::optional<std::string> duplicate;

  bool on_document_begin(boost::json::error_code&) { return true; }
  bool on_document_end(boost::json::error_code&) { return true; }
  bool on_array_begin(boost::json::error_code&) { return true; }
  bool on_array_end(std::size_t, boost::json::error_code&) { return true; }
  bool on_object_begin(boost::json::error_code&) {
    if (depth_ == objects_.size()) objects_.emplace_back();
    objects_[depth_++].clear();
    return true;
  }
  bool on_object_end(std::size_t, boost::json::error_code&) {
    --depth_;
    return true;
  }
  bool on_string_part(boost::json::string_view, std::size_t, boost::json::error_code&) { return true; }
  bool on_string(boost::json::string_view, std::size_t, boost::json::error_code&) { return true; }
  bool on_key_part(boost::json::string_view s, std::size_t, boost::json::error_code&) {
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(boost::json::string_view s, std::size_t, boost::json::error_code& ec) {
    key_.append(s.data(), s.size());
    std::vector<std::string>& keys = objects_[depth_ - 1];
    for (const std::string& k : keys) {
      if (k == key_) {
        duplicate = key_;
        ec = boost::json::error::syntax;  // stops the pass
        return false;
      }
    }
    keys.push_back(std::move(key_));
    key_.clear();
    return true;
  }
  bool on_number_part(boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_int64(int64_t, boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_uint64(uint64_t, boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_double(double, boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_bool(bool, boost::json::error_code&) { return true; }
  bool on_null(boost::json::error_code&) { return true; }
  bool on_comment_part(boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_comment(boost::json::string_view, boost::json::error_code&) { return true; }

 private:
  std::vector<std::vector<std::string>> objects_;  // reused per depth
  size_t depth_ = 0;
  std::string key_;
};

}  // namespace

std::optional<std::string> FindDuplicateKey(std::string_view text) {
  boost::json::basic_parser<DuplicateKeyHandler> parser(boost::json::parse_options{});
  boost::json::error_code ec;
  parser.write_some(false, text.data(), text.size(), ec);
  return parser.handler().duplicate;
}

}  // namespace galley
