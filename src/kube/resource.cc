#include "kube/resource.h"

#include "common/strings.h"

namespace galley::kube {
namespace {

std::string_view MetaString(const boost::json::value& object, std::string_view key) {
  if (!object.is_object()) return {};
  const auto* meta = object.get_object().if_contains("metadata");
  if (meta == nullptr || !meta->is_object()) return {};
  const auto* v = meta->get_object().if_contains(key);
  if (v == nullptr || !v->is_string()) return {};
  return v->get_string();
}

void AddParam(std::string& q, std::string_view key, std::string_view value) {
  q.append(q.empty() ? "?" : "&");
  q.append(key);
  q.push_back('=');
  q.append(PercentEncode(value));
}

}  // namespace

std::string ApiVersion(const ResourceType& type) {
  return type.group.empty() ? type.version : StrCat(type.group, "/", type.version);
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u == '-' ||
        u == '.' || u == '_' || u == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

std::string PathFor(const ResourceType& type, std::string_view ns, std::string_view name,
                    std::string_view subresource) {
  std::string path = type.group.empty() ? StrCat("/api/", PercentEncode(type.version))
                                        : StrCat("/apis/", PercentEncode(type.group), "/",
                                                 PercentEncode(type.version));
  if (type.namespaced && !ns.empty()) path += StrCat("/namespaces/", PercentEncode(ns));
  path += StrCat("/", PercentEncode(type.plural));
  if (!name.empty()) {
    path += StrCat("/", PercentEncode(name));
    if (!subresource.empty()) path += StrCat("/", PercentEncode(subresource));
  }
  return path;
}

std::string QueryFor(const ListOptions& options, bool watch) {
  std::string q;
  if (!options.label_selector.empty()) AddParam(q, "labelSelector", options.label_selector);
  if (!options.field_selector.empty()) AddParam(q, "fieldSelector", options.field_selector);
  if (options.resource_version.has_value()) {
    AddParam(q, "resourceVersion", *options.resource_version);
  }
  if (!options.resource_version_match.empty()) {
    AddParam(q, "resourceVersionMatch", options.resource_version_match);
  }
  if (options.limit > 0) AddParam(q, "limit", StrCat(options.limit));
  if (!options.continue_token.empty()) AddParam(q, "continue", options.continue_token);
  if (options.timeout_seconds > 0) AddParam(q, "timeoutSeconds", StrCat(options.timeout_seconds));
  if (watch) {
    AddParam(q, "watch", "true");
    if (options.allow_watch_bookmarks) AddParam(q, "allowWatchBookmarks", "true");
  }
  return q;
}

std::string_view NameOf(const boost::json::value& object) { return MetaString(object, "name"); }
std::string_view NamespaceOf(const boost::json::value& object) {
  return MetaString(object, "namespace");
}
std::string_view ResourceVersionOf(const boost::json::value& object) {
  return MetaString(object, "resourceVersion");
}
std::string_view UidOf(const boost::json::value& object) { return MetaString(object, "uid"); }

std::string KeyOf(const boost::json::value& object) {
  const std::string_view ns = NamespaceOf(object);
  return ns.empty() ? std::string(NameOf(object)) : StrCat(ns, "/", NameOf(object));
}

}  // namespace galley::kube
