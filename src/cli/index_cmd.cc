// `galley index build` and `galley index eval`: the retrieval agent's index (docs/retrieval.md).
// build: documents -> passages -> vectors (the embedding model, run in this process) -> an HNSW
// index, written as the version folder of a galley_retrieval model, with the approximate search's
// recall against exact search measured on the way. eval: a labelled question set against an
// index: how often the labelled source is among the top k, and the recall against exact search.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"
#include "cli/commands.h"
#include "cli/flags.h"
#include "common/log.h"
#include "common/strings.h"
#include "inference/builtin_backends.h"
#include "retrieval/passages.h"
#include "retrieval/retrieval_backend.h"
#include "retrieval/vector_index.h"

namespace galley::cli {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

int Fail(const char* event, const absl::Status& st) {
  log::Error(event,
             {{"code", absl::StatusCodeToString(st.code())}, {"error", std::string(st.message())}});
  return 1;
}

struct BuildFlags {
  std::string docs;
  std::string label_root;
  std::string repository = GALLEY_SOURCE_RETRIEVAL;
  std::string embedding_model = "minilm";
  std::string out;
  int max_words = 120;
  int batch = 32;
  retrieval::IndexParams params;
  int recall_queries = 200;
  int recall_k = 10;
};

// Mean recall@k of `index` against exact search, with `queries` of the indexed vectors (chosen
// with a fixed seed) as questions.
double SelfRecall(const retrieval::VectorIndex& index, const std::vector<float>& vectors, int dim,
                  int queries, int k) {
  const size_t count = vectors.size() / static_cast<size_t>(dim);
  std::vector<size_t> ids(count);
  for (size_t i = 0; i < count; ++i) ids[i] = i;
  std::shuffle(ids.begin(), ids.end(), std::mt19937(7));
  ids.resize(std::min(count, static_cast<size_t>(queries)));
  double sum = 0;
  for (size_t id : ids) {
    absl::Span<const float> q(vectors.data() + id * static_cast<size_t>(dim),
                              static_cast<size_t>(dim));
    sum += retrieval::RecallAtK(index.Search(q, static_cast<size_t>(k)),
                                retrieval::ExactSearch(vectors, dim, q, static_cast<size_t>(k)));
  }
  return ids.empty() ? 1.0 : sum / static_cast<double>(ids.size());
}

absl::Status WriteVectors(const fs::path& file, const std::vector<float>& v) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(v.data()),
            static_cast<std::streamsize>(v.size() * sizeof(float)));
  out.close();
  if (!out) return absl::InternalError(StrCat("cannot write ", file.string()));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> ReadVectors(const fs::path& file, size_t floats) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot open ", file.string()));
  std::vector<float> v(floats);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(floats * sizeof(float)));
  if (in.gcount() != static_cast<std::streamsize>(floats * sizeof(float)) || in.peek() != EOF) {
    return absl::DataLossError(StrCat(file.string(), " does not hold ", floats, " floats"));
  }
  return v;
}

int RunBuild(const BuildFlags& f) {
  const auto start = Clock::now();
  auto passages =
      retrieval::CollectPassages(f.docs, static_cast<size_t>(f.max_words), f.label_root);
  if (!passages.ok()) return Fail("index_build_failed", passages.status());
  auto embedder = inference::LoadModelFolder(fs::path(f.repository) / f.embedding_model);
  if (!embedder.ok()) return Fail("index_build_failed", embedder.status());
  std::vector<std::string> texts;
  for (const auto& p : *passages) texts.push_back(p.text);
  const auto embed_start = Clock::now();
  auto vectors = retrieval::EmbedAll(**embedder, texts, static_cast<size_t>(f.batch));
  if (!vectors.ok()) return Fail("index_build_failed", vectors.status());
  const double embed_s = Seconds(embed_start);
  const int dim = static_cast<int>(vectors->size() / texts.size());
  const auto build_start = Clock::now();
  auto index = retrieval::VectorIndex::Build(*vectors, dim, f.params);
  if (!index.ok()) return Fail("index_build_failed", index.status());
  const double build_s = Seconds(build_start);
  const double recall = SelfRecall(*index, *vectors, dim, f.recall_queries, f.recall_k);

  // Write beside the destination, then swap it into place: a reader never sees half an index.
  const fs::path out = fs::absolute(f.out).lexically_normal();
  const fs::path stage =
      out.parent_path() / StrCat(".", out.filename().string(), ".new-", ::getpid());
  std::error_code ec;
  fs::remove_all(stage, ec);
  fs::create_directories(stage, ec);
  if (ec)
    return Fail("index_build_failed",
                absl::InternalError(StrCat(stage.string(), ": ", ec.message())));
  absl::Status st = index->Save(stage);
  if (st.ok()) st = retrieval::WritePassages(stage / "passages.jsonl", *passages);
  if (st.ok()) st = WriteVectors(stage / "vectors.f32", *vectors);
  if (st.ok()) {
    st = retrieval::WriteManifest(stage, {f.embedding_model, dim, passages->size()});
  }
  if (!st.ok()) {
    fs::remove_all(stage, ec);
    return Fail("index_build_failed", st);
  }
  const fs::path old =
      out.parent_path() / StrCat(".", out.filename().string(), ".old-", ::getpid());
  const bool had = fs::exists(out, ec);
  if (had) fs::rename(out, old, ec);
  if (!ec) fs::rename(stage, out, ec);
  if (ec) {
    fs::remove_all(stage);
    return Fail(
        "index_build_failed",
        absl::InternalError(StrCat("moving the index to ", out.string(), ": ", ec.message())));
  }
  if (had) fs::remove_all(old, ec);
  log::Info("index_built",
            {{"out", out.string()},
             {"passages", passages->size()},
             {"dim", dim},
             {"embedding_model", f.embedding_model},
             {"embed_s", embed_s},
             {"embed_ms_per_passage", 1000 * embed_s / double(texts.size())},
             {"build_s", build_s},
             {"m", f.params.m},
             {"ef_construction", f.params.ef_construction},
             {"ef_search", f.params.ef_search},
             {StrCat("recall_at_", f.recall_k), recall},
             {"recall_queries", std::min<size_t>(passages->size(), f.recall_queries)},
             {"duration_s", Seconds(start)}});
  return 0;
}

struct EvalFlags {
  std::string index;  // an index folder
  std::string repository = GALLEY_SOURCE_RETRIEVAL;
  std::string queries;
  int k = 5;
  int ef_search = 64;
};

// A labelled source matches a hit's source when equal, or when the label names a whole file
// ("docs/queues.md") and the hit is one of its sections.
bool SourceMatches(const std::string& label, const std::string& hit) {
  if (label == hit) return true;
  return label.find('#') == std::string::npos && StartsWith(hit, label + "#");
}

int RunEval(const EvalFlags& f) {
  auto manifest = retrieval::ReadManifest(f.index);
  if (!manifest.ok()) return Fail("index_eval_failed", manifest.status());
  auto index = retrieval::VectorIndex::Load(f.index, f.ef_search);
  if (!index.ok()) return Fail("index_eval_failed", index.status());
  auto passages = retrieval::ReadPassages(fs::path(f.index) / "passages.jsonl");
  if (!passages.ok()) return Fail("index_eval_failed", passages.status());
  auto vectors = ReadVectors(fs::path(f.index) / "vectors.f32",
                             manifest->count * static_cast<size_t>(manifest->dim));
  if (!vectors.ok()) return Fail("index_eval_failed", vectors.status());
  auto embedder = inference::LoadModelFolder(fs::path(f.repository) / manifest->embedding_model);
  if (!embedder.ok()) return Fail("index_eval_failed", embedder.status());

  std::ifstream in(f.queries, std::ios::binary);
  if (!in) return Fail("index_eval_failed", absl::NotFoundError(StrCat("cannot open ", f.queries)));
  std::vector<std::string> questions, labels;
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (StripWhitespace(line).empty()) continue;
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(line, ec);
    const auto* o = ec ? nullptr : v.if_object();
    const auto* q = o ? o->if_contains("query") : nullptr;
    const auto* s = o ? o->if_contains("source") : nullptr;
    if (q == nullptr || s == nullptr || !q->is_string() || !s->is_string()) {
      return Fail("index_eval_failed",
                  absl::InvalidArgumentError(StrCat(
                      f.queries, ":", line_no, ": expected {\"query\": ..., \"source\": ...}")));
    }
    const std::string label(s->as_string());
    if (std::none_of(passages->begin(), passages->end(),
                     [&](const retrieval::Passage& p) { return SourceMatches(label, p.source); })) {
      return Fail("index_eval_failed",
                  absl::InvalidArgumentError(StrCat(f.queries, ":", line_no, ": source '", label,
                                                    "' is in no passage of the index")));
    }
    questions.emplace_back(q->as_string());
    labels.push_back(label);
  }
  if (questions.empty()) {
    return Fail("index_eval_failed", absl::InvalidArgumentError(StrCat(f.queries, ": no queries")));
  }
  auto qv = retrieval::EmbedAll(**embedder, questions, 32);
  if (!qv.ok()) return Fail("index_eval_failed", qv.status());
  const auto dim = static_cast<size_t>(manifest->dim);
  size_t hit1 = 0, hitk = 0;
  double mrr = 0, recall = 0, search_s = 0;
  for (size_t i = 0; i < questions.size(); ++i) {
    absl::Span<const float> q(qv->data() + i * dim, dim);
    const auto t = Clock::now();
    const auto hits = index->Search(q, static_cast<size_t>(f.k));
    search_s += Seconds(t);
    recall += retrieval::RecallAtK(
        hits, retrieval::ExactSearch(*vectors, manifest->dim, q, static_cast<size_t>(f.k)));
    for (size_t r = 0; r < hits.size(); ++r) {
      if (!SourceMatches(labels[i], (*passages)[hits[r].id].source)) continue;
      hit1 += r == 0;
      ++hitk;
      mrr += 1.0 / double(r + 1);
      break;
    }
  }
  const double n = double(questions.size());
  log::Info("index_evaluated", {{"index", f.index},
                                {"queries", questions.size()},
                                {"k", f.k},
                                {"hit_at_1", double(hit1) / n},
                                {StrCat("hit_at_", f.k), double(hitk) / n},
                                {"mrr", mrr / n},
                                {StrCat("recall_at_", f.k, "_vs_exact"), recall / n},
                                {"ef_search", f.ef_search},
                                {"search_ms_mean", 1000 * search_s / n}});
  return 0;
}

}  // namespace

Runner AddIndexCommand(CLI::App& app) {
  CLI::App* index = app.add_subcommand("index", "The retrieval agent's document index");
  index->require_subcommand(1);
  CLI::App* build = index->add_subcommand(
      "build", "Split documents into passages, embed them and write an HNSW index folder");
  auto b = std::make_shared<BuildFlags>();
  Flag(build, "docs", b->docs, "a folder of Markdown files, a .md file or a .jsonl file")
      ->required();
  Flag(build, "label-root", b->label_root,
       "sources are paths relative to this folder (default: --docs itself)");
  Flag(build, "model-repository", b->repository, "the repository holding the embedding model");
  Flag(build, "embedding-model", b->embedding_model, "the embedding model's folder name");
  Flag(build, "out", b->out, "the index folder to write (replaced whole when it exists)")
      ->required();
  Flag(build, "max-words", b->max_words, "words per passage at most")->check(CLI::Range(8, 2000));
  Flag(build, "batch", b->batch, "passages per embedding run")->check(CLI::Range(1, 1024));
  Flag(build, "m", b->params.m, "HNSW graph degree")->check(CLI::Range(2, 128));
  Flag(build, "ef-construction", b->params.ef_construction, "HNSW candidates while inserting")
      ->check(CLI::Range(1, 10000));
  Flag(build, "ef-search", b->params.ef_search, "HNSW candidates while measuring recall")
      ->check(CLI::Range(1, 10000));
  Flag(build, "recall-queries", b->recall_queries,
       "indexed vectors used as questions to measure recall against exact search")
      ->check(CLI::Range(0, 1000000));
  Flag(build, "recall-k", b->recall_k, "the k of recall@k")->check(CLI::Range(1, 1000));

  CLI::App* eval = index->add_subcommand(
      "eval", "Score an index on labelled questions: hit@1, hit@k, MRR, recall against exact");
  auto e = std::make_shared<EvalFlags>();
  Flag(eval, "index", e->index, "the index folder")->required();
  Flag(eval, "model-repository", e->repository, "the repository holding the embedding model");
  Flag(eval, "queries", e->queries, "JSON Lines of {\"query\": ..., \"source\": ...}")->required();
  Flag(eval, "k", e->k, "passages per question")->check(CLI::Range(1, 1000));
  Flag(eval, "ef-search", e->ef_search, "HNSW candidates while searching")
      ->check(CLI::Range(1, 10000));
  return [build, eval, b, e]() -> int {
    if (build->parsed()) return RunBuild(*b);
    if (eval->parsed()) return RunEval(*e);
    return -1;
  };
}

}  // namespace galley::cli
