"""The retrieval agent end to end: `galley index build` over real documents (three of the
project's own docs) with the real embedding model (models-retrieval/minilm), then `galley serve`
answering questions from that index over the Open Inference Protocol, `galley index eval` on
labelled questions, and the failures a user can cause: bad documents (clear error, the old index
kept), an index built by another model (refused at load, naming the fix), bad requests."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, assert_json_error, clean_env, galley_bin

DOCS = ["docs/queues.md", "docs/scheduler.md", "docs/operator.md"]
MINILM = REPO / "models-retrieval" / "minilm"
RETRIEVAL_CONFIG = REPO / "models-retrieval" / "retrieval" / "config.json"
# Questions with the document that answers them (paraphrases, not headings).
LABELLED = [
    ("Where do messages end up after failing too many deliveries?", "docs/queues.md"),
    ("Which consumer reads work from RabbitMQ quorum queues?", "docs/queues.md"),
    ("How are GPUs packed to keep fragmentation low?", "docs/scheduler.md"),
    ("Which trace is replayed to measure unallocated GPU capacity?", "docs/scheduler.md"),
    ("What does the InferenceModel custom resource describe?", "docs/operator.md"),
    ("How does the operator fetch a model file into a pod?", "docs/operator.md"),
]


BUILT: dict = {}  # the index_built line of the module's index


def run_galley(tmp: Path, *args: str, timeout: float = 600) -> tuple[int, list[dict], str]:
    p = subprocess.run([galley_bin(), *args], cwd=tmp, env=clean_env(tmp), capture_output=True,
                       text=True, timeout=timeout)
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    return p.returncode, lines, p.stderr


def digest(folder: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A model repository with the embedding model and a retrieval agent over DOCS."""
    tmp = tmp_path_factory.mktemp("retrieval")
    docs = tmp / "corpus" / "docs"
    docs.mkdir(parents=True)
    for d in DOCS:
        shutil.copy(REPO / d, docs / Path(d).name)
    repo = tmp / "repo"
    (repo / "retrieval").mkdir(parents=True)
    os.symlink(MINILM, repo / "minilm")
    shutil.copy(RETRIEVAL_CONFIG, repo / "retrieval" / "config.json")
    rc, lines, err = run_galley(tmp, "index", "build", "--docs", str(docs), "--label-root",
                                str(tmp / "corpus"), "--model-repository", str(repo), "--out",
                                str(repo / "retrieval" / "1"))
    assert rc == 0, err
    built = [l for l in lines if l.get("event") == "index_built"]
    assert len(built) == 1, lines
    BUILT.update(built[0])
    return repo


def ask(c, questions: list[str]):
    doc = {"inputs": [{"name": "query", "datatype": "BYTES", "shape": [len(questions)],
                       "data": questions}]}
    return c.request("POST", "/v2/models/retrieval/infer", body=json.dumps(doc),
                     headers={"Content-Type": "application/json"})


def test_the_index_holds_every_document_and_its_search_matches_exact_search(repo):
    built = BUILT
    assert built["passages"] >= 30 and built["dim"] == 384, built
    assert built["recall_at_10"] >= 0.95, built
    passages = [json.loads(l) for l in (repo / "retrieval" / "1" / "passages.jsonl").open()]
    assert {p["source"].split("#")[0] for p in passages} == set(DOCS)
    assert all(p["text"].strip() for p in passages)


def test_served_agent_answers_each_question_from_the_right_document(repo, galley):
    srv = galley(flags={"--model-repository": str(repo)})
    c = srv.client()
    md = c.get("/v2/models/retrieval").json()
    assert md["inputs"] == [{"name": "query", "datatype": "BYTES", "shape": [-1]}]
    assert [(o["name"], o["shape"]) for o in md["outputs"]] == [
        ("passages", [-1, 3]), ("sources", [-1, 3]), ("scores", [-1, 3])]
    r = ask(c, [q for q, _ in LABELLED])  # one request, six questions: one embedding batch
    assert r.status == 200, r
    outs = {o["name"]: o for o in r.json()["outputs"]}
    assert outs["sources"]["shape"] == [len(LABELLED), 3]
    sources, scores = outs["sources"]["data"], outs["scores"]["data"]
    passages = outs["passages"]["data"]
    top_hits = 0
    for i, (_, want) in enumerate(LABELLED):
        row = scores[3 * i: 3 * i + 3]
        assert row == sorted(row, reverse=True) and 0 < row[0] <= 1.0001, row
        assert all(passages[3 * i: 3 * i + 3]), passages
        top_hits += sources[3 * i].startswith(want + "#")
        assert any(s.startswith(want + "#") for s in sources[3 * i: 3 * i + 3]), (i, sources)
    assert top_hits >= 5, sources
    # Alone, a question gets the same passages as in the batch.
    alone = {o["name"]: o for o in ask(c, [LABELLED[2][0]]).json()["outputs"]}
    assert alone["sources"]["data"] == sources[6:9]


def test_eval_scores_labelled_questions_against_the_index(repo, tmp_path):
    queries = tmp_path / "queries.jsonl"
    queries.write_text("".join(json.dumps({"query": q, "source": s}) + "\n" for q, s in LABELLED))
    rc, lines, err = run_galley(tmp_path, "index", "eval", "--index", str(repo / "retrieval" / "1"),
                                "--model-repository", str(repo), "--queries", str(queries),
                                "--k", "3")
    assert rc == 0, err
    ev = [l for l in lines if l.get("event") == "index_evaluated"][0]
    assert ev["queries"] == len(LABELLED)
    assert ev["hit_at_3"] == 1.0 and ev["hit_at_1"] >= 5 / 6, ev
    assert ev["recall_at_3_vs_exact"] >= 0.95, ev
    # A label that no passage carries is a mistake in the question set: refused, naming it.
    queries.write_text(json.dumps({"query": "x", "source": "docs/nope.md"}) + "\n")
    rc, lines, err = run_galley(tmp_path, "index", "eval", "--index", str(repo / "retrieval" / "1"),
                                "--model-repository", str(repo), "--queries", str(queries))
    assert rc == 1
    assert "docs/nope.md" in [l for l in lines if l.get("event") == "index_eval_failed"][0]["error"]


def test_bad_documents_fail_clearly_and_the_old_index_is_kept(repo, tmp_path):
    out = repo / "retrieval" / "1"
    before = digest(out)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": ""}\n')
    rc, lines, _ = run_galley(tmp_path, "index", "build", "--docs", str(bad),
                              "--model-repository", str(repo), "--out", str(out))
    assert rc == 1
    failed = [l for l in lines if l.get("event") == "index_build_failed"]
    assert failed and "bad.jsonl:2" in failed[0]["error"], lines
    assert digest(out) == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_an_index_built_by_another_model_is_refused_at_load(repo, tmp_path, galley):
    other = tmp_path / "repo"
    (other / "retrieval" / "1").mkdir(parents=True)
    os.symlink(MINILM, other / "minilm")
    shutil.copy(RETRIEVAL_CONFIG, other / "retrieval" / "config.json")
    for f in (repo / "retrieval" / "1").iterdir():
        shutil.copy(f, other / "retrieval" / "1" / f.name)
    manifest = other / "retrieval" / "1" / "manifest.json"
    m = json.loads(manifest.read_text())
    m["embedding_model"] = "some-other-encoder"
    manifest.write_text(json.dumps(m))
    srv = galley(flags={"--model-repository": str(other)})
    failed = srv.wait_for("model_load_failed", pred=lambda l: l.get("model") == "retrieval")
    assert "some-other-encoder" in failed["error"] and "galley index build" in failed["error"]
    c = srv.client()
    assert c.get("/v2/models/minilm/ready").status == 200  # the embedding model itself serves
    assert c.get("/v2/models/retrieval/ready").status != 200


def test_bad_questions_get_clear_errors(repo, galley):
    c = galley(flags={"--model-repository": str(repo)}).client()
    wrong = {"inputs": [{"name": "query", "datatype": "FP32", "shape": [1], "data": [1.0]}]}
    r = c.request("POST", "/v2/models/retrieval/infer", body=json.dumps(wrong),
                  headers={"Content-Type": "application/json"})
    assert_json_error(r, 400, "query")
    r = ask(c, [])
    assert r.status == 400, r
    assert ask(c, ["still fine after bad requests"]).status == 200
