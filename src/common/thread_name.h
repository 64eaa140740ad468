// Names for the threads Galley starts, so that `top -H`, `ps -L`, perf and debuggers tell them
// apart (the HTTP I/O threads, gRPC completion threads, a model's workers, ...).
#pragma once

#include <string>
#include <string_view>

namespace galley {

// Names the calling thread `name` + `suffix`. Linux keeps at most 15 bytes of a thread's name:
// a longer one loses the end of `name`, so that the suffix (e.g. an index, "-3" or "/0") always
// shows. Best effort: a failure leaves the old name.
void SetThreadName(std::string_view name, std::string_view suffix = "");

// The calling thread's name ("" if it cannot be read).
std::string ThreadName();

}  // namespace galley
