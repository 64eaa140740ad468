// onnx_limit: the in-process limit of a text model, for bench/serve/onnx.sh.
//
// Loads one ONNX model with model::OnnxBackend (ONNX Runtime, --threads intra-op threads, 1 like
// the served configuration), tokenizes every benchmark text with model::WordTokenizer up front
// (untimed), then for each batch size runs OnnxBackend::RunBatch on consecutive texts, each batch
// zero-padded to its longest text (as Galley pads a batch), for a fixed time (--order sorted: the
// texts sorted by length first, so that batches are nearly unpadded). No HTTP, no queue,
// no JSON, no tokenizing in the timed loop: what the model itself costs on this machine.
//
// Prints a human-readable table on stderr and machine-readable lines on stdout:
//   LIMIT batch=B inferences_per_s=F us_per_batch=F p50_us=F p99_us=F batches=N rows=N seconds=F
//                               (p50/p99: of the batch durations, one RunBatch call each)
//   BEST batch=B inferences_per_s=F
//   COMPUTE_B1_US us=F          (per-request compute at batch 1: 1e6 / inferences_per_s at B=1)
//   TEXTS count=N mean_ids=F max_ids=N
//   ORDER consecutive|sorted
//   PEAK_RSS_KB kb=N            (getrusage ru_maxrss, after every run)
//
// Usage:
//   onnx_limit --model models/sentiment_transformer/1/model.onnx
//              --vocab models/sentiment_transformer/vocab.txt --texts TEXTS.txt
//              [--max-length 128] [--seconds 2] [--batch-sizes 1,2,4,8,16,32,64] [--threads 1]
//              [--order consecutive|sorted]
// TEXTS.txt holds one text per line (blank lines skipped).

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/status_macros.h"
#include "model/onnx_backend.h"
#include "model/tensor.h"
#include "model/word_tokenizer.h"

namespace {

using galley::model::DataType;
using galley::model::OnnxBackend;
using galley::model::OnnxBackendOptions;
using galley::model::Tensor;
using galley::model::WordTokenizer;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string model;
  std::string vocab;
  std::string texts;
  int max_length = WordTokenizer::kDefaultMaxLength;
  double seconds = 2.0;
  std::vector<int> batch_sizes = {1, 2, 4, 8, 16, 32, 64};
  int threads = 1;
  // "consecutive": batches of consecutive texts in file order, padded to each batch's longest.
  // "sorted": the texts sorted by token count first, so a batch holds texts of nearly one length
  // (the least padding any batching policy can reach; Galley's length buckets approach it).
  std::string order = "consecutive";
};

struct Point {
  int batch = 0;
  int64_t batches = 0;
  int64_t rows = 0;
  double seconds = 0;
  std::vector<double> batch_us;  // each RunBatch call's duration
  double rate() const { return seconds > 0 ? static_cast<double>(rows) / seconds : 0; }
  // The q-quantile (0..1) of the batch durations, nearest rank.
  double QuantileUs(double q) {
    if (batch_us.empty()) return 0;
    const size_t k = std::min(batch_us.size() - 1, static_cast<size_t>(q * batch_us.size()));
    std::nth_element(batch_us.begin(), batch_us.begin() + k, batch_us.end());
    return batch_us[k];
  }
};

absl::StatusOr<std::vector<std::string>> ReadTexts(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot open " + path);
  std::vector<std::string> texts;
  for (std::string line; std::getline(in, line);) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) texts.push_back(line);
  }
  if (texts.empty()) return absl::InvalidArgumentError("no texts in " + path);
  return texts;
}

// Rows `first`, first+1, ... (wrapping around) of `ids`, zero-padded to the longest: one INT64
// tensor [batch, longest] named `name`.
Tensor MakeBatch(const std::string& name, const std::vector<std::vector<int64_t>>& ids,
                 size_t first, int batch) {
  size_t longest = 0;
  for (int r = 0; r < batch; ++r) longest = std::max(longest, ids[(first + r) % ids.size()].size());
  Tensor t;
  t.name = name;
  t.datatype = DataType::kInt64;
  t.shape = {batch, static_cast<int64_t>(longest)};
  t.raw.assign(static_cast<size_t>(batch) * longest * sizeof(int64_t), 0);
  auto* out = reinterpret_cast<int64_t*>(t.raw.data());
  for (int r = 0; r < batch; ++r) {
    const auto& row = ids[(first + r) % ids.size()];
    std::copy(row.begin(), row.end(), out + static_cast<size_t>(r) * longest);
  }
  return t;
}

// Runs batches of `batch` consecutive texts (prepared before the clock starts) for `seconds`,
// after a short untimed warm-up.
absl::StatusOr<Point> Measure(const OnnxBackend& backend,
                              const std::vector<std::vector<int64_t>>& ids, int batch,
                              double seconds) {
  const std::string& input = backend.Metadata().inputs.at(0).name;
  // One pass over the texts: ceil(n / batch) batches, the last one wrapping to the start.
  const size_t count = (ids.size() + batch - 1) / batch;
  std::vector<std::vector<Tensor>> batches(count);
  for (size_t i = 0; i < count; ++i) batches[i].push_back(MakeBatch(input, ids, i * batch, batch));

  for (size_t i = 0; i < std::min<size_t>(count, 8); ++i) {
    RETURN_IF_ERROR(backend.RunBatch(batches[i]).status());
  }
  Point p;
  p.batch = batch;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  p.batch_us.reserve(1 << 16);
  auto now = start;
  for (size_t i = 0; now < end; i = (i + 1) % count) {
    const auto before = now;
    RETURN_IF_ERROR(backend.RunBatch(batches[i]).status());
    ++p.batches;
    p.rows += batch;
    now = Clock::now();
    p.batch_us.push_back(std::chrono::duration<double, std::micro>(now - before).count());
  }
  p.seconds = std::chrono::duration<double>(now - start).count();
  return p;
}

absl::Status Run(const Options& o) {
  ASSIGN_OR_RETURN(auto texts, ReadTexts(o.texts));
  ASSIGN_OR_RETURN(auto tokenizer, WordTokenizer::FromFile(o.vocab, o.max_length));
  std::vector<std::vector<int64_t>> ids(texts.size());
  size_t total_ids = 0, max_ids = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    tokenizer.Encode(texts[i], ids[i]);
    total_ids += ids[i].size();
    max_ids = std::max(max_ids, ids[i].size());
  }
  if (o.order == "sorted") {
    std::stable_sort(ids.begin(), ids.end(),
                     [](const auto& a, const auto& b) { return a.size() < b.size(); });
  }

  OnnxBackendOptions bo;
  bo.name = "limit";
  bo.model_path = o.model;
  bo.max_batch_size = *std::max_element(o.batch_sizes.begin(), o.batch_sizes.end());
  bo.intra_op_threads = o.threads;
  ASSIGN_OR_RETURN(std::unique_ptr<OnnxBackend> backend, OnnxBackend::Create(std::move(bo)));
  RETURN_IF_ERROR(backend->Load());
  if (backend->Metadata().inputs.size() != 1 ||
      backend->Metadata().inputs[0].datatype != DataType::kInt64) {
    return absl::InvalidArgumentError("the model must take one INT64 input (token ids)");
  }

  std::printf("TEXTS count=%zu mean_ids=%.2f max_ids=%zu\n", texts.size(),
              static_cast<double>(total_ids) / texts.size(), max_ids);
  std::printf("ORDER %s\n", o.order.c_str());
  std::fprintf(stderr, "%s: %zu texts (%s), %d intra-op thread(s), %.1f s per batch size\n",
               o.model.c_str(), texts.size(), o.order.c_str(), o.threads, o.seconds);
  std::fprintf(stderr, "%6s %14s %14s %12s %12s\n", "batch", "inferences/s", "us/batch", "p50 us",
               "p99 us");
  int best_batch = 0;
  double best_rate = 0;
  double b1_us = 0;
  for (int b : o.batch_sizes) {
    ASSIGN_OR_RETURN(Point p, Measure(*backend, ids, b, o.seconds));
    const double us_per_batch = 1e6 * p.seconds / static_cast<double>(p.batches);
    const double p50 = p.QuantileUs(0.50), p99 = p.QuantileUs(0.99);
    std::printf(
        "LIMIT batch=%d inferences_per_s=%.1f us_per_batch=%.1f p50_us=%.1f p99_us=%.1f "
        "batches=%lld rows=%lld seconds=%.3f\n",
        b, p.rate(), us_per_batch, p50, p99, static_cast<long long>(p.batches),
        static_cast<long long>(p.rows), p.seconds);
    std::fprintf(stderr, "%6d %14.0f %14.1f %12.1f %12.1f\n", b, p.rate(), us_per_batch, p50, p99);
    std::fflush(stdout);
    if (b == 1) b1_us = 1e6 / p.rate();
    if (p.rate() > best_rate) {
      best_batch = b;
      best_rate = p.rate();
    }
  }
  std::printf("BEST batch=%d inferences_per_s=%.1f\n", best_batch, best_rate);
  if (b1_us > 0) std::printf("COMPUTE_B1_US us=%.1f\n", b1_us);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("PEAK_RSS_KB kb=%ld\n", usage.ru_maxrss);
  std::fprintf(stderr,
               "best: batch %d, %.0f inferences/s; batch 1: %.1f us/request; "
               "peak RSS %.1f MiB\n",
               best_batch, best_rate, b1_us, usage.ru_maxrss / 1024.0);
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"In-process throughput limit of an ONNX text model (bench/serve/onnx.sh)"};
  app.add_option("--model", o.model, "model.onnx")->required()->check(CLI::ExistingFile);
  app.add_option("--vocab", o.vocab, "vocab.txt of the model")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--texts", o.texts, "texts, one per line")->required()->check(CLI::ExistingFile);
  app.add_option("--max-length", o.max_length, "most token ids per text")
      ->check(CLI::PositiveNumber);
  app.add_option("--seconds", o.seconds, "timed seconds per batch size")
      ->check(CLI::PositiveNumber);
  app.add_option("--batch-sizes", o.batch_sizes, "batch sizes, comma-separated")
      ->delimiter(',')
      ->check(CLI::Range(1, 4096));
  app.add_option("--threads", o.threads, "ONNX Runtime intra-op threads")->check(CLI::Range(1, 64));
  app.add_option("--order", o.order, "consecutive (file order) or sorted (by token count)")
      ->check(CLI::IsMember({"consecutive", "sorted"}));
  CLI11_PARSE(app, argc, argv);
  if (absl::Status s = Run(o); !s.ok()) {
    std::fprintf(stderr, "onnx_limit: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
