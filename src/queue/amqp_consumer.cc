#include "queue/amqp_consumer.h"

#include <amqp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <map>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "common/sync.h"
#include "common/thread_name.h"
#include "queue/amqp_message.h"
#include "queue/amqp_topology.h"
#include "queue/consumer_metrics.h"
#include "queue/queue_trace.h"
#include "redis/redis_client.h"

namespace galley::queue {
namespace {

using inference::InferResult;

constexpr amqp_channel_t kChannel = 1;      // consume, publish (confirm mode), acknowledge
constexpr amqp_channel_t kInfoChannel = 2;  // passive queue.declare for the backlog
constexpr std::chrono::milliseconds kMaxBackoff{5'000};
constexpr int kFramesPerTurn = 256;

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One delivery this consumer holds, from basic.deliver to basic.ack or basic.nack.
struct Item {
  uint64_t tag = 0;
  uint64_t generation = 0;  // the connection it came on: its tag means nothing on another
  AmqpDelivery msg;
  int64_t deliveries = 1;
  std::shared_ptr<QueueRequest> request;  // null for a message that failed to parse
};

struct Completion {
  std::shared_ptr<Item> item;
  Disposition disposition = Disposition::kRelease;
  std::string reason;  // kDeadLetter
  std::string body;    // kResult
  TimePoint due{};     // kResubmit
};

}  // namespace

absl::Status ParseAmqpAddress(std::string_view text, AmqpOptions& options) {
  auto a = redis::ParseRedisAddress(text);  // the same HOST:PORT form
  if (!a.ok()) return absl::InvalidArgumentError(StrCat("'", text, "' must be HOST:PORT"));
  options.host = a->host;
  options.port = a->port;
  return absl::OkStatus();
}

struct AmqpConsumer::State : std::enable_shared_from_this<State> {
  State(inference::InferenceService& s, AmqpOptions o, metrics::Registry& r, const Clock& c)
      : service(s), options(std::move(o)), clock(c), metrics(r, {{"broker", "amqp"}}) {}
  ~State() {
    if (wake_fd >= 0) close(wake_fd);
  }

  void Run();
  absl::Status Connect();
  void Close(bool graceful);
  absl::Status Turn();
  absl::Status HandleFrame(const amqp_frame_t& frame);
  absl::Status OnDelivery(uint64_t tag, bool redelivered, AmqpDelivery msg);
  void Submit(std::shared_ptr<Item> item);
  absl::Status Settle(Completion c);
  absl::Status Publish(Completion c);
  absl::Status OnConfirms(const std::vector<ConfirmLedger::Settled>& settled);
  absl::Status Ack(const Completion& c);
  void Finish();
  void Wake();
  // Waits up to `d` on the condition variable, or until Stop; true when stopping.
  bool Pause(std::chrono::milliseconds d) ABSL_LOCKS_EXCLUDED(mu);

  inference::InferenceService& service;
  AmqpOptions options;
  const Clock& clock;
  ConsumerMetrics metrics;
  int wake_fd = -1;
  std::thread thread;

  mutable absl::Mutex mu;
  absl::CondVar cv;
  int held ABSL_GUARDED_BY(mu) = 0;            // deliveries of this connection not settled
  bool consuming ABSL_GUARDED_BY(mu) = false;  // basic.consume is in force
  bool stop_consuming ABSL_GUARDED_BY(mu) = false;
  bool stop ABSL_GUARDED_BY(mu) = false;
  uint64_t generation ABSL_GUARDED_BY(mu) = 0;  // one per connection
  std::deque<Completion> done ABSL_GUARDED_BY(mu);
  std::deque<Completion> retry ABSL_GUARDED_BY(mu);  // resubmissions, by due time

  // The consumer's thread only.
  amqp_connection_state_t conn = nullptr;
  ConfirmLedger ledger;
  uint64_t next_token = 1;
  std::map<uint64_t, Completion> publishes;  // token -> what its confirm settles
  TimePoint next_backlog{};
  // basic.cancel-ok has arrived on this connection. Deliveries the broker sent before it may
  // still sit in rabbitmq-c's frame queue: the consumer stops counting as consuming only once
  // they are taken in (and held), or a drain would close the channel on them.
  bool cancelled = false;
};

void AmqpConsumer::State::Wake() {
  const uint64_t one = 1;
  (void)!write(wake_fd, &one, sizeof(one));
}

bool AmqpConsumer::State::Pause(std::chrono::milliseconds d) {
  absl::MutexLock lock(&mu);
  const auto until = std::chrono::steady_clock::now() + d;
  while (!stop && galley::WaitUntil(cv, mu, until)) {
  }
  return stop;
}

absl::Status AmqpConsumer::State::Connect() {
  absl::StatusOr<amqp_connection_state_t> c = OpenAmqpConnection(
      options, {kChannel, kInfoChannel}, std::chrono::seconds(2), std::chrono::seconds(10));
  if (!c.ok()) return c.status();
  conn = *c;
  RETURN_IF_ERROR(DeclareAmqpTopology(conn, kChannel, options));
  amqp_basic_qos(conn, kChannel, 0, static_cast<uint16_t>(std::min(options.max_inflight, 65535)),
                 0);
  RETURN_IF_ERROR(ReplyStatus(amqp_get_rpc_reply(conn), "basic.qos"));
  amqp_confirm_select(conn, kChannel);
  RETURN_IF_ERROR(ReplyStatus(amqp_get_rpc_reply(conn), "confirm.select"));
  ledger.Reset();
  publishes.clear();
  amqp_basic_consume(conn, kChannel, Bytes(options.queue), Bytes(options.consumer), 0, 0, 0,
                     amqp_empty_table);
  RETURN_IF_ERROR(ReplyStatus(amqp_get_rpc_reply(conn), "basic.consume"));
  absl::MutexLock lock(&mu);
  consuming = true;
  return absl::OkStatus();
}

void AmqpConsumer::State::Close(bool graceful) {
  if (conn != nullptr) {
    if (graceful) {
      amqp_channel_close(conn, kChannel, AMQP_REPLY_SUCCESS);
      amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(conn);
    conn = nullptr;
  }
  // Whatever this connection held is requeued by the broker; its completions are dropped.
  ledger.Reset();
  publishes.clear();
  cancelled = false;
  absl::MutexLock lock(&mu);
  held = 0;
  consuming = false;
  ++generation;
  metrics.inflight.Set(0);
  cv.SignalAll();
}

void AmqpConsumer::State::Finish() {
  absl::MutexLock lock(&mu);
  --held;
  metrics.inflight.Set(held);
  cv.SignalAll();
}

void AmqpConsumer::State::Submit(std::shared_ptr<Item> item) {
  inference::InferRequest request = item->request->request;  // the copy goes to the service
  auto span =
      StartMessageSpans(options.tracer, *item->request, "rabbitmq", options.queue, clock.Now());
  // The callback keeps the state alive: the service may finish work after the consumer stopped.
  service.Infer(std::move(request), [self = shared_from_this(), item,
                                     span = std::move(span)](InferResult&& r) mutable {
    State& s = *self;
    FinishMessageSpans(s.options.tracer, std::move(span), r, s.clock.Now());
    Completion c;
    c.item = item;
    c.disposition = DispositionFor(r.outcome);
    if (c.disposition == Disposition::kResult) c.body = EncodeResult(*item->request, r);
    if (c.disposition == Disposition::kDeadLetter) {
      c.reason = r.message.empty() ? std::string(inference::OutcomeName(r.outcome)) : r.message;
    }
    {
      absl::MutexLock lock(&s.mu);
      if (c.disposition == Disposition::kResubmit) {
        c.due = s.clock.Now() + std::chrono::milliseconds(10);
        s.retry.push_back(std::move(c));
      } else {
        s.done.push_back(std::move(c));
      }
    }
    s.Wake();
  });
}

absl::Status AmqpConsumer::State::OnDelivery(uint64_t tag, bool redelivered, AmqpDelivery msg) {
  auto item = std::make_shared<Item>();
  item->tag = tag;
  item->msg = std::move(msg);
  item->deliveries = DeliveryNumber(item->msg);
  {
    absl::MutexLock lock(&mu);
    item->generation = generation;
    ++held;
    metrics.inflight.Set(held);
  }
  metrics.Count(redelivered ? "redelivered" : "consumed");
  const int64_t now_ms = UnixMillis();
  if (item->msg.timestamp_s > 0) {
    metrics.age.Observe(std::max<int64_t>(0, now_ms - int64_t(item->msg.timestamp_s) * 1000) /
                        1000.0);
  }
  const StreamEntry entry = ToEntry(item->msg);
  Completion c;
  c.item = item;
  c.disposition = Disposition::kDeadLetter;
  if (entry.id.empty()) {
    c.reason = "the message has no id (a message_id property, an id header or a correlation_id)";
    return Publish(std::move(c));
  }
  auto parsed = ParseMessage(entry, service, options.message, now_ms, clock.Now());
  if (!parsed.ok()) {
    c.reason = std::string(parsed.status().message());
    return Publish(std::move(c));
  }
  item->request = std::make_shared<QueueRequest>(std::move(parsed).value());
  Submit(std::move(item));
  return absl::OkStatus();
}

absl::Status AmqpConsumer::State::Settle(Completion c) {
  if (c.disposition == Disposition::kResult || c.disposition == Disposition::kDeadLetter) {
    return Publish(std::move(c));
  }
  // Not now (the model is loading or failing): back to the queue, counted toward the limit.
  if (int rc = amqp_basic_nack(conn, kChannel, c.item->tag, 0, 1); rc != AMQP_STATUS_OK) {
    return absl::UnavailableError(StrCat("basic.nack: ", amqp_error_string2(rc)));
  }
  metrics.Count("released");
  Finish();
  return absl::OkStatus();
}

absl::Status AmqpConsumer::State::Publish(Completion c) {
  const AmqpDelivery& m = c.item->msg;
  const bool result = c.disposition == Disposition::kResult;
  const std::string exchange = result ? "" : options.queue + ".dlx";
  const std::string routing_key = result ? c.item->request->reply : options.dead_queue;
  const std::string message_id = result ? c.item->request->key : m.message_id;
  amqp_basic_properties_t p{};
  p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
  p.delivery_mode = 2;  // persistent
  AmqpTable headers;
  if (result) {
    p._flags |=
        AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG;
    p.content_type = amqp_cstring_bytes("application/json");
    p.message_id = Bytes(message_id);
    p.correlation_id = Bytes(message_id);
    headers.Add("id", message_id);
    headers.Add("model", c.item->request->request.model);
    headers.Add("status", "ok");
    headers.Add("deliveries", c.item->deliveries);
  } else {
    // The dead letter: the original body and properties (header values as text), and why.
    auto copy = [&p](amqp_flags_t flag, amqp_bytes_t& field, const std::string& v) {
      if (v.empty()) return;
      p._flags |= flag;
      field = Bytes(v);
    };
    copy(AMQP_BASIC_MESSAGE_ID_FLAG, p.message_id, m.message_id);
    copy(AMQP_BASIC_CORRELATION_ID_FLAG, p.correlation_id, m.correlation_id);
    copy(AMQP_BASIC_REPLY_TO_FLAG, p.reply_to, m.reply_to);
    copy(AMQP_BASIC_CONTENT_TYPE_FLAG, p.content_type, m.content_type);
    if (m.timestamp_s > 0) {
      p._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
      p.timestamp = m.timestamp_s;
    }
    for (const auto& [k, v] : m.headers) headers.Add(k, v);
    headers.Add("galley-reason", c.reason);
    headers.Add("galley-deliveries", c.item->deliveries);
    headers.Add("galley-consumer", options.consumer);
    headers.Add("galley-queue", options.queue);
  }
  p.headers = headers.table();
  const std::string& body = result ? c.body : m.body;
  if (int rc = amqp_basic_publish(conn, kChannel, Bytes(exchange), Bytes(routing_key), 1, 0, &p,
                                  Bytes(body));
      rc != AMQP_STATUS_OK) {
    return absl::UnavailableError(StrCat("basic.publish: ", amqp_error_string2(rc)));
  }
  const uint64_t token = next_token++;
  ledger.Add(token, routing_key, message_id);
  publishes.emplace(token, std::move(c));
  return absl::OkStatus();
}

absl::Status AmqpConsumer::State::Ack(const Completion& c) {
  if (int rc = amqp_basic_ack(conn, kChannel, c.item->tag, 0); rc != AMQP_STATUS_OK) {
    return absl::UnavailableError(StrCat("basic.ack: ", amqp_error_string2(rc)));
  }
  const Item& item = *c.item;
  if (c.disposition == Disposition::kResult) {
    metrics.Count("acked");
    if (item.msg.timestamp_s > 0) {
      metrics.end_to_end.Observe(
          std::max<int64_t>(0, UnixMillis() - int64_t(item.msg.timestamp_s) * 1000) / 1000.0);
    }
  } else {
    metrics.Count("dead_lettered");
    log::Info("queue_dead_lettered",
              {{"id", item.msg.message_id}, {"reason", c.reason}, {"deliveries", item.deliveries}});
  }
  Finish();
  return absl::OkStatus();
}

absl::Status AmqpConsumer::State::OnConfirms(const std::vector<ConfirmLedger::Settled>& settled) {
  for (const ConfirmLedger::Settled& s : settled) {
    auto node = publishes.extract(s.token);
    if (node.empty()) continue;
    Completion c = std::move(node.mapped());
    if (!s.confirmed) {  // the broker could not take it (basic.nack): publish it again
      log::Warn("queue_publish_nacked", {{"id", c.item->msg.message_id}});
      RETURN_IF_ERROR(Publish(std::move(c)));
      continue;
    }
    if (s.returned && c.disposition == Disposition::kResult) {
      // No queue took the result (its reply queue does not exist): dead-letter the message.
      c.disposition = Disposition::kDeadLetter;
      c.reason =
          StrCat("the result could not be delivered: no queue '", c.item->request->reply, "'");
      RETURN_IF_ERROR(Publish(std::move(c)));
      continue;
    }
    if (s.returned) {  // the dead-letter queue is gone: leave the message in its queue
      log::Error("queue_dead_letter_unroutable", {{"queue", options.dead_queue}});
      c.disposition = Disposition::kRelease;
      RETURN_IF_ERROR(Settle(std::move(c)));
      continue;
    }
    RETURN_IF_ERROR(Ack(c));
  }
  return absl::OkStatus();
}

absl::Status AmqpConsumer::State::HandleFrame(const amqp_frame_t& frame) {
  if (frame.frame_type != AMQP_FRAME_METHOD) return absl::OkStatus();
  void* decoded = frame.payload.method.decoded;
  switch (frame.payload.method.id) {
    case AMQP_BASIC_DELIVER_METHOD: {
      const auto* d = static_cast<amqp_basic_deliver_t*>(decoded);
      const uint64_t tag = d->delivery_tag;
      const bool redelivered = d->redelivered != 0;
      amqp_message_t message;
      RETURN_IF_ERROR(ReplyStatus(amqp_read_message(conn, frame.channel, &message, 0), "delivery"));
      AmqpDelivery msg = ToDelivery(message.properties, message.body);
      amqp_destroy_message(&message);
      return OnDelivery(tag, redelivered, std::move(msg));
    }
    case AMQP_BASIC_ACK_METHOD: {
      const auto* a = static_cast<amqp_basic_ack_t*>(decoded);
      return OnConfirms(ledger.Settle(a->delivery_tag, a->multiple != 0, true));
    }
    case AMQP_BASIC_NACK_METHOD: {
      const auto* n = static_cast<amqp_basic_nack_t*>(decoded);
      return OnConfirms(ledger.Settle(n->delivery_tag, n->multiple != 0, false));
    }
    case AMQP_BASIC_RETURN_METHOD: {
      const std::string routing_key = Text(static_cast<amqp_basic_return_t*>(decoded)->routing_key);
      amqp_message_t message;
      RETURN_IF_ERROR(ReplyStatus(amqp_read_message(conn, frame.channel, &message, 0), "return"));
      const std::string id = (message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG)
                                 ? Text(message.properties.message_id)
                                 : std::string();
      amqp_destroy_message(&message);
      ledger.MarkReturned(routing_key, id);
      return absl::OkStatus();
    }
    case AMQP_BASIC_CANCEL_METHOD:
      return absl::UnavailableError("the broker cancelled the consumer (the queue was deleted?)");
    case AMQP_CHANNEL_CLOSE_METHOD: {
      const auto* c = static_cast<amqp_channel_close_t*>(decoded);
      return absl::UnavailableError(
          StrCat("the broker closed the channel: ", c->reply_code, " ", Text(c->reply_text)));
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
      const auto* c = static_cast<amqp_connection_close_t*>(decoded);
      amqp_connection_close_ok_t ok{};
      amqp_send_method(conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
      return absl::UnavailableError(
          StrCat("the broker closed the connection: ", c->reply_code, " ", Text(c->reply_text)));
    }
    default:
      return absl::OkStatus();
  }
}

// One turn of the consumer's thread: cancel when draining, settle what finished, refresh the
// backlog, then wait (on the socket and the wake-up fd) and handle what arrived.
absl::Status AmqpConsumer::State::Turn() {
  std::vector<Completion> ready, resubmit;
  bool cancel = false;
  uint64_t gen = 0;
  {
    absl::MutexLock lock(&mu);
    cancel = stop_consuming && consuming && !cancelled;
    gen = generation;
    const TimePoint now = clock.Now();
    while (!retry.empty() && retry.front().due <= now) {
      resubmit.push_back(std::move(retry.front()));
      retry.pop_front();
    }
    while (!done.empty()) {
      ready.push_back(std::move(done.front()));
      done.pop_front();
    }
  }
  if (cancel) {
    amqp_basic_cancel(conn, kChannel, Bytes(options.consumer));
    RETURN_IF_ERROR(ReplyStatus(amqp_get_rpc_reply(conn), "basic.cancel"));
    cancelled = true;
  }
  // A completion of an earlier connection is dropped: the broker requeued that delivery.
  for (Completion& c : resubmit) {
    if (c.item->generation == gen) Submit(std::move(c.item));
  }
  for (Completion& c : ready) {
    if (c.item->generation == gen) RETURN_IF_ERROR(Settle(std::move(c)));
  }
  if (clock.Now() >= next_backlog) {
    auto* ok =
        amqp_queue_declare(conn, kInfoChannel, Bytes(options.queue), 1, 0, 0, 0, amqp_empty_table);
    RETURN_IF_ERROR(ReplyStatus(amqp_get_rpc_reply(conn), "queue.declare (passive)"));
    if (ok != nullptr) metrics.backlog.Set(ok->message_count);
    next_backlog = clock.Now() + options.backlog_every;
  }
  int wait_ms = 100;  // bounded: heartbeats and the backlog are served between waits
  {
    absl::MutexLock lock(&mu);
    if (!done.empty()) wait_ms = 0;
    if (!retry.empty()) wait_ms = std::min(wait_ms, 10);
  }
  if (amqp_frames_enqueued(conn) || amqp_data_in_buffer(conn)) wait_ms = 0;
  pollfd fds[2] = {{amqp_get_sockfd(conn), POLLIN, 0}, {wake_fd, POLLIN, 0}};
  if (poll(fds, 2, wait_ms) > 0 && (fds[1].revents & POLLIN)) {
    uint64_t n = 0;
    (void)!read(wake_fd, &n, sizeof(n));
  }
  for (int i = 0; i < kFramesPerTurn; ++i) {
    amqp_frame_t frame;
    timeval zero{0, 0};
    const int rc = amqp_simple_wait_frame_noblock(conn, &frame, &zero);
    if (rc == AMQP_STATUS_TIMEOUT) break;
    if (rc != AMQP_STATUS_OK) return absl::UnavailableError(amqp_error_string2(rc));
    RETURN_IF_ERROR(HandleFrame(frame));
  }
  if (cancelled && amqp_frames_enqueued(conn) == 0 && amqp_data_in_buffer(conn) == 0) {
    absl::MutexLock lock(&mu);
    if (consuming) {
      consuming = false;  // every delivery sent before the cancel-ok is held now
      cv.SignalAll();
    }
  }
  amqp_maybe_release_buffers(conn);
  return absl::OkStatus();
}

void AmqpConsumer::State::Run() {
  SetThreadName("queue-amqp");
  std::chrono::milliseconds backoff{100};
  const std::string broker = StrCat(options.host, ":", options.port);
  while (true) {
    bool draining = false;
    {
      absl::MutexLock lock(&mu);
      if (stop) break;
      draining = stop_consuming;
    }
    if (conn == nullptr) {
      if (draining) {  // nothing is held without a connection: nothing to finish
        Pause(std::chrono::milliseconds(100));
        continue;
      }
      if (absl::Status st = Connect(); !st.ok()) {
        log::Warn("queue_connect_failed", {{"amqp", broker},
                                           {"error", std::string(st.message())},
                                           {"retry_in_ms", backoff.count()}});
        Close(/*graceful=*/false);
        Pause(backoff);
        backoff = std::min(backoff * 2, kMaxBackoff);
        continue;
      }
      backoff = std::chrono::milliseconds(100);
      log::Info("queue_connected", {{"amqp", broker},
                                    {"queue", options.queue},
                                    {"consumer", options.consumer},
                                    {"prefetch", options.max_inflight}});
    }
    if (absl::Status st = Turn(); !st.ok()) {
      log::Warn("queue_connection_lost", {{"amqp", broker}, {"error", std::string(st.message())}});
      Close(/*graceful=*/false);
    }
  }
  Close(/*graceful=*/true);
}

AmqpConsumer::AmqpConsumer(inference::InferenceService& service, AmqpOptions options,
                           metrics::Registry& registry, const Clock& clock) {
  state_ = std::make_shared<State>(service, WithAmqpDefaults(std::move(options)), registry, clock);
}

AmqpConsumer::~AmqpConsumer() { Stop(); }

absl::Status AmqpConsumer::Start() {
  State& s = *state_;
  const AmqpOptions& o = s.options;
  if (o.consumer.empty()) return absl::InvalidArgumentError("the queue consumer needs a name");
  if (o.queue.empty()) return absl::InvalidArgumentError("--queue-amqp-queue must not be empty");
  if (o.max_inflight < 1 || o.max_inflight > 65535) {
    return absl::InvalidArgumentError("--queue-max-inflight must be in 1..65535 for AMQP");
  }
  if (o.max_deliveries < 1)
    return absl::InvalidArgumentError("--queue-max-deliveries must be >= 1");
  s.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s.wake_fd < 0) return absl::InternalError("eventfd failed");
  State* p = state_.get();
  s.thread = std::thread([p] { p->Run(); });
  return absl::OkStatus();
}

void AmqpConsumer::BeginDrain() {
  State& s = *state_;
  {
    absl::MutexLock lock(&s.mu);
    s.stop_consuming = true;
  }
  if (s.wake_fd >= 0) s.Wake();
}

bool AmqpConsumer::Finish(TimePoint deadline) {
  BeginDrain();
  State& s = *state_;
  absl::MutexLock lock(&s.mu);
  while ((s.held > 0 || s.consuming) && s.clock.Now() < deadline) {
    galley::WaitFor(s.cv, s.mu, std::chrono::milliseconds(50));
  }
  return s.held == 0;
}

bool AmqpConsumer::Drain(TimePoint deadline) {
  const bool done = Finish(deadline);
  log::Info("queue_drained", {{"broker", "amqp"}, {"held", held()}});
  return done;
}

void AmqpConsumer::Stop() {
  if (!state_) return;
  Finish(state_->clock.Now());
  State& s = *state_;
  {
    absl::MutexLock lock(&s.mu);
    s.stop = true;
    s.cv.SignalAll();
  }
  if (s.wake_fd >= 0) s.Wake();
  if (s.thread.joinable()) s.thread.join();
}

int AmqpConsumer::held() const {
  absl::MutexLock lock(&state_->mu);
  return state_->held;
}

}  // namespace galley::queue
