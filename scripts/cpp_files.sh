#!/usr/bin/env bash
# The project's C++ sources and headers (tracked by git), for `make format` and the format check.
cd "$(dirname "$0")/.." && git ls-files 'src/*.cc' 'src/*.h' 'fuzz/*.cc' 'bench/*.cc' 'bench/*.h'
