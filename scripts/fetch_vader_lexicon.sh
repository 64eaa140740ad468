#!/usr/bin/env bash
# Fetches the VADER sentiment lexicons (Hutto & Gilbert, ICWSM 2014; MIT licence) into .deps/vader/
# at the repository root, where src/model/CMakeLists.txt compiles them into the binary.
#
# Source: the authors' PyPI wheel vaderSentiment-3.3.2-py2.py3-none-any.whl, fetched with
# `pip download` and pinned by sha256. Extracted:
#   vaderSentiment/vader_lexicon.txt          -> .deps/vader/vader_lexicon.txt
#   vaderSentiment/emoji_utf8_lexicon.txt     -> .deps/vader/emoji_utf8_lexicon.txt
#   vaderSentiment-3.3.2.dist-info/LICENSE.txt -> .deps/vader/LICENSE.txt
#
# Idempotent: when all three files are present with their recorded sha256 it does nothing (no
# network). Exits non-zero with a message when a checksum does not match.
# Needs: bash, python3 with pip, sha256sum. Usage: scripts/fetch_vader_lexicon.sh
set -euo pipefail

readonly VERSION="3.3.2"
readonly WHEEL="vaderSentiment-${VERSION}-py2.py3-none-any.whl"
readonly WHEEL_SHA256="3bf1d243b98b1afad575b9f22bc2cb1e212b94ff89ca74f8a23a588d024ea311"

# Each file: its name in .deps/vader, its path in the wheel, and its sha256.
readonly NAMES=(vader_lexicon.txt emoji_utf8_lexicon.txt LICENSE.txt)
readonly MEMBERS=(
  vaderSentiment/vader_lexicon.txt
  vaderSentiment/emoji_utf8_lexicon.txt
  "vaderSentiment-${VERSION}.dist-info/LICENSE.txt"
)
readonly SUMS=(
  1ec9c6e9ee19aade328f8beb393a6afa71a5bb3acf7d3cc22d4ef568df374bf5
  b8d54223ae1ce22a3e12c1f745316b71678c328eb5f5d3063a842f37cfbe2823
  74cfe41cdbf7f6925aeb4c18c148ec8db042540edb6739fd81069aa4e3c8b118
)

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${repo_root}/.deps/vader"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

all_present() {
  local i
  for i in "${!NAMES[@]}"; do
    [[ -f "${dest}/${NAMES[i]}" ]] || return 1
    [[ "$(sha256_of "${dest}/${NAMES[i]}")" == "${SUMS[i]}" ]] || return 1
  done
}

if all_present; then
  echo "vader: lexicons present in ${dest}"
  exit 0
fi

if command -v python3 >/dev/null 2>&1; then
  PYTHON=python3
else
  echo "vader: python3 (with pip) is needed to download ${WHEEL}" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT

echo "vader: downloading ${WHEEL}"
"${PYTHON}" -m pip download --quiet --no-deps --only-binary :all: -d "${tmp}" \
  "vadersentiment==${VERSION}"
if [[ ! -f "${tmp}/${WHEEL}" ]]; then
  echo "vader: pip did not produce ${WHEEL} (got: $(ls "${tmp}"))" >&2
  exit 1
fi
got="$(sha256_of "${tmp}/${WHEEL}")"
if [[ "${got}" != "${WHEEL_SHA256}" ]]; then
  echo "vader: checksum mismatch for ${WHEEL}: expected ${WHEEL_SHA256}, got ${got}" >&2
  exit 1
fi

# Extract into a staging folder, check every file, then move them into place.
stage="${tmp}/stage"
mkdir -p "${stage}"
for i in "${!NAMES[@]}"; do
  "${PYTHON}" -c '
import sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, open(out, "wb") as f:
    f.write(z.read(member))
' "${tmp}/${WHEEL}" "${MEMBERS[i]}" "${stage}/${NAMES[i]}"
  got="$(sha256_of "${stage}/${NAMES[i]}")"
  if [[ "${got}" != "${SUMS[i]}" ]]; then
    echo "vader: checksum mismatch for ${MEMBERS[i]}: expected ${SUMS[i]}, got ${got}" >&2
    exit 1
  fi
done

mkdir -p "${dest}"
for name in "${NAMES[@]}"; do
  mv -f "${stage}/${name}" "${dest}/${name}"
done
echo "vader: installed lexicons into ${dest}"
