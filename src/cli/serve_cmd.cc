// `galley serve`: the model server.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "cli/flags.h"
#include "inference/builtin_backends.h"
#include "serve/serve_main.h"

namespace galley::cli {

Runner AddServeCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("serve", "Run the model server");
  auto flags = std::make_shared<HttpFlags>();
  auto opts = std::make_shared<serve::ServeOptions>();
  flags->Add(cmd);
  // Default: the models/ folder of the source tree this binary was built from, when it exists.
  std::error_code ec;
  if (std::filesystem::is_directory(GALLEY_SOURCE_MODELS, ec))
    opts->model_repository = GALLEY_SOURCE_MODELS;
  Flag(cmd, "otlp-endpoint", opts->otlp_endpoint,
       "send traces of inference requests (W3C traceparent continued) to this OTLP/HTTP "
       "collector, http://HOST:PORT; empty: no tracing");
  Flag(cmd, "otlp-service-name", opts->otlp_service_name, "the service name traces carry");
  Flag(cmd, "model-repository", opts->model_repository,
       "folder of models (one sub-folder each, see docs/model-repository.md); empty: the "
       "built-in VADER model only");
  Flag(cmd, "model-instances", opts->model_instances, "built-in model: instances (worker threads)")
      ->check(CLI::Range(1, 64));
  Flag(cmd, "max-batch-size", opts->runner.batch.max_batch_size,
       "built-in model: largest batch, in rows (1 turns batching off)")
      ->check(CLI::Range(1, 4096));
  Flag(cmd, "grpc-port", opts->grpc_port,
       "gRPC (Open Inference Protocol) port on the --listen host; 0: a free port; -1: off")
      ->check(CLI::Range(-1, 65535));
  Flag(cmd, "queue-capacity", opts->runner.queue_capacity,
       "built-in model: queued requests before 429");
  CLI::Option* model =
      Flag(cmd, "model", opts->frontend.analyze_model,
           "the model behind POST /inference/analyze (default: sentiment with a repository, else "
           "vader, which also names the built-in model)");
  // The Redis Streams consumer (docs/queues.md); off unless --queue-redis is set.
  auto q = std::make_shared<queue::RedisStreamOptions>();
  auto redis = std::make_shared<std::string>();
  Flag(cmd, "queue-redis", *redis, "consume work from a Redis stream at HOST:PORT (empty: off)");
  Flag(cmd, "queue-stream", q->stream, "the stream of requests");
  Flag(cmd, "queue-group", q->group, "the consumer group");
  Flag(cmd, "queue-consumer", q->consumer,
       "this consumer's name, kept across restarts (default: $GALLEY_REPLICA_ID, set by galley "
       "up, else HOSTNAME:PORT of --listen)");
  Flag(cmd, "queue-results-stream", q->results_stream,
       "where results go when a message names no reply stream (default: STREAM:results)");
  Flag(cmd, "queue-dead-stream", q->dead_stream,
       "dead letters with their reason (default: STREAM:dead)");
  Flag(cmd, "queue-max-inflight", q->max_inflight,
       "messages held at most (fetched, not yet acknowledged)")
      ->check(CLI::Range(1, 65536));
  DurationFlag(cmd, "queue-visibility-timeout-ms", q->visibility_timeout,
               "a message held this long by a consumer that does not answer goes to another")
      ->check(CLI::Range(int64_t{100}, int64_t{86'400'000}));
  Flag(cmd, "queue-max-deliveries", q->max_deliveries,
       "deliveries before a message is dead-lettered")
      ->check(CLI::Range(1, 1000));
  DurationFlag<std::chrono::seconds>(
      cmd, "queue-result-ttl-s", q->result_ttl,
      "how long a written result keeps a redelivered copy of its message from answering again")
      ->check(CLI::Range(int64_t{1}, int64_t{30} * 86'400));
  Flag(cmd, "queue-trim", q->trim, "trim entries that every group has acknowledged");
  // The RabbitMQ consumer (docs/queues.md, "RabbitMQ"); off unless --queue-amqp is set. It shares
  // --queue-consumer, --queue-max-inflight, --queue-max-deliveries and the visibility timeout.
  auto a = std::make_shared<queue::AmqpOptions>();
  auto amqp = std::make_shared<std::string>();
  Flag(cmd, "queue-amqp", *amqp,
       "consume work from a RabbitMQ quorum queue at HOST:PORT (empty: off)");
  Flag(cmd, "queue-amqp-queue", a->queue,
       "the quorum queue of requests (declared when missing, with QUEUE.dlx and QUEUE.dead)");
  Flag(cmd, "queue-amqp-results-queue", a->results_queue,
       "where results go when a message has no reply_to (default: QUEUE.results)");
  Flag(cmd, "queue-amqp-vhost", a->vhost, "the RabbitMQ virtual host");
  Flag(cmd, "queue-amqp-user", a->user, "the RabbitMQ user");
  Flag(cmd, "queue-amqp-password", a->password, "the RabbitMQ user's password");
  return [cmd, flags, opts, model, q, redis, a, amqp]() -> int {
    if (!cmd->parsed()) return -1;
    if (model->count() == 0 && !opts->model_repository.empty()) {
      opts->frontend.analyze_model = "sentiment";
    }
    if (absl::Status st = flags->Apply(opts->http, opts->metrics_http); !st.ok()) {
      return FlagError(st);
    }
    opts->frontend.default_timeout = flags->default_timeout;
    opts->drain_delay = flags->drain_delay;
    opts->grace_period = flags->grace_period;
    // Under `galley up` each replica is named by its supervisor (GALLEY_REPLICA_ID).
    if (const char* id = std::getenv("GALLEY_REPLICA_ID"); q->consumer.empty() && id && *id) {
      q->consumer = id;
    }
    if (q->consumer.empty()) {
      char host[256] = {};
      gethostname(host, sizeof(host) - 1);
      // A free port (0) names no one: the process id does, for this run only.
      q->consumer = std::string(host) + ":" +
                    (opts->http.port != 0 ? std::to_string(opts->http.port)
                                          : "pid" + std::to_string(getpid()));
    }
    if (!amqp->empty()) {
      if (absl::Status st = queue::ParseAmqpAddress(*amqp, *a); !st.ok()) {
        std::cerr << "--queue-amqp: " << st.message() << "\n";
        return 2;
      }
      a->consumer = q->consumer;
      a->max_inflight = q->max_inflight;
      a->max_deliveries = q->max_deliveries;
      // A connection silent for the visibility timeout is dead: heartbeats every third of it.
      a->heartbeat = std::max<std::chrono::seconds>(
          std::chrono::seconds(1),
          std::chrono::duration_cast<std::chrono::seconds>(q->visibility_timeout / 3));
      a->message.default_model = opts->frontend.analyze_model;
      a->message.max_body_bytes = opts->http.max_body_bytes;
      opts->amqp = *a;
    }
    if (!redis->empty()) {
      auto address = redis::ParseRedisAddress(*redis);
      if (!address.ok()) {
        std::cerr << "--queue-redis: " << address.status().message() << "\n";
        return 2;
      }
      q->address = *address;
      q->message.default_model = opts->frontend.analyze_model;
      q->message.max_body_bytes = opts->http.max_body_bytes;
      opts->queue = *q;
    }
    return serve::RunServe(*opts, inference::BuiltinBackends());
  };
}

}  // namespace galley::cli
