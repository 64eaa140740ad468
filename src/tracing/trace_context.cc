#include "tracing/trace_context.h"

#include <random>

namespace galley::tracing {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is invalid too (§3.2.2.2)
}

template <size_t N>
bool ReadHex(std::string_view s, std::array<uint8_t, N>& out) {
  if (s.size() != 2 * N) return false;
  bool nonzero = false;
  for (size_t i = 0; i < N; ++i) {
    const int hi = HexDigit(s[2 * i]), lo = HexDigit(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
    nonzero |= out[i] != 0;
  }
  return nonzero;
}

std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^
                                   (static_cast<uint64_t>(std::random_device{}()) << 32)};
  return rng;
}

template <size_t N>
std::array<uint8_t, N> RandomId() {
  std::array<uint8_t, N> id{};
  do {
    for (size_t i = 0; i < N; i += 8) {
      uint64_t r = Rng()();
      for (size_t j = 0; j < 8 && i + j < N; ++j) id[i + j] = static_cast<uint8_t>(r >> (8 * j));
    }
  } while (id == std::array<uint8_t, N>{});
  return id;
}

}  // namespace

std::optional<TraceContext> ParseTraceparent(std::string_view v) {
  // version(2) - trace-id(32) - parent-id(16) - flags(2): 55 characters.
  if (v.size() < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') return std::nullopt;
  const int v0 = HexDigit(v[0]), v1 = HexDigit(v[1]);
  if (v0 < 0 || v1 < 0) return std::nullopt;
  const int version = v0 << 4 | v1;
  if (version == 0xff) return std::nullopt;
  // Version 00 is exactly 55 characters; a later version may append "-..." fields.
  if (version == 0 ? v.size() != 55 : (v.size() > 55 && v[55] != '-')) return std::nullopt;
  TraceContext c;
  if (!ReadHex(v.substr(3, 32), c.trace_id) || !ReadHex(v.substr(36, 16), c.span_id)) {
    return std::nullopt;
  }
  const int f0 = HexDigit(v[53]), f1 = HexDigit(v[54]);
  if (f0 < 0 || f1 < 0) return std::nullopt;
  c.sampled = ((f0 << 4 | f1) & 0x01) != 0;
  return c;
}

std::string FormatTraceparent(const TraceContext& c) {
  return "00-" + Hex(c.trace_id) + "-" + Hex(c.span_id) + (c.sampled ? "-01" : "-00");
}

TraceId NewTraceId() { return RandomId<16>(); }
SpanId NewSpanId() { return RandomId<8>(); }

std::string Hex(const uint8_t* data, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0xf];
  }
  return out;
}

}  // namespace galley::tracing
