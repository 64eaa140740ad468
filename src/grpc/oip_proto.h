// Conversions between the Open Inference Protocol's gRPC messages (proto/grpc_service.proto) and
// Galley's tensors, and the deadline rule of the gRPC front-end. Pure functions: no I/O, no
// clocks. The checks against the model are serve's (oip_json.h), shared with the REST front-end.
//
// The generated message types are only declared here, so that this header can be included
// without the generated headers; callers that build or read messages include
// "grpc_service.pb.h" themselves.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "model/backend.h"
#include "protocol/oip_json.h"

namespace inference {
class InferTensorContents;
class ModelInferRequest;
class ModelInferResponse;
class ModelMetadataResponse;
}  // namespace inference

namespace galley::rpc {

// Checks `request` against the model and converts it: every input present once and no others,
// datatypes and shapes as declared, the batch dimension within max_batch_size, element counts
// equal to the shapes', values in range for their datatype, requested outputs known. Elements
// come either from every input's `contents` (in the typed field for its datatype) or from
// raw_input_contents (one entry per input; BYTES elements each with a 4-byte little-endian length
// prefix), never from both. Parameter "timeout" (int64 or uint64, microseconds, as Triton) is
// read into timeout_us. Errors are InvalidArgument with a message for the client.
absl::StatusOr<protocol::DecodedInferRequest> DecodeInferRequest(
    const ::inference::ModelInferRequest& request, const model::ModelMetadata& metadata);

// The response for `output`: model name and version, `id` when not empty, and the outputs
// (only `requested` ones when it is not empty, in the model's order) with their data in
// raw_output_contents, as Triton answers and tritonclient reads.
::inference::ModelInferResponse EncodeInferResponse(const model::ModelMetadata& metadata,
                                                    std::string_view id,
                                                    const model::InferOutput& output,
                                                    const std::vector<std::string>& requested);

::inference::ModelMetadataResponse EncodeModelMetadata(const model::ModelMetadata& metadata);

// Fills `t` (name, datatype and shape set) from typed `contents` holding `count` elements: the
// field for t's datatype only, values in range for it. InvalidArgument otherwise.
absl::Status DecodeTypedContents(const ::inference::InferTensorContents& contents, int64_t count,
                                 model::Tensor& t);

// A request's deadline: the client's gRPC deadline (`client_left`: the time it had left when
// the request arrived) when it set one, else `timeout_us` (parameter "timeout") if > 0, else
// now + `default_timeout` if > 0, else none (TimePoint::max()). Like the REST front-end's
// X-Request-Timeout-Ms, the client's deadline is capped at one day.
TimePoint RequestDeadline(std::optional<Duration> client_left, std::optional<int64_t> timeout_us,
                          std::chrono::milliseconds default_timeout, TimePoint now);

}  // namespace galley::rpc
