#include "local/child_output.h"

#include "boost/json/parse.hpp"
#include "common/json.h"

namespace galley::local {

ChildLine ParseChildLine(std::string_view line, std::string_view replica_id) {
  ChildLine out;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(boost::json::string_view(line.data(), line.size()), ec);
  if (ec || !v.is_object()) return out;
  boost::json::object& obj = v.as_object();
  out.is_json = true;
  if (const auto* e = obj.if_contains("event"); e != nullptr && e->is_string()) {
    out.event = std::string(e->as_string());
  }
  if (const auto* l = obj.if_contains("level"); l != nullptr && l->is_string()) {
    const boost::json::string& s = l->as_string();
    if (!log::ParseLevel(std::string_view(s.data(), s.size()), &out.level)) {
      out.level = log::Level::kInfo;
    }
  }
  if (out.event == "listening") {
    if (const auto* p = obj.if_contains("port"); p != nullptr && p->is_int64()) {
      const int64_t port = p->as_int64();
      if (port > 0 && port <= 65535) out.port = static_cast<uint16_t>(port);
    }
  }
  // Rebuild with "replica" after the leading ts/level/event fields, so it reads naturally.
  boost::json::object fwd;
  fwd.reserve(obj.size() + 1);
  bool placed = false;
  for (const auto& kv : obj) {
    if (kv.key() == "replica") continue;  // ours wins
    fwd[kv.key()] = kv.value();
    if (kv.key() == "event") {
      fwd["replica"] = boost::json::string_view(replica_id.data(), replica_id.size());
      placed = true;
    }
  }
  if (!placed) fwd["replica"] = boost::json::string_view(replica_id.data(), replica_id.size());
  out.forwarded = JsonSerialize(fwd);
  out.forwarded.push_back('\n');
  return out;
}

}  // namespace galley::local
