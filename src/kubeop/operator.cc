#include "kubeop/operator.h"

#include <algorithm>
#include <ctime>
#include <deque>
#include <map>
#include <set>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "boost/json/object.hpp"
#include "common/log.h"
#include "common/strings.h"
#include "common/sync.h"
#include "common/thread_name.h"
#include "kube/informer.h"
#include "kube/leader_election.h"
#include "kube/yaml_json.h"
#include "kubeop/desired.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"

namespace galley::kubeop {
namespace {

namespace json = boost::json;

std::string NowRfc3339() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string KeyOf(std::string_view ns, std::string_view name) { return StrCat(ns, "/", name); }

// The model that owns `obj` (a child or a pod), from the label every child and pod carries.
std::string OwnerKey(const json::value& obj) {
  const json::value* labels = obj.is_object() ? obj.as_object().if_contains("metadata") : nullptr;
  labels = labels && labels->is_object() ? labels->as_object().if_contains("labels") : nullptr;
  const json::value* m =
      labels && labels->is_object() ? labels->as_object().if_contains(kModelLabel) : nullptr;
  if (m == nullptr || !m->is_string()) return {};
  return KeyOf(kube::NamespaceOf(obj), m->as_string());
}

bool NodeLost(const json::value& node) {
  const json::value* conds = nullptr;
  if (const json::value* st = node.as_object().if_contains("status"); st && st->is_object()) {
    conds = st->as_object().if_contains("conditions");
  }
  if (conds == nullptr || !conds->is_array()) return false;
  for (const json::value& c : conds->as_array()) {
    const json::object& o = c.as_object();
    if (o.contains("type") && o.at("type") == "Ready")
      return o.contains("status") && o.at("status") != "True";
  }
  return false;
}

}  // namespace

struct Operator::Impl {
  Impl(kube::Client& c, OperatorOptions o, metrics::Registry& r)
      : client(c),
        options(std::move(o)),
        reconciles(
            prometheus::BuildCounter()
                .Name("galley_operator_reconciles_total")
                .Help("Reconcile passes over InferenceModels by result: ok, error, invalid_spec.")
                .Register(r.prom())),
        repairs(prometheus::BuildCounter()
                    .Name("galley_operator_children_created_total")
                    .Help("Children (Deployment, Service, PodDisruptionBudget) created because "
                          "they were missing.")
                    .Register(r.prom())),
        duration(prometheus::BuildHistogram()
                     .Name("galley_operator_reconcile_duration_seconds")
                     .Help("Time one reconcile pass took.")
                     .Register(r.prom())
                     .Add({}, metrics::DurationBuckets())),
        depth(prometheus::BuildGauge()
                  .Name("galley_operator_queue_depth")
                  .Help("InferenceModels waiting for a reconcile pass.")
                  .Register(r.prom())
                  .Add({})),
        leading_gauge(prometheus::BuildGauge()
                          .Name("galley_operator_leader")
                          .Help("1 while this instance holds the operator's Lease.")
                          .Register(r.prom())
                          .Add({})) {}

  kube::InformerOptions InformerFor(std::string selector = {}) const {
    kube::InformerOptions o;
    o.namespace_name = options.namespace_name;
    o.label_selector = std::move(selector);
    return o;
  }

  void Enqueue(const std::string& key, std::chrono::milliseconds delay = {}) {
    if (key.empty()) return;
    absl::MutexLock lock(&mu);
    const auto due = std::chrono::steady_clock::now() + delay;
    auto it = due_at.find(key);
    if (it != due_at.end() && it->second <= due) return;  // already queued sooner
    due_at[key] = due;
    depth.Set(static_cast<double>(due_at.size()));
    cv.SignalAll();
  }

  void EnqueueAll() {
    for (const json::value& m : models->List()) {
      Enqueue(KeyOf(kube::NamespaceOf(m), kube::NameOf(m)));
    }
  }

  // Worker: takes the key due first, reconciles it, requeues it with back-off on error.
  void Work(std::stop_token stop) {
    SetThreadName("operator-work");
    auto next_resync = std::chrono::steady_clock::now();
    while (!stop.stop_requested()) {
      std::string key;
      {
        absl::ReleasableMutexLock lock(&mu);
        const auto now = std::chrono::steady_clock::now();
        auto first =
            std::min_element(due_at.begin(), due_at.end(),
                             [](const auto& a, const auto& b) { return a.second < b.second; });
        if (first == due_at.end() || first->second > now) {
          auto until = std::min(next_resync, first == due_at.end() ? next_resync : first->second);
          galley::WaitUntil(cv, mu, std::min(until, now + std::chrono::milliseconds(500)));
          if (std::chrono::steady_clock::now() >= next_resync) {
            lock.Release();
            EnqueueAll();
            next_resync = std::chrono::steady_clock::now() + options.resync;
          }
          continue;
        }
        key = first->first;
        due_at.erase(first);
        depth.Set(static_cast<double>(due_at.size()));
      }
      const auto start = std::chrono::steady_clock::now();
      const absl::Status st = Reconcile(key);
      duration.Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      if (st.ok()) {
        failures.erase(key);
        continue;
      }
      int& n = failures[key];
      const auto delay =
          std::min(options.max_backoff, options.min_backoff * (1 << std::min(n, 16)));
      ++n;
      reconciles.Add({{"result", "error"}}).Increment();
      log::Warn("reconcile_failed", {{"model", key},
                                     {"error", std::string(st.message())},
                                     {"retry_ms", static_cast<int64_t>(delay.count())}});
      Enqueue(key, delay);
    }
  }

  absl::Status ApplyChild(const kube::ResourceType& type, kube::Informer& cache,
                          const json::value& desired, const json::value& model) {
    const std::string key = KeyOf(kube::NamespaceOf(desired), kube::NameOf(desired));
    const bool existed = cache.Get(key).has_value();
    auto r = client.Apply(type, kube::NamespaceOf(desired), desired, kFieldManager);
    if (!r.ok()) return r.status();
    if (!existed) {
      repairs.Add({{"kind", type.kind}}).Increment();
      kube::EventSpec ev;
      ev.involved = model;
      ev.reason = StrCat("Created", type.kind);
      ev.message = StrCat("created ", type.kind, " ", kube::NameOf(desired));
      ev.component = "galley-operator";
      (void)client.CreateEvent(ev);
    }
    return absl::OkStatus();
  }

  absl::Status Reconcile(const std::string& key) {
    std::optional<json::value> model = models->Get(key);
    if (!model) return absl::OkStatus();  // deleted: the garbage collector removes its children
    if (model->as_object().at("metadata").as_object().contains("deletionTimestamp")) {
      return absl::OkStatus();
    }
    const std::string ns(kube::NamespaceOf(*model));
    const std::string name(kube::NameOf(*model));
    std::string spec_error;
    absl::StatusOr<Children> children = DesiredChildren(*model);
    if (children.ok()) {
      for (auto [type, cache, obj] :
           {std::tuple{&kube::resources::kDeployments, deployments.get(), &children->deployment},
            std::tuple{&kube::resources::kServices, services.get(), &children->service},
            std::tuple{&kube::resources::kPodDisruptionBudgets, pdbs.get(), &children->pdb}}) {
        if (absl::Status st = ApplyChild(*type, *cache, *obj, *model); !st.ok()) return st;
      }
    } else {
      spec_error = std::string(children.status().message());
    }
    std::vector<json::value> own_pods;
    std::vector<std::string> lost;
    for (const json::value& p : pods->List()) {
      if (OwnerKey(p) == key) own_pods.push_back(p);
    }
    for (const json::value& n : nodes->List()) {
      if (NodeLost(n)) lost.emplace_back(kube::NameOf(n));
    }
    json::value status =
        ComputeStatus(*model, deployments->Get(key), own_pods, lost, spec_error, NowRfc3339());
    json::object patch{{"apiVersion", "galley.dev/v1alpha1"},
                       {"kind", "InferenceModel"},
                       {"metadata", json::object{{"name", name}, {"namespace", ns}}},
                       {"status", status}};
    // Skip the write when nothing but the clock would change.
    const json::value* old = model->as_object().if_contains("status");
    if (old == nullptr || !SameStatus(*old, status)) {
      auto r = client.Apply(kInferenceModels, ns, patch, kFieldManager, true, "status");
      if (!r.ok()) return r.status();
    }
    reconciles.Add({{"result", spec_error.empty() ? "ok" : "invalid_spec"}}).Increment();
    return absl::OkStatus();
  }

  // Equal as JSON documents: numbers by value (the server may give an int where we built an
  // unsigned), objects whatever the order of their keys.
  static bool SameStatus(const json::value& a, const json::value& b) {
    if (a.is_number() && b.is_number()) return a.to_number<double>() == b.to_number<double>();
    if (a.kind() != b.kind()) return false;
    if (a.is_object()) {
      const json::object& x = a.as_object();
      const json::object& y = b.as_object();
      if (x.size() != y.size()) return false;
      for (const auto& kv : x) {
        const json::value* other = y.if_contains(kv.key());
        if (other == nullptr || !SameStatus(kv.value(), *other)) return false;
      }
      return true;
    }
    if (a.is_array()) {
      const json::array& x = a.as_array();
      const json::array& y = b.as_array();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!SameStatus(x[i], y[i])) return false;
      }
      return true;
    }
    return a == b;
  }

  void Lead(std::stop_token stop) {
    leading = true;
    leading_gauge.Set(1);
    log::Info("operator_leading", {{"identity", options.identity}});
    EnqueueAll();
    Work(stop);
    leading = false;
    leading_gauge.Set(0);
  }

  kube::Client& client;
  const OperatorOptions options;
  prometheus::Family<prometheus::Counter>& reconciles;
  prometheus::Family<prometheus::Counter>& repairs;
  prometheus::Histogram& duration;
  prometheus::Gauge& depth;
  prometheus::Gauge& leading_gauge;
  std::atomic<bool> leading{false};

  std::unique_ptr<kube::Informer> models, deployments, services, pdbs, pods, nodes;
  std::unique_ptr<kube::LeaderElector> elector;
  absl::Mutex mu;
  absl::CondVar cv;
  std::map<std::string, std::chrono::steady_clock::time_point> due_at ABSL_GUARDED_BY(mu);
  std::map<std::string, int> failures;  // the worker's own
};

Operator::Operator(kube::Client& client, OperatorOptions options, metrics::Registry& registry)
    : impl_(std::make_unique<Impl>(client, std::move(options), registry)) {}

Operator::~Operator() { Stop(); }

absl::Status Operator::Start() {
  Impl& s = *impl_;
  const std::string managed = StrCat("app.kubernetes.io/managed-by=", kFieldManager);
  s.models = std::make_unique<kube::Informer>(&s.client, kInferenceModels, s.InformerFor());
  s.deployments = std::make_unique<kube::Informer>(&s.client, kube::resources::kDeployments,
                                                   s.InformerFor(managed));
  s.services = std::make_unique<kube::Informer>(&s.client, kube::resources::kServices,
                                                s.InformerFor(managed));
  s.pdbs = std::make_unique<kube::Informer>(&s.client, kube::resources::kPodDisruptionBudgets,
                                            s.InformerFor(managed));
  s.pods =
      std::make_unique<kube::Informer>(&s.client, kube::resources::kPods, s.InformerFor(managed));
  kube::InformerOptions node_opts;
  s.nodes = std::make_unique<kube::Informer>(&s.client, kube::resources::kNodes, node_opts);
  Impl* impl = impl_.get();
  auto model_key = [impl](const json::value& m) {
    impl->Enqueue(KeyOf(kube::NamespaceOf(m), kube::NameOf(m)));
  };
  s.models->AddEventHandlers(
      {model_key, [model_key](const json::value&, const json::value& n) { model_key(n); },
       model_key});
  auto child = [impl](const json::value& obj) { impl->Enqueue(OwnerKey(obj)); };
  for (kube::Informer* inf : {s.deployments.get(), s.services.get(), s.pdbs.get(), s.pods.get()}) {
    inf->AddEventHandlers(
        {child, [child](const json::value&, const json::value& n) { child(n); }, child});
  }
  // A node that stops reporting changes its replicas' status (NodeLost): every model is looked at.
  auto node_changed = [impl](const json::value& o, const json::value& n) {
    if (NodeLost(o) != NodeLost(n)) impl->EnqueueAll();
  };
  s.nodes->AddEventHandlers({{}, node_changed, {}});
  for (kube::Informer* inf : {s.models.get(), s.deployments.get(), s.services.get(), s.pdbs.get(),
                              s.pods.get(), s.nodes.get()}) {
    if (absl::Status st = inf->Start(); !st.ok()) return st;
  }
  kube::LeaderElectionConfig le;
  le.lease_namespace = s.options.lease_namespace;
  le.lease_name = s.options.lease_name;
  le.identity = s.options.identity;
  le.lease_duration = s.options.lease_duration;
  le.renew_deadline = s.options.renew_deadline;
  le.retry_period = s.options.retry_period;
  le.on_started_leading = [impl](std::stop_token stop) {
    for (kube::Informer* inf : {impl->models.get(), impl->deployments.get(), impl->services.get(),
                                impl->pdbs.get(), impl->pods.get(), impl->nodes.get()}) {
      inf->WaitForSync(std::chrono::seconds(30));
    }
    galley::StopWaker wake(stop, impl->mu, impl->cv);
    impl->Lead(stop);
  };
  auto elector = kube::LeaderElector::Create(&s.client, std::move(le));
  if (!elector.ok()) return elector.status();
  s.elector = std::move(elector).value();
  return s.elector->Start();
}

void Operator::Stop() {
  Impl& s = *impl_;
  if (s.elector) s.elector->Stop();
  for (auto* inf : {&s.models, &s.deployments, &s.services, &s.pdbs, &s.pods, &s.nodes}) {
    if (*inf) (*inf)->Stop();
  }
}

bool Operator::Synced() const {
  const Impl& s = *impl_;
  return s.models && s.models->HasSynced() && s.deployments->HasSynced() && s.pods->HasSynced();
}

bool Operator::Leading() const { return impl_->leading.load(); }

absl::Status InstallCrd(kube::Client& client, const std::string& yaml,
                        std::chrono::milliseconds timeout) {
  auto crd = kube::YamlToJson(yaml);
  if (!crd.ok()) return crd.status();
  auto r = client.Apply(kube::resources::kCustomResourceDefinitions, "", *crd, kFieldManager);
  if (!r.ok()) return r.status();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::string name(kube::NameOf(*crd));
  while (std::chrono::steady_clock::now() < deadline) {
    auto got = client.Get(kube::resources::kCustomResourceDefinitions, "", name);
    if (got.ok()) {
      const json::value* st = got->as_object().if_contains("status");
      const json::value* conds =
          st && st->is_object() ? st->as_object().if_contains("conditions") : nullptr;
      if (conds && conds->is_array()) {
        for (const json::value& c : conds->as_array()) {
          if (c.as_object().at("type") == "Established" && c.as_object().at("status") == "True") {
            return absl::OkStatus();
          }
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // polling the API server's view
  }
  return absl::DeadlineExceededError(
      StrCat("CRD ", name, " not Established within ", timeout.count(), " ms"));
}

}  // namespace galley::kubeop
