#!/usr/bin/env bash
# Builds Jaeger (github.com/jaegertracing/jaeger v1.75.0, Apache-2.0: the v2 `jaeger` binary, an
# OpenTelemetry Collector distribution) from Go modules fetched through the Go module proxy; the
# tracing tests export spans to it over OTLP/HTTP and read whole traces back from its query API.
# The module graph is pinned by tools/jaeger/go.mod and go.sum. Output: .deps/jaeger/bin/jaeger
# and a stamp file.
#
# Idempotent, cached like scripts/fetch_kube.sh: up to date per the stamp: nothing to do; a
# finished build for the same pins in $GALLEY_JAEGER_CACHE (default ~/.cache/galley/jaeger):
# copied in; otherwise `go build` (a few minutes on two cores, cold), with its own build cache.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MOD_DIR="$ROOT/tools/jaeger"
OUT_DIR="$ROOT/.deps/jaeger"
JAEGER_VERSION=v1.75.0

GO="$(command -v go || true)"
if [ -z "$GO" ] && [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go; fi
if [ -z "$GO" ]; then
  echo "fetch_jaeger: no 'go' command found (building Jaeger needs Go 1.26+)" >&2
  exit 1
fi
if ! grep -qE "^[[:space:]]*github.com/jaegertracing/jaeger[[:space:]]+$JAEGER_VERSION([[:space:]]|$)" \
    "$MOD_DIR/go.mod"; then
  echo "fetch_jaeger: tools/jaeger/go.mod does not pin jaeger $JAEGER_VERSION" >&2
  exit 1
fi

GO_VERSION="$("$GO" env GOVERSION)"
SUM_HASH="$(cat "$MOD_DIR/go.mod" "$MOD_DIR/go.sum" | sha256sum | cut -c1-16)"
STAMP_TEXT="jaeger=$JAEGER_VERSION go=$GO_VERSION mod=$SUM_HASH"

if [ "$(cat "$OUT_DIR/stamp" 2>/dev/null)" = "$STAMP_TEXT" ] && [ -x "$OUT_DIR/bin/jaeger" ]; then
  echo "fetch_jaeger: jaeger up to date ($STAMP_TEXT)"
  exit 0
fi

CACHE="${GALLEY_JAEGER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/galley/jaeger}"
mkdir -p "$CACHE" "$OUT_DIR/bin"
KEY="$(echo "$STAMP_TEXT" | sha256sum | cut -c1-16)"
CACHED="$CACHE/$KEY"
exec 9>"$CACHE/lock"
flock 9

install_from_cache() {
  rm -f "$OUT_DIR/stamp"
  cp "$CACHED/jaeger" "$OUT_DIR/bin/jaeger.tmp"
  mv "$OUT_DIR/bin/jaeger.tmp" "$OUT_DIR/bin/jaeger"
  echo "$STAMP_TEXT" > "$OUT_DIR/stamp"
}

if [ -x "$CACHED/jaeger" ]; then
  install_from_cache
  echo "fetch_jaeger: installed jaeger from $CACHED"
  exit 0
fi

echo "fetch_jaeger: building jaeger ($STAMP_TEXT); a cold build takes a few minutes"
start=$(date +%s)
rm -rf "$CACHED.tmp"
mkdir -p "$CACHED.tmp"
(
  cd "$MOD_DIR"
  export GOCACHE="${GALLEY_JAEGER_GOCACHE:-$CACHE/go-build}"
  export GOFLAGS="-mod=readonly"
  export CGO_ENABLED=0
  "$GO" build -trimpath -ldflags "-s -w" -o "$CACHED.tmp/jaeger" \
    github.com/jaegertracing/jaeger/cmd/jaeger
)
rm -rf "$CACHED"
mv "$CACHED.tmp" "$CACHED"
install_from_cache
echo "fetch_jaeger: built in $(( $(date +%s) - start ))s into $OUT_DIR"
