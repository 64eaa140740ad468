#include "queue/amqp_message.h"

#include <charconv>
#include <string_view>

#include "common/strings.h"

namespace galley::queue {
namespace {

template <typename T>
std::string Decimal(T v) {
  return std::to_string(v);
}

}  // namespace

amqp_bytes_t Bytes(const std::string& s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}

std::string Text(amqp_bytes_t b) {
  return b.len == 0 ? std::string() : std::string(static_cast<const char*>(b.bytes), b.len);
}

void AmqpTable::Add(std::string key, std::string value) {
  keys_.push_back(std::move(key));
  values_.push_back(std::move(value));
  amqp_table_entry_t e{};
  e.key = Bytes(keys_.back());
  e.value.kind = AMQP_FIELD_KIND_UTF8;
  e.value.value.bytes = Bytes(values_.back());
  entries_.push_back(e);
}

void AmqpTable::Add(std::string key, int64_t value) {
  keys_.push_back(std::move(key));
  amqp_table_entry_t e{};
  e.key = Bytes(keys_.back());
  e.value.kind = AMQP_FIELD_KIND_I64;
  e.value.value.i64 = value;
  entries_.push_back(e);
}

amqp_table_t AmqpTable::table() {
  return amqp_table_t{static_cast<int>(entries_.size()),
                      entries_.empty() ? nullptr : entries_.data()};
}

// What a failed synchronous call (an RPC) says, as a status.
absl::Status ReplyStatus(const amqp_rpc_reply_t& r, std::string_view what) {
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return absl::OkStatus();
    case AMQP_RESPONSE_NONE:
      return absl::UnavailableError(StrCat(what, ": no reply"));
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return absl::UnavailableError(StrCat(what, ": ", amqp_error_string2(r.library_error)));
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const auto* c = static_cast<const amqp_connection_close_t*>(r.reply.decoded);
        return absl::UnavailableError(StrCat(
            what, ": the broker closed the connection: ", c->reply_code, " ", Text(c->reply_text)));
      }
      if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const auto* c = static_cast<const amqp_channel_close_t*>(r.reply.decoded);
        return absl::UnavailableError(StrCat(
            what, ": the broker closed the channel: ", c->reply_code, " ", Text(c->reply_text)));
      }
      return absl::UnavailableError(StrCat(what, ": unexpected server method ", r.reply.id));
  }
  return absl::UnavailableError(StrCat(what, ": failed"));
}

const std::string* AmqpDelivery::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return &v;
  }
  return nullptr;
}

std::optional<std::string> FieldText(const amqp_field_value_t& value) {
  switch (value.kind) {
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES:
      return Text(value.value.bytes);
    case AMQP_FIELD_KIND_BOOLEAN:
      return value.value.boolean ? "true" : "false";
    case AMQP_FIELD_KIND_I8:
      return Decimal(static_cast<int>(value.value.i8));
    case AMQP_FIELD_KIND_U8:
      return Decimal(static_cast<unsigned>(value.value.u8));
    case AMQP_FIELD_KIND_I16:
      return Decimal(value.value.i16);
    case AMQP_FIELD_KIND_U16:
      return Decimal(value.value.u16);
    case AMQP_FIELD_KIND_I32:
      return Decimal(value.value.i32);
    case AMQP_FIELD_KIND_U32:
      return Decimal(value.value.u32);
    case AMQP_FIELD_KIND_I64:
      return Decimal(value.value.i64);
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP:
      return Decimal(value.value.u64);
    case AMQP_FIELD_KIND_F32:
      return Decimal(value.value.f32);
    case AMQP_FIELD_KIND_F64:
      return Decimal(value.value.f64);
    default:
      return std::nullopt;
  }
}

AmqpDelivery ToDelivery(const amqp_basic_properties_t& p, amqp_bytes_t body) {
  AmqpDelivery d;
  const amqp_flags_t f = p._flags;
  if (f & AMQP_BASIC_MESSAGE_ID_FLAG) d.message_id = Text(p.message_id);
  if (f & AMQP_BASIC_CORRELATION_ID_FLAG) d.correlation_id = Text(p.correlation_id);
  if (f & AMQP_BASIC_REPLY_TO_FLAG) d.reply_to = Text(p.reply_to);
  if (f & AMQP_BASIC_CONTENT_TYPE_FLAG) d.content_type = Text(p.content_type);
  if (f & AMQP_BASIC_TIMESTAMP_FLAG) d.timestamp_s = p.timestamp;
  if (f & AMQP_BASIC_HEADERS_FLAG) {
    for (int i = 0; i < p.headers.num_entries; ++i) {
      const amqp_table_entry_t& e = p.headers.entries[i];
      if (auto v = FieldText(e.value)) d.headers.emplace_back(Text(e.key), std::move(*v));
    }
  }
  d.body = Text(body);
  return d;
}

std::string MessageId(const AmqpDelivery& d) {
  if (!d.message_id.empty()) return d.message_id;
  if (const std::string* id = d.Header("id"); id != nullptr && !id->empty()) return *id;
  return d.correlation_id;
}

StreamEntry ToEntry(const AmqpDelivery& d) {
  StreamEntry e;
  e.id = MessageId(d);
  e.fields.emplace_back("body", d.body);
  if (!e.id.empty()) e.fields.emplace_back("id", e.id);
  const std::string* reply = d.Header("reply");
  if (!d.reply_to.empty()) {
    e.fields.emplace_back("reply", d.reply_to);
  } else if (reply != nullptr) {
    e.fields.emplace_back("reply", *reply);
  }
  for (const char* name : {"model", "deadline_ms", "traceparent"}) {
    if (const std::string* v = d.Header(name)) e.fields.emplace_back(name, *v);
  }
  if (d.timestamp_s > 0) e.fields.emplace_back("enqueued_ms", std::to_string(d.timestamp_s * 1000));
  return e;
}

int64_t DeliveryNumber(const AmqpDelivery& d) {
  const std::string* n = d.Header("x-delivery-count");
  int64_t earlier = 0;
  if (n != nullptr) {
    auto [end, ec] = std::from_chars(n->data(), n->data() + n->size(), earlier);
    if (ec != std::errc() || end != n->data() + n->size() || earlier < 0) earlier = 0;
  }
  return earlier + 1;
}

int64_t DeliveryLimitFor(int max_deliveries) { return std::max(0, max_deliveries - 1); }

void ConfirmLedger::Reset() {
  next_ = 1;
  pending_.clear();
}

uint64_t ConfirmLedger::Add(uint64_t token, std::string routing_key, std::string message_id) {
  const uint64_t seq = next_++;
  pending_.emplace(seq, Entry{token, std::move(routing_key), std::move(message_id)});
  return seq;
}

bool ConfirmLedger::MarkReturned(const std::string& routing_key, const std::string& message_id) {
  for (auto& [seq, e] : pending_) {
    if (!e.returned && e.routing_key == routing_key && e.message_id == message_id) {
      e.returned = true;
      return true;
    }
  }
  return false;
}

std::vector<ConfirmLedger::Settled> ConfirmLedger::Settle(uint64_t tag, bool multiple, bool ack) {
  std::vector<Settled> out;
  auto settle = [&](std::map<uint64_t, Entry>::iterator it) {
    out.push_back({it->second.token, ack, it->second.returned});
    return pending_.erase(it);
  };
  if (!multiple) {
    if (auto it = pending_.find(tag); it != pending_.end()) settle(it);
    return out;
  }
  for (auto it = pending_.begin(); it != pending_.end() && it->first <= tag;) it = settle(it);
  return out;
}

}  // namespace galley::queue
