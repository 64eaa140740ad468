// Fuzzes the gateway's reading of a replica's answer (http::ResponseReader): bytes arrive in
// pieces of sizes the input chooses, then the connection may close. Whatever the bytes, the
// reader ends in a final answer (status 200 or above, its leftover bytes kept) or a clear error.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "boost/asio/buffer.hpp"
#include "http/response_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using galley::http::ResponseReader;
  if (size < 1) return 0;
  const size_t piece = 1 + data[0] % 64;  // bytes per read
  ++data;
  --size;
  ResponseReader reader(1 << 20);
  boost::beast::flat_buffer buffer;
  ResponseReader::State state = ResponseReader::State::kNeedMore;
  size_t at = 0;
  while (state == ResponseReader::State::kNeedMore && at < size) {
    const size_t n = std::min(piece, size - at);
    auto dst = buffer.prepare(n);
    std::memcpy(dst.data(), data + at, n);
    buffer.commit(n);
    at += n;
    state = reader.Parse(buffer);
  }
  if (state == ResponseReader::State::kNeedMore && reader.got_some())
    state = reader.OnEndOfStream();
  if (state == ResponseReader::State::kDone) {
    if (reader.response().result_int() < 200) std::abort();
    if (buffer.size() > size) std::abort();
    (void)reader.response().body().size();
  } else if (state == ResponseReader::State::kError && reader.error().empty()) {
    std::abort();
  }
  return 0;
}
