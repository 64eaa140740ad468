#include "kube/watch_event.h"

#include "boost/json/parse.hpp"
#include "common/strings.h"
#include "kube/api_error.h"

namespace galley::kube {

std::string_view WatchEventTypeName(WatchEventType type) {
  switch (type) {
    case WatchEventType::kAdded:
      return "ADDED";
    case WatchEventType::kModified:
      return "MODIFIED";
    case WatchEventType::kDeleted:
      return "DELETED";
    case WatchEventType::kBookmark:
      return "BOOKMARK";
    case WatchEventType::kError:
      return "ERROR";
  }
  return "?";
}

absl::StatusOr<WatchEvent> ParseWatchEvent(std::string_view line) {
  line = StripWhitespace(line);
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(line, ec);
  if (ec) return absl::InvalidArgumentError(StrCat("watch event: bad JSON: ", ec.message()));
  if (!v.is_object()) return absl::InvalidArgumentError("watch event: not a JSON object");
  auto& o = v.get_object();
  const auto* type = o.if_contains("type");
  if (type == nullptr || !type->is_string()) {
    return absl::InvalidArgumentError("watch event: missing \"type\"");
  }
  WatchEvent event;
  const std::string_view t = type->get_string();
  if (t == "ADDED")
    event.type = WatchEventType::kAdded;
  else if (t == "MODIFIED")
    event.type = WatchEventType::kModified;
  else if (t == "DELETED")
    event.type = WatchEventType::kDeleted;
  else if (t == "BOOKMARK")
    event.type = WatchEventType::kBookmark;
  else if (t == "ERROR")
    event.type = WatchEventType::kError;
  else
    return absl::InvalidArgumentError(StrCat("watch event: unknown type \"", t, "\""));
  auto* object = o.if_contains("object");
  if (object == nullptr || !object->is_object()) {
    return absl::InvalidArgumentError("watch event: \"object\" is missing or not an object");
  }
  event.object = std::move(*object);
  return event;
}

absl::Status WatchErrorStatus(const WatchEvent& event) {
  if (event.type != WatchEventType::kError) return absl::OkStatus();
  return ApiErrorFromStatusObject(event.object);
}

absl::Status LineSplitter::Feed(std::string_view bytes) {
  if (start_ > 0 && start_ * 2 >= buffer_.size()) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  buffer_.append(bytes);
  if (buffer_.size() - start_ > max_line_ && buffer_.find('\n', start_) == std::string::npos) {
    return absl::ResourceExhaustedError(
        StrCat("watch event line longer than ", max_line_, " bytes"));
  }
  return absl::OkStatus();
}

bool LineSplitter::Next(std::string* line) {
  const size_t pos = buffer_.find('\n', start_);
  if (pos == std::string::npos) return false;
  line->assign(buffer_, start_, pos - start_);
  start_ = pos + 1;
  return true;
}

}  // namespace galley::kube
