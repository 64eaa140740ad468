// JSON encoding and decoding for the Open Inference Protocol's REST API (KServe v2,
// https://github.com/kserve/open-inference-protocol, "HTTP/REST") and for the seed's
// POST /inference/analyze. Pure functions: no I/O, no clocks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/backend.h"

namespace galley::serve {

// A decoded $inference_request.
struct DecodedInferRequest {
  std::string id;                          // echoed in the response when present
  model::InferInput input;                 // in the model's input order
  std::vector<std::string> outputs;        // requested outputs; empty means all
  std::optional<int64_t> timeout_us;       // parameters.timeout (Triton: microseconds)
};

// Parses and checks an inference request body against the model: every input present once and
// no others, datatypes and shapes as declared (-1 matches any size), the batch dimension within
// max_batch_size, element count equal to the shape's, element types and ranges per datatype,
// requested outputs known. Data may be flat or nested row-major. Errors are InvalidArgument
// with a message for the client.
absl::StatusOr<DecodedInferRequest> DecodeInferRequest(std::string_view body,
                                                       const model::ModelMetadata& metadata);

// $inference_response: model_name, model_version, id (if any), outputs (only `requested` when
// non-empty), each with name, datatype, shape and flat data.
std::string EncodeInferResponse(const model::ModelMetadata& metadata, std::string_view id,
                                const model::InferOutput& output,
                                const std::vector<std::string>& requested);

// $metadata_model_response and $metadata_server_response.
std::string EncodeModelMetadata(const model::ModelMetadata& metadata);
std::string EncodeServerMetadata(std::string_view name, std::string_view version);

// POST /inference/analyze: {"text": "..."}; the text must be a non-blank string.
absl::StatusOr<std::string> DecodeAnalyzeRequest(std::string_view body);
// {"sentiment": label, "confidence": c}, plus "model" naming the model that answered.
std::string EncodeAnalyzeResponse(std::string_view label, float confidence,
                                  std::string_view model);

// A float as JSON with the shortest decimal that round-trips the float (0.8316f -> 0.8316).
double FloatForJson(float v);

}  // namespace galley::serve
