#!/usr/bin/env bash
# Builds the Kubernetes control plane that the tests run (see docs/kubernetes-test-plane.md) from
# Go modules fetched through the Go module proxy; nothing prebuilt is downloaded. The module
# graph is pinned by tools/kube/go.mod and go.sum:
#   kube-apiserver, kube-controller-manager  k8s.io/kubernetes v1.36.1 (staging modules v0.36.1)
#   etcd                                     go.etcd.io/etcd/server/v3 v3.6.8 (the version
#                                            Kubernetes v1.36.1 itself requires)
#   kwok                                     sigs.k8s.io/kwok v0.8.0 (built against the same
#                                            k8s.io/* v0.36.1 modules)
# Output: .deps/kube/bin/{kube-apiserver,kube-controller-manager,etcd,kwok}, .deps/kube/kwok-stages/
# (KWOK's upstream default Stage manifests, copied from the same kwok module: the standalone kwok
# binary plays only the stages it is given) and a stamp file.
#
# Idempotent and cached at three levels:
#  1. .deps/kube/stamp matches the pinned versions and the binaries exist: nothing to do.
#  2. A finished build for the same pins sits in the machine-wide cache
#     ($GALLEY_KUBE_CACHE, default ~/.cache/galley/kube): copied in (seconds), so a fresh clone
#     on a machine that built it once does not compile again.
#  3. Otherwise `go build`, with its own build cache in $GALLEY_KUBE_CACHE/go-build, which
#     survives between runs (a rebuild after a small pin change recompiles only what changed).
# A cold build (empty caches) compiles several thousand packages and takes many minutes on two
# cores; the numbers are in docs/kubernetes-test-plane.md.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MOD_DIR="$ROOT/tools/kube"
OUT_DIR="$ROOT/.deps/kube"

KUBE_VERSION=v1.36.1
ETCD_VERSION=v3.6.8
KWOK_VERSION=v0.8.0
BINARIES=(kube-apiserver kube-controller-manager etcd kwok)
# The stages kwokctl itself configures (pkg/kwokctl/runtime/cluster.go in the kwok module).
KWOK_STAGES=(kustomize/stage/node/fast/node-initialize.yaml
             kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
             kustomize/stage/pod/fast/pod-ready.yaml kustomize/stage/pod/fast/pod-complete.yaml
             kustomize/stage/pod/fast/pod-delete.yaml)

GO="$(command -v go || true)"
if [ -z "$GO" ] && [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go; fi
if [ -z "$GO" ]; then
  echo "fetch_kube: no 'go' command found (building the control plane needs Go 1.26+)" >&2
  exit 1
fi

# Refuse a go.mod that drifted from the pins written above, so the stamp never lies.
for want in "k8s.io/kubernetes $KUBE_VERSION" "go.etcd.io/etcd/server/v3 $ETCD_VERSION" \
            "sigs.k8s.io/kwok $KWOK_VERSION"; do
  if ! grep -qE "^[[:space:]]*${want// /[[:space:]]+}([[:space:]]|$)" "$MOD_DIR/go.mod"; then
    echo "fetch_kube: tools/kube/go.mod does not pin '$want' (update the pins in $0 too)" >&2
    exit 1
  fi
done

# Version strings the release build would stamp in (kubernetes/hack/lib/version.sh sets the
# same variables), so `/version` and the controller manager see v1.36.1, not a dev version.
minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  LDFLAGS+=" -X $pkg.gitTreeState=clean"
done

GO_VERSION="$("$GO" env GOVERSION)"
SUM_HASH="$( (cat "$MOD_DIR/go.mod" "$MOD_DIR/go.sum"; echo "$LDFLAGS") | sha256sum | cut -c1-16)"
STAMP_TEXT="kubernetes=$KUBE_VERSION etcd=$ETCD_VERSION kwok=$KWOK_VERSION"
STAMP_TEXT+=" go=$GO_VERSION mod=$SUM_HASH"

have_all() {  # $1: a folder with bin/ and kwok-stages/
  local f
  for f in "${BINARIES[@]}"; do [ -x "$1/bin/$f" ] || return 1; done
  for f in "${KWOK_STAGES[@]}"; do [ -s "$1/kwok-stages/$(basename "$f")" ] || return 1; done
}

if [ "$(cat "$OUT_DIR/stamp" 2>/dev/null)" = "$STAMP_TEXT" ] && have_all "$OUT_DIR"; then
  echo "fetch_kube: control plane binaries up to date ($STAMP_TEXT)"
  exit 0
fi

CACHE="${GALLEY_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/galley/kube}"
mkdir -p "$CACHE" "$OUT_DIR"
KEY="$(echo "$STAMP_TEXT" | sha256sum | cut -c1-16)"
CACHED="$CACHE/$KEY"

# One build at a time on this machine: several checkouts may ask at once.
exec 9>"$CACHE/lock"
flock 9

install_from_cache() {
  local sub
  rm -f "$OUT_DIR/stamp"
  for sub in bin kwok-stages; do
    rm -rf "$OUT_DIR/$sub.tmp"
    # Hard links when the cache is on the same file system, copies otherwise.
    cp -rl "$CACHED/$sub" "$OUT_DIR/$sub.tmp" 2>/dev/null || {
      rm -rf "$OUT_DIR/$sub.tmp"; cp -r "$CACHED/$sub" "$OUT_DIR/$sub.tmp"; }
    rm -rf "${OUT_DIR:?}/$sub"
    mv "$OUT_DIR/$sub.tmp" "$OUT_DIR/$sub"
  done
  echo "$STAMP_TEXT" > "$OUT_DIR/stamp"
}

if have_all "$CACHED"; then
  install_from_cache
  echo "fetch_kube: installed the control plane from $CACHED"
  exit 0
fi

echo "fetch_kube: building ${BINARIES[*]} ($STAMP_TEXT); a cold build takes many minutes"
start=$(date +%s)
BUILD_TMP="$CACHE/$KEY.tmp"
rm -rf "$BUILD_TMP"
mkdir -p "$BUILD_TMP/bin" "$BUILD_TMP/kwok-stages"
(
  cd "$MOD_DIR"
  export GOCACHE="${GALLEY_KUBE_GOCACHE:-$CACHE/go-build}"
  export GOFLAGS="-mod=readonly"
  export CGO_ENABLED=0
  "$GO" build -p "${GALLEY_KUBE_BUILD_JOBS:-$(nproc)}" -trimpath -ldflags "$LDFLAGS" \
    -o "$BUILD_TMP/bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    go.etcd.io/etcd/server/v3 \
    sigs.k8s.io/kwok/cmd/kwok
  kwok_dir="$("$GO" list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
  for f in "${KWOK_STAGES[@]}"; do cp "$kwok_dir/$f" "$BUILD_TMP/kwok-stages/"; done
  chmod u+w "$BUILD_TMP/kwok-stages/"*
)
# `go build -o DIR/` names a binary after the last path element without a major-version suffix:
# go.etcd.io/etcd/server/v3 comes out as "server".
mv "$BUILD_TMP/bin/server" "$BUILD_TMP/bin/etcd"
if ! have_all "$BUILD_TMP"; then
  echo "fetch_kube: build finished without all of ${BINARIES[*]}" >&2
  exit 1
fi
rm -rf "$CACHED"
mv "$BUILD_TMP" "$CACHED"
install_from_cache
echo "fetch_kube: built in $(( $(date +%s) - start ))s into $OUT_DIR"
