#include "inference/model_runner.h"

#include <chrono>

#include "common/log.h"
#include "common/strings.h"
#include "common/sync.h"
#include "common/thread_name.h"

namespace galley::inference {
namespace {

double Seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

int RequestRows(const model::ModelMetadata& metadata, const model::InferInput& input) {
  if (metadata.max_batch_size <= 0 || input.inputs.empty() || input.inputs[0].shape.empty()) {
    return 1;
  }
  const int64_t rows = input.inputs[0].shape[0];
  return rows < 1 ? 1 : static_cast<int>(std::min<int64_t>(rows, 1 << 30));
}

ModelRunner::ModelRunner(std::vector<std::unique_ptr<model::Backend>> instances,
                         RunnerOptions options, const Clock& clock, ModelMetrics* m)
    : instances_(std::move(instances)), options_(options), clock_(clock) {
  const prometheus::Labels labels{{"model", metadata().name}};
  queue_hist_ = &m->queue_duration.Add(labels, metrics::DurationBuckets());
  compute_hist_ = &m->compute_duration.Add(labels, metrics::DurationBuckets());
  batch_hist_ = &m->batch_size.Add(labels, BatchSizeBuckets());
  queue_gauge_ = &m->queue_length.Add(labels);
  inflight_gauge_ = &m->model_inflight.Add(labels);
  executions_ = &m->executions.Add(labels);
  inferences_ = &m->inferences.Add(labels);
  load_gauge_ = &m->load_duration.Add(labels);
  ready_gauge_ = &m->model_ready.Add(labels);
}

ModelRunner::~ModelRunner() { Stop(); }

absl::Status ModelRunner::Load(const std::vector<model::InferInput>& warmup) {
  const TimePoint start = clock_.Now();
  for (auto& backend : instances_) {
    if (absl::Status st = backend->Load(); !st.ok()) {
      return absl::Status(st.code(),
                          StrCat("loading model '", metadata().name, "': ", st.message()));
    }
    std::vector<model::InferInput> prepared = warmup;
    std::vector<const model::InferInput*> batch;
    for (auto& w : prepared) {
      if (absl::StatusOr<int64_t> len = backend->Prepare(w); !len.ok()) {
        return absl::Status(len.status().code(), StrCat("warming up model '", metadata().name,
                                                        "': ", len.status().message()));
      }
      batch.push_back(&w);
    }
    if (!batch.empty()) {
      auto results = backend->Infer(batch);
      for (auto& r : results) {
        if (!r.ok()) {
          return absl::Status(r.status().code(), StrCat("warming up model '", metadata().name,
                                                        "': ", r.status().message()));
        }
      }
    }
  }
  const double secs = Seconds(clock_.Now() - start);
  load_gauge_->Set(secs);
  ready_gauge_->Set(1);
  ready_.store(true);
  log::Info("model_loaded", {{"model", metadata().name},
                             {"version", metadata().version},
                             {"instances", instances_.size()},
                             {"duration_s", secs}});
  return absl::OkStatus();
}

void ModelRunner::MarkFailed(std::string reason) {
  failure_ = std::move(reason);
  failed_.store(true, std::memory_order_release);
}

void ModelRunner::Start() {
  for (size_t i = 0; i < instances_.size(); ++i) {
    workers_.emplace_back([this, i] {
      SetThreadName(metadata().name, StrCat("/", i));  // "<model>/<instance>"
      WorkerLoop(i);
    });
  }
}

void ModelRunner::Submit(InferRequest&& request, InferCallback done) {
  const int rows = RequestRows(metadata(), request.input);
  absl::StatusOr<int64_t> length = instances_.front()->Prepare(request.input);
  if (!length.ok()) {
    const bool client = length.status().code() == absl::StatusCode::kInvalidArgument;
    done(InferResult{client ? Outcome::kInvalidInput : Outcome::kInternal,
                     std::string(length.status().message()),
                     {}});
    return;
  }
  {
    absl::ReleasableMutexLock lock(&mu_);
    if (stopping_) {
      lock.Release();
      done(InferResult{Outcome::kShuttingDown, "the server is shutting down", {}});
      return;
    }
    if (queue_.size() >= options_.queue_capacity) {
      lock.Release();
      done(InferResult{Outcome::kQueueFull,
                       StrCat("model '", metadata().name, "' queue is full (",
                              options_.queue_capacity, " requests)"),
                       {}});
      return;
    }
    queue_.push_back(Item{std::move(request), std::move(done), clock_.Now(), rows, *length});
    queue_gauge_->Set(static_cast<double>(queue_.size()));
  }
  inflight_gauge_->Set(static_cast<double>(inflight_.fetch_add(1) + 1));
  cv_.Signal();
}

bool ModelRunner::NextBatch(std::vector<Item>& batch, std::vector<Item>& expired) {
  absl::MutexLock lock(&mu_);
  std::vector<QueuedView> view;
  while (true) {
    while (!stopping_ && queue_.empty()) cv_.Wait(&mu_);
    if (queue_.empty()) return false;  // stopping and nothing left
    const TimePoint now = clock_.Now();
    // Look at a window of the queue: enough for a full batch of several length buckets.
    const size_t per_batch = static_cast<size_t>(std::max(1, options_.batch.max_batch_size));
    const size_t window = std::min(queue_.size(), std::max<size_t>(per_batch * 8, 64));
    view.clear();
    for (size_t i = 0; i < window; ++i) {
      const Item& it = queue_[i];
      view.push_back({it.rows, it.request.deadline, it.enqueued, it.length});
    }
    BatchDecision d = FormBatch(view, options_.batch, now);
    if (stopping_ && d.take.empty() && d.wake_at) {
      // Draining: send what waits now instead of holding it for company.
      BatchPolicy no_wait = options_.batch;
      no_wait.max_queue_delay = Duration::zero();
      d = FormBatch(view, no_wait, now);
    }
    if (d.take.empty() && d.expired.empty()) {
      // Hold for the queue delay; a new request (or Stop) wakes us earlier. The policy's times
      // are on clock_; wait the same span of real time.
      const Duration wait = d.wake_at ? *d.wake_at - now : Duration(std::chrono::milliseconds(1));
      WaitFor(cv_, mu_, std::max(wait, Duration(std::chrono::microseconds(1))));
      continue;
    }
    // Move the chosen items out, then compact the window.
    std::vector<bool> gone(window, false);
    for (size_t i : d.expired) {
      expired.push_back(std::move(queue_[i]));
      gone[i] = true;
    }
    for (size_t i : d.take) {
      batch.push_back(std::move(queue_[i]));
      gone[i] = true;
    }
    size_t out = 0;
    for (size_t i = 0; i < window; ++i) {
      if (gone[i]) continue;
      if (out != i) queue_[out] = std::move(queue_[i]);
      ++out;
    }
    queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(out),
                 queue_.begin() + static_cast<std::ptrdiff_t>(window));
    queue_gauge_->Set(static_cast<double>(queue_.size()));
    if (!queue_.empty()) cv_.Signal();  // let another instance look at the rest
    return true;
  }
}

void ModelRunner::WorkerLoop(size_t instance) {
  model::Backend& backend = *instances_[instance];
  std::vector<Item> batch;
  std::vector<Item> expired;
  while (true) {
    batch.clear();
    expired.clear();
    if (!NextBatch(batch, expired)) return;
    for (Item& item : expired) {
      inflight_gauge_->Set(static_cast<double>(inflight_.fetch_sub(1) - 1));
      item.done(InferResult{Outcome::kDeadlineExceeded,
                            "deadline exceeded while the request waited in the queue",
                            {}});
    }
    if (!batch.empty()) RunBatch(backend, batch);
  }
}

void ModelRunner::RunBatch(model::Backend& backend, std::vector<Item>& batch) {
  const TimePoint start = clock_.Now();
  std::vector<const model::InferInput*> inputs;
  inputs.reserve(batch.size());
  int rows = 0;
  for (const Item& item : batch) {
    inputs.push_back(&item.request.input);
    queue_hist_->Observe(Seconds(start - item.enqueued));
    rows += item.rows;
  }
  std::vector<absl::StatusOr<model::InferOutput>> results = backend.Infer(inputs);
  const TimePoint end = clock_.Now();
  compute_hist_->Observe(Seconds(end - start));
  batch_hist_->Observe(rows);
  executions_->Increment();
  inferences_->Increment(rows);
  for (size_t i = 0; i < batch.size(); ++i) {
    InferResult r;
    r.exec_start = start;
    r.exec_end = end;
    r.batch_rows = rows;
    if (i >= results.size()) {
      r.outcome = Outcome::kInternal;
      r.message = "the backend returned fewer results than requests";
    } else if (!results[i].ok()) {
      const absl::Status& st = results[i].status();
      r.outcome = st.code() == absl::StatusCode::kInvalidArgument ? Outcome::kInvalidInput
                                                                  : Outcome::kInternal;
      r.message = std::string(st.message());
    } else {
      r.output = std::move(results[i]).value();
    }
    inflight_gauge_->Set(static_cast<double>(inflight_.fetch_sub(1) - 1));
    batch[i].done(std::move(r));
  }
}

void ModelRunner::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.SignalAll();
  // Workers drain the queue before exiting (Stop is called after the HTTP server has finished
  // accepting, so whatever is queued was accepted and is answered).
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  std::deque<Item> left;  // only when Start() never ran
  {
    absl::MutexLock lock(&mu_);
    left.swap(queue_);
  }
  for (Item& item : left) {
    inflight_.fetch_sub(1);
    item.done(InferResult{Outcome::kShuttingDown, "the server is shutting down", {}});
  }
  ready_.store(false);
  ready_gauge_->Set(0);
}

}  // namespace galley::inference
