// An informer: list-then-watch of one resource type into a local cache keyed "namespace/name",
// with add/update/delete handlers. Follows the Reflector of k8s.io/client-go/tools/cache
// (reflector.go): list to get a resourceVersion, watch from it with allowWatchBookmarks, resume
// watches from the last seen resourceVersion, re-list when the server answers 410 Gone (either as
// the watch request's status or as an ERROR event with code 410), and back off between
// reconnects (client-go's 800 ms initial, 30 s cap, doubling, with jitter).
//
// Threading: one background thread (Start..Stop) does all I/O and calls every handler, one at a
// time and in event order. Get/List/HasSynced/WaitForSync may be called from any thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "boost/json/value.hpp"
#include "kube/client.h"

namespace galley::kube {

// Handlers; any may be empty. `old_obj` of an update is the cached object before the change.
// A delete seen only through a re-list (the watch missed it) passes the last cached state.
struct EventHandlers {
  std::function<void(const boost::json::value& obj)> on_add;
  std::function<void(const boost::json::value& old_obj, const boost::json::value& new_obj)>
      on_update;
  std::function<void(const boost::json::value& obj)> on_delete;
};

struct InformerOptions {
  std::string namespace_name;  // "" = all namespaces (ignored for cluster-scoped types)
  std::string label_selector;
  std::string field_selector;
  Duration initial_backoff = std::chrono::milliseconds(800);
  Duration max_backoff = std::chrono::seconds(30);
  // Each watch asks the server to end it after a random time in [min, 2*min) (client-go: 5 min),
  // then resumes from the last resourceVersion.
  Duration min_watch_timeout = std::chrono::minutes(5);
  uint64_t seed = 0;  // jitter randomness; 0 = from std::random_device
};

// Counters for tests and diagnostics.
struct InformerStats {
  int lists = 0;    // successful (re-)lists
  int watches = 0;  // watch requests opened
  int gone = 0;     // 410 answers (status or ERROR event) that forced a re-list
  int bookmarks = 0;
  std::string last_resource_version;
};

class Informer {
 public:
  // `client` must outlive the informer.
  Informer(Client* client, ResourceType type, InformerOptions options = {});
  ~Informer();  // Stop()
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // Adds handlers; call before Start(). After the initial list every cached object is delivered
  // to on_add once (as client-go's informer does for a handler present at start).
  void AddEventHandlers(EventHandlers handlers);

  // Starts the background thread. FailedPrecondition when already started.
  absl::Status Start();
  // Stops the watch (promptly) and joins the thread. Idempotent. Handlers never run after it
  // returns.
  void Stop();

  // True once the first list has been stored and its on_add calls made.
  bool HasSynced() const;
  // Waits until HasSynced() or `timeout`; returns HasSynced().
  bool WaitForSync(Duration timeout) const;

  // The cached object under `key` ("ns/name" or "name"), if any. Thread-safe (a copy).
  std::optional<boost::json::value> Get(const std::string& key) const;
  // A copy of every cached object, ordered by key.
  std::vector<boost::json::value> List() const;
  std::vector<std::string> Keys() const;
  InformerStats stats() const;

  // --- The re-list logic, exposed for unit tests. Not for general use. -----------------------
  // Replaces the cache with `items` (the result of a list): objects not in `items` are deleted,
  // new ones added, changed ones (different resourceVersion) updated; handlers run.
  void ReplaceForTest(const std::vector<boost::json::value>& items) { Replace(items); }
  // Applies one watch event as the background thread does. Returns what the loop would do next:
  // OK to continue, IsGone() for a re-list, another error to back off and re-watch.
  absl::Status ApplyForTest(WatchEvent&& event) { return Apply(std::move(event)); }

 private:
  void Run(std::stop_token stop);
  absl::Status ListOnce();
  absl::Status WatchOnce(std::stop_token stop, int64_t timeout_seconds);
  void Replace(const std::vector<boost::json::value>& items);
  absl::Status Apply(WatchEvent&& event);

  Client* const client_;
  const ResourceType type_;
  const InformerOptions options_;
  std::vector<EventHandlers> handlers_;  // set before Start, read by the thread only

  mutable absl::Mutex mu_;
  mutable absl::CondVar cv_;
  std::map<std::string, boost::json::value> cache_ ABSL_GUARDED_BY(mu_);
  bool synced_ ABSL_GUARDED_BY(mu_) = false;
  InformerStats stats_ ABSL_GUARDED_BY(mu_);
  std::string resource_version_;  // the thread's own

  absl::Mutex lifecycle_mu_;
  std::unique_ptr<std::jthread> thread_ ABSL_GUARDED_BY(lifecycle_mu_);
};

}  // namespace galley::kube
