// Prometheus file-based service discovery for `galley up`: a JSON file that lists the live
// replicas as scrape targets, rewritten whenever the replica set changes, so a Prometheus
// configured with file_sd_configs scrapes exactly those replicas. Format:
// https://prometheus.io/docs/prometheus/latest/configuration/configuration/#file_sd_config
//   [{"targets": ["127.0.0.1:40123"], "labels": {"replica": "replica-0"}}, ...]
// Prometheus watches the file and reloads it on change; it may read it at any moment, so every
// write replaces the file atomically (a temporary file in the same folder, then rename(2)).
#pragma once

#include <atomic>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "common/lifecycle.h"
#include "fleet/replica_source.h"

namespace galley::local {
class Supervisor;
}

namespace galley::local {

// Pure: the file_sd document for `replicas`, one target group per replica (in the given order)
// with its id as the `replica` label. An empty list gives "[]".
std::string FileSdJson(const std::vector<fleet::ReplicaEndpoint>& replicas);

// Writes `content` to `path` atomically: to "<path>.tmp.<pid>" in the same folder, flushed, then
// renamed over `path`. Readers see the old or the new file, never a part. Internal (with the
// path and errno text) on failure; the temporary file is removed then.
absl::Status WriteFileAtomically(const std::string& path, std::string_view content);

// Keeps a file_sd file equal to the supervisor's replicas (gateway::ReplicaSource::Replicas():
// those with a process whose port is known, starting, ready or draining). A thread waits on the
// supervisor's changes and rewrites the file when the set of (id, address) differs from what it
// last wrote. Thread-safe for Start and Stop.
class FileSdWriter final : public Component {
 public:
  // `supervisor` must outlive the writer.
  FileSdWriter(std::string path, const Supervisor& supervisor);
  ~FileSdWriter();  // Stop()
  FileSdWriter(const FileSdWriter&) = delete;
  FileSdWriter& operator=(const FileSdWriter&) = delete;

  // Writes the current set once (an error here, e.g. a folder that does not exist, is returned)
  // and starts the thread. Later write errors are logged (`file_sd_write_failed`) and retried on
  // the next change.
  absl::Status Start() override;
  // Stops the thread and writes an empty target list, so Prometheus stops scraping replicas
  // that are gone. Idempotent.
  void Stop() override;
  // A Component (common/lifecycle.h); started after the supervisor, so it stops (the empty
  // list) once the supervisor has drained every replica.
  std::string_view component_name() const override { return "file-sd"; }

 private:
  void Run();
  void WriteIfChanged();

  const std::string path_;
  const Supervisor& supervisor_;
  // Touched by Start, then only by the thread, then by Stop after the join.
  std::string written_;     // the document last written
  std::string last_error_;  // the last write error logged
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace galley::local
