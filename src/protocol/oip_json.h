// JSON encoding and decoding for the Open Inference Protocol's REST API (KServe v2,
// https://github.com/kserve/open-inference-protocol, "HTTP/REST") and for the seed's
// POST /inference/analyze, plus the checks of an inference request against a model that the REST
// and gRPC front-ends share. Pure functions: no I/O, no clocks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/backend.h"

namespace boost::json {
class value;
}  // namespace boost::json

namespace galley::protocol {

// A decoded $inference_request.
struct DecodedInferRequest {
  std::string id;                     // echoed in the response when present
  model::InferInput input;            // in the model's input order
  std::vector<std::string> outputs;   // requested outputs; empty means all
  std::optional<int64_t> timeout_us;  // parameters.timeout (Triton: microseconds)
  // Binary tensor data extension: outputs asked for with parameters.binary_data = true, and
  // parameters.binary_data_output = true (every output binary).
  std::vector<std::string> binary_outputs;
  bool binary_data_output = false;
};

// --- Checks shared by the front-ends (errors are InvalidArgument with a message for the client).

// Tracks which of a model's inputs a request has given. `metadata` must outlive it.
class InputSetCheck {
 public:
  explicit InputSetCheck(const model::ModelMetadata& metadata);
  // Index in the model's inputs of the input called `name`; an error if the model has no such
  // input or the request gave it before.
  absl::StatusOr<size_t> Claim(std::string_view name);
  // After every input was claimed and decoded into `input` (in the model's input order): an error
  // if one is missing or, for a model that batches, the inputs' batch dimensions differ.
  absl::Status Finish(const model::InferInput& input) const;

 private:
  const model::ModelMetadata& metadata_;
  std::vector<bool> seen_;
};

// Checks an input's datatype (by its protocol name) and shape against `spec`, one of the inputs
// of `metadata`: the datatype is known and the spec's, no dimension is negative, the shape matches
// (-1 matches any size) and its batch dimension is within max_batch_size. Returns the number of
// elements the shape holds. Messages start with "input '<name>': ".
absl::StatusOr<int64_t> CheckInputTensor(const model::ModelMetadata& metadata,
                                         const model::TensorSpec& spec, std::string_view datatype,
                                         absl::Span<const int64_t> shape);

// An error unless `name` is one of the model's outputs.
absl::Status CheckRequestedOutput(const model::ModelMetadata& metadata, std::string_view name);

// Fills `t` (name, datatype and shape already set) from raw bytes holding `count` elements:
// fixed-size elements packed little-endian; BYTES elements each a 4-byte little-endian length,
// then its bytes (the layout of gRPC's raw_input_contents and of the REST binary data
// extension). `source` names the bytes in errors.
absl::Status DecodeRawTensor(std::string_view raw, int64_t count, std::string_view source,
                             model::Tensor& t);
// Appends BYTES elements in that layout.
void AppendRawBytes(const std::vector<std::string>& elements, std::string& out);

// Appends the leaves of JSON `data` (flat or nested arrays, row-major) to `t` (datatype set),
// counting them in `count`; InvalidArgument past `limit` elements or for a value out of range.
absl::Status AppendJsonData(const boost::json::value& data, int64_t limit, model::Tensor& t,
                            int64_t& count);

// "[2,3]".
std::string ShapeString(absl::Span<const int64_t> shape);

// --- REST

// Parses and checks an inference request body against the model: every input present once and
// no others, datatypes and shapes as declared (-1 matches any size), the batch dimension within
// max_batch_size, element count equal to the shape's, element types and ranges per datatype,
// requested outputs known. Data may be flat or nested row-major. Errors are InvalidArgument
// with a message for the client.
//
// Triton's binary tensor data extension (github.com/triton-inference-server/server,
// docs/protocol/extension_binary_data.md): with `header_length` (the request's
// Inference-Header-Content-Length), the JSON is the first header_length bytes and inputs with
// parameters.binary_data_size take their elements, in order, from the bytes after it (raw
// little-endian elements; BYTES elements length-prefixed); every byte must be claimed.
absl::StatusOr<DecodedInferRequest> DecodeInferRequest(
    std::string_view body, const model::ModelMetadata& metadata,
    std::optional<size_t> header_length = std::nullopt);

// $inference_response: model_name, model_version, id (if any), outputs (only `requested` when
// non-empty), each with name, datatype, shape and flat data.
std::string EncodeInferResponse(const model::ModelMetadata& metadata, std::string_view id,
                                const model::InferOutput& output,
                                const std::vector<std::string>& requested);

// The same, with the outputs named in `binary_outputs` (or all, with `all_binary`) sent as
// binary data after the JSON; header_length is then the JSON's length, for the response's
// Inference-Header-Content-Length header.
struct EncodedInferResponse {
  std::string body;
  std::optional<size_t> header_length;
};
EncodedInferResponse EncodeInferResponse(const model::ModelMetadata& metadata, std::string_view id,
                                         const model::InferOutput& output,
                                         const std::vector<std::string>& requested,
                                         const std::vector<std::string>& binary_outputs,
                                         bool all_binary);

// $metadata_model_response and $metadata_server_response.
std::string EncodeModelMetadata(const model::ModelMetadata& metadata);
std::string EncodeServerMetadata(std::string_view name, std::string_view version);

// POST /inference/analyze: {"text": "..."}; the text must be a non-blank string.
absl::StatusOr<std::string> DecodeAnalyzeRequest(std::string_view body);
// {"sentiment": label, "confidence": c}, plus "model" naming the model that answered.
std::string EncodeAnalyzeResponse(std::string_view label, float confidence, std::string_view model);

// A float as JSON with the shortest decimal that round-trips the float (0.8316f -> 0.8316).
double FloatForJson(float v);

}  // namespace galley::protocol
