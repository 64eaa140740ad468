#include "common/json.h"

#include <charconv>
#include <cmath>

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

}  // namespace galley
