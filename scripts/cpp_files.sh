#!/usr/bin/env bash
# The project's C++ sources and headers, for `make format` and the format check: tracked by git,
# and new files not yet added (untracked but not ignored), so a file is formatted before its
# first commit.
cd "$(dirname "$0")/.." &&
  git ls-files --cached --others --exclude-standard 'src/*.cc' 'src/*.h' 'fuzz/*.cc' 'bench/*.cc' 'bench/*.h'
