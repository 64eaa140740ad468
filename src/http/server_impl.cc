// ServerImpl: the acceptor, the connection caps (total and per peer), the timeout sweeper and
// the lifecycle (see server_impl.h; one connection is a Session, in server.cc).
#include "http/server_impl.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "common/log.h"
#include "common/strings.h"
#include "common/sync.h"
#include "common/thread_name.h"
#include "http/tls.h"

namespace galley::http {

absl::Status ServerImpl::Listen() {
  error_code ec;
  auto address = asio::ip::make_address(options_.host, ec);
  if (ec)
    return absl::InvalidArgumentError(
        StrCat("bad listen host '", options_.host, "': ", ec.message()));
  tcp::endpoint endpoint(address, options_.port);
  acceptor_->open(endpoint.protocol(), ec);
  if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(endpoint, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        StrCat("cannot listen on ", options_.host, ":", options_.port, ": ", ec.message()));
  }
  port_ = acceptor_->local_endpoint().port();
  return absl::OkStatus();
}

absl::Status ServerImpl::Start() {
  // Keeps run() going while sessions wait on model callbacks with no I/O pending (e.g. after
  // the acceptor closes during a drain); released by Stop().
  for (auto& ioc : contexts_) work_.emplace_back(ioc->get_executor());
  Accept();
  Sweep();
  threads_.reserve(contexts_.size());
  for (auto& ioc : contexts_) {
    threads_.emplace_back([ioc = ioc.get(), i = threads_.size()] {
      SetThreadName("http-io-", StrCat(i));
      ioc->run();
    });
  }
  return absl::OkStatus();
}

void ServerImpl::StopAccepting() {
  close_after_answer_.store(true);
  if (accepting_stopped_.exchange(true)) return;
  asio::post(acceptor_->get_executor(), [this] {
    error_code ec;
    acceptor_->close(ec);
  });
  std::vector<std::shared_ptr<Session>> sessions;
  {
    absl::MutexLock lock(&mu_);
    for (auto* s : sessions_) {
      if (auto sp = s->weak_from_this().lock()) sessions.push_back(std::move(sp));
    }
  }
  for (auto& s : sessions) s->Drain();
}

bool ServerImpl::WaitForConnectionsClosed(std::chrono::steady_clock::time_point deadline) {
  absl::MutexLock lock(&mu_);
  while (!sessions_.empty() && WaitUntil(cv_, mu_, deadline)) {
  }
  return sessions_.empty();
}

void ServerImpl::Stop() {
  if (stopped_.exchange(true)) return;
  StopAccepting();
  asio::post(sweep_timer_->get_executor(), [this] { sweep_timer_->cancel(); });
  work_.clear();
  for (auto& ioc : contexts_) ioc->stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void ServerImpl::Accept() {
  acceptor_->async_accept(NextExecutor(), [this](error_code ec, Socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_->is_open()) return;
      log::Warn("accept_failed", {{"error", ec.message()}});
    } else {
      OnAccept(std::move(socket));
    }
    if (acceptor_->is_open()) Accept();
  });
}

void ServerImpl::Sweep() {
  sweep_timer_->expires_after(SweepTick());
  sweep_timer_->async_wait([this](error_code ec) {
    if (ec || stopped_.load()) return;
    const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    std::vector<std::shared_ptr<Session>> expired;
    {
      absl::MutexLock lock(&mu_);
      for (Session* s : sessions_) {
        if (!s->Expired(now)) continue;
        if (auto sp = s->weak_from_this().lock()) expired.push_back(std::move(sp));
      }
    }
    for (auto& s : expired) s->PostExpire();
    Sweep();
  });
}

std::chrono::milliseconds ServerImpl::SweepTick() const {
  auto shortest = std::min({options_.first_byte_timeout, options_.idle_timeout,
                            options_.request_timeout, options_.write_timeout});
  return std::clamp(shortest / 4, std::chrono::milliseconds(5), std::chrono::milliseconds(250));
}

void ServerImpl::OnAccept(Socket&& socket) {
  error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  // Counted before this connection registers itself.
  size_t open, from_peer;
  std::shared_ptr<Session> evict;
  const auto peer = socket.remote_endpoint(ec).address();
  {
    absl::MutexLock lock(&mu_);
    open = sessions_.size();
    auto it = per_peer_.find(peer);
    from_peer = it == per_peer_.end() ? 0 : it->second;
    // At the cap a new client takes the place of the connection idle the longest (one that
    // sent nothing yet counts as idle), as a keep-alive connection may be closed at any time
    // between requests (RFC 9112 §9.8); only when none is idle is the newcomer refused.
    if (open >= options_.max_connections && from_peer < options_.max_connections_per_peer) {
      Session* oldest = nullptr;
      for (Session* s : sessions_) {
        const int64_t since = s->idle_since_ns();
        if (since != 0 && (oldest == nullptr || since < oldest->idle_since_ns())) oldest = s;
      }
      if (oldest != nullptr) {
        evict = oldest->weak_from_this().lock();
        oldest->ClaimForEviction();  // the next newcomer picks another
      }
    }
  }
  auto session = std::make_shared<Session>(std::move(socket), this,
                                           options_.tls ? options_.tls->Current() : nullptr);
  const bool peer_full = from_peer >= options_.max_connections_per_peer;
  if (peer_full || (open >= options_.max_connections && !evict)) {
    stats_.rejected_connections.fetch_add(1, std::memory_order_relaxed);
    Rejected(Status::service_unavailable);
    session->Refuse(JsonError(
        Status::service_unavailable,
        peer_full ? "too many open connections from this address" : "too many open connections"));
    return;
  }
  if (evict) {
    stats_.evicted_connections.fetch_add(1, std::memory_order_relaxed);
    evict->EvictIfIdle();
  }
  stats_.accepted_connections.fetch_add(1, std::memory_order_relaxed);
  session->Run();
}

}  // namespace galley::http
