#!/usr/bin/env python3
"""Trains Galley's three neural sentiment models and exports them to ONNX.

Models (same contract; see models/training/RESULTS.md):
  sentiment              embedding + 1-D convolutions + masked max/mean pooling + linear (default)
  sentiment_transformer  a small pre-LN transformer encoder + masked mean pooling + linear
  sentiment_lstm         embedding + one LSTM layer + masked mean/max pooling + linear
All take `input_ids` INT64 [batch, sequence] (0 = padding, at the end of a row) and give
`probabilities` FP32 [batch, 2] = softmax([negative, positive]).

Data: the UCI "Sentiment Labelled Sentences" set as shipped by npm sentiment@5.0.2 (fetch it with
models/training/fetch_data.sh). Split: 80/10/10 stratified by (source, label) with a fixed seed.

The tokenizer (tokenize() / encode() below) is the contract src/model/word_tokenizer.cc matches
byte for byte; `--golden OUT.jsonl` writes the cases its test checks. The data, split, vocabulary
and golden modes need only the standard library; training needs torch (Debian's python3-torch
1.13: run with /usr/bin/python3).

Speed: Debian's torch links the reference BLAS (libblas.so.3), with which the transformer alone
takes well over half an hour; OpenBLAS (package libopenblas0-pthread, installed, or unpacked and
put first on LD_LIBRARY_PATH) brings both models to ~7 minutes on one thread. See RESULTS.md.

Usage (from the repository root):
  models/training/fetch_data.sh
  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 models/training/train_sentiment.py  # writes models/
  python3 models/training/train_sentiment.py --golden tests/data/tokenizer_golden.jsonl
  python3 models/training/verify_onnx.py                          # onnxruntime checks + timing
"""

import argparse
import collections
import json
import os
import random
import sys
import time

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SOURCES = ("amazon", "imdb", "yelp")
PAD_ID = 0
UNK_ID = 1
PAD_TOKEN = b"[PAD]"
UNK_TOKEN = b"[UNK]"
MAX_LENGTH = 128
MIN_COUNT = 2
SPLIT_SEED = 20240601
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)  # train, validation, test


# --------------------------------------------------------------------------------------------
# Tokenizer: the contract the C++ WordTokenizer matches byte for byte.
# --------------------------------------------------------------------------------------------

def _is_word_byte(b):
    """ASCII letters and digits, the apostrophe, and every byte >= 0x80 (UTF-8 multi-byte)."""
    return (0x61 <= b <= 0x7A or 0x41 <= b <= 0x5A or 0x30 <= b <= 0x39 or b == 0x27
            or b >= 0x80)


def tokenize(text):
    """Splits `text` (str, encoded as UTF-8, or bytes) into tokens (bytes).

    A token is a maximal run of word bytes with ASCII A-Z lowercased; leading and trailing
    apostrophes are stripped and a token that becomes empty is dropped. Every other byte separates.
    """
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    tokens = []
    current = bytearray()
    for b in data + b" ":
        if _is_word_byte(b):
            current.append(b + 0x20 if 0x41 <= b <= 0x5A else b)
            continue
        if current:
            token = bytes(current).strip(b"'")
            if token:
                tokens.append(token)
            current.clear()
    return tokens


def encode(text, vocab_ids, max_length=MAX_LENGTH):
    """Token ids of `text`: unknown tokens -> 1, at most `max_length`, never empty ([1] if none)."""
    ids = [vocab_ids.get(token, UNK_ID) for token in tokenize(text)[:max_length]]
    return ids if ids else [UNK_ID]


def build_vocab(texts, min_count=MIN_COUNT):
    """[PAD], [UNK], then tokens seen >= min_count times, by descending count then bytes."""
    counts = collections.Counter(token for text in texts for token in tokenize(text))
    kept = sorted((t for t, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t))
    return [PAD_TOKEN, UNK_TOKEN] + kept


def write_vocab(vocab, path):
    with open(path, "wb") as f:
        f.write(b"".join(token + b"\n" for token in vocab))


# --------------------------------------------------------------------------------------------
# Data and split.
# --------------------------------------------------------------------------------------------

def load_data(data_dir):
    """Rows (source, text, label) in file order; drops each file's trailing unlabelled row and
    exact duplicate texts (a text keeps its first occurrence; none has conflicting labels)."""
    rows, seen = [], {}
    for source in SOURCES:
        path = os.path.join(data_dir, source + ".json")
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: run models/training/fetch_data.sh")
        with open(path, encoding="utf-8") as f:
            for item in json.load(f):
                if item["class"] is None:
                    continue
                text, label = item["text"], int(item["class"])
                if text in seen:
                    if seen[text] != label:
                        sys.exit(f"conflicting labels for {text!r}")
                    continue
                seen[text] = label
                rows.append((source, text, label))
    return rows


def split_data(rows, seed=SPLIT_SEED):
    """80/10/10 per (source, label) group, each group shuffled with its own seeded Random."""
    groups = collections.defaultdict(list)
    for row in rows:
        groups[(row[0], row[2])].append(row)
    train, val, test = [], [], []
    for key in sorted(groups):
        group = list(groups[key])
        random.Random(f"{seed}/{key[0]}/{key[1]}").shuffle(group)
        n_val = round(len(group) * SPLIT_FRACTIONS[1])
        n_test = round(len(group) * SPLIT_FRACTIONS[2])
        val += group[:n_val]
        test += group[n_val:n_val + n_test]
        train += group[n_val + n_test:]
    return train, val, test


# --------------------------------------------------------------------------------------------
# Golden cases for the C++ tokenizer test.
# --------------------------------------------------------------------------------------------

def edge_cases():
    long_words = " ".join(f"word{i}" for i in range(200))
    known_long = " ".join(["good"] * 127 + ["bad", "great"])
    return [
        "", " ", "!!!", "...?!", "   \t\n  ", "'", "''", "'''", "' ' '", "'-'",
        "\t\n\r\x0b\x0c", "\x00", "good\x00bad", "\x7f", "good\x7fbad", "\x01\x02\x03great\x1f",
        "good", "GOOD", "Good", "gOoD", "The Food Was GREAT!!!", "NOT BAD AT ALL",
        "don't", "Don't", "DON'T", "'don't'", "''don't''", "don't'", "'quoted'", "rock 'n' roll",
        "o'clock", "a'b'c", "can''t", "it's", "It's", "I'M", "i'm", "'s", "s'", "isn't.",
        "10/10", "5 stars", "1st", "2nd place", "3.5", "100%", "a1b2c3", "007", "0",
        "well-made", "good,bad;ugly:fine", "under_score", "@user #hashtag", "e-mail",
        "http://example.com/path?x=1&y=2", "C++ and C#", "$9.99", "(great)", "[bad]", "{ok}",
        "caf\u00e9", "CAF\u00c9", "Caf\u00e9 au lait", "na\u00efve", "\u00fcber", "Qu\u00e9bec",
        "\u00c9COLE", "\u00e9", "\U0001F600", "great\U0001F600", "\U0001F600 great",
        "\U0001F44D\U0001F3FD", "I \u2764\ufe0f it", "\u65e5\u672c\u8a9e",
        "\u0645\u0631\u062d\u0628\u0627",
        "don\u2019t", "\u201cgreat\u201d", "good\u2014bad", "good \u2014 bad", "it\u2026was",
        "good\u0096bad", "\u00a0good\u00a0", "\ufeffgood", "x\u200by",
        "good\tbad\nugly\r\nfine", "line one\nline two", "\tleading tab", "trailing newline\n",
        "a" * 300, "a " * 300, long_words, known_long, " ".join(["good"] * 128),
        " ".join(["good"] * 129), "! " * 200 + "good",
        "The food was great and the staff were lovely!",
        "This is the worst service ever", "I love it",
    ]


def write_golden(path, vocab, val, test, count=150, seed=SPLIT_SEED):
    vocab_ids = {token: i for i, token in enumerate(vocab)}
    held_out = sorted(val + test, key=lambda row: (row[0], row[1]))
    sample = random.Random(f"{seed}/golden").sample(held_out, count)
    texts = [row[1] for row in sample] + edge_cases()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for text in texts:
            f.write(json.dumps({"text": text, "ids": encode(text, vocab_ids)}) + "\n")
    print(f"golden: wrote {len(texts)} cases to {path}")


# --------------------------------------------------------------------------------------------
# Models and training (torch is imported only here).
# --------------------------------------------------------------------------------------------

CONV_CONFIG = dict(dim=64, channels=128, widths=(1, 2, 3), dropout=0.5, lr=2e-3,
                   weight_decay=1e-4, epochs=30, batch_size=32, word_dropout=0.1)
TRANSFORMER_CONFIG = dict(d_model=128, heads=4, layers=2, ff=512, dropout=0.2, lr=5e-4,
                          weight_decay=0.1, epochs=25, batch_size=32, word_dropout=0.2)
LSTM_CONFIG = dict(dim=128, hidden=512, dropout=0.4, lr=2e-3, weight_decay=1e-4, epochs=12,
                   batch_size=32, word_dropout=0.1)


def make_models(torch):
    nn = torch.nn
    F = torch.nn.functional

    def valid_ids(ids, vocab_size):
        # Ids outside [0, vocab) read as [UNK], so the graph never fails on a client's ids.
        ok = (ids >= 0) & (ids < vocab_size)
        return torch.where(ok, ids, torch.ones_like(ids))

    class ConvSentiment(nn.Module):
        """Embedding, causal 1-D convolutions of a few widths, ReLU, masked max and mean pooling,
        linear, softmax. Position t of a width-w convolution sees tokens t-w+1..t (zeros before
        the start), so no real position ever sees padding."""

        def __init__(self, vocab_size, dim, channels, widths, dropout, **_):
            super().__init__()
            self.vocab_size = vocab_size
            self.widths = tuple(widths)
            self.embedding = nn.Embedding(vocab_size, dim, padding_idx=PAD_ID)
            self.convs = nn.ModuleList(nn.Conv1d(dim, channels, w) for w in self.widths)
            self.dropout = nn.Dropout(dropout)
            self.out = nn.Linear(2 * channels * len(self.widths), 2)

        def logits(self, ids):
            ids = valid_ids(ids, self.vocab_size)
            mask = (ids != PAD_ID).unsqueeze(1).to(torch.float32)  # [B, 1, T]
            count = mask.sum(-1).clamp(min=1.0)  # [B, 1]
            x = self.dropout(self.embedding(ids).transpose(1, 2)) * mask  # [B, D, T]
            pooled = []
            for width, conv in zip(self.widths, self.convs):
                h = F.relu(conv(F.pad(x, (width - 1, 0)))) * mask  # [B, C, T], >= 0
                pooled.append(h.amax(-1))  # masked max: padded positions are 0 <= any real one
                pooled.append(h.sum(-1) / count)  # masked mean
            return self.out(self.dropout(torch.cat(pooled, dim=1)))

        def forward(self, ids):
            return torch.softmax(self.logits(ids), dim=-1)

    class Block(nn.Module):
        """Pre-LN transformer encoder layer with a key-padding mask."""

        def __init__(self, d_model, heads, ff, dropout):
            super().__init__()
            self.heads = heads
            self.d_model = d_model
            self.head_dim = d_model // heads
            self.scale = 1.0 / float(self.head_dim) ** 0.5
            self.norm1 = nn.LayerNorm(d_model)
            self.qkv = nn.Linear(d_model, 3 * d_model)
            self.proj = nn.Linear(d_model, d_model)
            self.norm2 = nn.LayerNorm(d_model)
            self.ff1 = nn.Linear(d_model, ff)
            self.ff2 = nn.Linear(ff, d_model)
            self.dropout = nn.Dropout(dropout)

        def forward(self, x, key_bias):
            # Only batch and sequence are read from the input: the graph stays dynamic in those
            # two and static (constant) in the model's own sizes.
            b, t = x.shape[0], x.shape[1]
            heads, dh = self.heads, self.head_dim
            q, k, v = self.qkv(self.norm1(x)).split(self.d_model, dim=-1)
            q = q.reshape(b, t, heads, dh).transpose(1, 2)  # [B, H, T, dh]
            k = k.reshape(b, t, heads, dh).transpose(1, 2)
            v = v.reshape(b, t, heads, dh).transpose(1, 2)
            scores = torch.matmul(q, k.transpose(-1, -2)) * self.scale + key_bias
            attn = self.dropout(torch.softmax(scores, dim=-1))
            y = torch.matmul(attn, v).transpose(1, 2).reshape(b, t, self.d_model)
            x = x + self.dropout(self.proj(y))
            return x + self.dropout(self.ff2(self.dropout(F.gelu(self.ff1(self.norm2(x))))))

    class TransformerSentiment(nn.Module):
        """Token + learned position embeddings (positions past 127 reuse the last one), pre-LN
        encoder layers whose attention ignores padded keys, final LayerNorm, masked mean
        pooling, linear, softmax."""

        def __init__(self, vocab_size, d_model, heads, layers, ff, dropout, **_):
            super().__init__()
            self.vocab_size = vocab_size
            self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=PAD_ID)
            self.position = nn.Embedding(MAX_LENGTH, d_model)
            self.blocks = nn.ModuleList(Block(d_model, heads, ff, dropout) for _ in range(layers))
            self.norm = nn.LayerNorm(d_model)
            self.dropout = nn.Dropout(dropout)
            self.out = nn.Linear(d_model, 2)

        def logits(self, ids):
            ids = valid_ids(ids, self.vocab_size)
            mask = (ids != PAD_ID).to(torch.float32)  # [B, T]
            positions = torch.arange(ids.shape[1], device=ids.device).clamp(max=MAX_LENGTH - 1)
            x = self.dropout(self.embedding(ids) + self.position(positions).unsqueeze(0))
            key_bias = ((1.0 - mask) * -1e9).unsqueeze(1).unsqueeze(1)  # [B, 1, 1, T]
            for block in self.blocks:
                x = block(x, key_bias)
            x = self.norm(x) * mask.unsqueeze(-1)
            pooled = x.sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
            return self.out(self.dropout(pooled))

        def forward(self, ids):
            return torch.softmax(self.logits(ids), dim=-1)

    class LstmSentiment(nn.Module):
        """Embedding, one left-to-right LSTM layer, masked mean and max pooling of its outputs,
        linear, softmax. Right padding comes after every real token, so no real position's output
        depends on it."""

        def __init__(self, vocab_size, dim, hidden, dropout, **_):
            super().__init__()
            self.vocab_size = vocab_size
            self.embedding = nn.Embedding(vocab_size, dim, padding_idx=PAD_ID)
            self.lstm = nn.LSTM(dim, hidden, batch_first=True)
            self.dropout = nn.Dropout(dropout)
            self.out = nn.Linear(2 * hidden, 2)

        def logits(self, ids):
            ids = valid_ids(ids, self.vocab_size)
            mask = (ids != PAD_ID).to(torch.float32).unsqueeze(-1)  # [B, T, 1]
            y, _ = self.lstm(self.dropout(self.embedding(ids)))  # [B, T, H]
            mean = (y * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            top = (y * mask + (mask - 1.0) * 1e4).amax(1)  # padded positions far below any output
            return self.out(self.dropout(torch.cat([mean, top], dim=1)))

        def forward(self, ids):
            return torch.softmax(self.logits(ids), dim=-1)

    return {"sentiment": (ConvSentiment, CONV_CONFIG),
            "sentiment_transformer": (TransformerSentiment, TRANSFORMER_CONFIG),
            "sentiment_lstm": (LstmSentiment, LSTM_CONFIG)}


def pad_batch(torch, id_lists):
    width = max(len(ids) for ids in id_lists)
    out = torch.zeros((len(id_lists), width), dtype=torch.int64)
    for i, ids in enumerate(id_lists):
        out[i, :len(ids)] = torch.tensor(ids, dtype=torch.int64)
    return out


def predict(torch, model, id_lists, batch_size=64):
    model.eval()
    probs = []
    with torch.no_grad():
        for i in range(0, len(id_lists), batch_size):
            probs.append(model(pad_batch(torch, id_lists[i:i + batch_size])))
    return torch.cat(probs)


def accuracy(torch, model, id_lists, labels):
    predicted = predict(torch, model, id_lists).argmax(dim=1)
    return (predicted == torch.tensor(labels)).float().mean().item()


def train_one(torch, name, model_class, config, vocab, train, val, test, seed):
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    vocab_ids = {token: i for i, token in enumerate(vocab)}
    ids = {split: [encode(row[1], vocab_ids) for row in rows]
           for split, rows in (("train", train), ("val", val), ("test", test))}
    labels = {"train": [r[2] for r in train], "val": [r[2] for r in val],
              "test": [r[2] for r in test]}
    model = model_class(len(vocab), **config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"],
                                  weight_decay=config["weight_decay"])
    steps_per_epoch = (len(train) + config["batch_size"] - 1) // config["batch_size"]
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config["lr"], total_steps=config["epochs"] * steps_per_epoch,
        pct_start=0.1)
    best = (-1.0, -1, None)
    start = time.time()
    for epoch in range(config["epochs"]):
        model.train()
        order = torch.randperm(len(train), generator=generator).tolist()
        total = 0.0
        for i in range(0, len(order), config["batch_size"]):
            chosen = order[i:i + config["batch_size"]]
            batch = pad_batch(torch, [ids["train"][j] for j in chosen])
            # Word dropout: real tokens become [UNK] with a small probability, as rare words do.
            drop = (torch.rand(batch.shape, generator=generator) < config["word_dropout"])
            batch = torch.where(drop & (batch != PAD_ID), torch.full_like(batch, UNK_ID), batch)
            target = torch.tensor([labels["train"][j] for j in chosen])
            loss = torch.nn.functional.cross_entropy(model.logits(batch), target)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(chosen)
        val_acc = accuracy(torch, model, ids["val"], labels["val"])
        print(f"{name}: epoch {epoch + 1:2d} loss {total / len(train):.4f} val {val_acc:.4f}")
        if val_acc > best[0]:
            best = (val_acc, epoch + 1, {k: v.clone() for k, v in model.state_dict().items()})
    model.load_state_dict(best[2])
    model.eval()
    result = {
        "epochs_trained": config["epochs"], "best_epoch": best[1],
        "train_accuracy": accuracy(torch, model, ids["train"], labels["train"]),
        "val_accuracy": accuracy(torch, model, ids["val"], labels["val"]),
        "test_accuracy": accuracy(torch, model, ids["test"], labels["test"]),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": round(time.time() - start, 1),
    }
    for source in SOURCES:
        chosen = [i for i, row in enumerate(test) if row[0] == source]
        result[f"test_accuracy_{source}"] = accuracy(
            torch, model, [ids["test"][i] for i in chosen], [labels["test"][i] for i in chosen])
    print(f"{name}: best epoch {best[1]}: " + json.dumps(result))
    return model, result, ids


def check_padding(torch, model, id_lists):
    """Max |difference| between each sentence alone and the same sentence in padded batches."""
    worst = 0.0
    with torch.no_grad():
        for i in range(0, len(id_lists), 32):
            chunk = id_lists[i:i + 32]
            batched = model(pad_batch(torch, chunk))
            padded_to_max = pad_batch(torch, chunk + [[UNK_ID] * MAX_LENGTH])[:-1]
            batched_long = model(padded_to_max)
            for j, ids in enumerate(chunk):
                alone = model(torch.tensor([ids], dtype=torch.int64))[0]
                worst = max(worst, (alone - batched[j]).abs().max().item(),
                            (alone - batched_long[j]).abs().max().item())
    return worst


def export_onnx(torch, model, path, opset):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    example = torch.tensor([[5, 6, 7, 1, 0], [8, 9, 0, 0, 0]], dtype=torch.int64)
    torch.onnx.export(
        model, (example,), path, input_names=["input_ids"], output_names=["probabilities"],
        dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "probabilities": {0: "batch"}},
        opset_version=opset, do_constant_folding=True)


def train_main(args, vocab, train, val, test):
    import torch  # Debian python3-torch 1.13 (see the module docstring)

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    random.seed(args.seed)
    models = make_models(torch)
    os.makedirs(args.work, exist_ok=True)
    summary = {"torch": torch.__version__, "seed": args.seed, "vocab_size": len(vocab),
               "split": {"train": len(train), "val": len(val), "test": len(test)}, "models": {}}
    for name in args.models:
        model_class, config = models[name]
        model, result, ids = train_one(torch, name, model_class, config, vocab, train, val, test,
                                       args.seed)
        worst = check_padding(torch, model, ids["test"] + ids["val"])
        print(f"{name}: padding changes probabilities by at most {worst:.2e}")
        if worst > 1e-5:
            sys.exit(f"{name}: padding changed a result by {worst} > 1e-5")
        model_dir = os.path.join(args.out, name)
        path = os.path.join(model_dir, "1", "model.onnx")
        export_onnx(torch, model, path, args.opset)
        write_vocab(vocab, os.path.join(model_dir, "vocab.txt"))
        result.update(config=config, onnx_bytes=os.path.getsize(path), opset=args.opset,
                      padding_max_abs_diff=worst)
        summary["models"][name] = result
        # Reference outputs for verify_onnx.py: the held-out sentences through torch.
        held_out = [("val", row) for row in val] + [("test", row) for row in test]
        held_ids = ids["val"] + ids["test"]
        probs = predict(torch, model, held_ids).tolist()
        with open(os.path.join(args.work, f"reference_{name}.json"), "w") as f:
            json.dump({"model": name, "cases": [
                {"split": split, "source": row[0], "text": row[1], "label": row[2], "ids": i,
                 "probabilities": p} for (split, row), i, p in zip(held_out, held_ids, probs)]}, f)
        print(f"{name}: wrote {path} ({result['onnx_bytes']} bytes)")
    with open(os.path.join(args.work, "train_summary.json"), "w") as f:
        json.dump(summary, f, indent=2, default=list)
    print(json.dumps(summary, indent=2, default=list))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join(REPO_ROOT, ".deps", "sentiment-data"))
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "models"),
                        help="model repository root: writes OUT/NAME/1/model.onnx, vocab.txt")
    parser.add_argument("--work", default=os.path.join(REPO_ROOT, ".deps", "sentiment-train"),
                        help="scratch folder for the summary and verify_onnx.py's references")
    parser.add_argument("--models", nargs="+",
                        default=["sentiment", "sentiment_transformer", "sentiment_lstm"],
                        choices=["sentiment", "sentiment_transformer", "sentiment_lstm"])
    parser.add_argument("--golden", metavar="OUT.jsonl",
                        help="write the tokenizer golden cases and exit (no torch needed)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args()

    rows = load_data(args.data)
    train, val, test = split_data(rows)
    vocab = build_vocab(row[1] for row in train)
    print(f"data: {len(rows)} sentences; train {len(train)}, val {len(val)}, test {len(test)}; "
          f"vocabulary {len(vocab)}")
    if args.golden:
        write_golden(args.golden, vocab, val, test)
        return
    train_main(args, vocab, train, val, test)


if __name__ == "__main__":
    main()
