// Watch events: the newline-delimited JSON the API server streams for ?watch=true
// (metav1.WatchEvent: {"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": {...}}).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "boost/json/value.hpp"

namespace galley::kube {

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };

std::string_view WatchEventTypeName(WatchEventType type);

struct WatchEvent {
  WatchEventType type = WatchEventType::kAdded;
  boost::json::value object;  // the object; a metav1.Status for kError
};

// Parses one event line (surrounding whitespace allowed). InvalidArgument for bad JSON, a
// missing/unknown type or a non-object "object".
absl::StatusOr<WatchEvent> ParseWatchEvent(std::string_view line);

// For a kError event: the error it carries (see api_error.h; a 410 gives IsGone()).
absl::Status WatchErrorStatus(const WatchEvent& event);

// Splits a byte stream into lines. Feed() appends bytes; Next() pops the next complete line
// (without the '\n'), returning false when none is complete. Lines longer than `max_line`
// bytes make Feed() fail with ResourceExhausted.
class LineSplitter {
 public:
  explicit LineSplitter(size_t max_line = 64 << 20) : max_line_(max_line) {}
  absl::Status Feed(std::string_view bytes);
  bool Next(std::string* line);

 private:
  size_t max_line_;
  std::string buffer_;
  size_t start_ = 0;
};

}  // namespace galley::kube
