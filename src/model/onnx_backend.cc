#include "model/onnx_backend.h"

#include <algorithm>
#include <map>
#include <utility>

#include "common/log.h"
#include "common/strings.h"
#include "model/onnx_batch.h"
#include "model/onnx_session.h"

namespace galley::model {
namespace {

absl::Status Invalid(std::string message) { return absl::InvalidArgumentError(message); }

std::string Names(const std::vector<TensorSpec>& specs) {
  std::string out;
  for (const TensorSpec& s : specs) out += StrCat(out.empty() ? "" : ", ", s.name);
  return out;
}

// With batching, the model must declare a dynamic first dimension for every tensor.
absl::Status CheckBatchDimension(const std::vector<TensorSpec>& specs, const char* kind) {
  for (const TensorSpec& s : specs) {
    if (s.shape.empty() || s.shape[0] != -1) {
      return Invalid(StrCat("model ", kind, " '", s.name, "' has shape ", ShapeToString(s.shape),
                            ": with max_batch_size > 0 its first dimension must be the dynamic "
                            "batch dimension"));
    }
  }
  return absl::OkStatus();
}

// The model's specs refined by a config's (see OnnxBackendOptions::inputs).
absl::StatusOr<std::vector<TensorSpec>> MergeSpecs(std::vector<TensorSpec> model,
                                                   const std::vector<TensorSpec>& config,
                                                   const char* kind, bool batched) {
  if (config.empty()) return model;
  for (const TensorSpec& c : config) {
    const auto n = std::count_if(config.begin(), config.end(),
                                 [&](const TensorSpec& o) { return o.name == c.name; });
    if (n > 1) return Invalid(StrCat("config ", kind, " '", c.name, "' is listed twice"));
    const bool known = std::any_of(model.begin(), model.end(),
                                   [&](const TensorSpec& m) { return m.name == c.name; });
    if (!known) {
      return Invalid(StrCat("config ", kind, " '", c.name, "' is not an ", kind,
                            " of the model (the model's: ", Names(model), ")"));
    }
  }
  for (TensorSpec& m : model) {
    auto it = std::find_if(config.begin(), config.end(),
                           [&](const TensorSpec& c) { return c.name == m.name; });
    if (it == config.end()) {
      return Invalid(StrCat("model ", kind, " '", m.name, "' is missing from the config"));
    }
    if (it->datatype != m.datatype) {
      return Invalid(StrCat(kind, " '", m.name, "': the config says ", DataTypeName(it->datatype),
                            ", the model ", DataTypeName(m.datatype)));
    }
    const size_t skip = batched ? 1 : 0;  // config dims exclude the batch dimension
    const std::vector<int64_t> model_dims(m.shape.begin() + skip, m.shape.end());
    bool fits = it->shape.size() == model_dims.size();
    for (size_t i = 0; fits && i < model_dims.size(); ++i) {
      const int64_t c = it->shape[i], d = model_dims[i];
      if (c < -1 || (c >= 0 && d >= 0 && c != d)) fits = false;
      if (fits && d < 0) m.shape[i + skip] = c;
    }
    if (!fits) {
      return Invalid(StrCat(kind, " '", m.name, "': the config's dims ", ShapeToString(it->shape),
                            " do not fit the model's ", ShapeToString(model_dims),
                            batched ? " (after the batch dimension)" : ""));
    }
  }
  return model;
}

// One request's inputs in metadata order, checked; `rows` is the batch size (0 when the model
// does not batch) and `key` the dimensions that must be equal to share a run.
struct Arranged {
  std::vector<const Tensor*> tensors;
  int64_t rows = 0;
  std::vector<int64_t> key;
};

absl::StatusOr<Arranged> Arrange(const InferInput& request, const ModelMetadata& metadata,
                                 const std::vector<bool>& padded) {
  const bool batched = metadata.max_batch_size > 0;
  Arranged a;
  for (size_t j = 0; j < metadata.inputs.size(); ++j) {
    const TensorSpec& spec = metadata.inputs[j];
    const Tensor* found = nullptr;
    for (const Tensor& t : request.inputs) {
      if (t.name != spec.name) continue;
      if (found) return Invalid(StrCat("input '", spec.name, "' is given twice"));
      found = &t;
    }
    if (!found) return Invalid(StrCat("missing input '", spec.name, "'"));
    const Tensor& t = *found;
    if (t.datatype != spec.datatype) {
      return Invalid(StrCat("input '", spec.name, "' is ", DataTypeName(t.datatype),
                            ", the model's is ", DataTypeName(spec.datatype)));
    }
    const int64_t count = t.element_count();
    if (t.shape.size() != spec.shape.size() || count < 0) {
      return Invalid(StrCat("input '", spec.name, "' has shape ", ShapeToString(t.shape),
                            ", the model's is ", ShapeToString(spec.shape)));
    }
    if (t.datatype == DataType::kBytes
            ? t.bytes.size() != static_cast<size_t>(count)
            : t.raw.size() != static_cast<size_t>(count) * ElementSize(t.datatype)) {
      return Invalid(StrCat("input '", spec.name,
                            "': ", t.datatype == DataType::kBytes ? t.bytes.size() : t.raw.size(),
                            t.datatype == DataType::kBytes ? " elements" : " bytes",
                            " do not fit shape ", ShapeToString(t.shape)));
    }
    if (!ShapeMatches(spec.shape, t.shape)) {
      return Invalid(StrCat("input '", spec.name, "' has shape ", ShapeToString(t.shape),
                            ", the model's is ", ShapeToString(spec.shape)));
    }
    if (batched) {
      if (j > 0 && t.shape[0] != a.rows) {
        return Invalid(StrCat("input '", spec.name, "' has ", t.shape[0], " rows, input '",
                              metadata.inputs[0].name, "' ", a.rows));
      }
      a.rows = t.shape[0];
      if (!padded[j]) a.key.insert(a.key.end(), t.shape.begin() + 1, t.shape.end());
    }
    a.tensors.push_back(&t);
  }
  if (request.inputs.size() != metadata.inputs.size()) {
    for (const Tensor& t : request.inputs) {
      const bool known = std::any_of(metadata.inputs.begin(), metadata.inputs.end(),
                                     [&](const TensorSpec& s) { return s.name == t.name; });
      if (!known) return Invalid(StrCat("unknown input '", t.name, "'"));
    }
  }
  return a;
}

}  // namespace

OnnxBackend::OnnxBackend(ModelMetadata metadata, std::unique_ptr<OnnxSession> session,
                         std::vector<bool> padded)
    : metadata_(std::move(metadata)), session_(std::move(session)), padded_(std::move(padded)) {}

OnnxBackend::~OnnxBackend() = default;

absl::StatusOr<std::unique_ptr<OnnxBackend>> OnnxBackend::Create(OnnxBackendOptions options) {
  if (options.name.empty()) return Invalid("an ONNX model needs a name");
  if (options.max_batch_size < 0) {
    return Invalid(StrCat("max_batch_size must not be negative, got ", options.max_batch_size));
  }
  const bool batched = options.max_batch_size > 0;
  if (!options.pad_inputs.empty() && !batched) {
    return Invalid("pad_inputs needs max_batch_size > 0 (padding is across a batch's requests)");
  }
  auto session =
      OnnxSession::Open(options.model_path, options.intra_op_threads, options.gpu_device);
  if (!session.ok()) return session.status();
  if (options.gpu_device) {
    const OnnxSession& s = **session;
    if (s.device() == "cpu") {
      log::Warn("gpu_unavailable", {{"model", options.name},
                                    {"gpu", *options.gpu_device},
                                    {"running_on", "cpu"},
                                    {"error", s.device_note()}});
    } else {
      log::Info("model_on_gpu", {{"model", options.name}, {"device", s.device()}});
    }
  }

  ModelMetadata m;
  m.name = std::move(options.name);
  m.version = std::move(options.version);
  m.platform = "onnxruntime_onnx";
  m.max_batch_size = options.max_batch_size;
  const std::string where = StrCat("ONNX model '", options.model_path.string(), "': ");
  if (batched) {
    const OnnxSession& model = **session;
    if (model.inputs().empty()) return Invalid(where + "a batching model needs an input");
    absl::Status st = CheckBatchDimension(model.inputs(), "input");
    if (st.ok()) st = CheckBatchDimension(model.outputs(), "output");
    if (!st.ok()) return Invalid(where + std::string(ToStd(st.message())));
  }
  auto inputs = MergeSpecs((*session)->inputs(), options.inputs, "input", batched);
  if (!inputs.ok()) return Invalid(where + std::string(ToStd(inputs.status().message())));
  auto outputs = MergeSpecs((*session)->outputs(), options.outputs, "output", batched);
  if (!outputs.ok()) return Invalid(where + std::string(ToStd(outputs.status().message())));
  m.inputs = *std::move(inputs);
  m.outputs = *std::move(outputs);

  std::vector<bool> padded(m.inputs.size(), false);
  for (const std::string& name : options.pad_inputs) {
    auto it = std::find_if(m.inputs.begin(), m.inputs.end(),
                           [&](const TensorSpec& s) { return s.name == name; });
    if (it == m.inputs.end()) {
      return Invalid(StrCat(where, "pad_inputs names '", name,
                            "', which is not an input of the model (its inputs: ", Names(m.inputs),
                            ")"));
    }
    padded[it - m.inputs.begin()] = true;
  }
  return std::unique_ptr<OnnxBackend>(
      new OnnxBackend(std::move(m), *std::move(session), std::move(padded)));
}

absl::Status OnnxBackend::Load() { return absl::OkStatus(); }

absl::StatusOr<std::vector<InferOutput>> OnnxBackend::RunGroup(
    const std::vector<std::vector<const Tensor*>>& requests,
    const std::vector<int64_t>& rows) const {
  // A lone request runs on its own tensors; several are concatenated (and padded) first.
  std::vector<Tensor> joined;
  std::vector<const Tensor*> inputs;
  if (requests.size() == 1) {
    inputs = requests[0];
  } else {
    joined.reserve(metadata_.inputs.size());
    std::vector<const Tensor*> parts(requests.size());
    for (size_t j = 0; j < metadata_.inputs.size(); ++j) {
      for (size_t r = 0; r < requests.size(); ++r) parts[r] = requests[r][j];
      auto t = ConcatRows(metadata_.inputs[j].name, parts, padded_[j]);
      if (!t.ok()) return t.status();
      joined.push_back(*std::move(t));
    }
    for (const Tensor& t : joined) inputs.push_back(&t);
  }
  auto outputs = session_->Run(inputs);
  if (!outputs.ok()) return outputs.status();

  int64_t total = 0;
  for (int64_t r : rows) total += r;
  std::vector<InferOutput> results(requests.size());
  for (Tensor& out : *outputs) {
    if (out.shape.empty() || out.shape[0] != total) {
      return absl::InternalError(StrCat("output '", out.name, "' has shape ",
                                        ShapeToString(out.shape), ", expected ", total,
                                        " rows first (the batch's)"));
    }
    if (requests.size() == 1) {
      results[0].outputs.push_back(std::move(out));
      continue;
    }
    auto pieces = SplitRows(out, rows);
    if (!pieces.ok()) return absl::InternalError(pieces.status().message());
    for (size_t r = 0; r < requests.size(); ++r) {
      results[r].outputs.push_back(std::move((*pieces)[r]));
    }
  }
  return results;
}

std::vector<absl::StatusOr<InferOutput>> OnnxBackend::Infer(
    absl::Span<const InferInput* const> batch) {
  std::vector<absl::StatusOr<InferOutput>> results(batch.size(), absl::InternalError("not run"));
  const bool batched = metadata_.max_batch_size > 0;
  // Requests that fit, grouped by the dimensions that must be equal within one run.
  std::map<std::vector<int64_t>, std::vector<size_t>> groups;
  std::vector<Arranged> arranged(batch.size());
  std::vector<bool> fits(batch.size(), false);
  for (size_t i = 0; i < batch.size(); ++i) {
    auto a = Arrange(*batch[i], metadata_, padded_);
    if (!a.ok()) {
      results[i] = a.status();
      continue;
    }
    fits[i] = true;
    arranged[i] = *std::move(a);
    if (batched) groups[arranged[i].key].push_back(i);
  }
  if (!batched) {
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!fits[i]) continue;
      auto outputs = session_->Run(arranged[i].tensors);
      if (!outputs.ok()) {
        results[i] = outputs.status();
      } else {
        results[i] = InferOutput{*std::move(outputs)};
      }
    }
    return results;
  }
  for (const auto& [key, members] : groups) {
    std::vector<std::vector<const Tensor*>> requests;
    std::vector<int64_t> rows;
    for (size_t i : members) {
      requests.push_back(arranged[i].tensors);
      rows.push_back(arranged[i].rows);
    }
    auto outs = RunGroup(requests, rows);
    for (size_t k = 0; k < members.size(); ++k) {
      if (outs.ok()) {
        results[members[k]] = std::move((*outs)[k]);
      } else {
        results[members[k]] = outs.status();
      }
    }
  }
  return results;
}

absl::StatusOr<std::vector<Tensor>> OnnxBackend::RunBatch(const std::vector<Tensor>& inputs) const {
  if (inputs.size() != metadata_.inputs.size()) {
    return Invalid(StrCat("the model has ", metadata_.inputs.size(), " inputs (",
                          Names(metadata_.inputs), "), got ", inputs.size()));
  }
  std::vector<const Tensor*> ptrs;
  ptrs.reserve(inputs.size());
  for (size_t j = 0; j < inputs.size(); ++j) {
    const TensorSpec& spec = metadata_.inputs[j];
    const Tensor& t = inputs[j];
    if (t.name != spec.name || t.datatype != spec.datatype || !ShapeMatches(spec.shape, t.shape)) {
      return Invalid(StrCat("input ", j, " is '", t.name, "' ", DataTypeName(t.datatype), " ",
                            ShapeToString(t.shape), ", the model's is '", spec.name, "' ",
                            DataTypeName(spec.datatype), " ", ShapeToString(spec.shape)));
    }
    if (metadata_.max_batch_size > 0 && t.shape[0] != inputs[0].shape[0]) {
      return Invalid(StrCat("input '", t.name, "' has ", t.shape[0], " rows, input '",
                            inputs[0].name, "' ", inputs[0].shape[0]));
    }
    ptrs.push_back(&t);
  }
  return session_->Run(ptrs);
}

}  // namespace galley::model
