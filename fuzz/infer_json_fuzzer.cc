// Fuzzes the Open Inference Protocol JSON decoding (and re-encoding of whatever decodes).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_models.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  galley::fuzz::DecodeEverything(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
