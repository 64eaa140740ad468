#include "queue/queue_message.h"

#include <charconv>

#include "common/strings.h"
#include "protocol/oip_json.h"

namespace galley::queue {
namespace {

bool LooksLikeAnalyze(std::string_view body) {
  // An inference request always has "inputs"; the seed's body is {"text": ...}. The decoders
  // below check the rest, so this only picks which decoder speaks.
  return body.find("\"inputs\"") == std::string_view::npos;
}

}  // namespace

const std::string* StreamEntry::Field(std::string_view name) const {
  for (const auto& [k, v] : fields) {
    if (k == name) return &v;
  }
  return nullptr;
}

std::optional<int64_t> EntryMillis(std::string_view entry_id) {
  const size_t dash = entry_id.find('-');
  const std::string_view ms = entry_id.substr(0, dash);
  int64_t v = 0;
  auto [end, ec] = std::from_chars(ms.data(), ms.data() + ms.size(), v);
  if (ec != std::errc() || end != ms.data() + ms.size() || ms.empty()) return std::nullopt;
  return v;
}

absl::StatusOr<QueueRequest> ParseMessage(const StreamEntry& entry,
                                          const inference::InferenceService& service,
                                          const MessageOptions& options, int64_t now_unix_ms,
                                          TimePoint now) {
  const std::string* body = entry.Field("body");
  if (body == nullptr) return absl::InvalidArgumentError("the message has no 'body' field");
  if (body->size() > options.max_body_bytes) {
    return absl::InvalidArgumentError(StrCat("the body has ", body->size(),
                                             " bytes, over the limit of ", options.max_body_bytes));
  }
  QueueRequest q;
  const std::string* id = entry.Field("id");
  q.key = id != nullptr && !id->empty() ? *id : entry.id;
  const std::string* reply = entry.Field("reply");
  q.reply = reply != nullptr && !reply->empty() ? *reply : options.results_stream;
  const std::string* model = entry.Field("model");
  q.request.model = model != nullptr && !model->empty() ? *model : options.default_model;
  q.request.arrival = now;
  q.request.deadline = TimePoint::max();
  if (const std::string* tp = entry.Field("traceparent"); tp != nullptr) {
    q.trace = tracing::ParseTraceparent(*tp);  // an invalid one starts a new trace (W3C §3.2.2)
  }
  if (const std::string* e = entry.Field("enqueued_ms"); e != nullptr) {
    int64_t ms = 0;
    auto [end, ec] = std::from_chars(e->data(), e->data() + e->size(), ms);
    if (ec == std::errc() && end == e->data() + e->size() && ms > 0) q.enqueued_ms = ms;
  }
  if (q.enqueued_ms == 0) q.enqueued_ms = EntryMillis(entry.id).value_or(0);
  if (const std::string* d = entry.Field("deadline_ms"); d != nullptr) {
    int64_t ms = 0;
    auto [end, ec] = std::from_chars(d->data(), d->data() + d->size(), ms);
    if (ec != std::errc() || end != d->data() + d->size() || d->empty()) {
      return absl::InvalidArgumentError(StrCat("deadline_ms '", *d, "' is not a Unix time in ms"));
    }
    if (ms <= now_unix_ms) {
      return absl::DeadlineExceededError(
          StrCat("the deadline passed ", now_unix_ms - ms, " ms before the message was consumed"));
    }
    q.request.deadline = now + std::chrono::milliseconds(ms - now_unix_ms);
  }
  q.metadata = service.FindModel(q.request.model, "");
  if (q.metadata == nullptr) {
    return absl::InvalidArgumentError(StrCat("unknown model '", q.request.model, "'"));
  }
  if (LooksLikeAnalyze(*body)) {
    auto text = protocol::DecodeAnalyzeRequest(*body);
    if (!text.ok()) return text.status();
    q.analyze = true;
    model::Tensor t{"text", model::DataType::kBytes, {1}, {}, {}};
    t.bytes.push_back(std::move(text).value());
    q.request.input.inputs.push_back(std::move(t));
    return q;
  }
  auto decoded = protocol::DecodeInferRequest(*body, *q.metadata);
  if (!decoded.ok()) return decoded.status();
  q.oip_id = std::move(decoded->id);
  q.outputs = std::move(decoded->outputs);
  q.request.input = std::move(decoded->input);
  return q;
}

std::string EncodeResult(const QueueRequest& request, const inference::InferResult& result) {
  const auto& outs = result.output.outputs;
  if (request.analyze && outs.size() >= 2 && !outs[0].bytes.empty() &&
      outs[1].raw.size() >= sizeof(float)) {
    return protocol::EncodeAnalyzeResponse(outs[0].bytes[0], outs[1].At<float>(0),
                                           request.request.model);
  }
  return protocol::EncodeInferResponse(*request.metadata, request.oip_id, result.output,
                                       request.outputs);
}

Disposition DispositionFor(inference::Outcome outcome) {
  using inference::Outcome;
  switch (outcome) {
    case Outcome::kOk:
      return Disposition::kResult;
    case Outcome::kInvalidInput:
    case Outcome::kModelNotFound:
    case Outcome::kDeadlineExceeded:
      return Disposition::kDeadLetter;
    case Outcome::kQueueFull:
      return Disposition::kResubmit;
    case Outcome::kModelNotReady:
    case Outcome::kShuttingDown:
    case Outcome::kInternal:
      return Disposition::kRelease;
  }
  return Disposition::kRelease;
}

}  // namespace galley::queue
