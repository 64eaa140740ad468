#include "model/onnx_batch.h"

#include <algorithm>
#include <cstring>

#include "common/strings.h"

namespace galley::model {
namespace {

// Copies a tensor of shape `src_shape` (row-major, packed) into a zeroed destination of shape
// `dst_shape` (same rank, every dimension >= the source's), starting at `dst`. The innermost
// dimension is copied with one memcpy per run.
void CopyPadded(const uint8_t* src, absl::Span<const int64_t> src_shape, uint8_t* dst,
                absl::Span<const int64_t> dst_shape, size_t elem) {
  const size_t rank = src_shape.size();  // >= 1
  const int64_t count = ElementCount(src_shape);
  if (count <= 0) return;
  // Byte strides of one step in each dimension, for source and destination.
  std::vector<size_t> src_stride(rank), dst_stride(rank);
  size_t s = elem, d = elem;
  for (size_t i = rank; i-- > 0;) {
    src_stride[i] = s;
    dst_stride[i] = d;
    s *= static_cast<size_t>(src_shape[i]);
    d *= static_cast<size_t>(dst_shape[i]);
  }
  // One memcpy per innermost run; an odometer walks every index of the outer dimensions.
  const int64_t run_elems = src_shape[rank - 1];
  const size_t run_bytes = static_cast<size_t>(run_elems) * elem;
  const int64_t runs = count / run_elems;
  std::vector<int64_t> index(rank - 1, 0);
  for (int64_t n = 0; n < runs; ++n) {
    size_t src_off = 0, dst_off = 0;
    for (size_t i = 0; i + 1 < rank; ++i) {
      src_off += static_cast<size_t>(index[i]) * src_stride[i];
      dst_off += static_cast<size_t>(index[i]) * dst_stride[i];
    }
    std::memcpy(dst + dst_off, src + src_off, run_bytes);
    for (size_t i = rank - 1; i-- > 0;) {
      if (++index[i] < src_shape[i]) break;
      index[i] = 0;
    }
  }
}

// ConcatRows for BYTES: the elements of each part, in order. Strings have no padding value, so
// the parts must agree after the batch dimension.
absl::StatusOr<Tensor> ConcatBytesRows(Tensor out, absl::Span<const Tensor* const> parts);

}  // namespace

std::string ShapeToString(absl::Span<const int64_t> shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += StrCat(shape[i]);
  }
  out += "]";
  return out;
}

absl::StatusOr<Tensor> ConcatRows(std::string name, absl::Span<const Tensor* const> parts,
                                  bool pad) {
  if (parts.empty()) return absl::InvalidArgumentError("no tensors to concatenate");
  const Tensor& first = *parts[0];
  const size_t rank = first.shape.size();
  if (rank == 0) return absl::InvalidArgumentError(StrCat("'", name, "' has no batch dimension"));
  Tensor out;
  out.name = std::move(name);
  out.datatype = first.datatype;
  out.shape = first.shape;
  out.shape[0] = 0;
  if (first.datatype == DataType::kBytes) return ConcatBytesRows(std::move(out), parts);
  const size_t elem = ElementSize(first.datatype);
  for (const Tensor* part : parts) {
    const int64_t n = ElementCount(part->shape);
    if (part->datatype != first.datatype || part->shape.size() != rank || n < 0 ||
        part->raw.size() != static_cast<size_t>(n) * elem) {
      return absl::InvalidArgumentError(
          StrCat("'", out.name, "': parts differ in datatype or rank, or do not fit their shape"));
    }
    for (size_t i = 1; i < rank; ++i) {
      if (part->shape[i] == out.shape[i]) continue;
      if (!pad) {
        return absl::InvalidArgumentError(
            StrCat("'", out.name, "': shape ", ShapeToString(part->shape), " does not match ",
                   ShapeToString(first.shape), " after the batch dimension"));
      }
      out.shape[i] = std::max(out.shape[i], part->shape[i]);
    }
    out.shape[0] += part->shape[0];
  }
  const int64_t count = ElementCount(out.shape);
  if (count < 0 || static_cast<uint64_t>(count) > SIZE_MAX / elem) {
    return absl::InvalidArgumentError(
        StrCat("'", out.name, "': batched shape ", ShapeToString(out.shape), " is too large"));
  }
  out.raw.assign(static_cast<size_t>(count) * elem, 0);
  // One batch row of the result, in bytes.
  const size_t row_bytes = (out.shape[0] == 0 ? 0 : out.raw.size() / out.shape[0]);
  uint8_t* dst = out.raw.data();
  for (const Tensor* part : parts) {
    const bool same_row =
        std::equal(part->shape.begin() + 1, part->shape.end(), out.shape.begin() + 1);
    if (same_row) {
      if (!part->raw.empty()) std::memcpy(dst, part->raw.data(), part->raw.size());
    } else {
      std::vector<int64_t> dst_shape = out.shape;
      dst_shape[0] = part->shape[0];
      CopyPadded(part->raw.data(), part->shape, dst, dst_shape, elem);
    }
    dst += static_cast<size_t>(part->shape[0]) * row_bytes;
  }
  return out;
}

absl::StatusOr<std::vector<Tensor>> SplitRows(const Tensor& whole, absl::Span<const int64_t> rows) {
  if (whole.shape.empty()) {
    return absl::InvalidArgumentError(StrCat("'", whole.name, "' has no batch dimension"));
  }
  const int64_t count = ElementCount(whole.shape);
  const bool bytes = whole.datatype == DataType::kBytes;
  const size_t elem = bytes ? 1 : ElementSize(whole.datatype);
  const size_t have = bytes ? whole.bytes.size() : whole.raw.size();
  if (count < 0 || have != static_cast<size_t>(count) * elem) {
    return absl::InvalidArgumentError(StrCat("'", whole.name, "': ", have,
                                             bytes ? " elements" : " bytes", " do not fit shape ",
                                             ShapeToString(whole.shape)));
  }
  int64_t total = 0;
  for (int64_t r : rows) {
    if (r < 0) return absl::InvalidArgumentError("negative row count");
    total += r;
  }
  if (total != whole.shape[0]) {
    return absl::InvalidArgumentError(
        StrCat("'", whole.name, "' has ", whole.shape[0], " rows, expected ", total));
  }
  // One row, in bytes (or in elements for BYTES).
  const size_t row_bytes = (whole.shape[0] == 0 ? 0 : have / whole.shape[0]);
  std::vector<Tensor> pieces;
  pieces.reserve(rows.size());
  size_t offset = 0;
  for (int64_t r : rows) {
    Tensor& piece = pieces.emplace_back();
    piece.name = whole.name;
    piece.datatype = whole.datatype;
    piece.shape = whole.shape;
    piece.shape[0] = r;
    const size_t n = static_cast<size_t>(r) * row_bytes;
    if (bytes) {
      piece.bytes.assign(whole.bytes.begin() + offset, whole.bytes.begin() + offset + n);
    } else {
      piece.raw.assign(whole.raw.begin() + offset, whole.raw.begin() + offset + n);
    }
    offset += n;
  }
  return pieces;
}

namespace {

absl::StatusOr<Tensor> ConcatBytesRows(Tensor out, absl::Span<const Tensor* const> parts) {
  const Tensor& first = *parts[0];
  for (const Tensor* part : parts) {
    const int64_t n = ElementCount(part->shape);
    if (part->datatype != DataType::kBytes || part->shape.size() != first.shape.size() || n < 0 ||
        part->bytes.size() != static_cast<size_t>(n)) {
      return absl::InvalidArgumentError(
          StrCat("'", out.name, "': parts differ in datatype or rank, or do not fit their shape"));
    }
    if (!std::equal(part->shape.begin() + 1, part->shape.end(), first.shape.begin() + 1)) {
      return absl::InvalidArgumentError(StrCat(
          "'", out.name, "': BYTES shape ", ShapeToString(part->shape), " does not match ",
          ShapeToString(first.shape), " after the batch dimension (strings are not padded)"));
    }
    out.shape[0] += part->shape[0];
  }
  for (const Tensor* part : parts)
    out.bytes.insert(out.bytes.end(), part->bytes.begin(), part->bytes.end());
  return out;
}

}  // namespace

}  // namespace galley::model
