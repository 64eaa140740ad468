#include "common/json.h"

#include <charconv>
#include <cmath>
#include <unordered_set>
#include <vector>

#include "boost/json/basic_parser_impl.hpp"

namespace galley {

void JsonAppendString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
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
    case boost::json::kind::null:
      out += "null";
      return;
    case boost::json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      return;
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
    case boost::json::kind::double_:
      JsonAppendDouble(out, v.get_double());
      return;
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
    objects_[depth_].keys.clear();
    objects_[depth_].many.clear();
    ++depth_;
    return true;
  }
  bool on_object_end(std::size_t, boost::json::error_code&) {
    --depth_;
    return true;
  }
  bool on_string_part(boost::json::string_view, std::size_t, boost::json::error_code&) {
    return true;
  }
  bool on_string(boost::json::string_view, std::size_t, boost::json::error_code&) { return true; }
  bool on_key_part(boost::json::string_view s, std::size_t, boost::json::error_code&) {
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(boost::json::string_view s, std::size_t, boost::json::error_code& ec) {
    key_.append(s.data(), s.size());
    Object& o = objects_[depth_ - 1];
    bool seen = false;
    if (o.many.empty()) {
      for (const std::string& k : o.keys) seen = seen || k == key_;
      if (!seen && o.keys.size() >= kLinear) o.many.insert(o.keys.begin(), o.keys.end());
    } else {
      seen = o.many.count(key_) > 0;
    }
    if (seen) {
      duplicate = key_;
      ec = boost::json::error::syntax;  // stops the pass
      return false;
    }
    if (o.many.empty()) {
      o.keys.push_back(std::move(key_));
    } else {
      o.many.insert(std::move(key_));
    }
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
  // Keys seen per open object: a linear search while there are few (requests' objects are
  // small), a hash set beyond, so that a body of many keys costs linear time.
  static constexpr size_t kLinear = 16;
  struct Object {
    std::vector<std::string> keys;
    std::unordered_set<std::string> many;
  };
  std::vector<Object> objects_;  // reused per depth
  size_t depth_ = 0;
  std::string key_;
};

}  // namespace

std::optional<std::string> FindDuplicateKey(std::string_view text, size_t max_depth) {
  boost::json::parse_options opts;
  opts.max_depth = max_depth;
  boost::json::basic_parser<DuplicateKeyHandler> parser(opts);
  boost::json::error_code ec;
  parser.write_some(false, text.data(), text.size(), ec);
  return parser.handler().duplicate;
}

}  // namespace galley
