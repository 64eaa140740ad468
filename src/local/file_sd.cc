#include "local/file_sd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/json.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/thread_name.h"
#include "local/supervisor.h"

namespace galley::local {
namespace {

std::string Address(const fleet::ReplicaEndpoint& ep) {
  return ep.host.find(':') != std::string::npos ? StrCat("[", ep.host, "]:", ep.port)
                                                : StrCat(ep.host, ":", ep.port);
}

// What identifies the file's content in the supervisor's own view: "id=port" of each replica
// whose process has a known port (Supervisor::Replicas() lists exactly those).
std::string Signature(const std::vector<local::ReplicaInfo>& replicas) {
  std::string out;
  for (const local::ReplicaInfo& r : replicas) {
    if (r.pid != 0 && r.port != 0) out += StrCat(r.id, "=", r.port, ";");
  }
  return out;
}

absl::Status ErrnoError(std::string_view what, const std::string& path) {
  return absl::InternalError(StrCat(what, " ", path, ": ", std::strerror(errno)));
}

}  // namespace

std::string FileSdJson(const std::vector<fleet::ReplicaEndpoint>& replicas) {
  boost::json::array groups;
  for (const fleet::ReplicaEndpoint& ep : replicas) {
    groups.push_back(boost::json::object{{"targets", boost::json::array{Address(ep)}},
                                         {"labels", boost::json::object{{"replica", ep.id}}}});
  }
  return JsonSerialize(groups) + "\n";
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view content) {
  const std::string tmp = StrCat(path, ".tmp.", static_cast<long>(getpid()));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot create", tmp);
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::Status st = ErrnoError("cannot write", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return st;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    absl::Status st = ErrnoError("cannot flush", tmp);
    ::unlink(tmp.c_str());
    return st;
  }
  // rename(2) replaces the target atomically within one file system (POSIX).
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status st = ErrnoError(StrCat("cannot rename ", tmp, " to"), path);
    ::unlink(tmp.c_str());
    return st;
  }
  return absl::OkStatus();
}

FileSdWriter::FileSdWriter(std::string path, const Supervisor& supervisor)
    : path_(std::move(path)), supervisor_(supervisor) {}

FileSdWriter::~FileSdWriter() { Stop(); }

absl::Status FileSdWriter::Start() {
  const std::string doc = FileSdJson(supervisor_.Replicas());
  if (absl::Status st = WriteFileAtomically(path_, doc); !st.ok()) return st;
  written_ = doc;
  thread_ = std::thread([this] {
    SetThreadName("file-sd");
    Run();
  });
  return absl::OkStatus();
}

void FileSdWriter::Stop() {
  if (stopping_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
  if (!written_.empty()) {
    if (absl::Status st = WriteFileAtomically(path_, FileSdJson({})); !st.ok()) {
      log::Error("file_sd_write_failed",
                 {{"path", path_}, {"error", std::string(ToStd(st.message()))}});
    }
  }
}

void FileSdWriter::WriteIfChanged() {
  const std::vector<fleet::ReplicaEndpoint> replicas = supervisor_.Replicas();
  const std::string doc = FileSdJson(replicas);
  if (doc == written_) return;
  if (absl::Status st = WriteFileAtomically(path_, doc); !st.ok()) {
    std::string error(ToStd(st.message()));
    if (error != last_error_) {  // once per distinct failure, not on every retry
      log::Error("file_sd_write_failed", {{"path", path_}, {"error", error}});
      last_error_ = std::move(error);
    }
    return;
  }
  written_ = doc;
  last_error_.clear();
  boost::json::array targets;
  for (const fleet::ReplicaEndpoint& ep : replicas)
    targets.push_back(boost::json::string(Address(ep)));
  log::Info("file_sd_written", {{"path", path_}, {"targets", std::move(targets)}});
}

void FileSdWriter::Run() {
  // The supervisor wakes WaitFor on every change of its state; the timeout only bounds how long
  // Stop() waits and when a failed write is tried again. The signature is taken before the
  // write reads the replicas, so a change in between wakes the next wait at once.
  while (!stopping_.load()) {
    const std::string seen = Signature(supervisor_.Snapshot());
    WriteIfChanged();
    supervisor_.WaitFor(
        [&](const std::vector<local::ReplicaInfo>& s) {
          return stopping_.load() || Signature(s) != seen;
        },
        std::chrono::milliseconds(250));
  }
}

}  // namespace galley::local
