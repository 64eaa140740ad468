#!/usr/bin/env python3
"""The layer check: every library may use only the libraries that docs/architecture.md allows.

The allowed-dependency matrix is the fenced block between `<!-- layers:begin -->` and
`<!-- layers:end -->` in docs/architecture.md, one line per library:

    galley_gateway -> gateway_core fleet upstream ...

(names without the `galley_` prefix on the right). The check reads every folder's
CMakeLists.txt to learn which library owns which source file, then fails when

  * a source file includes a header of a library its own library may not use (a header belongs
    to the library that compiles the .cc beside it, else to its folder's first library);
  * a CMakeLists.txt links a Galley library that the matrix does not allow;
  * the matrix has a cycle, or names a library that does not exist, or a library is missing
    from it;
  * a library marked `(pure)` includes threads, sockets or Boost.Asio/Beast.

Unit tests (`*_test.cc`) may use what any library of their folder may use. Exit status 0 when the
tree keeps its layers, 1 with one line per violation otherwise. `--root DIR` checks another tree
(the self-test builds a small broken one).
"""
import argparse
import pathlib
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/([^"]+)"', re.M)
# Galley's libraries (galley_*) and its executable (galley).
ADD_LIBRARY = re.compile(r'add_(?:library|executable)\(\s*(galley(?:_\w+)?)\s([^)]*)\)', re.S)
TARGET_SOURCES = re.compile(r'target_sources\(\s*(galley(?:_\w+)?)\s([^)]*)\)', re.S)
LINKS = re.compile(r'target_link_libraries\(\s*(galley(?:_\w+)?)\s([^)]*)\)', re.S)
IMPURE = ("<thread>", "<mutex>", "<condition_variable>", "boost/asio", "boost/beast",
          "sys/socket.h", "http/server.h")


def parse_matrix(doc: str):
    m = re.search(r"<!-- layers:begin -->\s*```[a-z]*\n(.*?)```\s*<!-- layers:end -->", doc, re.S)
    if not m:
        raise SystemExit("docs/architecture.md: no block between <!-- layers:begin --> and "
                         "<!-- layers:end -->")
    allowed, pure = {}, set()
    for n, line in enumerate(m.group(1).splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "->" not in line:
            raise SystemExit(f"layers block line {n}: expected 'galley_x -> y z', got {line!r}")
        left, right = (s.strip() for s in line.split("->", 1))
        name = left.split()[0]
        if "(pure)" in left:
            pure.add(name)
        allowed[name] = {"galley_" + d for d in right.split()}
    return allowed, pure


def parse_cmake(src: pathlib.Path):
    owner, first_lib, links, libs = {}, {}, {}, set()
    for cm in sorted(src.glob("*/CMakeLists.txt")):
        folder = cm.parent.name
        text = re.sub(r"#[^\n]*", "", cm.read_text())
        for rx in (ADD_LIBRARY, TARGET_SOURCES):
            for lib, body in rx.findall(text):
                libs.add(lib)
                if rx is ADD_LIBRARY:
                    first_lib.setdefault(folder, lib)
                for tok in body.split():
                    if tok.endswith(".cc"):
                        owner[f"{folder}/{tok}"] = lib
        for lib, body in LINKS.findall(text):
            if lib in libs:
                links.setdefault(lib, set()).update(
                    t for t in body.split() if t.startswith("galley_"))
    return owner, first_lib, links, libs


def header_owner(path: str, owner, first_lib):
    cc = re.sub(r"\.h$", ".cc", path)
    if cc in owner:
        return owner[cc]
    return first_lib.get(path.split("/", 1)[0])


def find_cycle(allowed):
    state = {}

    def visit(n, stack):
        state[n] = 1
        for d in sorted(allowed.get(n, ())):
            if state.get(d) == 1:
                return stack + [n, d]
            if d not in state:
                c = visit(d, stack + [n])
                if c:
                    return c
        state[n] = 2
        return None

    for n in sorted(allowed):
        if n not in state:
            c = visit(n, [])
            if c:
                return c
    return None


def check(root: pathlib.Path):
    src = root / "src"
    allowed, pure = parse_matrix((root / "docs" / "architecture.md").read_text())
    owner, first_lib, links, libs = parse_cmake(src)
    errors = []
    for lib in sorted(libs - set(allowed)):
        errors.append(f"{lib}: not in the layers block of docs/architecture.md")
    for lib in sorted(set(allowed) - libs):
        errors.append(f"layers block: {lib} is not a library of the tree")
    for lib, deps in sorted(allowed.items()):
        for d in sorted(deps - libs):
            errors.append(f"layers block: {lib} -> {d}: no such library")
    cycle = find_cycle(allowed)
    if cycle:
        errors.append("layers block: cycle " + " -> ".join(cycle))
    for lib, deps in sorted(links.items()):
        for d in sorted(deps - {lib} - allowed.get(lib, set())):
            errors.append(f"{lib} links {d}, which the layers block does not allow")
    for f in sorted(src.rglob("*")):
        if f.suffix not in (".cc", ".h") or "testing" in f.parts:
            continue
        rel = f.relative_to(src).as_posix()
        folder = rel.split("/", 1)[0]
        if rel.endswith("_test.cc"):
            mine = {lib for path, lib in owner.items() if path.startswith(folder + "/")}
            mine.add(first_lib.get(folder))
        else:
            mine = {header_owner(rel, owner, first_lib)}
        mine.discard(None)
        if not mine:
            continue
        ok = set().union(*(allowed.get(l, set()) | {l} for l in mine))
        text = f.read_text(errors="replace")
        for m in INCLUDE.finditer(text):
            target_folder, rest = m.group(1), m.group(2)
            if not (src / target_folder).is_dir():
                continue
            target = header_owner(f"{target_folder}/{rest}", owner, first_lib)
            if target is None or target in ok:
                continue
            line = text.count("\n", 0, m.start()) + 1
            errors.append(f"src/{rel}:{line}: includes {target_folder}/{rest} ({target}), which "
                          f"{'/'.join(sorted(mine))} may not use")
        if not rel.endswith("_test.cc") and mine & pure:
            for bad in IMPURE:
                if re.search(r'#\s*include\s+["<]' + re.escape(bad.strip("<>")), text):
                    errors.append(f"src/{rel}: a pure library includes {bad}")
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=pathlib.Path(__file__).resolve().parent.parent, type=pathlib.Path)
    args = ap.parse_args()
    errors = check(args.root)
    for e in errors:
        print(e)
    if errors:
        print(f"layer check: {len(errors)} violation(s); the allowed matrix is in docs/architecture.md")
        return 1
    print("layer check: every include and link follows docs/architecture.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
