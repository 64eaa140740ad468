#include "grpc/oip_rest.h"

#include <charconv>
#include <cstring>
#include <limits>

#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"
#include "common/json.h"
#include "common/strings.h"
#include "grpc/oip_proto.h"
#include "grpc_service.pb.h"
#include "protocol/http_util.h"
#include "protocol/oip_json.h"

namespace galley::rpc {
namespace {

namespace json = boost::json;
namespace bhttp = boost::beast::http;
using model::DataType;
using model::Tensor;

absl::Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(std::string(what));
}

// A path segment: RFC 3986 unreserved characters as they are, every other byte percent-encoded,
// so that no name can reach another endpoint ("../", "?", "#").
absl::StatusOr<std::string> Segment(std::string_view s, std::string_view what) {
  if (s.empty()) return Invalid(StrCat(what, " is empty"));
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (out == "." || out == "..") return Invalid(StrCat(what, " '", s, "' is not a name"));
  return out;
}

absl::StatusOr<std::string> ModelPath(std::string_view name, std::string_view version) {
  auto n = Segment(name, "model_name");
  if (!n.ok()) return n.status();
  std::string path = StrCat("/v2/models/", *n);
  if (!version.empty()) {
    auto v = Segment(version, "model_version");
    if (!v.ok()) return v.status();
    path += StrCat("/versions/", *v);
  }
  return path;
}

json::value ParameterJson(const ::inference::InferParameter& p) {
  switch (p.parameter_choice_case()) {
    case ::inference::InferParameter::kBoolParam:
      return p.bool_param();
    case ::inference::InferParameter::kInt64Param:
      return p.int64_param();
    case ::inference::InferParameter::kStringParam:
      return json::string(p.string_param());
    case ::inference::InferParameter::kDoubleParam:
      return p.double_param();
    case ::inference::InferParameter::kUint64Param:
      return p.uint64_param();
    default:
      return nullptr;
  }
}

template <class Map>
json::object ParametersJson(const Map& params) {
  json::object out;
  for (const auto& [key, value] : params) {
    json::value v = ParameterJson(value);
    if (!v.is_null()) out[key] = std::move(v);
  }
  return out;
}

// A JSON parameter as an InferParameter; false for a kind the protocol has no field for.
bool ParameterFromJson(const json::value& v, ::inference::InferParameter& p) {
  if (v.is_bool())
    p.set_bool_param(v.get_bool());
  else if (v.is_int64())
    p.set_int64_param(v.get_int64());
  else if (v.is_uint64())
    p.set_uint64_param(v.get_uint64());
  else if (v.is_double())
    p.set_double_param(v.get_double());
  else if (v.is_string())
    p.set_string_param(std::string(v.get_string()));
  else
    return false;
  return true;
}

// The elements of a shape, or an error for a negative dimension or an overflowing product.
absl::StatusOr<int64_t> ShapeCount(const google::protobuf::RepeatedField<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return Invalid(StrCat("shape has a negative dimension (", d, ")"));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return Invalid("shape is too large");
    n *= d;
  }
  return n;
}

// An input's data as the binary extension carries it: raw_input_contents as they are, typed
// contents converted (range-checked) to little-endian elements or length-prefixed BYTES.
absl::Status AppendInputBytes(const ::inference::ModelInferRequest& req, int i, std::string& out,
                              size_t& size) {
  const auto& in = req.inputs(i);
  if (req.raw_input_contents_size() > 0) {
    size = req.raw_input_contents(i).size();
    out += req.raw_input_contents(i);
    return absl::OkStatus();
  }
  const std::optional<DataType> type = model::ParseDataType(in.datatype());
  if (!type) return Invalid(StrCat("unknown datatype '", in.datatype(), "'"));
  auto count = ShapeCount(in.shape());
  if (!count.ok()) return count.status();
  Tensor t;
  t.name = in.name();
  t.datatype = *type;
  t.shape.assign(in.shape().begin(), in.shape().end());
  if (absl::Status st = DecodeTypedContents(in.contents(), *count, t); !st.ok()) return st;
  const size_t before = out.size();
  if (*type == DataType::kBytes) {
    protocol::AppendRawBytes(t.bytes, out);
  } else {
    out.append(reinterpret_cast<const char*>(t.raw.data()), t.raw.size());
  }
  size = out.size() - before;
  return absl::OkStatus();
}

std::string_view View(const json::string& s) { return {s.data(), s.size()}; }

// The message of a REST error body {"error": "..."}, or "" when it has none.
std::string ErrorMessage(const http::Response& res) {
  boost::system::error_code ec;
  json::value v = json::parse(res.body(), ec);
  if (!ec && v.is_object()) {
    if (const json::value* e = v.get_object().if_contains("error"); e && e->is_string()) {
      return std::string(View(e->get_string()));
    }
  }
  return "";
}

::grpc::Status Internal(std::string_view what) {
  return {::grpc::StatusCode::INTERNAL, StrCat("the replica's answer cannot be read: ", what)};
}

// The JSON part of an answer (all of it, or Inference-Header-Content-Length bytes) and the
// binary part after it.
absl::StatusOr<json::object> AnswerJson(const http::Response& res, std::string_view& binary) {
  std::string_view body = res.body();
  size_t json_length = body.size();
  if (auto it = res.find(protocol::kInferenceHeaderLength); it != res.end()) {
    const std::string_view v(it->value().data(), it->value().size());
    size_t n = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || end != v.data() + v.size() || n > body.size()) {
      return Invalid(StrCat("bad ", protocol::kInferenceHeaderLength, " '", v, "'"));
    }
    json_length = n;
  }
  binary = body.substr(json_length);
  boost::system::error_code ec;
  json::value v = json::parse(body.substr(0, json_length), ec);
  if (ec) return Invalid(StrCat("malformed JSON: ", ec.message()));
  if (!v.is_object()) return Invalid("the JSON is not an object");
  return std::move(v.get_object());
}

std::string StringField(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(View(v->get_string())) : std::string();
}

absl::StatusOr<std::vector<int64_t>> Shape(const json::object& o) {
  const json::value* v = o.if_contains("shape");
  if (v == nullptr || !v->is_array()) return Invalid("'shape' is not an array");
  std::vector<int64_t> shape;
  for (const json::value& d : v->get_array()) {
    if (!d.is_int64()) return Invalid("'shape' holds a value that is not an integer");
    shape.push_back(d.get_int64());
  }
  return shape;
}

// One output of an infer answer into `out` (its tensor metadata) and `raw` (its data).
absl::Status DecodeOutput(const json::object& o, std::string_view& binary,
                          ::inference::ModelInferResponse::InferOutputTensor& out,
                          std::string& raw) {
  out.set_name(StringField(o, "name"));
  const std::string datatype = StringField(o, "datatype");
  const std::optional<DataType> type = model::ParseDataType(datatype);
  if (!type) return Invalid(StrCat("output '", out.name(), "' has datatype '", datatype, "'"));
  out.set_datatype(datatype);
  auto shape = Shape(o);
  if (!shape.ok()) return Invalid(StrCat("output '", out.name(), "': ", shape.status().message()));
  for (int64_t d : *shape) out.add_shape(d);
  const json::value* params = o.if_contains("parameters");
  const json::value* size = params != nullptr && params->is_object()
                                ? params->get_object().if_contains("binary_data_size")
                                : nullptr;
  if (size != nullptr) {
    if (!size->is_int64() || size->get_int64() < 0 ||
        static_cast<uint64_t>(size->get_int64()) > binary.size()) {
      return Invalid(StrCat("output '", out.name(), "': binary_data_size beyond the binary data"));
    }
    const auto n = static_cast<size_t>(size->get_int64());
    raw.assign(binary.substr(0, n));
    binary.remove_prefix(n);
    return absl::OkStatus();
  }
  const json::value* data = o.if_contains("data");
  if (data == nullptr) return Invalid(StrCat("output '", out.name(), "' has no data"));
  Tensor t;
  t.datatype = *type;
  t.shape = *shape;
  int64_t count = 0;
  if (absl::Status st = protocol::AppendJsonData(*data, model::ElementCount(t.shape), t, count);
      !st.ok()) {
    return Invalid(StrCat("output '", out.name(), "': ", st.message()));
  }
  if (*type == DataType::kBytes) {
    protocol::AppendRawBytes(t.bytes, raw);
  } else {
    raw.assign(reinterpret_cast<const char*>(t.raw.data()), t.raw.size());
  }
  return absl::OkStatus();
}

void AddTensorMetadata(const json::object& o,
                       ::inference::ModelMetadataResponse::TensorMetadata* t) {
  t->set_name(StringField(o, "name"));
  t->set_datatype(StringField(o, "datatype"));
  if (auto shape = Shape(o); shape.ok()) {
    for (int64_t d : *shape) t->add_shape(d);
  }
}

bool Success(const http::Response& res) { return res.result_int() / 100 == 2; }

}  // namespace

absl::StatusOr<http::Request> RestInferRequest(const ::inference::ModelInferRequest& req) {
  auto path = ModelPath(req.model_name(), req.model_version());
  if (!path.ok()) return path.status();
  const bool raw = req.raw_input_contents_size() > 0;
  if (raw && req.raw_input_contents_size() != req.inputs_size()) {
    return Invalid(StrCat("raw_input_contents has ", req.raw_input_contents_size(),
                          " entries but the request has ", req.inputs_size(),
                          " inputs; give one entry per input, in the order of 'inputs'"));
  }
  json::object doc;
  if (!req.id().empty()) doc["id"] = req.id();
  if (!req.parameters().empty()) doc["parameters"] = ParametersJson(req.parameters());
  json::array inputs;
  std::string binary;
  for (int i = 0; i < req.inputs_size(); ++i) {
    const auto& in = req.inputs(i);
    if (raw && in.has_contents()) {
      return Invalid(StrCat("input '", in.name(),
                            "': sets 'contents' but the request uses raw_input_contents; do not "
                            "mix the two: give every input's data one way"));
    }
    size_t size = 0;
    if (absl::Status st = AppendInputBytes(req, i, binary, size); !st.ok()) {
      return Invalid(StrCat("input '", in.name(), "': ", st.message()));
    }
    json::object params = ParametersJson(in.parameters());
    params["binary_data_size"] = size;
    json::array shape;
    for (int64_t d : in.shape()) shape.push_back(d);
    inputs.push_back(json::object{{"name", in.name()},
                                  {"datatype", in.datatype()},
                                  {"shape", std::move(shape)},
                                  {"parameters", std::move(params)}});
  }
  doc["inputs"] = std::move(inputs);
  if (req.outputs_size() > 0) {
    json::array outputs;
    for (const auto& o : req.outputs()) {
      json::object params = ParametersJson(o.parameters());
      params["binary_data"] = true;
      outputs.push_back(json::object{{"name", o.name()}, {"parameters", std::move(params)}});
    }
    doc["outputs"] = std::move(outputs);
  } else {
    json::object& params = doc["parameters"].emplace_object();
    if (!req.parameters().empty()) params = ParametersJson(req.parameters());
    params["binary_data_output"] = true;
  }
  std::string body = JsonSerialize(doc);
  const size_t header_length = body.size();
  body += binary;
  http::Request out{http::Verb::post, StrCat(*path, "/infer"), 11};
  out.set(bhttp::field::content_type, "application/octet-stream");
  out.set(protocol::kInferenceHeaderLength, std::to_string(header_length));
  out.body() = std::move(body);
  out.prepare_payload();
  return out;
}

absl::StatusOr<http::Request> RestModelRequest(std::string_view name, std::string_view version,
                                               std::string_view suffix) {
  auto path = ModelPath(name, version);
  if (!path.ok()) return path.status();
  http::Request out{http::Verb::get, StrCat(*path, suffix), 11};
  out.prepare_payload();
  return out;
}

::grpc::StatusCode GrpcCodeForHttp(unsigned status) {
  switch (status) {
    case 400:
      return ::grpc::StatusCode::INVALID_ARGUMENT;
    case 401:
      return ::grpc::StatusCode::UNAUTHENTICATED;
    case 403:
      return ::grpc::StatusCode::PERMISSION_DENIED;
    case 404:
      return ::grpc::StatusCode::NOT_FOUND;
    case 408:
    case 504:
      return ::grpc::StatusCode::DEADLINE_EXCEEDED;
    case 429:
      return ::grpc::StatusCode::RESOURCE_EXHAUSTED;
    case 501:
      return ::grpc::StatusCode::UNIMPLEMENTED;
    case 502:
    case 503:
      return ::grpc::StatusCode::UNAVAILABLE;
    default:
      return status >= 500 && status < 600 ? ::grpc::StatusCode::INTERNAL
                                           : ::grpc::StatusCode::UNKNOWN;
  }
}

::grpc::Status GrpcErrorFor(const http::Response& res) {
  std::string message = ErrorMessage(res);
  if (message.empty()) {
    message = StrCat("HTTP ", res.result_int(), " ",
                     std::string_view(res.reason().data(), res.reason().size()));
  }
  return {GrpcCodeForHttp(res.result_int()), std::move(message)};
}

::grpc::Status GrpcInferResponse(const http::Response& res, ::inference::ModelInferResponse* out) {
  if (!Success(res)) return GrpcErrorFor(res);
  std::string_view binary;
  auto doc = AnswerJson(res, binary);
  if (!doc.ok()) return Internal(std::string(doc.status().message()));
  out->set_model_name(StringField(*doc, "model_name"));
  out->set_model_version(StringField(*doc, "model_version"));
  out->set_id(StringField(*doc, "id"));
  if (const json::value* p = doc->if_contains("parameters"); p != nullptr && p->is_object()) {
    for (const auto& [key, value] : p->get_object()) {
      ::inference::InferParameter param;
      if (ParameterFromJson(value, param))
        (*out->mutable_parameters())[std::string(key)] = std::move(param);
    }
  }
  const json::value* outputs = doc->if_contains("outputs");
  if (outputs == nullptr || !outputs->is_array()) return Internal("'outputs' is not an array");
  for (const json::value& o : outputs->get_array()) {
    if (!o.is_object()) return Internal("an output is not an object");
    absl::Status st =
        DecodeOutput(o.get_object(), binary, *out->add_outputs(), *out->add_raw_output_contents());
    if (!st.ok()) return Internal(std::string(st.message()));
  }
  if (!binary.empty())
    return Internal(StrCat(binary.size(), " bytes of binary data no output claims"));
  return ::grpc::Status::OK;
}

::grpc::Status GrpcModelMetadata(const http::Response& res,
                                 ::inference::ModelMetadataResponse* out) {
  if (!Success(res)) return GrpcErrorFor(res);
  std::string_view binary;
  auto doc = AnswerJson(res, binary);
  if (!doc.ok()) return Internal(std::string(doc.status().message()));
  out->set_name(StringField(*doc, "name"));
  out->set_platform(StringField(*doc, "platform"));
  if (const json::value* v = doc->if_contains("versions"); v != nullptr && v->is_array()) {
    for (const json::value& e : v->get_array()) {
      if (e.is_string()) out->add_versions(std::string(View(e.get_string())));
    }
  }
  for (const char* key : {"inputs", "outputs"}) {
    const json::value* list = doc->if_contains(key);
    if (list == nullptr || !list->is_array()) continue;
    for (const json::value& t : list->get_array()) {
      if (!t.is_object()) continue;
      AddTensorMetadata(t.get_object(),
                        std::string_view(key) == "inputs" ? out->add_inputs() : out->add_outputs());
    }
  }
  return ::grpc::Status::OK;
}

}  // namespace galley::rpc
