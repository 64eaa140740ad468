#!/usr/bin/env bash
# Builds kubectl v1.36.1 (the control plane's version, with kustomize built in) from Go modules
# fetched through the Go module proxy; the module graph is pinned by tools/kubectl/go.mod and
# go.sum. Output: .deps/kubectl/kubectl and a stamp file. The deployment tests use it to apply
# deploy/ the way a user would (`kubectl apply -k`) and to check RBAC (`kubectl auth can-i`).
#
# Cached like scripts/fetch_kube.sh: the stamp matches and the binary exists: nothing to do; a
# finished build for the same pins in the machine-wide cache ($GALLEY_KUBE_CACHE, default
# ~/.cache/galley/kube) is copied in; otherwise `go build` with the control plane's Go build cache
# (most of kubectl's packages are shared with kube-apiserver: about a minute once that is built).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MOD_DIR="$ROOT/tools/kubectl"
OUT_DIR="$ROOT/.deps/kubectl"
KUBE_VERSION=v1.36.1

GO="$(command -v go || true)"
if [ -z "$GO" ] && [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go; fi
if [ -z "$GO" ]; then
  echo "fetch_kubectl: no 'go' command found (building kubectl needs Go 1.26+)" >&2
  exit 1
fi
if ! grep -qE "^[[:space:]]*k8s.io/kubernetes[[:space:]]+$KUBE_VERSION([[:space:]]|$)" "$MOD_DIR/go.mod"; then
  echo "fetch_kubectl: tools/kubectl/go.mod does not pin k8s.io/kubernetes $KUBE_VERSION" >&2
  exit 1
fi

# The version strings a release build stamps in (as scripts/fetch_kube.sh).
minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  LDFLAGS+=" -X $pkg.gitTreeState=clean"
done
SUM_HASH="$( (cat "$MOD_DIR/go.mod" "$MOD_DIR/go.sum"; echo "$LDFLAGS") | sha256sum | cut -c1-16)"
STAMP_TEXT="kubectl=$KUBE_VERSION go=$("$GO" env GOVERSION) mod=$SUM_HASH"

if [ "$(cat "$OUT_DIR/stamp" 2>/dev/null)" = "$STAMP_TEXT" ] && [ -x "$OUT_DIR/kubectl" ]; then
  echo "fetch_kubectl: kubectl up to date ($STAMP_TEXT)"
  exit 0
fi

CACHE="${GALLEY_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/galley/kube}"
mkdir -p "$CACHE" "$OUT_DIR"
CACHED="$CACHE/kubectl-$(echo "$STAMP_TEXT" | sha256sum | cut -c1-16)"
exec 9>"$CACHE/lock"
flock 9

install_from_cache() {
  rm -f "$OUT_DIR/stamp" "$OUT_DIR/kubectl.tmp"
  cp "$CACHED/kubectl" "$OUT_DIR/kubectl.tmp"
  mv "$OUT_DIR/kubectl.tmp" "$OUT_DIR/kubectl"
  echo "$STAMP_TEXT" > "$OUT_DIR/stamp"
}

if [ ! -x "$CACHED/kubectl" ]; then
  echo "fetch_kubectl: building kubectl ($STAMP_TEXT)"
  start=$(date +%s)
  rm -rf "$CACHED.tmp"
  mkdir -p "$CACHED.tmp"
  (
    cd "$MOD_DIR"
    export GOCACHE="${GALLEY_KUBE_GOCACHE:-$CACHE/go-build}"
    export GOFLAGS="-mod=readonly"
    export CGO_ENABLED=0
    "$GO" build -p "${GALLEY_KUBE_BUILD_JOBS:-$(nproc)}" -trimpath -ldflags "$LDFLAGS" \
      -o "$CACHED.tmp/kubectl" k8s.io/kubernetes/cmd/kubectl
  )
  rm -rf "$CACHED"
  mv "$CACHED.tmp" "$CACHED"
  echo "fetch_kubectl: built in $(( $(date +%s) - start ))s"
fi
install_from_cache
echo "fetch_kubectl: installed $OUT_DIR/kubectl"
