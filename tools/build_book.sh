#!/usr/bin/env bash
# Build the Jupyter Book into _build/html: chapters executed through the myst-nb execution cache,
# nitpicky, every Sphinx warning an error (a failed cell or a broken reference fails the build).
#
#   tools/build_book.sh                  default mode
#   VIDLIB_QUICK=1 tools/build_book.sh   quick mode (same output folder, its own execution cache)
#
# Extra arguments go to `jupyter-book build` (e.g. --all). Called by `make book` and `make test`.
# VIDLIB_BOOK_TOC=<file> builds with another table of contents (e.g. only the chapter you work on);
# tests/test_book_html.py then checks the pages of that toc.
#
# Two guards keep the pages honest:
# - the execution caches are keyed on the notebook code only, so tools/book_cache.sh drops them when
#   vidlib's source, requirements, published numbers or golden files change (hash in
#   _build/.vidlib_source_hash), and removes the marker below so that every page is re-read;
# - Sphinx does not re-report the warnings of pages it does not re-read, so after a failed build
#   the next build re-reads everything (--all) until one succeeds (marker _build/.book_ok).
#
# In `make test` the quick cache is already filled: tools/run_nbval.sh stores each chapter that passed
# under nbval in it (tools/nbval_save.py), so this build only renders those chapters ("Using cached
# notebook" in the log) and executes only the ones nbval did not store.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv_bin="$root/.venv/bin"
export PATH="$venv_bin:$PATH"
export PYDEVD_DISABLE_FILE_VALIDATION=1   # silences ipykernel's debugger warning on stderr

build="$root/_build"
mkdir -p "$build"

"$root/tools/book_cache.sh"   # drops the execution caches (and .book_ok) when vidlib changed
extra=()
if [[ ! -e "$build/.book_ok" ]]; then
  extra+=(--all)
fi
rm -f "$build/.book_ok"

quick="${VIDLIB_QUICK:-0}"; quick="${quick,,}"   # same rule as vidbook.is_quick
case "${quick// /}" in 1|true|yes|on) mode="quick" ;; *) mode="default" ;; esac
echo "build_book: mode=$mode, output=$build/html"

start=$SECONDS
if [[ -n "${VIDLIB_BOOK_TOC:-}" ]]; then extra+=(--toc "$VIDLIB_BOOK_TOC"); fi
"$venv_bin/jupyter-book" build . --warningiserror --nitpick --keep-going "${extra[@]}" "$@"
touch "$build/.book_ok"
echo "build_book: done in $((SECONDS - start)) s ($mode mode): $build/html/index.html"
