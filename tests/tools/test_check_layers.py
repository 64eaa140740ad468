"""The layer check (scripts/check_layers.py) on small trees: it passes a tree that keeps its
layers and names each kind of violation."""
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "check_layers.py"

MATRIX = """# Architecture

<!-- layers:begin -->
```
galley_a (pure) ->
galley_b        -> a
```
<!-- layers:end -->
"""


def make_tree(root: pathlib.Path, matrix=MATRIX, a_cc='#include "a/a.h"\n',
              b_cc='#include "b/b.h"\n#include "a/a.h"\n', b_links="galley_a"):
    (root / "docs").mkdir()
    (root / "docs" / "architecture.md").write_text(matrix)
    for lib, cc, links in (("a", a_cc, ""), ("b", b_cc, b_links)):
        d = root / "src" / lib
        d.mkdir(parents=True)
        cmake = f"add_library(galley_{lib} {lib}.cc)\n"
        if links:
            cmake += f"target_link_libraries(galley_{lib} PUBLIC {links})\n"
        (d / "CMakeLists.txt").write_text(cmake)
        (d / f"{lib}.h").write_text("#pragma once\n")
        (d / f"{lib}.cc").write_text(cc)
    return root


def run(root):
    return subprocess.run([sys.executable, str(SCRIPT), "--root", str(root)],
                          capture_output=True, text=True)


def test_a_tree_that_keeps_its_layers_passes(tmp_path):
    r = run(make_tree(tmp_path))
    assert r.returncode == 0, r.stdout
    assert "every include and link follows" in r.stdout


def test_the_repository_keeps_its_layers():
    r = run(SCRIPT.parents[1])
    assert r.returncode == 0, r.stdout


@pytest.mark.parametrize("kwargs, expected", [
    ({"a_cc": '#include "a/a.h"\n#include "b/b.h"\n'},
     "src/a/a.cc:2: includes b/b.h (galley_b), which galley_a may not use"),
    ({"b_links": "galley_a galley_c"}, "galley_b links galley_c, which the layers block does not allow"),
    ({"matrix": MATRIX.replace("galley_a (pure) ->", "galley_a (pure) -> b")},
     "layers block: cycle galley_a -> galley_b -> galley_a"),
    ({"matrix": MATRIX.replace("galley_b        -> a\n", "")},
     "galley_b: not in the layers block of docs/architecture.md"),
    ({"a_cc": '#include "a/a.h"\n#include <thread>\n'}, "src/a/a.cc: a pure library includes <thread>"),
    ({"matrix": "# no block\n"}, "no block between <!-- layers:begin -->"),
])
def test_each_violation_is_named(tmp_path, kwargs, expected):
    r = run(make_tree(tmp_path, **kwargs))
    assert r.returncode != 0
    assert expected in r.stdout + r.stderr
