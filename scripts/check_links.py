#!/usr/bin/env python3
"""Every relative link in the repository's Markdown (README.md, docs/, bench/, deploy/, ...)
names a file that exists, and every #fragment names a heading of the target (GitHub's anchor
rules: lower case, punctuation dropped, spaces to hyphens). Links inside code blocks are not
links. Exits 1 listing each broken link."""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {".git", ".deps", ".venv", "build", "third_party", "node_modules"}


def markdown_files(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP and not d.startswith("build")]
        out += [Path(dirpath) / f for f in filenames if f.endswith(".md")]
    return sorted(out)


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(errors="replace"), flags=re.S)
    out = set()
    for m in re.finditer(r"^#+\s+(.*)$", text, flags=re.M):
        out.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return out


def broken_links(root: Path) -> list[str]:
    bad = []
    for f in markdown_files(root):
        text = re.sub(r"```.*?```", "", f.read_text(errors="replace"), flags=re.S)
        for m in re.finditer(r"\]\(([^)\s]+)\)", text):
            target = m.group(1)
            if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, frag = target.partition("#")
            dest = (f.parent / path).resolve() if path else f
            rel = f.relative_to(root)
            if not dest.exists():
                bad.append(f"{rel}: {target}: no such file")
            elif frag and dest.suffix == ".md" and frag not in anchors(dest):
                bad.append(f"{rel}: {target}: no such heading")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", type=Path, default=ROOT, help="the tree to check")
    root = ap.parse_args().root.resolve()
    bad = broken_links(root)
    for b in bad:
        print(b, file=sys.stderr)
    if bad:
        return 1
    print(f"link check: every relative link in {len(markdown_files(root))} Markdown files resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
