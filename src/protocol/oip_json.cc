#include "protocol/oip_json.h"

#include <charconv>
#include <cmath>
#include <limits>

#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"
#include "common/json.h"
#include "common/strings.h"
#include "model/utf8.h"

namespace galley::protocol {
namespace json = boost::json;
using model::DataType;
using model::Tensor;

namespace {

absl::Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(std::string(what));
}

absl::StatusOr<json::value> ParseJson(std::string_view body) {
  if (!model::IsValidUtf8(body)) return Invalid("the request body is not valid UTF-8");
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = 64;
  json::value v = json::parse(body, ec, {}, opts);
  if (ec) return Invalid(StrCat("malformed JSON: ", ec.message()));
  if (auto key = FindDuplicateKey(body, opts.max_depth))
    return Invalid(StrCat("duplicate key '", *key, "' in the JSON body"));
  return v;
}

// Range-checked conversion of one JSON number to an integer type.
template <typename T>
absl::Status AppendInt(const json::value& v, Tensor& t) {
  if (v.is_int64()) {
    const int64_t x = v.get_int64();
    if constexpr (std::is_unsigned_v<T>) {
      if (x < 0 || static_cast<uint64_t>(x) > std::numeric_limits<T>::max())
        return Invalid("out of range");
    } else {
      if (x < std::numeric_limits<T>::min() || x > std::numeric_limits<T>::max())
        return Invalid("out of range");
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
    case DataType::kUint8:
      return AppendInt<uint8_t>(v, t);
    case DataType::kUint16:
      return AppendInt<uint16_t>(v, t);
    case DataType::kUint32:
      return AppendInt<uint32_t>(v, t);
    case DataType::kUint64:
      return AppendInt<uint64_t>(v, t);
    case DataType::kInt8:
      return AppendInt<int8_t>(v, t);
    case DataType::kInt16:
      return AppendInt<int16_t>(v, t);
    case DataType::kInt32:
      return AppendInt<int32_t>(v, t);
    case DataType::kInt64:
      return AppendInt<int64_t>(v, t);
    case DataType::kFp16:
      return Invalid("FP16 tensors are not supported in JSON; use FP32");
    case DataType::kFp32: {
      auto d = Number(v);
      if (!d.ok()) return d.status();
      if (std::fabs(*d) > std::numeric_limits<float>::max())
        return Invalid("out of range for FP32");
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

absl::StatusOr<std::vector<int64_t>> DecodeShape(const json::value* v) {
  if (v == nullptr || !v->is_array()) return Invalid("'shape' must be an array of integers");
  std::vector<int64_t> shape;
  for (const json::value& d : v->get_array()) {
    if (d.is_int64() && d.get_int64() >= 0)
      shape.push_back(d.get_int64());
    else if (d.is_uint64() &&
             d.get_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      shape.push_back(static_cast<int64_t>(d.get_uint64()));
    else
      return Invalid("'shape' must be an array of non-negative integers");
  }
  return shape;
}

// The binary data size an input or output declares in its parameters, if any.
absl::StatusOr<std::optional<uint64_t>> BinaryDataSize(const json::object& obj) {
  const json::value* params = obj.if_contains("parameters");
  if (params == nullptr) return std::optional<uint64_t>();
  if (!params->is_object()) return Invalid("'parameters' must be an object");
  const json::value* size = params->get_object().if_contains("binary_data_size");
  if (size == nullptr) return std::optional<uint64_t>();
  if (size->is_uint64()) return std::optional<uint64_t>(size->get_uint64());
  if (size->is_int64() && size->get_int64() >= 0) {
    return std::optional<uint64_t>(static_cast<uint64_t>(size->get_int64()));
  }
  return Invalid("parameter 'binary_data_size' must be a non-negative integer");
}

// `binary`: the request's binary section not yet claimed by earlier inputs (nullptr when the
// request has none); an input with binary_data_size takes its bytes from the front.
absl::Status DecodeInput(const json::object& in, const model::TensorSpec& spec,
                         const model::ModelMetadata& md, std::string_view* binary, Tensor& t) {
  const std::string where = StrCat("input '", spec.name, "': ");
  const json::value* dt = in.if_contains("datatype");
  if (dt == nullptr || !dt->is_string()) return Invalid(where + "'datatype' must be a string");
  auto shape = DecodeShape(in.if_contains("shape"));
  if (!shape.ok()) return Invalid(where + std::string(shape.status().message()));
  auto checked = CheckInputTensor(md, spec, std::string_view(dt->get_string()), *shape);
  if (!checked.ok()) return checked.status();
  const int64_t expected = *checked;
  auto binary_size = BinaryDataSize(in);
  if (!binary_size.ok()) return Invalid(where + std::string(binary_size.status().message()));
  const json::value* data = in.if_contains("data");
  t.name = spec.name;
  t.datatype = spec.datatype;
  t.shape = std::move(shape).value();
  if (binary_size->has_value()) {
    // Triton's binary tensor data extension: the elements follow the JSON, in input order.
    if (data != nullptr) return Invalid(where + "has both 'data' and binary_data_size");
    if (binary == nullptr) {
      return Invalid(where + "binary_data_size needs the Inference-Header-Content-Length header");
    }
    const uint64_t n = **binary_size;
    if (n > binary->size()) {
      return Invalid(StrCat(where, "binary_data_size is ", n, " but only ", binary->size(),
                            " bytes of binary data remain"));
    }
    absl::Status st = DecodeRawTensor(binary->substr(0, n), expected, "binary data", t);
    binary->remove_prefix(n);
    if (!st.ok()) return Invalid(where + std::string(st.message()));
    return absl::OkStatus();
  }
  if (data == nullptr) return Invalid(where + "'data' is missing");
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
    case DataType::kBool:
      return json::value(t.At<uint8_t>(i) != 0);
    case DataType::kUint8:
      return json::value(t.At<uint8_t>(i));
    case DataType::kUint16:
      return json::value(t.At<uint16_t>(i));
    case DataType::kUint32:
      return json::value(t.At<uint32_t>(i));
    case DataType::kUint64:
      return json::value(t.At<uint64_t>(i));
    case DataType::kInt8:
      return json::value(t.At<int8_t>(i));
    case DataType::kInt16:
      return json::value(t.At<int16_t>(i));
    case DataType::kInt32:
      return json::value(t.At<int32_t>(i));
    case DataType::kInt64:
      return json::value(t.At<int64_t>(i));
    case DataType::kFp16:
      return json::value(nullptr);
    case DataType::kFp32:
      return json::value(FloatForJson(t.At<float>(i)));
    case DataType::kFp64:
      return json::value(t.At<double>(i));
    case DataType::kBytes:
      return json::value(t.bytes[i]);
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

absl::Status AppendJsonData(const json::value& data, int64_t limit, Tensor& t, int64_t& count) {
  return Flatten(data, t, count, limit, 0);
}

std::string ShapeString(absl::Span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += StrCat(i ? "," : "", shape[i]);
  return s + "]";
}

InputSetCheck::InputSetCheck(const model::ModelMetadata& metadata)
    : metadata_(metadata), seen_(metadata.inputs.size(), false) {}

absl::StatusOr<size_t> InputSetCheck::Claim(std::string_view name) {
  for (size_t i = 0; i < metadata_.inputs.size(); ++i) {
    if (metadata_.inputs[i].name != name) continue;
    if (seen_[i]) return Invalid(StrCat("input '", name, "' given more than once"));
    seen_[i] = true;
    return i;
  }
  return Invalid(StrCat("unknown input '", name, "' for model '", metadata_.name, "'"));
}

absl::Status InputSetCheck::Finish(const model::InferInput& input) const {
  for (size_t i = 0; i < metadata_.inputs.size(); ++i) {
    if (!seen_[i]) return Invalid(StrCat("missing input '", metadata_.inputs[i].name, "'"));
  }
  if (metadata_.max_batch_size > 0 && input.inputs.size() > 1) {
    for (const Tensor& t : input.inputs) {
      if (t.shape.empty() || t.shape[0] != input.inputs[0].shape[0]) {
        return Invalid("all inputs must have the same batch dimension");
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> CheckInputTensor(const model::ModelMetadata& md,
                                         const model::TensorSpec& spec, std::string_view datatype,
                                         absl::Span<const int64_t> shape) {
  const std::string where = StrCat("input '", spec.name, "': ");
  auto type = model::ParseDataType(datatype);
  if (!type) return Invalid(StrCat(where, "unknown datatype '", datatype, "'"));
  if (*type != spec.datatype) {
    return Invalid(StrCat(where, "datatype ", model::DataTypeName(*type),
                          " does not match the model's ", model::DataTypeName(spec.datatype)));
  }
  for (int64_t d : shape) {
    if (d < 0) {
      return Invalid(StrCat(where, "shape ", ShapeString(shape), " has a negative dimension"));
    }
  }
  if (!model::ShapeMatches(spec.shape, shape)) {
    return Invalid(StrCat(where, "shape ", ShapeString(shape), " does not match the model's ",
                          ShapeString(spec.shape)));
  }
  if (md.max_batch_size > 0 && !shape.empty() && shape[0] > md.max_batch_size) {
    return Invalid(StrCat(where, "batch size ", shape[0], " exceeds the model's maximum of ",
                          md.max_batch_size));
  }
  const int64_t count = model::ElementCount(shape);
  if (count < 0) return Invalid(where + "shape is too large");
  return count;
}

absl::Status CheckRequestedOutput(const model::ModelMetadata& md, std::string_view name) {
  for (const auto& s : md.outputs) {
    if (s.name == name) return absl::OkStatus();
  }
  return Invalid(StrCat("unknown output '", name, "' for model '", md.name, "'"));
}

absl::Status DecodeRawTensor(std::string_view raw, int64_t count, std::string_view source,
                             Tensor& t) {
  if (t.datatype != DataType::kBytes) {
    const size_t size = model::ElementSize(t.datatype);
    if (raw.size() % size != 0 || raw.size() / size != static_cast<uint64_t>(count)) {
      return Invalid(StrCat(source, " holds ", raw.size(), " bytes but shape ",
                            ShapeString(t.shape), " of ", model::DataTypeName(t.datatype),
                            " needs ", static_cast<uint64_t>(count) * size));
    }
    t.raw.assign(raw.begin(), raw.end());
    return absl::OkStatus();
  }
  // BYTES: each element is a 4-byte little-endian length, then that many bytes.
  t.bytes.reserve(
      static_cast<size_t>(std::min<int64_t>(count, static_cast<int64_t>(raw.size() / 4))));
  size_t pos = 0;
  while (pos < raw.size()) {
    if (raw.size() - pos < 4) {
      return Invalid(
          StrCat(source, ": element ", t.bytes.size(), " is cut off inside its 4-byte length"));
    }
    const auto* p = reinterpret_cast<const unsigned char*>(raw.data() + pos);
    const uint32_t len =
        uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
    pos += 4;
    if (raw.size() - pos < len) {
      return Invalid(StrCat(source, ": element ", t.bytes.size(), " claims ", len,
                            " bytes but only ", raw.size() - pos, " remain"));
    }
    if (static_cast<int64_t>(t.bytes.size()) >= count) {
      return Invalid(StrCat(source, " holds more elements than shape ", ShapeString(t.shape),
                            " needs (", count, ")"));
    }
    t.bytes.emplace_back(raw.substr(pos, len));
    pos += len;
  }
  if (static_cast<int64_t>(t.bytes.size()) != count) {
    return Invalid(StrCat("has ", t.bytes.size(), " data elements but shape ", ShapeString(t.shape),
                          " needs ", count));
  }
  return absl::OkStatus();
}

void AppendRawBytes(const std::vector<std::string>& elements, std::string& out) {
  for (const std::string& e : elements) {
    const auto len = static_cast<uint32_t>(e.size());
    const char prefix[4] = {static_cast<char>(len & 0xff), static_cast<char>((len >> 8) & 0xff),
                            static_cast<char>((len >> 16) & 0xff),
                            static_cast<char>((len >> 24) & 0xff)};
    out.append(prefix, 4);
    out.append(e);
  }
}

double FloatForJson(float v) {
  if (!std::isfinite(v)) return 0.0;
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  double d = v;
  std::from_chars(buf, r.ptr, d);
  return d;
}

absl::StatusOr<DecodedInferRequest> DecodeInferRequest(std::string_view body,
                                                       const model::ModelMetadata& md,
                                                       std::optional<size_t> header_length) {
  std::string_view binary_section;
  if (header_length) {
    if (*header_length > body.size()) {
      return Invalid(StrCat("Inference-Header-Content-Length is ", *header_length,
                            " but the body has only ", body.size(), " bytes"));
    }
    binary_section = body.substr(*header_length);
    body = body.substr(0, *header_length);
  }
  std::string_view* binary = header_length ? &binary_section : nullptr;
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
    if (const json::value* b = params->get_object().if_contains("binary_data_output")) {
      if (!b->is_bool()) return Invalid("parameter 'binary_data_output' must be true or false");
      out.binary_data_output = b->get_bool();
    }
    if (const json::value* timeout = params->get_object().if_contains("timeout")) {
      if (timeout->is_int64() && timeout->get_int64() >= 0)
        out.timeout_us = timeout->get_int64();
      else if (timeout->is_uint64())
        out.timeout_us = std::numeric_limits<int64_t>::max();
      else
        return Invalid("parameter 'timeout' must be a non-negative integer (microseconds)");
    }
  }
  const json::value* inputs = root.if_contains("inputs");
  if (inputs == nullptr || !inputs->is_array()) return Invalid("'inputs' must be an array");
  out.input.inputs.resize(md.inputs.size());
  InputSetCheck input_set(md);
  for (const json::value& v : inputs->get_array()) {
    if (!v.is_object()) return Invalid("each input must be an object");
    const json::value* name = v.get_object().if_contains("name");
    if (name == nullptr || !name->is_string()) return Invalid("each input needs a string 'name'");
    auto idx = input_set.Claim(std::string_view(name->get_string()));
    if (!idx.ok()) return idx.status();
    const size_t i = *idx;
    if (absl::Status st =
            DecodeInput(v.get_object(), md.inputs[i], md, binary, out.input.inputs[i]);
        !st.ok()) {
      return st;
    }
  }
  if (absl::Status st = input_set.Finish(out.input); !st.ok()) return st;
  if (binary != nullptr && !binary->empty()) {
    return Invalid(
        StrCat(binary->size(), " bytes of binary data follow the JSON but no input claims them"));
  }
  if (const json::value* outputs = root.if_contains("outputs")) {
    if (!outputs->is_array()) return Invalid("'outputs' must be an array");
    for (const json::value& o : outputs->get_array()) {
      const json::value* name = o.is_object() ? o.get_object().if_contains("name") : nullptr;
      if (name == nullptr || !name->is_string())
        return Invalid("each requested output needs a string 'name'");
      const std::string_view n(name->get_string());
      if (absl::Status st = CheckRequestedOutput(md, n); !st.ok()) return st;
      out.outputs.emplace_back(n);
      if (const json::value* params = o.get_object().if_contains("parameters")) {
        if (!params->is_object())
          return Invalid(StrCat("output '", n, "': 'parameters' must be an object"));
        if (const json::value* b = params->get_object().if_contains("binary_data")) {
          if (!b->is_bool())
            return Invalid(StrCat("output '", n, "': 'binary_data' must be true or false"));
          if (b->get_bool()) out.binary_outputs.emplace_back(n);
        }
      }
    }
  }
  return out;
}

std::string EncodeInferResponse(const model::ModelMetadata& md, std::string_view id,
                                const model::InferOutput& output,
                                const std::vector<std::string>& requested) {
  return EncodeInferResponse(md, id, output, requested, {}, false).body;
}

EncodedInferResponse EncodeInferResponse(const model::ModelMetadata& md, std::string_view id,
                                         const model::InferOutput& output,
                                         const std::vector<std::string>& requested,
                                         const std::vector<std::string>& binary_outputs,
                                         bool all_binary) {
  std::string binary;
  bool any_binary = false;
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
    bool as_binary = all_binary;
    for (const auto& b : binary_outputs) as_binary = as_binary || b == t.name;
    if (as_binary) {
      const size_t before = binary.size();
      if (t.datatype == DataType::kBytes) {
        AppendRawBytes(t.bytes, binary);
      } else {
        binary.append(reinterpret_cast<const char*>(t.raw.data()), t.raw.size());
      }
      any_binary = true;
      outs.push_back(
          json::object{{"name", t.name},
                       {"datatype", model::DataTypeName(t.datatype)},
                       {"shape", std::move(shape)},
                       {"parameters", json::object{{"binary_data_size", binary.size() - before}}}});
      continue;
    }
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
  EncodedInferResponse r;
  r.body = JsonSerialize(root);
  if (any_binary) {
    r.header_length = r.body.size();
    r.body += binary;
  }
  return r;
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
  // Written directly rather than through a json::object: this runs once per analyze request.
  std::string out;
  out.reserve(48 + label.size() + model.size());
  out += R"({"sentiment":)";
  JsonAppendString(out, label);
  out += R"(,"confidence":)";
  JsonAppendDouble(out, FloatForJson(confidence));
  out += R"(,"model":)";
  JsonAppendString(out, model);
  out.push_back('}');
  return out;
}

}  // namespace galley::protocol
