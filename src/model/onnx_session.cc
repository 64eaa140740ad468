#include "model/onnx_session.h"

#include <onnxruntime_cxx_api.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <optional>
#include <system_error>

#include "common/log.h"
#include "common/strings.h"
#include "model/onnx_batch.h"

namespace galley::model {
namespace {

// ONNX Runtime's log lines as Galley's JSON log lines.
void OrtLog(void* /*param*/, OrtLoggingLevel severity, const char* category, const char* logid,
            const char* code_location, const char* message) {
  const log::Level level = severity >= ORT_LOGGING_LEVEL_ERROR     ? log::Level::kError
                           : severity >= ORT_LOGGING_LEVEL_WARNING ? log::Level::kWarn
                           : severity >= ORT_LOGGING_LEVEL_INFO    ? log::Level::kInfo
                                                                   : log::Level::kDebug;
  if (!log::Enabled(level)) return;
  log::Write(level, "onnxruntime",
             {{"category", category ? category : ""},
              {"where", code_location ? code_location : ""},
              {"message", message ? message : ""}});
}

// This ONNX Runtime build carries Microsoft's telemetry client, which creates an empty
// `mat-debug-<pid>.log` in $TMPDIR (or /tmp) when the environment is created. Telemetry events
// are disabled at once; the empty file is removed so that processes leave nothing behind. (It
// stays open in the client; unlinking an open file is harmless.)
void RemoveEmptyTelemetryLog() {
  const char* tmp = std::getenv("TMPDIR");
  const std::filesystem::path dir = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  const std::filesystem::path file = dir / StrCat("mat-debug-", ::getpid(), ".log");
  std::error_code ec;
  if (std::filesystem::is_regular_file(file, ec) && std::filesystem::file_size(file, ec) == 0 &&
      !ec) {
    std::filesystem::remove(file, ec);
  }
}

// The process-wide environment: created once (C++ guarantees thread-safe initialisation of a
// function-local static), never destroyed, so that no session outlives it at exit. If creating
// it throws, the next call tries again.
Ort::Env& ProcessEnv() {
  static Ort::Env* const env = [] {
    // ONNX Runtime's telemetry client (1DS) starts with the first environment unless
    // ORT_DISABLE_TELEMETRY is set; DisableTelemetryEvents() below only mutes its events. Started,
    // it derives a device id from /etc/machine-id or else by running `sh -c 'echo `blkid;
    // hostname`'`, and in an image with neither it crashes the process (SIGSEGV after the shell
    // is not found). Galley sends no telemetry, so the client is never started.
    setenv("ORT_DISABLE_TELEMETRY", "1", /*overwrite=*/1);
    auto* e = new Ort::Env(ORT_LOGGING_LEVEL_WARNING, "galley", OrtLog, nullptr);
    e->DisableTelemetryEvents();
    RemoveEmptyTelemetryLog();
    return e;
  }();
  return *env;
}

std::optional<DataType> FromOrt(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL:
      return DataType::kBool;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8:
      return DataType::kUint8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16:
      return DataType::kUint16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32:
      return DataType::kUint32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64:
      return DataType::kUint64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8:
      return DataType::kInt8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16:
      return DataType::kInt16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
      return DataType::kInt32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
      return DataType::kInt64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16:
      return DataType::kFp16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
      return DataType::kFp32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE:
      return DataType::kFp64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING:  // the protocol's BYTES, as Triton maps it
      return DataType::kBytes;
    default:
      return std::nullopt;
  }
}

ONNXTensorElementDataType ToOrt(DataType t) {
  switch (t) {
    case DataType::kBool:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL;
    case DataType::kUint8:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8;
    case DataType::kUint16:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16;
    case DataType::kUint32:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32;
    case DataType::kUint64:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64;
    case DataType::kInt8:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8;
    case DataType::kInt16:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16;
    case DataType::kInt32:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
    case DataType::kInt64:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
    case DataType::kFp16:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
    case DataType::kFp32:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    case DataType::kFp64:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE;
    case DataType::kBytes:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING;
  }
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
}

// ONNX Runtime's name for a datatype Galley does not have, for error messages.
std::string OrtTypeName(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING:
      return "STRING";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16:
      return "BFLOAT16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_COMPLEX64:
      return "COMPLEX64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_COMPLEX128:
      return "COMPLEX128";
    default:
      return StrCat("ONNX element type ", static_cast<int>(t));
  }
}

// An error while loading a model, as a status naming the model's path.
absl::Status LoadError(const std::filesystem::path& path, const Ort::Exception& e) {
  const std::string what = StrCat("cannot load ONNX model '", path.string(), "': ", e.what());
  switch (e.GetOrtErrorCode()) {
    case ORT_NO_SUCHFILE:
      return absl::NotFoundError(what);
    case ORT_FAIL:
    case ORT_INVALID_ARGUMENT:
    case ORT_NO_MODEL:
    case ORT_INVALID_PROTOBUF:
    case ORT_NOT_IMPLEMENTED:
    case ORT_INVALID_GRAPH:
      return absl::InvalidArgumentError(what);
    default:
      return absl::InternalError(what);
  }
}

// The spec of input or output `index` ("input"/"output" in `kind`) from its type info.
absl::StatusOr<TensorSpec> SpecFromTypeInfo(const std::filesystem::path& path, const char* kind,
                                            std::string name, const Ort::TypeInfo& info) {
  if (info.GetONNXType() != ONNX_TYPE_TENSOR) {
    return absl::InvalidArgumentError(
        StrCat("ONNX model '", path.string(), "': ", kind, " '", name,
               "' is not a tensor (a sequence, map or optional), which Galley does not serve"));
  }
  auto tensor = info.GetTensorTypeAndShapeInfo();
  const ONNXTensorElementDataType element = tensor.GetElementType();
  const std::optional<DataType> type = FromOrt(element);
  if (!type) {
    return absl::InvalidArgumentError(
        StrCat("ONNX model '", path.string(), "': ", kind, " '", name, "' has datatype ",
               OrtTypeName(element),
               ", which Galley does not serve (it serves BOOL, UINT8..UINT64, INT8..INT64, FP16, "
               "FP32, FP64 and STRING as BYTES)"));
  }
  TensorSpec spec{std::move(name), *type, tensor.GetShape()};
  for (int64_t& d : spec.shape) {
    if (d < 0) d = -1;  // symbolic or unknown
  }
  return spec;
}

}  // namespace

struct OnnxSession::Impl {
  Impl(Ort::Session s, std::vector<std::string> in, std::vector<std::string> out)
      : session(std::move(s)),
        memory(Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault)),
        input_names(std::move(in)),
        output_names(std::move(out)) {
    for (const auto& n : input_names) input_ptrs.push_back(n.c_str());
    for (const auto& n : output_names) output_ptrs.push_back(n.c_str());
  }

  Ort::Session session;
  Ort::MemoryInfo memory;
  Ort::RunOptions run_options;
  std::vector<std::string> input_names;
  std::vector<std::string> output_names;
  std::vector<const char*> input_ptrs;   // into input_names
  std::vector<const char*> output_ptrs;  // into output_names
};

OnnxSession::OnnxSession(std::unique_ptr<Impl> impl, std::vector<TensorSpec> inputs,
                         std::vector<TensorSpec> outputs)
    : impl_(std::move(impl)), inputs_(std::move(inputs)), outputs_(std::move(outputs)) {}

OnnxSession::~OnnxSession() = default;

absl::StatusOr<std::unique_ptr<OnnxSession>> OnnxSession::Open(const std::filesystem::path& path,
                                                               int intra_op_threads,
                                                               std::optional<int> gpu_device) {
  if (intra_op_threads < 1) {
    return absl::InvalidArgumentError(
        StrCat("intra_op_threads must be at least 1, got ", intra_op_threads));
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(
        StrCat("ONNX model file '", path.string(), "' does not exist or is not a file"));
  }
  try {
    auto cpu_options = [intra_op_threads] {
      Ort::SessionOptions o;
      o.SetIntraOpNumThreads(intra_op_threads);
      o.SetInterOpNumThreads(1);
      o.SetExecutionMode(ORT_SEQUENTIAL);
      o.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
      return o;
    };
    (void)ProcessEnv();  // the environment (and its logger) first: the providers log through it
    Ort::SessionOptions options = cpu_options();
    std::string device = "cpu", device_note;
    if (gpu_device) {
      // The CUDA execution provider, as Triton's onnxruntime backend adds it for KIND_GPU
      // instances; ONNX Runtime throws when it has none (a CPU-only build, missing CUDA
      // libraries, no such device), and the model then runs on the CPU.
      try {
        OrtCUDAProviderOptions cuda;
        cuda.device_id = *gpu_device;
        options.AppendExecutionProvider_CUDA(cuda);
        device = StrCat("cuda:", *gpu_device);
      } catch (const Ort::Exception& e) {
        device_note = e.what();
      }
    }
    std::optional<Ort::Session> opened;
    try {
      opened.emplace(ProcessEnv(), path.c_str(), options);
    } catch (const Ort::Exception& e) {
      if (device == "cpu") throw;
      // The provider was added but could not start (no driver, no such GPU): the CPU instead.
      device_note = e.what();
      device = "cpu";
      opened.emplace(ProcessEnv(), path.c_str(), cpu_options());
    }
    Ort::Session session = std::move(*opened);

    Ort::AllocatorWithDefaultOptions allocator;
    std::vector<std::string> input_names, output_names;
    std::vector<TensorSpec> inputs, outputs;
    for (size_t i = 0; i < session.GetInputCount(); ++i) {
      std::string name = session.GetInputNameAllocated(i, allocator).get();
      input_names.push_back(name);
      auto spec = SpecFromTypeInfo(path, "input", std::move(name), session.GetInputTypeInfo(i));
      if (!spec.ok()) return spec.status();
      inputs.push_back(*std::move(spec));
    }
    for (size_t i = 0; i < session.GetOutputCount(); ++i) {
      std::string name = session.GetOutputNameAllocated(i, allocator).get();
      output_names.push_back(name);
      auto spec = SpecFromTypeInfo(path, "output", std::move(name), session.GetOutputTypeInfo(i));
      if (!spec.ok()) return spec.status();
      outputs.push_back(*std::move(spec));
    }
    auto impl =
        std::make_unique<Impl>(std::move(session), std::move(input_names), std::move(output_names));
    std::unique_ptr<OnnxSession> out(
        new OnnxSession(std::move(impl), std::move(inputs), std::move(outputs)));
    out->device_ = std::move(device);
    out->device_note_ = std::move(device_note);
    return out;
  } catch (const Ort::Exception& e) {
    return LoadError(path, e);
  } catch (const std::exception& e) {
    return absl::InternalError(StrCat("cannot load ONNX model '", path.string(), "': ", e.what()));
  }
}

absl::StatusOr<std::vector<Tensor>> OnnxSession::Run(absl::Span<const Tensor* const> inputs) const {
  if (inputs.size() != inputs_.size()) {
    return absl::InvalidArgumentError(
        StrCat("the model has ", inputs_.size(), " inputs, got ", inputs.size()));
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = *inputs[i];
    const int64_t count = t.element_count();
    const bool fits = t.datatype == DataType::kBytes
                          ? t.bytes.size() == static_cast<size_t>(count)
                          : t.raw.size() == static_cast<size_t>(count) * ElementSize(t.datatype);
    if (t.datatype != inputs_[i].datatype || count < 0 || !fits) {
      return absl::InvalidArgumentError(
          StrCat("input '", inputs_[i].name, "': expected ", DataTypeName(inputs_[i].datatype),
                 ", got ", DataTypeName(t.datatype), " with shape ", ShapeToString(t.shape),
                 " and ", t.raw.size(), " bytes"));
    }
  }
  try {
    std::vector<Ort::Value> values;
    values.reserve(inputs.size());
    Ort::AllocatorWithDefaultOptions allocator;
    for (const Tensor* t : inputs) {
      if (t->datatype == DataType::kBytes) {
        // ONNX Runtime owns string tensors' elements: each is copied into a buffer of its exact
        // length (embedded NUL bytes survive; no terminator is needed).
        Ort::Value v = Ort::Value::CreateTensor(allocator, t->shape.data(), t->shape.size(),
                                                ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING);
        for (size_t e = 0; e < t->bytes.size(); ++e) {
          const std::string& s = t->bytes[e];
          char* buffer = v.GetResizedStringTensorElementBuffer(e, s.size());
          if (!s.empty()) std::memcpy(buffer, s.data(), s.size());
        }
        values.push_back(std::move(v));
        continue;
      }
      // NOTE: ONNX Runtime takes a non-const pointer but does not write to input buffers. A
      // zero-size tensor still needs a valid pointer.
      static uint8_t empty_buffer = 0;
      void* data = t->raw.empty() ? &empty_buffer : const_cast<uint8_t*>(t->raw.data());
      values.push_back(Ort::Value::CreateTensor(impl_->memory, data, t->raw.size(), t->shape.data(),
                                                t->shape.size(), ToOrt(t->datatype)));
    }
    std::vector<Ort::Value> results =
        impl_->session.Run(impl_->run_options, impl_->input_ptrs.data(), values.data(),
                           values.size(), impl_->output_ptrs.data(), impl_->output_ptrs.size());
    std::vector<Tensor> outputs;
    outputs.reserve(results.size());
    for (size_t i = 0; i < results.size(); ++i) {
      const Ort::Value& v = results[i];
      if (!v.IsTensor()) {
        return absl::InternalError(StrCat("output '", outputs_[i].name, "' is not a tensor"));
      }
      auto info = v.GetTensorTypeAndShapeInfo();
      const std::optional<DataType> type = FromOrt(info.GetElementType());
      if (!type) {
        return absl::InternalError(StrCat("output '", outputs_[i].name, "' has datatype ",
                                          OrtTypeName(info.GetElementType())));
      }
      Tensor& out = outputs.emplace_back();
      out.name = outputs_[i].name;
      out.datatype = *type;
      out.shape = info.GetShape();
      const int64_t count = ElementCount(out.shape);
      if (count < 0) {
        return absl::InternalError(
            StrCat("output '", out.name, "' has shape ", ShapeToString(out.shape)));
      }
      if (*type == DataType::kBytes) {
        out.bytes.resize(static_cast<size_t>(count));
        for (size_t e = 0; e < out.bytes.size(); ++e) {
          std::string& s = out.bytes[e];
          s.resize(v.GetStringTensorElementLength(e));
          if (!s.empty()) v.GetStringTensorElement(s.size(), e, s.data());
        }
        continue;
      }
      const size_t bytes = static_cast<size_t>(count) * ElementSize(*type);
      if (bytes > 0) {
        const auto* p = static_cast<const uint8_t*>(v.GetTensorRawData());
        out.raw.assign(p, p + bytes);
      }
    }
    return outputs;
  } catch (const Ort::Exception& e) {
    return absl::InternalError(StrCat("onnxruntime: ", e.what()));
  } catch (const std::exception& e) {
    return absl::InternalError(StrCat("onnxruntime: ", e.what()));
  }
}

std::string OnnxRuntimeVersion() { return Ort::GetVersionString(); }

}  // namespace galley::model

// NOTE: ONNX Runtime 1.29 loses one small allocation of its own (49 bytes, made and dropped
// inside libonnxruntime.so) by process exit, whether or not the Ort::Env is destroyed.
// LeakSanitizer reads this hook in the ASan build, so that this leak does not fail every test
// and integration run of a binary that loads a model; leaks anywhere else are still reported.
// Harmless in builds without sanitizers, where nothing calls it.
extern "C" const char* __lsan_default_suppressions() { return "leak:libonnxruntime.so\n"; }
