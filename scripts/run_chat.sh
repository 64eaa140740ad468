#!/usr/bin/env bash
# The chat stack, `make run CHAT=1`: the local stack of `make run` serving the chat models
# (models-chat: the safety classifier, the intent router, the retrieval agent and its embedding
# model) with the chat pipeline (pipelines/chat.json) at POST /v1/chat, and a redis-server on
# loopback holding the conversations (append-only file, fsynced on every write, in .run/chat).
#
# Builds the two indexes first when they are missing or older than what they index: the
# retrieval agent's over docs/, the router's over models-chat/router/intents.jsonl. Ctrl-C (or
# SIGTERM) drains the gateway and its replicas, then stops Redis.
#
# Environment: GALLEY_LISTEN (127.0.0.1:8080), GALLEY_GRPC_PORT (8081), GALLEY_CHAT_REDIS_PORT
# (6390). Further arguments go to `galley up`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
galley="${root}/build/release/galley"
listen="${GALLEY_LISTEN:-127.0.0.1:8080}"
grpc_port="${GALLEY_GRPC_PORT:-8081}"
redis_port="${GALLEY_CHAT_REDIS_PORT:-6390}"
state="${root}/.run/chat"

# stale INDEX_JSON SOURCE...: true when the index is missing or any source is newer.
stale() {
  local index="$1"
  shift
  [[ ! -f "${index}" ]] && return 0
  [[ -n "$(find "$@" -newer "${index}" \( -name '*.md' -o -name '*.jsonl' \) -print -quit)" ]]
}

if stale models-retrieval/retrieval/1/index.json docs; then
  echo "chat: building the retrieval index over docs/"
  "${galley}" index build --docs docs --label-root . --out models-retrieval/retrieval/1
fi
if stale models-chat/router/1/index.json models-chat/router/intents.jsonl; then
  echo "chat: building the router's index over its labelled intents"
  "${galley}" index build --docs models-chat/router/intents.jsonl --out models-chat/router/1
fi

mkdir -p "${state}/redis"
redis-server --port "${redis_port}" --bind 127.0.0.1 --protected-mode yes --save "" \
  --appendonly yes --appendfsync always --dir "${state}/redis" \
  --logfile "${state}/redis.log" &
redis_pid=$!
up_pid=""
cleanup() {
  [[ -n "${up_pid}" ]] && kill -TERM "${up_pid}" 2>/dev/null && wait "${up_pid}" || true
  kill -TERM "${redis_pid}" 2>/dev/null && wait "${redis_pid}" || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for _ in $(seq 1 100); do
  if ! kill -0 "${redis_pid}" 2>/dev/null; then
    echo "chat: redis-server did not start on 127.0.0.1:${redis_port} (port taken? set" \
      "GALLEY_CHAT_REDIS_PORT); its log: ${state}/redis.log" >&2
    tail -5 "${state}/redis.log" >&2 || true
    exit 1
  fi
  redis-cli -p "${redis_port}" ping >/dev/null 2>&1 && break
  sleep 0.1  # polling a port that is not open yet
done
echo "chat: conversations in Redis at 127.0.0.1:${redis_port} (data in ${state}/redis)"

"${galley}" up --listen "${listen}" --grpc-port "${grpc_port}" \
  --serve-arg=--model-repository="${root}/models-chat" \
  --pipelines "${root}/pipelines/chat.json" --chat-redis "127.0.0.1:${redis_port}" "$@" &
up_pid=$!
wait "${up_pid}"
