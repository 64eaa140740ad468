#!/usr/bin/env python3
"""Exports the `safety` model: alt-profanity-check's trained offensive-language classifier (a
TF-IDF vectorizer over single words, 15,442 of them, and five LinearSVCs with sigmoid calibration,
averaged) to ONNX, and writes the reference answers the tests hold Galley to.

The generated files are committed, so neither the build nor CI needs this script or its packages;
run it again only to change the model:

    python3 -m venv /tmp/safety-venv
    /tmp/safety-venv/bin/pip install alt-profanity-check==1.9.1 scikit-learn==1.9.1 \\
        skl2onnx==1.20.0 onnx==1.23.2 onnxruntime numpy
    /tmp/safety-venv/bin/python models/training/export_safety.py [--davidson labeled_data.csv]

Writes models/safety/1/model.onnx (input `text` STRING [N, 1]; outputs `label` INT64 [N], 1 =
offensive, and `probabilities` FP32 [N, 2], column 1 the probability of offensive) and
tests/data/safety_golden.jsonl (each text with the reference library's probability). With
--davidson, also prints the accuracy on Davidson et al.'s labelled tweets (hate speech and
offensive count as offensive; those tweets are part of the model's training data, so the figure
is a check that the export kept the model, not a held-out score).

Three export settings matter: the ONNX StringNormalizer lowercases in a locale that must exist
where the model runs (C.UTF-8 is built into glibc; en_US.UTF-8, the converter's default, is not
installed on a minimal Debian); the tokenizer's expression runs on RE2, whose \\w and \\b are ASCII
only, so words are written as runs of two or more Unicode letters, digits or underscores, which is
what scikit-learn's (?u)\\b\\w\\w+\\b matches; and ZipMap is off, so the probabilities are a
tensor rather than a sequence of maps.
"""
import argparse
import json
import os
import warnings

import numpy as np
import onnx
import onnxruntime as ort
from profanity_check import predict_prob
from profanity_check import profanity_check as pc
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import StringTensorType
from sklearn.pipeline import Pipeline

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MODEL = os.path.join(ROOT, "models", "safety", "1", "model.onnx")
GOLDEN = os.path.join(ROOT, "tests", "data", "safety_golden.jsonl")

# Texts for the golden file: ordinary and hostile messages, casing, punctuation, links, numbers,
# accents and other scripts, and texts with no word at all.
TEXTS = [
    "Have a lovely day!", "Thanks so much for your help yesterday.", "The weather is fine today.",
    "Can you send me the report by Friday?", "I love this song", "What time does the store open?",
    "The food was great and the staff were friendly.", "Please review my pull request.",
    "you are an idiot", "YOU ARE AN IDIOT", "You are an Idiot!!!", "shut up you stupid moron",
    "go to hell, you scum", "what the hell is this", "this is damn good coffee",
    "I hate Mondays", "I hate you", "you're a fucking loser", "what a bitch", "nice ass",
    "kill yourself", "I will kill this bug today", "that movie was sick", "he's a dumb dumb",
    "screw this", "crap, I missed the bus", "holy shit that was close", "fuck", "F U C K",
    "you suck", "this sucks", "idiot", "moron", "stupid", "loser", "scum", "trash person",
    "visit https://example.com/page?id=42 for details", "call me at 555-0100", "1234 5678",
    "naïve résumé café", "Größe und Straße", "привет как дела", "Καλημέρα σε όλους",
    "こんにちは世界", "😀 👍 🎉", "", " ", "!!", "?!?! ...", "a", "ok", "O.K.",
    "under_score words_with_underscores", "CamelCaseWordsHere", "don't won't can't",
    "the the the the the", "abc123 def456", "you are an idiot " * 20,
]


def export() -> onnx.ModelProto:
    vectorizer, classifier = pc.vectorizer, pc.model
    pipeline = Pipeline([("tfidf", vectorizer), ("clf", classifier)])
    options = {id(classifier): {"zipmap": False},
               id(vectorizer): {"tokenexp": r"[\p{L}\p{N}_]{2,}", "locale": "C.UTF-8"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = convert_sklearn(pipeline, "safety", initial_types=[("text", StringTensorType([None, 1]))],
                                options=options, target_opset={"": 17, "ai.onnx.ml": 3})
    model.producer_name = "galley-export-safety"
    model.producer_version = "1"
    onnx.checker.check_model(model)
    return model


def offensive(session: ort.InferenceSession, texts: list[str]) -> np.ndarray:
    out = []
    for i in range(0, len(texts), 1024):
        batch = np.array(texts[i:i + 1024], dtype=object).reshape(-1, 1)
        out.append(session.run(["probabilities"], {"text": batch})[0][:, 1])
    return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--davidson", help="Davidson et al.'s labeled_data.csv, for the accuracy")
    args = ap.parse_args()
    model = export()
    os.makedirs(os.path.dirname(MODEL), exist_ok=True)
    onnx.save(model, MODEL)
    session = ort.InferenceSession(MODEL)
    ref = predict_prob(TEXTS)
    got = offensive(session, TEXTS)
    print(f"{MODEL}: {os.path.getsize(MODEL)} bytes; the export vs the library on {len(TEXTS)} "
          f"texts: max |diff| {np.abs(got - ref).max():.2g}, labels agree "
          f"{int(((got > 0.5) == (ref > 0.5)).sum())}/{len(TEXTS)}")
    with open(GOLDEN, "w") as f:
        for text, p in zip(TEXTS, ref):
            f.write(json.dumps({"text": text, "offensive": round(float(p), 7)}, ensure_ascii=False) + "\n")
    if args.davidson:
        import csv
        with open(args.davidson, newline="") as f:
            rows = list(csv.DictReader(f))
        texts = [r["tweet"] for r in rows]
        truth = np.array([r["class"] != "2" for r in rows])
        p = offensive(session, texts)
        yhat = p > 0.5
        tp, fp, fn = (yhat & truth).sum(), (yhat & ~truth).sum(), (~yhat & truth).sum()
        print(f"Davidson et al.: {len(rows)} tweets, {truth.sum()} offensive; accuracy "
              f"{(yhat == truth).mean():.4f}, precision {tp / (tp + fp):.4f}, recall {tp / (tp + fn):.4f}; "
              f"the export vs the library: max |diff| {np.abs(p - predict_prob(texts)).max():.2g}")


if __name__ == "__main__":
    main()
