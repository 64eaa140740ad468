#include "retrieval/vector_index.h"

// hnswlib 0.6.2's SSE path prefetches one link past the end of a node's link list, a read
// outside the list's allocation (AddressSanitizer reports it during addPoint). Its scalar path
// reads only what it owns; at the index sizes served here the search costs microseconds either way.
#define NO_MANUAL_VECTORIZATION
#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"
#include "common/json.h"
#include "common/strings.h"

namespace galley::retrieval {
namespace fs = std::filesystem;
namespace {

constexpr char kIndexFile[] = "index.hnsw";
constexpr char kRecordFile[] = "index.json";

// FNV-1a, 64 bits, of a file's bytes.
absl::StatusOr<std::pair<uint64_t, uint64_t>> SizeAndChecksum(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot open ", file.string()));
  uint64_t h = 1469598103934665603ull, size = 0;
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof(buf));
    const auto n = static_cast<size_t>(in.gcount());
    for (size_t i = 0; i < n; ++i) {
      h ^= static_cast<unsigned char>(buf[i]);
      h *= 1099511628211ull;
    }
    size += n;
  }
  return std::make_pair(size, h);
}

}  // namespace

struct VectorIndex::Impl {
  explicit Impl(int dim) : space(static_cast<size_t>(dim)) {}
  hnswlib::InnerProductSpace space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;
};

VectorIndex::VectorIndex(std::unique_ptr<Impl> impl, int dim, size_t count, IndexParams params)
    : impl_(std::move(impl)), dim_(dim), count_(count), params_(params) {}
VectorIndex::~VectorIndex() = default;
VectorIndex::VectorIndex(VectorIndex&&) noexcept = default;
VectorIndex& VectorIndex::operator=(VectorIndex&&) noexcept = default;

absl::StatusOr<VectorIndex> VectorIndex::Build(absl::Span<const float> vectors, int dim,
                                               IndexParams params) {
  if (dim < 1) return absl::InvalidArgumentError("the dimension must be at least 1");
  if (vectors.empty() || vectors.size() % static_cast<size_t>(dim) != 0) {
    return absl::InvalidArgumentError(StrCat("expected a whole number of ", dim,
                                             "-float vectors, got ", vectors.size(), " floats"));
  }
  if (params.m < 2 || params.ef_construction < 1 || params.ef_search < 1) {
    return absl::InvalidArgumentError("m must be at least 2, ef_construction and ef_search 1");
  }
  const size_t count = vectors.size() / static_cast<size_t>(dim);
  auto impl = std::make_unique<Impl>(dim);
  try {
    impl->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(
        &impl->space, count, static_cast<size_t>(params.m),
        static_cast<size_t>(params.ef_construction), /*random_seed=*/100);
    for (size_t i = 0; i < count; ++i) {
      impl->graph->addPoint(vectors.data() + i * static_cast<size_t>(dim), i);
    }
    impl->graph->setEf(static_cast<size_t>(params.ef_search));
  } catch (const std::exception& e) {
    return absl::ResourceExhaustedError(StrCat("building the index: ", e.what()));
  }
  return VectorIndex(std::move(impl), dim, count, params);
}

absl::Status VectorIndex::Save(const fs::path& folder) const {
  const fs::path file = folder / kIndexFile;
  try {
    impl_->graph->saveIndex(file.string());
  } catch (const std::exception& e) {
    return absl::InternalError(StrCat("writing ", file.string(), ": ", e.what()));
  }
  auto sum = SizeAndChecksum(file);
  if (!sum.ok()) return sum.status();
  boost::json::object rec;
  rec["format"] = "hnswlib-0.6-ip";
  rec["dim"] = dim_;
  rec["count"] = count_;
  rec["m"] = params_.m;
  rec["ef_construction"] = params_.ef_construction;
  rec["bytes"] = sum->first;
  rec["fnv1a64"] = StrCat(sum->second);
  std::ofstream out(folder / kRecordFile, std::ios::binary | std::ios::trunc);
  out << JsonSerialize(rec) << "\n";
  out.close();
  if (!out) return absl::InternalError(StrCat("cannot write ", (folder / kRecordFile).string()));
  return absl::OkStatus();
}

absl::StatusOr<VectorIndex> VectorIndex::Load(const fs::path& folder, int ef_search) {
  const fs::path file = folder / kIndexFile;
  const fs::path record = folder / kRecordFile;
  std::ifstream in(record, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot open ", record.string()));
  std::ostringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text.str(), ec);
  const boost::json::object* o = ec ? nullptr : v.if_object();
  auto get_int = [&](const char* key) -> int64_t {
    const auto* x = o ? o->if_contains(key) : nullptr;
    return x && x->is_int64() ? x->as_int64()
                              : (x && x->is_uint64() ? int64_t(x->as_uint64()) : -1);
  };
  const auto* sum_field = o ? o->if_contains("fnv1a64") : nullptr;
  const int64_t dim = get_int("dim"), count = get_int("count"), bytes = get_int("bytes");
  if (dim < 1 || count < 1 || bytes < 0 || sum_field == nullptr || !sum_field->is_string() ||
      o->if_contains("format") == nullptr ||
      *o->if_contains("format") != boost::json::value("hnswlib-0.6-ip")) {
    return absl::DataLossError(StrCat(record.string(), ": not an index record"));
  }
  auto sum = SizeAndChecksum(file);
  if (!sum.ok()) return sum.status();
  if (static_cast<int64_t>(sum->first) != bytes ||
      StrCat(sum->second) != std::string(sum_field->as_string())) {
    return absl::DataLossError(StrCat(file.string(), " does not match ", record.string(),
                                      " (size or checksum differs): rebuild the index"));
  }
  IndexParams params;
  params.m = static_cast<int>(get_int("m"));
  params.ef_construction = static_cast<int>(get_int("ef_construction"));
  params.ef_search = std::max(1, ef_search);
  auto impl = std::make_unique<Impl>(static_cast<int>(dim));
  try {
    impl->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(&impl->space, file.string(),
                                                                    false, count);
    impl->graph->setEf(static_cast<size_t>(params.ef_search));
  } catch (const std::exception& e) {
    return absl::DataLossError(StrCat("reading ", file.string(), ": ", e.what()));
  }
  if (impl->graph->cur_element_count != static_cast<size_t>(count)) {
    return absl::DataLossError(StrCat(file.string(), " holds ", impl->graph->cur_element_count,
                                      " vectors, its record says ", count));
  }
  return VectorIndex(std::move(impl), static_cast<int>(dim), static_cast<size_t>(count), params);
}

std::vector<Hit> VectorIndex::Search(absl::Span<const float> query, size_t k) const {
  std::vector<Hit> out;
  if (query.size() != static_cast<size_t>(dim_) || k == 0) return out;
  auto heap = impl_->graph->searchKnn(query.data(), std::min(k, count_));
  out.resize(heap.size());
  for (size_t i = heap.size(); i > 0; --i) {  // the heap pops the farthest first
    out[i - 1] = {static_cast<uint32_t>(heap.top().second), 1.0f - heap.top().first};
    heap.pop();
  }
  return out;
}

std::vector<Hit> ExactSearch(absl::Span<const float> vectors, int dim,
                             absl::Span<const float> query, size_t k) {
  const size_t d = static_cast<size_t>(dim);
  const size_t count = vectors.size() / d;
  std::vector<Hit> all(count);
  for (size_t i = 0; i < count; ++i) {
    float dot = 0;
    for (size_t j = 0; j < d; ++j) dot += vectors[i * d + j] * query[j];
    all[i] = {static_cast<uint32_t>(i), dot};
  }
  k = std::min(k, count);
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(),
                    [](const Hit& a, const Hit& b) {
                      return a.score != b.score ? a.score > b.score : a.id < b.id;
                    });
  all.resize(k);
  return all;
}

double RecallAtK(const std::vector<Hit>& approx, const std::vector<Hit>& exact) {
  if (exact.empty()) return 1.0;
  size_t found = 0;
  for (const Hit& e : exact) {
    found += std::any_of(approx.begin(), approx.end(), [&](const Hit& a) { return a.id == e.id; });
  }
  return static_cast<double>(found) / static_cast<double>(exact.size());
}

}  // namespace galley::retrieval
