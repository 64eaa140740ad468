#!/usr/bin/env bash
# Installs everything Galley needs to build, test and benchmark on a fresh Debian 12 machine.
# Idempotent: packages already present are skipped, and a second run changes nothing.
set -euo pipefail

APT_PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git curl ca-certificates
  clang clang-format libclang-rt-14-dev
  # C++ libraries (see ../shared/STACK.md: Boost 1.81 must not meet the default Boost dev packages)
  libboost1.81-dev libboost-json1.81-dev libboost-program-options1.81-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  prometheus-cpp-dev libspdlog-dev libfmt-dev libcli11-dev libabsl-dev libgtest-dev libgmock-dev
  libssl-dev libyaml-cpp-dev libicu-dev libhnswlib-dev
  # tests and benchmarks
  prometheus wrk nginx-light python3 python3-venv unzip openssl
  # queues: the Redis Streams consumer (hiredis), the RabbitMQ consumer (rabbitmq-c) and the
  # brokers their tests start
  libhiredis-dev redis-server
  librabbitmq-dev rabbitmq-server
  # the container image (scripts/image.sh) built with no daemon, and run by its test
  buildah podman runc uidmap
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "deps: all Debian packages present"
fi

# The integration tests run in a project virtual environment (.venv) with pinned packages:
# pytest, numpy and Triton's own Python client (tests/requirements.txt). Reinstalled only when
# the requirements change.
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  python3 -m venv "$ROOT/.venv"
fi
REQ_SUM=$(sha256sum "$ROOT/tests/requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$ROOT/.venv/.requirements.sha256" 2>/dev/null)" != "$REQ_SUM" ]; then
  echo "deps: installing tests/requirements.txt into .venv"
  "$ROOT/.venv/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/tests/requirements.txt"
  echo "$REQ_SUM" > "$ROOT/.venv/.requirements.sha256"
else
  echo "deps: .venv up to date"
fi

# The VADER lexicons (Hutto & Gilbert, ICWSM 2014, MIT licence), pinned by version and checksum.
"$(dirname "$0")/fetch_vader_lexicon.sh"
"$(dirname "$0")/fetch_onnxruntime.sh"  # ONNX Runtime 1.29.0 (MIT), pinned by checksum
"$(dirname "$0")/fetch_minilm.sh"  # all-MiniLM-L6-v2 (Apache-2.0) for retrieval, pinned by checksum
