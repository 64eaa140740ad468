// RabbitMQ messages (pure): how an AMQP 0-9-1 delivery maps onto the queue message of
// queue_message.h, the dead letter made of one, and the bookkeeping of publisher confirms. No
// sockets here: amqp_consumer.cc owns the connection.
//
// The mapping (docs/queues.md, "RabbitMQ"):
//   body         the message body
//   id           the `message_id` property, else an `id` header, else `correlation_id`
//   reply        the `reply_to` property, else a `reply` header (a queue, reached through the
//                default exchange), else the consumer's results queue
//   model        a `model` header
//   deadline_ms  a `deadline_ms` header (integer or decimal text)
// A header's value is taken as text: strings as they are, integers, booleans and decimals in
// decimal; tables and arrays are left out.
#pragma once

#include <amqp.h>

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "queue/queue_message.h"

namespace galley::queue {

// rabbitmq-c's byte strings: a view of `s` (which must outlive it), and a copy back.
amqp_bytes_t Bytes(const std::string& s);
std::string Text(amqp_bytes_t b);

// An AMQP field table (queue arguments, message headers) whose entries point into storage it
// owns; table() stays valid while the AmqpTable lives and is not added to.
class AmqpTable {
 public:
  void Add(std::string key, std::string value);  // a long string
  void Add(std::string key, int64_t value);      // a signed 64-bit integer
  amqp_table_t table();

 private:
  std::deque<std::string> keys_, values_;  // a deque keeps addresses as it grows
  std::vector<amqp_table_entry_t> entries_;
};

// What a synchronous call (an RPC) answered, as a status: OK, or Unavailable naming `what` and
// the library's error or the broker's reply code and text (connection.close, channel.close).
absl::Status ReplyStatus(const amqp_rpc_reply_t& reply, std::string_view what);

// The parts of a delivery the consumer keeps, as owned values.
struct AmqpDelivery {
  std::string message_id;
  std::string correlation_id;
  std::string reply_to;
  std::string content_type;
  uint64_t timestamp_s = 0;  // the `timestamp` property (seconds); 0 when unset
  std::vector<std::pair<std::string, std::string>> headers;  // scalar values as text
  std::string body;

  const std::string* Header(std::string_view name) const;
};

// A header value as text; none for a table, an array, bytes or void.
std::optional<std::string> FieldText(const amqp_field_value_t& value);

// Copies what the consumer keeps of a delivery's properties and body.
AmqpDelivery ToDelivery(const amqp_basic_properties_t& properties, amqp_bytes_t body);

// The message's id (see the mapping above); empty when it has none.
std::string MessageId(const AmqpDelivery& d);

// The stream-entry view that ParseMessage reads (fields body, id, model, deadline_ms, reply).
// Its entry id is the message id.
StreamEntry ToEntry(const AmqpDelivery& d);

// This delivery's number (1 for the first) from the quorum queue's `x-delivery-count` header,
// which counts the earlier deliveries that were returned to the queue (RabbitMQ, quorum queues,
// "Poison Message Handling").
int64_t DeliveryNumber(const AmqpDelivery& d);

// The `x-delivery-limit` that lets a message be delivered `max_deliveries` times: a quorum queue
// dead-letters a message once its returned deliveries exceed the limit.
int64_t DeliveryLimitFor(int max_deliveries);

// Publisher confirms (RabbitMQ, "Consumer Acknowledgements and Publisher Confirms"): after
// confirm.select the broker numbers a channel's publishes 1, 2, ... and settles each with
// basic.ack or basic.nack, one tag or every tag up to it (`multiple`). A mandatory publish that
// no queue takes is first sent back with basic.return, then acked.
class ConfirmLedger {
 public:
  struct Settled {
    uint64_t token = 0;      // what the caller gave Add
    bool confirmed = false;  // basic.ack: the broker has it (false: basic.nack)
    bool returned = false;   // it reached no queue
  };

  // A new channel: numbering starts again at 1 and nothing is outstanding.
  void Reset();
  // Records the next publish; returns its sequence number.
  uint64_t Add(uint64_t token, std::string routing_key, std::string message_id);
  // Marks the oldest outstanding publish with this routing key and message id as returned;
  // false when there is none.
  bool MarkReturned(const std::string& routing_key, const std::string& message_id);
  // Settles `tag` (and every earlier one when `multiple`), oldest first.
  std::vector<Settled> Settle(uint64_t tag, bool multiple, bool ack);
  size_t outstanding() const { return pending_.size(); }

 private:
  struct Entry {
    uint64_t token;
    std::string routing_key;
    std::string message_id;
    bool returned = false;
  };
  uint64_t next_ = 1;
  std::map<uint64_t, Entry> pending_;
};

}  // namespace galley::queue
