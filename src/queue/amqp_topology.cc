#include "queue/amqp_topology.h"

#include <amqp_tcp_socket.h>

#include "common/status_macros.h"
#include "common/strings.h"
#include "queue/amqp_message.h"

namespace galley::queue {
namespace {

timeval ToTimeval(std::chrono::milliseconds d) {
  return timeval{static_cast<time_t>(d.count() / 1000),
                 static_cast<suseconds_t>((d.count() % 1000) * 1000)};
}

constexpr amqp_channel_t kDepthChannel = 1;

}  // namespace

AmqpOptions WithAmqpDefaults(AmqpOptions options) {
  if (options.results_queue.empty()) options.results_queue = options.queue + ".results";
  if (options.dead_queue.empty()) options.dead_queue = options.queue + ".dead";
  options.message.results_stream = options.results_queue;
  return options;
}

absl::StatusOr<amqp_connection_state_t> OpenAmqpConnection(
    const AmqpOptions& options, std::initializer_list<amqp_channel_t> channels,
    std::chrono::milliseconds connect_timeout, std::chrono::milliseconds rpc_timeout) {
  amqp_connection_state_t conn = amqp_new_connection();
  if (conn == nullptr) return absl::InternalError("cannot make an AMQP connection");
  auto fail = [conn](absl::Status st) {
    amqp_destroy_connection(conn);
    return st;
  };
  amqp_socket_t* socket = amqp_tcp_socket_new(conn);
  if (socket == nullptr) return fail(absl::InternalError("cannot make a TCP socket"));
  timeval connect = ToTimeval(connect_timeout);
  if (int rc = amqp_socket_open_noblock(socket, options.host.c_str(), options.port, &connect);
      rc != AMQP_STATUS_OK) {
    return fail(absl::UnavailableError(
        StrCat("connect to ", options.host, ":", options.port, ": ", amqp_error_string2(rc))));
  }
  timeval rpc = ToTimeval(rpc_timeout);
  amqp_set_rpc_timeout(conn, &rpc);
  if (absl::Status st = ReplyStatus(
          amqp_login(conn, options.vhost.c_str(), 0, AMQP_DEFAULT_FRAME_SIZE,
                     static_cast<int>(options.heartbeat.count()), AMQP_SASL_METHOD_PLAIN,
                     options.user.c_str(), options.password.c_str()),
          "login");
      !st.ok()) {
    return fail(st);
  }
  for (amqp_channel_t ch : channels) {
    amqp_channel_open(conn, ch);
    if (absl::Status st = ReplyStatus(amqp_get_rpc_reply(conn), "channel.open"); !st.ok()) {
      return fail(st);
    }
  }
  return conn;
}

// RabbitMQ quorum queues: x-delivery-limit and dead-lettering (at least once needs the
// reject-publish overflow behaviour), per "Quorum Queues" and "Dead Lettering" in its docs.
absl::Status DeclareAmqpTopology(amqp_connection_state_t conn, amqp_channel_t channel,
                                 const AmqpOptions& options) {
  const std::string dlx = options.queue + ".dlx";
  amqp_exchange_declare(conn, channel, Bytes(dlx), amqp_cstring_bytes("fanout"), 0, 1, 0, 0,
                        amqp_empty_table);
  RETURN_IF_ERROR(ReplyStatus(amqp_get_rpc_reply(conn), StrCat("exchange.declare ", dlx)));
  for (const std::string* q : {&options.dead_queue, &options.results_queue}) {
    AmqpTable args;
    args.Add("x-queue-type", "quorum");
    amqp_queue_declare(conn, channel, Bytes(*q), 0, 1, 0, 0, args.table());
    RETURN_IF_ERROR(ReplyStatus(amqp_get_rpc_reply(conn), StrCat("queue.declare ", *q)));
  }
  amqp_queue_bind(conn, channel, Bytes(options.dead_queue), Bytes(dlx), amqp_cstring_bytes(""),
                  amqp_empty_table);
  RETURN_IF_ERROR(ReplyStatus(amqp_get_rpc_reply(conn), StrCat("queue.bind ", options.dead_queue)));
  AmqpTable args;
  args.Add("x-queue-type", "quorum");
  args.Add("x-delivery-limit", DeliveryLimitFor(options.max_deliveries));
  args.Add("x-dead-letter-exchange", dlx);
  args.Add("x-dead-letter-strategy", "at-least-once");
  args.Add("x-overflow", "reject-publish");
  amqp_queue_declare(conn, channel, Bytes(options.queue), 0, 1, 0, 0, args.table());
  return ReplyStatus(amqp_get_rpc_reply(conn), StrCat("queue.declare ", options.queue));
}

AmqpQueueDepth::AmqpQueueDepth(AmqpOptions options, std::chrono::milliseconds timeout)
    : options_(WithAmqpDefaults(std::move(options))), timeout_(timeout) {
  // No heartbeats: the reads themselves are the traffic, and however long the gap between two
  // reads, a connection the broker dropped is simply opened again.
  options_.heartbeat = std::chrono::seconds(0);
}

AmqpQueueDepth::~AmqpQueueDepth() { Drop(); }

void AmqpQueueDepth::Drop() {
  if (conn_ == nullptr) return;
  amqp_destroy_connection(conn_);
  conn_ = nullptr;
}

absl::StatusOr<double> AmqpQueueDepth::Ready() {
  if (conn_ == nullptr) {
    absl::StatusOr<amqp_connection_state_t> c =
        OpenAmqpConnection(options_, {kDepthChannel}, timeout_, timeout_);
    if (!c.ok()) return c.status();
    conn_ = *c;
    if (absl::Status st = DeclareAmqpTopology(conn_, kDepthChannel, options_); !st.ok()) {
      Drop();
      return st;
    }
  }
  // A passive declare answers the queue's ready count without changing anything. Heartbeats are
  // answered by rabbitmq-c inside the call; a connection idle past two heartbeats is closed by
  // the broker, and the failed call reconnects next time.
  const amqp_queue_declare_ok_t* ok =
      amqp_queue_declare(conn_, kDepthChannel, Bytes(options_.queue), 1, 0, 0, 0, amqp_empty_table);
  if (absl::Status st = ReplyStatus(amqp_get_rpc_reply(conn_), "queue.declare (passive)");
      !st.ok() || ok == nullptr) {
    Drop();
    return st.ok() ? absl::UnavailableError("queue.declare (passive): no answer") : st;
  }
  const double ready = ok->message_count;
  amqp_maybe_release_buffers(conn_);
  return ready;
}

}  // namespace galley::queue
