// Tensors as the Open Inference Protocol (KServe v2) describes them: a name, a datatype, a shape
// and the elements. Fixed-size elements are stored packed in native (little-endian) order; BYTES
// elements are stored one std::string per element.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/types/span.h"

namespace galley::model {

// The protocol's tensor datatypes
// (https://github.com/kserve/open-inference-protocol, "Tensor Data Types").
enum class DataType {
  kBool,
  kUint8,
  kUint16,
  kUint32,
  kUint64,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFp16,
  kFp32,
  kFp64,
  kBytes,
};

// "BOOL", "UINT8", ..., "FP32", "BYTES".
std::string_view DataTypeName(DataType type);
// Inverse of DataTypeName; nullopt for an unknown name.
std::optional<DataType> ParseDataType(std::string_view name);
// Size of one element in bytes; 0 for BYTES.
size_t ElementSize(DataType type);

// Product of the dimensions; -1 if any dimension is negative or the product overflows int64.
int64_t ElementCount(absl::Span<const int64_t> shape);

struct Tensor {
  std::string name;
  DataType datatype = DataType::kFp32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> raw;        // fixed-size elements, ElementCount(shape) * ElementSize
  std::vector<std::string> bytes;  // BYTES elements, ElementCount(shape) of them

  int64_t element_count() const { return ElementCount(shape); }

  // Element i of a fixed-size tensor; the caller checks the datatype and the index.
  template <typename T>
  T At(size_t i) const {
    T v;
    std::memcpy(&v, raw.data() + i * sizeof(T), sizeof(T));
    return v;
  }
  template <typename T>
  void Append(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    raw.insert(raw.end(), p, p + sizeof(T));
  }
};

// What a model says about one of its inputs or outputs. A dimension of -1 is variable; for a
// model with max_batch_size > 0 the first dimension is the batch dimension and is -1.
struct TensorSpec {
  std::string name;
  DataType datatype = DataType::kFp32;
  std::vector<int64_t> shape;
};

// True if `shape` matches `spec_shape` (same rank; equal dimensions where the spec's is >= 0).
bool ShapeMatches(absl::Span<const int64_t> spec_shape, absl::Span<const int64_t> shape);

}  // namespace galley::model
