// Batch assembly for OnnxBackend, kept apart from ONNX Runtime so that it is plain data in, data
// out: several requests' tensors are concatenated along the batch (first) dimension, optionally
// zero-padded in their other dimensions, and a batched output is split back into per-request
// row ranges. Pure functions; no I/O, no locks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/tensor.h"

namespace galley::model {

// "[2, -1, 4]".
std::string ShapeToString(absl::Span<const int64_t> shape);

// Concatenates `parts` along dimension 0. Every part must be a fixed-size tensor with the same
// datatype and rank (>= 1) and raw.size() matching its shape; the caller checks this. The
// result is named `name`.
//
// pad == false: every part's dimensions after the first must be equal (InvalidArgument if not).
// pad == true: each dimension after the first becomes the largest among the parts, and every
// part is copied into the top-left corner of its rows with the rest zero bytes (value 0 for
// every datatype, false for BOOL).
// InvalidArgument if the result's size overflows int64.
absl::StatusOr<Tensor> ConcatRows(std::string name, absl::Span<const Tensor* const> parts,
                                  bool pad);

// Splits `whole` (rank >= 1, a fixed-size datatype) into consecutive row ranges of the given
// sizes along dimension 0; each piece keeps `whole`'s name, datatype and other dimensions.
// InvalidArgument if `whole` is not at least rank 1, or the sizes do not add up to its first
// dimension, or its raw size does not match its shape.
absl::StatusOr<std::vector<Tensor>> SplitRows(const Tensor& whole, absl::Span<const int64_t> rows);

}  // namespace galley::model
