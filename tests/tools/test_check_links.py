"""The link check (scripts/check_links.py) on small trees: it passes links to files and headings
that exist, ignores links inside code blocks and external ones, and names each broken link."""
import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "check_links.py"


def run(root):
    return subprocess.run([sys.executable, str(SCRIPT), "--root", str(root)],
                          capture_output=True, text=True)


def make_tree(root: pathlib.Path, readme: str) -> pathlib.Path:
    (root / "docs").mkdir()
    (root / "docs" / "guide.md").write_text("# Guide\n\n## Scaling on the backlog (`--queue`)\n")
    (root / "README.md").write_text(readme)
    return root


def test_good_links_pass(tmp_path):
    r = run(make_tree(tmp_path, "[g](docs/guide.md) [s](docs/guide.md#scaling-on-the-backlog---queue)"
                                " [web](https://example.com/x.md) [self](#top)\n# Top\n"
                                "```\n[not a link](missing.md)\n```\n"))
    assert r.returncode == 0, r.stderr
    assert "2 Markdown files" in r.stdout


def test_a_missing_file_and_a_missing_heading_are_named(tmp_path):
    r = run(make_tree(tmp_path, "[a](docs/nope.md) [b](docs/guide.md#no-such-heading)\n"))
    assert r.returncode == 1
    assert "README.md: docs/nope.md: no such file" in r.stderr
    assert "README.md: docs/guide.md#no-such-heading: no such heading" in r.stderr
