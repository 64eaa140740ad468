// The Open Inference Protocol's gRPC calls as its REST requests, and REST answers as gRPC
// messages: what a gRPC front-end needs to forward calls to a REST handler (the gateway's gRPC
// door, which then takes the same path as the gateway's REST requests: breakers, retries,
// deadlines, fallback, API keys). Pure functions: no I/O, no clocks.
//
// Tensors cross as Triton's binary tensor data extension (the JSON header, then each input's
// bytes, Inference-Header-Content-Length giving the header's length), so that no number is
// printed and parsed on the way; every output is asked for in binary the same way. The replica
// checks the request against its model, as it does any REST request.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "grpcpp/support/status.h"
#include "http/message.h"

namespace inference {
class ModelInferRequest;
class ModelInferResponse;
class ModelMetadataResponse;
}  // namespace inference

namespace galley::rpc {

// POST /v2/models/{name}[/versions/{version}]/infer for `request`: its id and parameters, every
// input with its datatype, shape and parameters, the data of each (raw_input_contents, or its
// typed `contents` as little-endian bytes; BYTES elements with 4-byte length prefixes) in binary,
// and the requested outputs (all when none) asked for in binary. InvalidArgument for a request
// that cannot be written (an unknown datatype, a shape that does not match the typed contents,
// raw and typed data mixed, an unsafe model name).
absl::StatusOr<http::Request> RestInferRequest(const ::inference::ModelInferRequest& request);

// GET /v2/models/{name}[/versions/{version}] (with `suffix` "/ready" for readiness). The name
// and version are checked as RestInferRequest does.
absl::StatusOr<http::Request> RestModelRequest(std::string_view name, std::string_view version,
                                               std::string_view suffix);

// The gRPC code for an HTTP status: 400 INVALID_ARGUMENT, 401 UNAUTHENTICATED, 403
// PERMISSION_DENIED, 404 NOT_FOUND, 408 and 504 DEADLINE_EXCEEDED, 429 RESOURCE_EXHAUSTED (as
// `galley serve` answers a full queue over gRPC), 501 UNIMPLEMENTED, 503 UNAVAILABLE, any other
// 5xx INTERNAL, anything else UNKNOWN (the mapping of grpc/doc/http-grpc-status-mapping.md, with
// the protocol's own meanings for 400, 429 and 504).
::grpc::StatusCode GrpcCodeForHttp(unsigned status);

// The gRPC status of a REST answer that is not a success: its code by GrpcCodeForHttp and the
// message of its JSON {"error": ...} body (or the status's reason when the body has none).
::grpc::Status GrpcErrorFor(const http::Response& response);

// The ModelInferResponse for a REST infer answer (2xx): model name and version, id, response
// parameters, and each output's datatype and shape with its data in raw_output_contents (from the
// binary part, or converted from JSON `data`). An answer that is not a success gives
// GrpcErrorFor; one that cannot be read, INTERNAL naming what is wrong.
::grpc::Status GrpcInferResponse(const http::Response& response,
                                 ::inference::ModelInferResponse* out);

// The ModelMetadataResponse for a REST model metadata answer, or its error as above.
::grpc::Status GrpcModelMetadata(const http::Response& response,
                                 ::inference::ModelMetadataResponse* out);

}  // namespace galley::rpc
