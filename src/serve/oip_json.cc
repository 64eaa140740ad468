#include "serve/oip_json.h"

#include <charconv>
#include <cmath>
#include <limits>

#include "common/strings.h"
#include "boost/json/parse.hpp"
#include "common/json.h"
#include "model/utf8.h"
#include "boost/json/value.hpp"

namespace galley::serve {
namespace json = boost::json;
using model::DataType;
using model::Tensor;

namespace {

absl::Status Invalid(std::string_view what) { return absl::InvalidArgumentError(std::string(what)); }

absl::StatusOr<json::value> ParseJson(std::string_view body) {
  if (!model::IsValidUtf8(body)) return Invalid("the request body is not valid UTF-8");
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = 64;
  json::value v = json::parse(body, ec, {}, opts);
  if (ec) return Invalid(StrCat("malformed JSON: ", ec.message()));
  return v;
}

// Range-checked conversion of one JSON number to an integer type.
template <typename T>
absl::Status AppendInt(const json::value& v, Tensor& t) {
  if (v.is_int64()) {
    const int64_t x = v.get_int64();
    if constexpr (std::is_unsigned_v<T>) {
      if (x < 0 || static_cast<uint64_t>(x) > std::numeric_limits<T>::max()) return Invalid("out of range");
    } else {
      if (x < std::numeric_limits<T>::min() || x > std::numeric_limits<T>::max()) return Invalid("out of range");
    }
    t.Append<T>(static_cast<T>(x));
    return absl::OkStatus();
  }
  if (v.is_uint64()) {
    const uint64_t x = v.get_uint64();
    if (x > static_cast<uint64_t>(std::numeric_limits<T>::max())) return Invalid("out of range");
    t.Append<T>(static_cast<T>(x));
    return absl::OkStatus();
  }
  return Invalid("expected an integer");
}

absl::StatusOr<double> Number(const json::value& v) {
  if (v.is_double()) return v.get_double();
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  return Invalid("expected a number");
}

absl::Status AppendElement(const json::value& v, Tensor& t) {
  switch (t.datatype) {
    case DataType::kBool:
      if (!v.is_bool()) return Invalid("expected true or false");
      t.Append<uint8_t>(v.get_bool() ? 1 : 0);
      return absl::OkStatus();
    case DataType::kUint8: return AppendInt<uint8_t>(v, t);
    case DataType::kUint16: return AppendInt<uint16_t>(v, t);
    case DataType::kUint32: return AppendInt<uint32_t>(v, t);
    case DataType::kUint64: return AppendInt<uint64_t>(v, t);
    case DataType::kInt8: return AppendInt<int8_t>(v, t);
    case DataType::kInt16: return AppendInt<int16_t>(v, t);
    case DataType::kInt32: return AppendInt<int32_t>(v, t);
    case DataType::kInt64: return AppendInt<int64_t>(v, t);
    case DataType::kFp16:
      return Invalid("FP16 tensors are not supported in JSON; use FP32");
    case DataType::kFp32: {
      auto d = Number(v);
      if (!d.ok()) return d.status();
      if (std::fabs(*d) > std::numeric_limits<float>::max()) return Invalid("out of range for FP32");
      t.Append<float>(static_cast<float>(*d));
      return absl::OkStatus();
    }
    case DataType::kFp64: {
      auto d = Number(v);
      if (!d.ok()) return d.status();
      t.Append<double>(*d);
      return absl::OkStatus();
    }
    case DataType::kBytes:
      if (!v.is_string()) return Invalid("expected a string");
      t.bytes.emplace_back(v.get_string().data(), v.get_string().size());
      return absl::OkStatus();
  }
  return Invalid("unknown datatype");
}

// Appends the leaves of `data` (flat or nested arrays) in row-major order, up to `limit` of them.
absl::Status Flatten(const json::value& data, Tensor& t, int64_t& count, int64_t limit, int depth) {
  if (data.is_array()) {
    if (depth > 32) return Invalid("data is nested too deeply");
    for (const json::value& e : data.get_array()) {
      if (absl::Status st = Flatten(e, t, count, limit, depth + 1); !st.ok()) return st;
    }
    return absl::OkStatus();
  }
  if (++count > limit) return Invalid("more data elements than the shape holds");
  if (absl::Status st = AppendElement(data, t); !st.ok()) {
    return Invalid(StrCat("element ", count - 1, ": ", st.message()));
  }
  return absl::OkStatus();
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += StrCat(i ? "," : "", shape[i]);
  return s + "]";
}

absl::StatusOr<std::vector<int64_t>> DecodeShape(const json::value* v) {
  if (v == nullptr || !v->is_array()) return Invalid("'shape' must be an array of integers");
  std::vector<int64_t> shape;
  for (const json::value& d : v->get_array()) {
    if (d.is_int64() && d.get_int64() >= 0) shape.push_back(d.get_int64());
    else if (d.is_uint64() && d.get_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) shape.push_back(static_cast<int64_t>(d.get_uint64()));
    else return Invalid("'shape' must be an array of non-negative integers");
  }
  return shape;
}

absl::Status DecodeInput(const json::object& in, const model::TensorSpec& spec,
                         const model::ModelMetadata& md, Tensor& t) {
  const std::string where = StrCat("input '", spec.name, "': ");
  const json::value* dt = in.if_contains("datatype");
  if (dt == nullptr || !dt->is_string()) return Invalid(where + "'datatype' must be a string");
  auto type = model::ParseDataType(std::string_view(dt->get_string()));
  if (!type) return Invalid(StrCat(where, "unknown datatype '", std::string_view(dt->get_string()), "'"));
  if (*type != spec.datatype) {
    return Invalid(StrCat(where, "datatype ", model::DataTypeName(*type), " does not match the model's ",
                                model::DataTypeName(spec.datatype)));
  }
  auto shape = DecodeShape(in.if_contains("shape"));
  if (!shape.ok()) return Invalid(where + std::string(shape.status().message()));
  if (!model::ShapeMatches(spec.shape, *shape)) {
    return Invalid(StrCat(where, "shape ", ShapeString(*shape), " does not match the model's ",
                                ShapeString(spec.shape)));
  }
  if (md.max_batch_size > 0 && !shape->empty() && (*shape)[0] > md.max_batch_size) {
    return Invalid(StrCat(where, "batch size ", (*shape)[0], " exceeds the model's maximum of ",
                                md.max_batch_size));
  }
  const int64_t expected = model::ElementCount(*shape);
  if (expected < 0) return Invalid(where + "shape is too large");
  const json::value* data = in.if_contains("data");
  if (data == nullptr) return Invalid(where + "'data' is missing");
  t.name = spec.name;
  t.datatype = *type;
  t.shape = std::move(shape).value();
  int64_t count = 0;
  if (absl::Status st = Flatten(*data, t, count, expected, 0); !st.ok()) {
    return Invalid(where + std::string(st.message()));
  }
  if (count != expected) {
    return Invalid(StrCat(where, "has ", count, " data elements but shape ", ShapeString(t.shape),
                                " needs ", expected));
  }
  return absl::OkStatus();
}

json::value ElementToJson(const Tensor& t, size_t i) {
  switch (t.datatype) {
    case DataType::kBool: return json::value(t.At<uint8_t>(i) != 0);
    case DataType::kUint8: return json::value(t.At<uint8_t>(i));
    case DataType::kUint16: return json::value(t.At<uint16_t>(i));
    case DataType::kUint32: return json::value(t.At<uint32_t>(i));
    case DataType::kUint64: return json::value(t.At<uint64_t>(i));
    case DataType::kInt8: return json::value(t.At<int8_t>(i));
    case DataType::kInt16: return json::value(t.At<int16_t>(i));
    case DataType::kInt32: return json::value(t.At<int32_t>(i));
    case DataType::kInt64: return json::value(t.At<int64_t>(i));
    case DataType::kFp16: return json::value(nullptr);
    case DataType::kFp32: return json::value(FloatForJson(t.At<float>(i)));
    case DataType::kFp64: return json::value(t.At<double>(i));
    case DataType::kBytes: return json::value(t.bytes[i]);
  }
  return json::value(nullptr);
}

json::array TensorSpecs(const std::vector<model::TensorSpec>& specs) {
  json::array a;
  for (const auto& s : specs) {
    json::array shape;
    for (int64_t d : s.shape) shape.push_back(d);
    a.push_back(json::object{{"name", s.name},
                             {"datatype", model::DataTypeName(s.datatype)},
                             {"shape", std::move(shape)}});
  }
  return a;
}

}  // namespace

double FloatForJson(float v) {
  if (!std::isfinite(v)) return 0.0;
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  double d = v;
  std::from_chars(buf, r.ptr, d);
  return d;
}

absl::StatusOr<DecodedInferRequest> DecodeInferRequest(std::string_view body,
                                                       const model::ModelMetadata& md) {
  auto parsed = ParseJson(body);
  if (!parsed.ok()) return parsed.status();
  if (!parsed->is_object()) return Invalid("the request must be a JSON object");
  const json::object& root = parsed->get_object();
  DecodedInferRequest out;
  if (const json::value* id = root.if_contains("id")) {
    if (!id->is_string()) return Invalid("'id' must be a string");
    out.id = std::string(id->get_string());
  }
  if (const json::value* params = root.if_contains("parameters")) {
    if (!params->is_object()) return Invalid("'parameters' must be an object");
    if (const json::value* timeout = params->get_object().if_contains("timeout")) {
      if (timeout->is_int64() && timeout->get_int64() >= 0) out.timeout_us = timeout->get_int64();
      else if (timeout->is_uint64()) out.timeout_us = std::numeric_limits<int64_t>::max();
      else return Invalid("parameter 'timeout' must be a non-negative integer (microseconds)");
    }
  }
  const json::value* inputs = root.if_contains("inputs");
  if (inputs == nullptr || !inputs->is_array()) return Invalid("'inputs' must be an array");
  out.input.inputs.resize(md.inputs.size());
  std::vector<bool> seen(md.inputs.size(), false);
  for (const json::value& v : inputs->get_array()) {
    if (!v.is_object()) return Invalid("each input must be an object");
    const json::value* name = v.get_object().if_contains("name");
    if (name == nullptr || !name->is_string()) return Invalid("each input needs a string 'name'");
    const std::string_view n(name->get_string());
    size_t idx = md.inputs.size();
    for (size_t i = 0; i < md.inputs.size(); ++i) {
      if (md.inputs[i].name == n) idx = i;
    }
    if (idx == md.inputs.size()) return Invalid(StrCat("unknown input '", n, "' for model '", md.name, "'"));
    if (seen[idx]) return Invalid(StrCat("input '", n, "' given more than once"));
    seen[idx] = true;
    if (absl::Status st = DecodeInput(v.get_object(), md.inputs[idx], md, out.input.inputs[idx]); !st.ok()) return st;
  }
  for (size_t i = 0; i < md.inputs.size(); ++i) {
    if (!seen[i]) return Invalid(StrCat("missing input '", md.inputs[i].name, "'"));
  }
  if (md.max_batch_size > 0 && out.input.inputs.size() > 1) {
    for (const Tensor& t : out.input.inputs) {
      if (t.shape.empty() || t.shape[0] != out.input.inputs[0].shape[0]) {
        return Invalid("all inputs must have the same batch dimension");
      }
    }
  }
  if (const json::value* outputs = root.if_contains("outputs")) {
    if (!outputs->is_array()) return Invalid("'outputs' must be an array");
    for (const json::value& o : outputs->get_array()) {
      const json::value* name = o.is_object() ? o.get_object().if_contains("name") : nullptr;
      if (name == nullptr || !name->is_string()) return Invalid("each requested output needs a string 'name'");
      const std::string_view n(name->get_string());
      bool known = false;
      for (const auto& s : md.outputs) known = known || s.name == n;
      if (!known) return Invalid(StrCat("unknown output '", n, "' for model '", md.name, "'"));
      out.outputs.emplace_back(n);
    }
  }
  return out;
}

std::string EncodeInferResponse(const model::ModelMetadata& md, std::string_view id,
                                const model::InferOutput& output,
                                const std::vector<std::string>& requested) {
  json::object root;
  root["model_name"] = md.name;
  root["model_version"] = md.version;
  if (!id.empty()) root["id"] = id;
  json::array outs;
  for (const Tensor& t : output.outputs) {
    if (!requested.empty()) {
      bool wanted = false;
      for (const auto& r : requested) wanted = wanted || r == t.name;
      if (!wanted) continue;
    }
    json::array shape;
    for (int64_t d : t.shape) shape.push_back(d);
    json::array data;
    const int64_t n = t.element_count();
    data.reserve(n > 0 ? static_cast<size_t>(n) : 0);
    for (int64_t i = 0; i < n; ++i) data.push_back(ElementToJson(t, static_cast<size_t>(i)));
    outs.push_back(json::object{{"name", t.name},
                                {"datatype", model::DataTypeName(t.datatype)},
                                {"shape", std::move(shape)},
                                {"data", std::move(data)}});
  }
  root["outputs"] = std::move(outs);
  return JsonSerialize(root);
}

std::string EncodeModelMetadata(const model::ModelMetadata& md) {
  json::object root;
  root["name"] = md.name;
  root["versions"] = json::array{json::value(md.version)};
  root["platform"] = md.platform;
  root["inputs"] = TensorSpecs(md.inputs);
  root["outputs"] = TensorSpecs(md.outputs);
  return JsonSerialize(root);
}

std::string EncodeServerMetadata(std::string_view name, std::string_view version) {
  json::object root;
  root["name"] = name;
  root["version"] = version;
  root["extensions"] = json::array{};
  return JsonSerialize(root);
}

absl::StatusOr<std::string> DecodeAnalyzeRequest(std::string_view body) {
  auto parsed = ParseJson(body);
  if (!parsed.ok()) return parsed.status();
  if (!parsed->is_object()) return Invalid("the request must be a JSON object with a 'text' field");
  const json::value* text = parsed->get_object().if_contains("text");
  if (text == nullptr) return Invalid("missing field 'text'");
  if (!text->is_string()) return Invalid("'text' must be a string");
  std::string s(text->get_string());
  if (StripWhitespace(s).empty()) return Invalid("'text' must not be empty or blank");
  return s;
}

std::string EncodeAnalyzeResponse(std::string_view label, float confidence,
                                  std::string_view model) {
  json::object root;
  root["sentiment"] = label;
  root["confidence"] = FloatForJson(confidence);
  root["model"] = model;
  return JsonSerialize(root);
}

}  // namespace galley::serve
