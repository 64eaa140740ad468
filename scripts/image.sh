#!/usr/bin/env bash
# Galley's container image, built with no container daemon.
#
#   scripts/image.sh rootfs DIR   assemble the image's root file system in DIR: the stripped
#                                 release binary, the shared libraries `ldd` names (from this
#                                 machine's Debian 12 and .deps/onnxruntime), models/ (without
#                                 training/), the CA bundle (for https:// model
#                                 sources), /etc/passwd and /etc/group with the non-root user
#                                 galley (65532), and a world-writable /tmp; no shell.
#   scripts/image.sh build [TAG]  assemble it under build/image and build TAG (default
#                                 localhost/galley:dev) with buildah (chroot isolation, every
#                                 timestamp 0, so the same inputs give the same digest); also
#                                 writes build/image/galley-oci.tar (an OCI archive) and prints
#                                 the image's size.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${GALLEY_BIN:-$ROOT/build/release/galley}"

rootfs() {
  local r="$1"
  [ -x "$BIN" ] || { echo "image: no $BIN (run make build)" >&2; exit 1; }
  rm -rf "$r"
  mkdir -p "$r/usr/local/bin" "$r/etc" "$r/tmp" "$r/models"
  chmod 1777 "$r/tmp"
  objcopy --strip-unneeded "$BIN" "$r/usr/local/bin/galley"
  # Every library the dynamic loader resolves for the binary, at the path it resolved it from
  # (the loader itself under /lib64), so the image's loader finds each at its default path.
  local so dir
  ldd "$BIN" | awk '/=>/ && $3 ~ /^\// {print $3} $1 ~ /^\/lib64\// {print $1}' | sort -u |
    while read -r so; do
      case "$so" in
        /lib64/*) dir="$r/lib64" ;;
        "$ROOT"/*) dir="$r/lib/x86_64-linux-gnu" ;;  # ONNX Runtime from .deps/
        *) dir="$r$(dirname "$so")" ;;
      esac
      mkdir -p "$dir"
      cp -L "$so" "$dir/$(basename "$so")"
    done
  (cd "$ROOT/models" && find . -path ./training -prune -o -type f -print) | while read -r f; do
    mkdir -p "$r/models/$(dirname "$f")"
    cp "$ROOT/models/$f" "$r/models/$f"
  done
  # The CA bundle, for https:// model sources (`galley model fetch`).
  mkdir -p "$r/etc/ssl/certs"
  cp -L /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/:/nonexistent\ngalley:x:65532:65532:galley:/tmp:/nonexistent\n' > "$r/etc/passwd"
  printf 'root:x:0:\ngalley:x:65532:\n' > "$r/etc/group"
  # Everything owned by root and not writable by the server, except /tmp.
  find "$r" -path "$r/tmp" -prune -o -exec chmod go-w {} +
}

case "${1:-}" in
  rootfs)
    [ -n "${2:-}" ] || { echo "usage: $0 rootfs DIR" >&2; exit 2; }
    rootfs "$2"
    ;;
  build)
    tag="${2:-localhost/galley:dev}"
    out="$ROOT/build/image"
    mkdir -p "$out"
    rootfs "$out/rootfs"
    cp "$ROOT/deploy/image/Containerfile" "$out/Containerfile"
    command -v buildah >/dev/null || { echo "image: buildah is not installed (scripts/deps.sh)" >&2; exit 1; }
    buildah bud --isolation chroot --timestamp 0 --layers=false -f "$out/Containerfile" -t "$tag" "$out"
    rm -f "$out/galley-oci.tar"
    buildah push "$tag" "oci-archive:$out/galley-oci.tar:$tag"
    echo "image: $tag, $(du -sm "$out/rootfs" | cut -f1) MB unpacked, $(du -m "$out/galley-oci.tar" | cut -f1) MB as an OCI archive"
    ;;
  *)
    echo "usage: $0 rootfs DIR | build [TAG]" >&2
    exit 2
    ;;
esac
