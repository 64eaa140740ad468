#include "inference/model_service.h"

#include "common/log.h"
#include "common/strings.h"

namespace galley::inference {

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kInvalidInput:
      return "invalid_input";
    case Outcome::kModelNotFound:
      return "model_not_found";
    case Outcome::kModelNotReady:
      return "model_not_ready";
    case Outcome::kQueueFull:
      return "queue_full";
    case Outcome::kDeadlineExceeded:
      return "deadline_exceeded";
    case Outcome::kShuttingDown:
      return "shutting_down";
    case Outcome::kInternal:
      return "internal";
  }
  return "internal";
}

std::vector<model::InferInput> WarmupFor(const model::ModelMetadata& md) {
  model::InferInput in;
  for (const model::TensorSpec& spec : md.inputs) {
    model::Tensor t{spec.name, spec.datatype, spec.shape, {}, {}};
    for (int64_t& d : t.shape) d = d < 0 ? 1 : d;
    const int64_t n = t.element_count();
    if (n < 0) return {};
    if (spec.datatype == model::DataType::kBytes) {
      t.bytes.assign(static_cast<size_t>(n), "The food was great, but the service was NOT good :(");
    } else {
      t.raw.assign(static_cast<size_t>(n) * model::ElementSize(spec.datatype), 0);
    }
    in.inputs.push_back(std::move(t));
  }
  return {std::move(in)};
}

absl::Status ModelService::Start() {
  // Live from here; ready once every model has loaded (or failed: the others still serve).
  int loaded = 0;
  for (auto& [name, r] : runners_) {
    if (absl::Status st = r->Load(WarmupFor(r->metadata())); !st.ok()) {
      log::Error("model_load_failed", {{"model", name}, {"error", std::string(st.message())}});
      r->MarkFailed(std::string(st.message()));
      continue;
    }
    r->Start();
    ++loaded;
  }
  loaded_ = loaded;
  return absl::OkStatus();
}

void ModelService::AddModel(std::unique_ptr<ModelRunner> runner) {
  std::string name = runner->metadata().name;
  runners_.emplace(std::move(name), std::move(runner));
}

void ModelService::AddUnavailable(std::string name, std::string reason) {
  unavailable_.emplace(std::move(name), std::move(reason));
}

ModelRunner* ModelService::runner(std::string_view name) const {
  auto it = runners_.find(name);
  return it == runners_.end() ? nullptr : it->second.get();
}

ModelRunner* ModelService::Find(std::string_view name, std::string_view version) const {
  ModelRunner* r = runner(name);
  if (r == nullptr) return nullptr;
  if (!version.empty() && version != r->metadata().version) return nullptr;
  return r;
}

void ModelService::Stop() {
  for (auto& [name, r] : runners_) r->Stop();
}

std::vector<model::ModelMetadata> ModelService::Models() const {
  std::vector<model::ModelMetadata> out;
  for (const auto& [name, r] : runners_) out.push_back(r->metadata());
  return out;
}

const model::ModelMetadata* ModelService::FindModel(std::string_view name,
                                                    std::string_view version) const {
  ModelRunner* r = Find(name, version);
  return r == nullptr ? nullptr : &r->metadata();
}

bool ModelService::ModelReady(std::string_view name, std::string_view version) const {
  ModelRunner* r = Find(name, version);
  return r != nullptr && r->ready();
}

std::string ModelService::UnavailableMessage(std::string_view name) const {
  std::string_view why;
  if (auto it = unavailable_.find(name); it != unavailable_.end()) {
    why = it->second;
  } else if (ModelRunner* r = runner(name); r != nullptr && r->failed()) {
    why = r->failure();
  } else {
    return {};
  }
  std::string message = StrCat("model '", name, "' is unavailable: ", why);
  if (repository_root_.empty()) return message;
  // "<root>/m/1/model.onnx" -> "m/1/model.onnx"; the root alone -> "the model repository".
  std::string root = repository_root_;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  for (const auto& [from, to] :
       {std::pair<std::string, std::string>{root + "/", ""},
        std::pair<std::string, std::string>{root, "the model repository"}}) {
    for (size_t at = message.find(from); at != std::string::npos;
         at = message.find(from, at + to.size())) {
      message.replace(at, from.size(), to);
    }
  }
  return message;
}

bool ModelService::Ready() const {
  // Ready once every model has loaded or failed, and at least one serves: a broken model must
  // not take the others out of rotation (Triton's --strict-readiness=false).
  if (draining_.load()) return false;
  bool any = false;
  for (const auto& [name, r] : runners_) {
    if (r->failed()) continue;
    if (!r->ready()) return false;
    any = true;
  }
  return any;
}

void ModelService::Infer(InferRequest&& request, InferCallback done) {
  ModelRunner* r = Find(request.model, request.version);
  if (r == nullptr || r->failed()) {
    if (std::string message = UnavailableMessage(request.model); !message.empty()) {
      done(InferResult{Outcome::kModelNotReady, std::move(message), {}});
      return;
    }
    done(InferResult{
        Outcome::kModelNotFound,
        StrCat("unknown model '", request.model, "'",
               request.version.empty() ? "" : StrCat(" version '", request.version, "'")),
        {}});
    return;
  }
  if (!r->ready()) {
    done(InferResult{
        Outcome::kModelNotReady, StrCat("model '", request.model, "' is not ready"), {}});
    return;
  }
  r->Submit(std::move(request), std::move(done));
}

}  // namespace galley::inference
