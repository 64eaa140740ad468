// The Upstream seam: sends one HTTP request to one replica and reports what happened. The
// production implementation is HttpUpstream (pooled keep-alive connections over Beast); tests
// may inject faults behind the same interface.
#pragma once

#include <functional>
#include <string>

#include "common/clock.h"
#include "http/message.h"

namespace galley::upstream {

struct UpstreamResult {
  // True when no complete response arrived: connect failure, reset, timeout, malformed reply.
  bool transport_error = false;
  bool timed_out = false;  // the attempt's deadline passed
  // True if the request certainly never reached the replica's handler (connect failed, or a
  // reused connection was found closed before any byte of a response), so a retry is safe even
  // for requests that are not idempotent.
  bool not_sent = false;
  std::string error;        // for logs, when transport_error
  http::Response response;  // valid when !transport_error
  Duration latency{};
};

using UpstreamCallback = std::function<void(UpstreamResult&&)>;

class Upstream {
 public:
  virtual ~Upstream() = default;
  // Sends `request` to host:port, completing by `deadline` (a transport error with timed_out
  // otherwise). `done` runs exactly once, on an upstream I/O thread; it must not block.
  virtual void Send(const std::string& host, uint16_t port, http::Request request,
                    TimePoint deadline, UpstreamCallback done) = 0;
};

}  // namespace galley::upstream
