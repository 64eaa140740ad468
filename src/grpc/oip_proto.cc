#include "grpc/oip_proto.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

#include "common/strings.h"
#include "grpc_service.pb.h"

namespace galley::rpc {
namespace {

using model::DataType;
using model::Tensor;

constexpr int64_t kMaxClientDeadlineMs = 86'400'000;  // one day, as the REST front-end

absl::Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(std::string(what));
}

std::string_view View(const std::string& s) { return {s.data(), s.size()}; }

// Total number of elements over every typed field of `c`.
int64_t TotalElements(const ::inference::InferTensorContents& c) {
  return int64_t{c.bool_contents_size()} + c.int_contents_size() + c.int64_contents_size() +
         c.uint_contents_size() + c.uint64_contents_size() + c.fp32_contents_size() +
         c.fp64_contents_size() + c.bytes_contents_size();
}

// Appends the elements of `field` to `t` as T, range-checked when T is narrower than the field.
template <typename T, typename Field>
absl::Status AppendAll(const Field& field, Tensor& t) {
  t.raw.reserve(static_cast<size_t>(field.size()) * sizeof(T));
  for (int i = 0; i < field.size(); ++i) {
    const auto v = field.Get(i);
    using V = std::remove_cv_t<decltype(v)>;
    if constexpr (std::is_integral_v<T> && sizeof(T) < sizeof(V)) {
      bool out_of_range = v > std::numeric_limits<T>::max();
      if constexpr (std::is_signed_v<V>)
        out_of_range = out_of_range || v < std::numeric_limits<T>::min();
      if (out_of_range) {
        return Invalid(StrCat("element ", i, ": ", v, " is out of range for ",
                              model::DataTypeName(t.datatype)));
      }
    }
    t.Append<T>(static_cast<T>(v));
  }
  return absl::OkStatus();
}

// The typed field for a datatype: its name and element count in `c`.
struct TypedField {
  std::string_view name;
  int64_t size = 0;
};

TypedField FieldFor(DataType type, const ::inference::InferTensorContents& c) {
  switch (type) {
    case DataType::kBool:
      return {"bool_contents", c.bool_contents_size()};
    case DataType::kInt8:
    case DataType::kInt16:
    case DataType::kInt32:
      return {"int_contents", c.int_contents_size()};
    case DataType::kInt64:
      return {"int64_contents", c.int64_contents_size()};
    case DataType::kUint8:
    case DataType::kUint16:
    case DataType::kUint32:
      return {"uint_contents", c.uint_contents_size()};
    case DataType::kUint64:
      return {"uint64_contents", c.uint64_contents_size()};
    case DataType::kFp16:
      return {"", 0};
    case DataType::kFp32:
      return {"fp32_contents", c.fp32_contents_size()};
    case DataType::kFp64:
      return {"fp64_contents", c.fp64_contents_size()};
    case DataType::kBytes:
      return {"bytes_contents", c.bytes_contents_size()};
  }
  return {"", 0};
}

// Fills `t` (name, datatype and shape set) from typed contents holding `count` elements.
absl::Status DecodeContents(const ::inference::InferTensorContents& c, int64_t count, Tensor& t) {
  if (t.datatype == DataType::kFp16) {
    return Invalid("FP16 has no typed contents field; send it in raw_input_contents");
  }
  const TypedField field = FieldFor(t.datatype, c);
  if (TotalElements(c) != field.size) {
    return Invalid(StrCat("datatype ", model::DataTypeName(t.datatype), " takes its elements in '",
                          field.name, "'; the other contents fields must be empty"));
  }
  if (field.size != count) {
    return Invalid(StrCat("has ", field.size, " data elements but shape ",
                          protocol::ShapeString(t.shape), " needs ", count));
  }
  switch (t.datatype) {
    case DataType::kBool:
      return AppendAll<uint8_t>(c.bool_contents(), t);
    case DataType::kInt8:
      return AppendAll<int8_t>(c.int_contents(), t);
    case DataType::kInt16:
      return AppendAll<int16_t>(c.int_contents(), t);
    case DataType::kInt32:
      return AppendAll<int32_t>(c.int_contents(), t);
    case DataType::kInt64:
      return AppendAll<int64_t>(c.int64_contents(), t);
    case DataType::kUint8:
      return AppendAll<uint8_t>(c.uint_contents(), t);
    case DataType::kUint16:
      return AppendAll<uint16_t>(c.uint_contents(), t);
    case DataType::kUint32:
      return AppendAll<uint32_t>(c.uint_contents(), t);
    case DataType::kUint64:
      return AppendAll<uint64_t>(c.uint64_contents(), t);
    case DataType::kFp32:
      return AppendAll<float>(c.fp32_contents(), t);
    case DataType::kFp64:
      return AppendAll<double>(c.fp64_contents(), t);
    case DataType::kBytes:
      t.bytes.assign(c.bytes_contents().begin(), c.bytes_contents().end());
      return absl::OkStatus();
    case DataType::kFp16:
      break;
  }
  return Invalid("unsupported datatype");
}

absl::StatusOr<std::optional<int64_t>> TimeoutParameter(const ::inference::ModelInferRequest& req) {
  auto it = req.parameters().find("timeout");
  if (it == req.parameters().end()) return std::optional<int64_t>();
  const ::inference::InferParameter& p = it->second;
  if (p.parameter_choice_case() == ::inference::InferParameter::kInt64Param &&
      p.int64_param() >= 0) {
    return std::optional<int64_t>(p.int64_param());
  }
  if (p.parameter_choice_case() == ::inference::InferParameter::kUint64Param) {
    return std::optional<int64_t>(static_cast<int64_t>(
        std::min<uint64_t>(p.uint64_param(), std::numeric_limits<int64_t>::max())));
  }
  return Invalid("parameter 'timeout' must be a non-negative integer (microseconds)");
}

void AddTensorMetadata(const model::TensorSpec& spec,
                       ::inference::ModelMetadataResponse::TensorMetadata* out) {
  out->set_name(spec.name);
  out->set_datatype(std::string(model::DataTypeName(spec.datatype)));
  for (int64_t d : spec.shape) out->add_shape(d);
}

}  // namespace

absl::StatusOr<protocol::DecodedInferRequest> DecodeInferRequest(
    const ::inference::ModelInferRequest& req, const model::ModelMetadata& md) {
  protocol::DecodedInferRequest out;
  out.id = req.id();
  auto timeout = TimeoutParameter(req);
  if (!timeout.ok()) return timeout.status();
  out.timeout_us = *timeout;
  const bool raw = req.raw_input_contents_size() > 0;
  if (raw && req.raw_input_contents_size() != req.inputs_size()) {
    return Invalid(StrCat("raw_input_contents has ", req.raw_input_contents_size(),
                          " entries but the request has ", req.inputs_size(),
                          " inputs; give one entry per input, in the order of 'inputs'"));
  }
  out.input.inputs.resize(md.inputs.size());
  protocol::InputSetCheck input_set(md);
  for (int i = 0; i < req.inputs_size(); ++i) {
    const ::inference::ModelInferRequest::InferInputTensor& in = req.inputs(i);
    auto idx = input_set.Claim(View(in.name()));
    if (!idx.ok()) return idx.status();
    const model::TensorSpec& spec = md.inputs[*idx];
    auto count = protocol::CheckInputTensor(
        md, spec, View(in.datatype()), absl::MakeConstSpan(in.shape().data(), in.shape().size()));
    if (!count.ok()) return count.status();
    const std::string where = StrCat("input '", spec.name, "': ");
    if (raw && in.has_contents()) {
      return Invalid(where +
                     "sets 'contents' but the request uses raw_input_contents; do not mix "
                     "the two: give every input's data one way");
    }
    Tensor& t = out.input.inputs[*idx];
    t.name = spec.name;
    t.datatype = spec.datatype;
    t.shape.assign(in.shape().begin(), in.shape().end());
    absl::Status st = raw ? protocol::DecodeRawTensor(View(req.raw_input_contents(i)), *count,
                                                      "raw_input_contents", t)
                          : DecodeContents(in.contents(), *count, t);
    if (!st.ok()) return Invalid(where + std::string(st.message()));
  }
  if (absl::Status st = input_set.Finish(out.input); !st.ok()) return st;
  for (const auto& o : req.outputs()) {
    if (absl::Status st = protocol::CheckRequestedOutput(md, View(o.name())); !st.ok()) return st;
    out.outputs.push_back(o.name());
  }
  return out;
}

::inference::ModelInferResponse EncodeInferResponse(const model::ModelMetadata& md,
                                                    std::string_view id,
                                                    const model::InferOutput& output,
                                                    const std::vector<std::string>& requested) {
  ::inference::ModelInferResponse resp;
  resp.set_model_name(md.name);
  resp.set_model_version(md.version);
  if (!id.empty()) resp.set_id(std::string(id));
  for (const Tensor& t : output.outputs) {
    if (!requested.empty() &&
        std::find(requested.begin(), requested.end(), t.name) == requested.end()) {
      continue;
    }
    auto* o = resp.add_outputs();
    o->set_name(t.name);
    o->set_datatype(std::string(model::DataTypeName(t.datatype)));
    for (int64_t d : t.shape) o->add_shape(d);
    std::string* raw = resp.add_raw_output_contents();
    if (t.datatype == DataType::kBytes) {
      protocol::AppendRawBytes(t.bytes, *raw);
    } else {
      raw->assign(t.raw.begin(), t.raw.end());
    }
  }
  return resp;
}

absl::Status DecodeTypedContents(const ::inference::InferTensorContents& contents, int64_t count,
                                 Tensor& t) {
  return DecodeContents(contents, count, t);
}

::inference::ModelMetadataResponse EncodeModelMetadata(const model::ModelMetadata& md) {
  ::inference::ModelMetadataResponse resp;
  resp.set_name(md.name);
  resp.add_versions(md.version);
  resp.set_platform(md.platform);
  for (const auto& s : md.inputs) AddTensorMetadata(s, resp.add_inputs());
  for (const auto& s : md.outputs) AddTensorMetadata(s, resp.add_outputs());
  return resp;
}

TimePoint RequestDeadline(std::optional<Duration> client_left, std::optional<int64_t> timeout_us,
                          std::chrono::milliseconds default_timeout, TimePoint now) {
  if (client_left) {
    const Duration cap = std::chrono::milliseconds(kMaxClientDeadlineMs);
    return now + std::min(*client_left, cap);
  }
  if (timeout_us && *timeout_us > 0) {
    return now +
           std::chrono::microseconds(std::min<int64_t>(*timeout_us, kMaxClientDeadlineMs * 1000));
  }
  if (default_timeout.count() > 0) return now + default_timeout;
  return TimePoint::max();
}

}  // namespace galley::rpc
