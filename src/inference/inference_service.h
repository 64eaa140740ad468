// The one interface the front-ends (HTTP and gRPC) use to reach models. Front-ends never
// see queues, batchers or backends.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "model/backend.h"

namespace galley::inference {

// How a request ended. Rejections are expected outcomes, not errors (docs/api.md, "Errors").
enum class Outcome {
  kOk,
  kInvalidInput,      // the request does not fit the model: 400
  kModelNotFound,     // 404
  kModelNotReady,     // loaded but not ready yet, or failed: 503
  kQueueFull,         // the model's bounded queue is full: 429 + Retry-After
  kDeadlineExceeded,  // the deadline passed before the model ran it: 504
  kShuttingDown,      // the server is stopping and no longer takes work: 503
  kInternal,          // the backend failed: 500
};

std::string_view OutcomeName(Outcome outcome);  // "ok", "invalid_input", ...

struct InferRequest {
  std::string model;
  std::string version;  // empty: the model's only or default version
  model::InferInput input;
  TimePoint deadline;  // TimePoint::max(): none
  TimePoint arrival;   // when the front-end received it
};

struct InferResult {
  Outcome outcome = Outcome::kOk;
  std::string message;  // what went wrong, for the client; empty when ok
  model::InferOutput output;
  // When the request's batch ran (both unset when it never ran), and the batch's rows: for
  // traces (queue wait = arrival to exec_start, execution = exec_start to exec_end).
  TimePoint exec_start{}, exec_end{};
  int batch_rows = 0;
};

// Called exactly once per request, from any thread. Must not block.
using InferCallback = std::function<void(InferResult&&)>;

class InferenceService {
 public:
  virtual ~InferenceService() = default;

  // Metadata of every model this server knows, loaded or not.
  virtual std::vector<model::ModelMetadata> Models() const = 0;
  // The model's metadata, or nullptr if there is no such model/version. Valid while the service
  // lives (a model's metadata never changes), so a request may keep it without a copy.
  virtual const model::ModelMetadata* FindModel(std::string_view name,
                                                std::string_view version) const = 0;
  // Whether the model is loaded and warmed up.
  virtual bool ModelReady(std::string_view name, std::string_view version) const = 0;
  // For a model that this server knows but cannot serve (its config or file is broken, or it
  // failed to load): the message for the client, "model 'NAME' is unavailable: <why>". Empty when
  // it can serve, or when there is no such model.
  virtual std::string UnavailableMessage(std::string_view name) const { return {}; }
  // Whether every model is ready and the server is not draining.
  virtual bool Ready() const = 0;

  // Queues `request` and returns at once; `done` gets the result. Never blocks.
  virtual void Infer(InferRequest&& request, InferCallback done) = 0;
};

}  // namespace galley::inference
