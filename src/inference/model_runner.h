// One model's serving loop: a bounded FIFO queue, worker threads (one per backend instance) that
// form batches with FormBatch and run them, deadlines checked before running, and the model's
// metrics. Lifecycle: Load() -> Start() -> Infer()... -> Stop().
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "inference/batch_policy.h"
#include "inference/inference_service.h"
#include "inference/model_metrics.h"
#include "model/backend.h"

namespace galley::inference {

struct RunnerOptions {
  size_t queue_capacity = 1024;  // queued requests beyond this are rejected (kQueueFull)
  BatchPolicy batch;
};

class ModelRunner {
 public:
  // `instances` are backend instances of one model (same metadata), one worker thread each.
  ModelRunner(std::vector<std::unique_ptr<model::Backend>> instances, RunnerOptions options,
              const Clock& clock, ModelMetrics* metrics);
  ~ModelRunner();

  const model::ModelMetadata& metadata() const { return instances_.front()->Metadata(); }

  // Loads every instance; then runs `warmup` (if any) through each instance once. Sets ready.
  absl::Status Load(const std::vector<model::InferInput>& warmup);
  bool ready() const { return ready_.load(); }
  // Records that the model could not be loaded; it stays not ready and requests to it are
  // answered kModelNotReady with `reason`. Call before Start(), from the loading thread.
  void MarkFailed(std::string reason);
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  // Why loading failed; valid once failed() is true.
  const std::string& failure() const { return failure_; }

  void Start();
  // Runs the backend's Prepare (pre-processing) on the calling thread, then enqueues or rejects
  // at once. The caller has checked the input against the metadata. Thread-safe, never blocks
  // on other requests.
  void Submit(InferRequest&& request, InferCallback done) ABSL_LOCKS_EXCLUDED(mu_);
  // Stops taking work; answers everything still queued with kShuttingDown after letting the
  // workers finish the batches they run. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);
  // Queued plus running requests.
  int64_t inflight() const { return inflight_.load(); }

 private:
  struct Item {
    InferRequest request;
    InferCallback done;
    TimePoint enqueued;
    int rows = 1;
    int64_t length = 0;  // from Backend::Prepare, for length bucketing
  };
  void WorkerLoop(size_t instance);
  // Takes the next batch (and the expired requests) off the queue, waiting as the batch policy
  // says. Returns false when stopping and nothing is left.
  bool NextBatch(std::vector<Item>& batch, std::vector<Item>& expired) ABSL_LOCKS_EXCLUDED(mu_);
  void RunBatch(model::Backend& backend, std::vector<Item>& batch);

  std::vector<std::unique_ptr<model::Backend>> instances_;
  const RunnerOptions options_;
  const Clock& clock_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> failed_{false};
  std::string failure_;  // written once before failed_ is set
  std::atomic<int64_t> inflight_{0};

  prometheus::Histogram* queue_hist_;
  prometheus::Histogram* compute_hist_;
  prometheus::Histogram* batch_hist_;
  prometheus::Gauge* queue_gauge_;
  prometheus::Gauge* inflight_gauge_;
  prometheus::Counter* executions_;
  prometheus::Counter* inferences_;
  prometheus::Gauge* load_gauge_;
  prometheus::Gauge* ready_gauge_;

  absl::Mutex mu_;
  absl::CondVar cv_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

// Rows in a request: the first dimension of its first input when the model batches, else 1.
int RequestRows(const model::ModelMetadata& metadata, const model::InferInput& input);

}  // namespace galley::inference
