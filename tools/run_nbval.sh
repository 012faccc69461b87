#!/usr/bin/env bash
# Run every chapter under `pytest --nbval-lax` in quick mode, and keep each execution for the book.
#
# The chapters (book/*.md, or the pages of $VIDLIB_BOOK_TOC when set) are written as .ipynb into a
# temporary directory outside the tree (removed on exit) by myst-nb's own reader, so nbval runs exactly
# the notebook the book build would run; nbval executes them with the venv's python as the kernel. The
# chapters find the repository through VIDLIB_ROOT (their first cell does os.chdir(vidbook.project_root())).
# --nbval-lax checks that every cell runs without an error (the .ipynb hold no outputs to compare with).
#
# Each chapter whose cells all passed is stored in the quick book's execution cache
# (_build/.jupyter_cache_quick, see tools/nbval_save.py), so a following `VIDLIB_QUICK=1
# tools/build_book.sh` renders it without executing it again; that is how `make test` runs every
# chapter once. A chapter with a failing cell has its cache entry removed: the book build then executes
# it and reports the failure too. tools/book_cache.sh first drops the caches if vidlib changed.
#
# No chapter, or no cell collected, is a failure (exit 1): an empty run must not pass.
#
#   tools/run_nbval.sh [extra pytest arguments]     e.g. -k tam, -x
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$root/.venv/bin/python"
cache="$root/_build/.jupyter_cache_quick"   # the quick-mode cache of tools/sphinx_vidlib.py

"$root/tools/book_cache.sh"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/vidlib-nbval.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
if ! "$py" "$root/tools/nbval_save.py" convert "$tmp"; then
  echo "run_nbval: FAILED: no chapter to run" >&2
  exit 1
fi
printf '[pytest]\n' > "$tmp/pytest.ini"   # keep the repository's pytest settings out

cd "$tmp"
set +e
# VIDLIB_FULL=1: the chapters also run their full-size-model branch (the GPU mode's) at toy size on the CPU,
# so that branch is tested by CI, which has no GPU.
VIDLIB_ROOT="$root" VIDLIB_QUICK=1 VIDLIB_FULL="${VIDLIB_FULL:-1}" PYDEVD_DISABLE_FILE_VALIDATION=1 PYTHONDONTWRITEBYTECODE=1 \
  "$py" "$root/tools/nbval_save.py" pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=1200 \
  -c "$tmp/pytest.ini" --rootdir "$tmp" -p no:cacheprovider -v --durations=5 \
  --nbval-save-cache "$cache" "$tmp"/*.ipynb "$@"
rc=$?
set -e
if (( rc == 5 )); then   # pytest: no tests collected
  echo "run_nbval: FAILED: no notebook cell was collected (chapters without code cells, or a -k that matches nothing)" >&2
  rc=1
fi
exit "$rc"
