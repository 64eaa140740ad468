#!/usr/bin/env bash
# Fetches ONNX Runtime (Microsoft, MIT licence) for Linux x86-64, CPU only, into
# .deps/onnxruntime/ at the repository root, where src/model/CMakeLists.txt imports it as
# onnxruntime::onnxruntime. Debian 12 packages no ONNX Runtime.
#
# Source: the npm package com.github.asus4.onnxruntime@0.4.9 (MIT licence; a Unity plugin that
# repackages the official ONNX Runtime release binaries), fetched with `npm pack` (or, without
# npm, the same tarball from the npm registry with curl) and pinned by sha256. It carries
# ONNX Runtime 1.29.0: the headers say ORT_API_VERSION 29 and the .so exports VERS_1.29.0.
# Extracted:
#   package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers/*.h
#                                                -> .deps/onnxruntime/include/
#       (the C and C++ API headers are platform-independent)
#   package/Plugins/Linux/x64/libonnxruntime.so  -> .deps/onnxruntime/lib/libonnxruntime.so.1.29.0
#       with libonnxruntime.so.1 (its SONAME) and libonnxruntime.so (for the linker) as symlinks
#   package/Plugins/Linux/x64/libonnxruntime_providers_shared.so -> .deps/onnxruntime/lib/
#   package/LICENSE                              -> .deps/onnxruntime/LICENSE
# and writes .deps/onnxruntime/VERSION (the ORT version) and .deps/onnxruntime/.sha256 (the
# tarball's checksum, written last: the marker that the install is complete).
#
# Idempotent: when the marker matches and the library is present with its recorded sha256 it
# does nothing (no network). Exits non-zero with a message when a checksum does not match.
# Needs: bash, npm or curl, tar, sha256sum. Usage: scripts/fetch_onnxruntime.sh
set -euo pipefail

readonly PACKAGE="com.github.asus4.onnxruntime"
readonly PACKAGE_VERSION="0.4.9"
readonly TARBALL="${PACKAGE}-${PACKAGE_VERSION}.tgz"
readonly TARBALL_URL="https://registry.npmjs.org/${PACKAGE}/-/${TARBALL}"
readonly TARBALL_SHA256="e59788788818fdde1b2e522e766a21ba0f7d8391de55737abf81e32cc801785d"
readonly ORT_VERSION="1.29.0"
readonly ORT_API_VERSION="29"
readonly HEADERS_DIR="package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers"
readonly LIB_DIR="package/Plugins/Linux/x64"
readonly LIB_SHA256="5715f06d8992ca8eeeddcce43df3a7d38f97d537052126f558e912cb312460ca"
readonly PROVIDERS_SHA256="086ec1d5388f64153d9c63470d126693db9a182c8ce236d3a1119068471b8a0d"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${repo_root}/.deps/onnxruntime"
readonly SONAME="libonnxruntime.so.1"
readonly REAL_LIB="libonnxruntime.so.${ORT_VERSION}"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

installed() {
  [[ -f "${dest}/.sha256" && "$(cat "${dest}/.sha256")" == "${TARBALL_SHA256}" ]] || return 1
  [[ -f "${dest}/include/onnxruntime_cxx_api.h" ]] || return 1
  [[ -L "${dest}/lib/libonnxruntime.so" && -L "${dest}/lib/${SONAME}" ]] || return 1
  [[ -f "${dest}/lib/${REAL_LIB}" ]] || return 1
  [[ "$(sha256_of "${dest}/lib/${REAL_LIB}")" == "${LIB_SHA256}" ]] || return 1
}

if installed; then
  echo "onnxruntime: ${ORT_VERSION} present in ${dest}"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT

echo "onnxruntime: downloading ${PACKAGE}@${PACKAGE_VERSION} (ONNX Runtime ${ORT_VERSION})"
if command -v npm >/dev/null 2>&1; then
  (cd "${tmp}" && npm pack --silent "${PACKAGE}@${PACKAGE_VERSION}" >/dev/null)
elif command -v curl >/dev/null 2>&1; then
  curl -fsSL --retry 3 -o "${tmp}/${TARBALL}" "${TARBALL_URL}"
else
  echo "onnxruntime: npm or curl is needed to download ${TARBALL}" >&2
  exit 1
fi
if [[ ! -f "${tmp}/${TARBALL}" ]]; then
  echo "onnxruntime: the download did not produce ${TARBALL} (got: $(ls "${tmp}"))" >&2
  exit 1
fi
got="$(sha256_of "${tmp}/${TARBALL}")"
if [[ "${got}" != "${TARBALL_SHA256}" ]]; then
  echo "onnxruntime: checksum mismatch for ${TARBALL}: expected ${TARBALL_SHA256}, got ${got}" >&2
  exit 1
fi

# Extract what we need, check it, lay it out in a staging folder, then swap it into place.
tar -xzf "${tmp}/${TARBALL}" -C "${tmp}" "${HEADERS_DIR}" "${LIB_DIR}/libonnxruntime.so" \
  "${LIB_DIR}/libonnxruntime_providers_shared.so" package/LICENSE
check() {
  local got
  got="$(sha256_of "$1")"
  if [[ "${got}" != "$2" ]]; then
    echo "onnxruntime: checksum mismatch for $1: expected $2, got ${got}" >&2
    exit 1
  fi
}
check "${tmp}/${LIB_DIR}/libonnxruntime.so" "${LIB_SHA256}"
check "${tmp}/${LIB_DIR}/libonnxruntime_providers_shared.so" "${PROVIDERS_SHA256}"
if ! grep -q "^#define ORT_API_VERSION ${ORT_API_VERSION}\$" "${tmp}/${HEADERS_DIR}/onnxruntime_c_api.h"; then
  echo "onnxruntime: ${HEADERS_DIR}/onnxruntime_c_api.h is not ORT_API_VERSION ${ORT_API_VERSION}" >&2
  exit 1
fi

stage="${tmp}/stage"
mkdir -p "${stage}/include" "${stage}/lib"
cp "${tmp}/${HEADERS_DIR}"/*.h "${stage}/include/"
cp "${tmp}/${LIB_DIR}/libonnxruntime.so" "${stage}/lib/${REAL_LIB}"
cp "${tmp}/${LIB_DIR}/libonnxruntime_providers_shared.so" "${stage}/lib/"
ln -s "${REAL_LIB}" "${stage}/lib/${SONAME}"
ln -s "${SONAME}" "${stage}/lib/libonnxruntime.so"
cp "${tmp}/package/LICENSE" "${stage}/LICENSE"
echo "${ORT_VERSION}" >"${stage}/VERSION"

mkdir -p "$(dirname "${dest}")"
rm -rf "${dest}"
mv "${stage}" "${dest}"
echo "${TARBALL_SHA256}" >"${dest}/.sha256"
echo "onnxruntime: installed ONNX Runtime ${ORT_VERSION} into ${dest}"
