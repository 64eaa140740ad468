// A deterministic Backend for tests: echoes its FP32 input "x" doubled as output "y", counts
// batches, and can be made to block until released so tests control when work runs.
#pragma once

#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "model/backend.h"

namespace galley::model::testing {

class FakeBackend final : public Backend {
 public:
  explicit FakeBackend(std::string name = "fake", int max_batch_size = 8) {
    md_.name = std::move(name);
    md_.version = "1";
    md_.platform = "fake";
    md_.max_batch_size = max_batch_size;
    md_.inputs = {{"x", DataType::kFp32, {-1}}};
    md_.outputs = {{"y", DataType::kFp32, {-1}}};
  }

  const ModelMetadata& Metadata() const override { return md_; }
  // With set_length_from_input(true), a request's length is its first element (for bucketing).
  absl::StatusOr<int64_t> Prepare(InferInput& input) const override {
    if (!length_from_input_ || input.inputs.empty() || input.inputs[0].element_count() < 1) {
      return int64_t{0};
    }
    return static_cast<int64_t>(input.inputs[0].At<float>(0));
  }
  void set_length_from_input(bool on) { length_from_input_ = on; }
  absl::Status Load() override { return load_status_; }

  std::vector<absl::StatusOr<InferOutput>> Infer(
      absl::Span<const InferInput* const> batch) override {
    {
      absl::MutexLock lock(&mu_);
      batch_sizes_.push_back(batch.size());
      ++entered_;
      cv_.SignalAll();
      while (blocked_) cv_.Wait(&mu_);
    }
    std::vector<absl::StatusOr<InferOutput>> out;
    for (const InferInput* in : batch) {
      const Tensor& x = in->inputs.at(0);
      if (x.element_count() > 0 && x.At<float>(0) < 0) {
        out.push_back(absl::InvalidArgumentError("negative input"));
        continue;
      }
      InferOutput o;
      Tensor y{"y", DataType::kFp32, x.shape, {}, {}};
      for (int64_t i = 0; i < x.element_count(); ++i) y.Append<float>(2 * x.At<float>(i));
      o.outputs.push_back(std::move(y));
      out.push_back(std::move(o));
    }
    return out;
  }

  void set_load_status(absl::Status st) { load_status_ = std::move(st); }
  // While blocked, Infer() waits inside until Unblock().
  void Block() {
    absl::MutexLock l(&mu_);
    blocked_ = true;
  }
  void Unblock() {
    {
      absl::MutexLock l(&mu_);
      blocked_ = false;
    }
    cv_.SignalAll();
  }
  // Waits until Infer() has been entered `n` times in total.
  void WaitEntered(int n) {
    absl::MutexLock l(&mu_);
    while (entered_ < n) cv_.Wait(&mu_);
  }
  std::vector<size_t> batch_sizes() {
    absl::MutexLock l(&mu_);
    return batch_sizes_;
  }

 private:
  ModelMetadata md_;
  absl::Status load_status_;
  absl::Mutex mu_;
  absl::CondVar cv_;
  bool blocked_ ABSL_GUARDED_BY(mu_) = false;
  bool length_from_input_ = false;
  int entered_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<size_t> batch_sizes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace galley::model::testing
