#include "cli/listen.h"

#include <charconv>

#include "common/strings.h"

namespace galley::cli {

absl::StatusOr<HostPort> ParseListen(std::string_view value) {
  const size_t colon = value.rfind(':');
  if (colon == std::string_view::npos) {
    return absl::InvalidArgumentError(StrCat("expected HOST:PORT, got '", value, "'"));
  }
  std::string_view host = value.substr(0, colon);
  std::string_view port = value.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  unsigned p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p > 65535) {
    return absl::InvalidArgumentError(StrCat("bad port in '", value, "'"));
  }
  return HostPort{std::string(host), static_cast<uint16_t>(p)};
}

}  // namespace galley::cli
