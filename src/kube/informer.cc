#include "kube/informer.h"

#include <random>

#include "common/log.h"
#include "common/strings.h"
#include "common/sync.h"
#include "common/thread_name.h"

namespace galley::kube {
namespace {

namespace json = boost::json;

}  // namespace

Informer::Informer(Client* client, ResourceType type, InformerOptions options)
    : client_(client), type_(std::move(type)), options_(std::move(options)) {}

Informer::~Informer() { Stop(); }

void Informer::AddEventHandlers(EventHandlers handlers) {
  handlers_.push_back(std::move(handlers));
}

absl::Status Informer::Start() {
  absl::MutexLock lock(&lifecycle_mu_);
  if (thread_) return absl::FailedPreconditionError("informer already started");
  thread_ = std::make_unique<std::jthread>([this](std::stop_token stop) {
    SetThreadName("informer");
    Run(stop);
  });
  return absl::OkStatus();
}

void Informer::Stop() {
  absl::MutexLock lock(&lifecycle_mu_);
  if (!thread_) return;
  thread_->request_stop();
  cv_.SignalAll();
  if (thread_->joinable()) thread_->join();
}

bool Informer::HasSynced() const {
  absl::MutexLock lock(&mu_);
  return synced_;
}

bool Informer::WaitForSync(Duration timeout) const {
  const TimePoint deadline = std::chrono::steady_clock::now() + timeout;
  absl::MutexLock lock(&mu_);
  while (!synced_ && galley::WaitUntil(cv_, mu_, deadline)) {
  }
  return synced_;
}

std::optional<json::value> Informer::Get(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  const auto it = cache_.find(key);
  if (it == cache_.end()) return std::nullopt;
  return it->second;
}

std::vector<json::value> Informer::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<json::value> out;
  out.reserve(cache_.size());
  for (const auto& [key, obj] : cache_) out.push_back(obj);
  return out;
}

std::vector<std::string> Informer::Keys() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [key, obj] : cache_) out.push_back(key);
  return out;
}

InformerStats Informer::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void Informer::Replace(const std::vector<json::value>& items) {
  // What DeltaFIFO.Replace + the shared informer's handler dispatch amount to
  // (k8s.io/client-go/tools/cache/delta_fifo.go): objects missing from the new list are
  // deleted with their last known state; new ones are added; the others are updated.
  // NOTE: client-go also delivers an update for unchanged objects (a "Replaced"/"Sync" delta);
  // here only objects whose resourceVersion changed are reported.
  std::map<std::string, json::value> next;
  for (const auto& item : items) next.emplace(KeyOf(item), item);
  std::vector<json::value> deleted, added;
  std::vector<std::pair<json::value, json::value>> updated;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, obj] : cache_) {
      if (!next.contains(key)) deleted.push_back(obj);
    }
    for (const auto& [key, obj] : next) {
      const auto it = cache_.find(key);
      if (it == cache_.end()) {
        added.push_back(obj);
      } else if (ResourceVersionOf(it->second) != ResourceVersionOf(obj)) {
        updated.emplace_back(it->second, obj);
      }
    }
    cache_ = std::move(next);
  }
  for (const auto& obj : deleted) {
    for (const auto& h : handlers_) {
      if (h.on_delete) h.on_delete(obj);
    }
  }
  for (const auto& obj : added) {
    for (const auto& h : handlers_) {
      if (h.on_add) h.on_add(obj);
    }
  }
  for (const auto& [old_obj, new_obj] : updated) {
    for (const auto& h : handlers_) {
      if (h.on_update) h.on_update(old_obj, new_obj);
    }
  }
  absl::MutexLock lock(&mu_);
  if (!synced_) {
    synced_ = true;
    cv_.SignalAll();
  }
}

absl::Status Informer::Apply(WatchEvent&& event) {
  if (event.type == WatchEventType::kError) {
    const absl::Status status = WatchErrorStatus(event);
    if (IsGone(status)) {
      absl::MutexLock lock(&mu_);
      ++stats_.gone;
    }
    return status;
  }
  const std::string rv(ResourceVersionOf(event.object));
  if (event.type == WatchEventType::kBookmark) {
    // A bookmark carries only a resourceVersion: resume from it next time (KEP-956).
    if (!rv.empty()) resource_version_ = rv;
    absl::MutexLock lock(&mu_);
    ++stats_.bookmarks;
    stats_.last_resource_version = resource_version_;
    return absl::OkStatus();
  }
  const std::string key = KeyOf(event.object);
  std::optional<json::value> old_obj;
  {
    absl::MutexLock lock(&mu_);
    const auto it = cache_.find(key);
    if (it != cache_.end()) old_obj = it->second;
    if (event.type == WatchEventType::kDeleted) {
      cache_.erase(key);
    } else {
      cache_[key] = event.object;
    }
    if (!rv.empty()) stats_.last_resource_version = rv;
  }
  if (!rv.empty()) resource_version_ = rv;
  for (const auto& h : handlers_) {
    if (event.type == WatchEventType::kDeleted) {
      if (h.on_delete) h.on_delete(event.object);
    } else if (old_obj.has_value()) {
      if (h.on_update) h.on_update(*old_obj, event.object);
    } else if (h.on_add) {
      h.on_add(event.object);
    }
  }
  return absl::OkStatus();
}

absl::Status Informer::ListOnce() {
  ListOptions opts;
  opts.label_selector = options_.label_selector;
  opts.field_selector = options_.field_selector;
  // A list without resourceVersion is served from storage (a consistent read), so a re-list
  // after 410 never goes back in time.
  auto list = client_->ListAll(type_, type_.namespaced ? options_.namespace_name : "", opts);
  if (!list.ok()) return list.status();
  std::vector<json::value> items;
  if (auto* arr = list->get_object().if_contains("items"); arr && arr->is_array()) {
    for (auto& item : arr->get_array()) {
      // List items carry no apiVersion/kind; fill them in as the watch objects have them.
      if (item.is_object()) {
        auto& o = item.get_object();
        if (!o.contains("apiVersion")) o["apiVersion"] = ApiVersion(type_);
        if (!o.contains("kind") && !type_.kind.empty()) o["kind"] = type_.kind;
      }
      items.push_back(std::move(item));
    }
  }
  resource_version_ = std::string(ResourceVersionOf(*list));
  Replace(items);
  absl::MutexLock lock(&mu_);
  ++stats_.lists;
  stats_.last_resource_version = resource_version_;
  return absl::OkStatus();
}

absl::Status Informer::WatchOnce(std::stop_token stop, int64_t timeout_seconds) {
  ListOptions opts;
  opts.label_selector = options_.label_selector;
  opts.field_selector = options_.field_selector;
  opts.resource_version = resource_version_;
  opts.allow_watch_bookmarks = true;
  opts.timeout_seconds = timeout_seconds;
  {
    absl::MutexLock lock(&mu_);
    ++stats_.watches;
  }
  absl::Status event_status;
  int events = 0;
  const TimePoint started = std::chrono::steady_clock::now();
  const absl::Status status = client_->Watch(
      type_, type_.namespaced ? options_.namespace_name : "", opts,
      [&](WatchEvent&& event) {
        ++events;
        event_status = Apply(std::move(event));
        return event_status.ok();
      },
      stop, std::chrono::seconds(opts.timeout_seconds + 60));
  if (!event_status.ok()) return event_status;
  if (IsGone(status)) {
    absl::MutexLock lock(&mu_);
    ++stats_.gone;
  }
  // reflector.go: a watch that ends within a second having delivered nothing is treated as an
  // error, so a server that keeps closing watches at once is retried with back-off, not in a loop.
  if (status.ok() && events == 0 && !stop.stop_requested() &&
      std::chrono::steady_clock::now() - started < std::chrono::seconds(1)) {
    return absl::UnavailableError("kubernetes API: very short watch, no events");
  }
  return status;
}

void Informer::Run(std::stop_token stop) {
  std::mt19937_64 rng(options_.seed != 0 ? options_.seed : std::random_device{}());
  bool need_list = true;
  Duration backoff = options_.initial_backoff;
  auto back_off = [&](const absl::Status& why) {
    // client-go's reflector back-off: 800 ms doubling to 30 s, with jitter (factor 1.0).
    const double jitter = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    const Duration wait = backoff + std::chrono::duration_cast<Duration>(backoff * jitter);
    log::Warn("kube_informer_retry",
              {{"resource", type_.plural},
               {"error", std::string(why.message())},
               {"wait_ms", std::chrono::duration_cast<std::chrono::milliseconds>(wait).count()}});
    galley::SleepFor(wait, stop);
    backoff = std::min(options_.max_backoff, backoff * 2);
  };
  while (!stop.stop_requested()) {
    if (need_list) {
      const absl::Status listed = ListOnce();
      if (!listed.ok()) {
        if (stop.stop_requested()) break;
        back_off(listed);
        continue;
      }
      need_list = false;
      backoff = options_.initial_backoff;
    }
    // Each watch asks for a random timeout in [min, 2*min), as reflector.go does.
    const auto min_s = std::max<int64_t>(
        1, std::chrono::duration_cast<std::chrono::seconds>(options_.min_watch_timeout).count());
    const absl::Status watched =
        WatchOnce(stop, min_s + static_cast<int64_t>(rng() % static_cast<uint64_t>(min_s)));
    if (stop.stop_requested()) break;
    if (watched.ok()) {
      backoff = options_.initial_backoff;  // the server ended the watch; resume from the last RV
      continue;
    }
    if (IsGone(watched)) {
      // reflector.go: "The resourceVersion is too old" -> re-list.
      log::Info("kube_informer_relist",
                {{"resource", type_.plural}, {"reason", std::string(watched.message())}});
      need_list = true;
      continue;
    }
    back_off(watched);
  }
}

}  // namespace galley::kube
