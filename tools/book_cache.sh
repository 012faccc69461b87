#!/usr/bin/env bash
# Drop the chapters' execution caches when what they ran against changed.
#
# The myst-nb execution caches (_build/.jupyter_cache, _build/.jupyter_cache_quick) are keyed on the
# notebook code only. When vidlib's source, the requirements, the published numbers, the measured kernel
# spreads (results/*_kernels.json, which chapters read) or the golden files change, this script deletes
# both caches and the marker _build/.book_ok, so the next
# tools/build_book.sh executes every chapter again and re-reads every page (--all). The hash of those
# files is kept in _build/.vidlib_source_hash.
#
# Run before anything reads or fills a cache: tools/build_book.sh (which executes through the cache)
# and tools/run_nbval.sh (which stores nbval's executions into the quick cache).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build="$root/_build"
mkdir -p "$build"

source_hash="$(
  { find vidlib vidbook -name '*.py' -print0 | sort -z | xargs -0 cat
    cat requirements.txt pyproject.toml
    cat results/*.yaml results/*_kernels.json tests/golden/*.json 2>/dev/null || true
  } | sha256sum | cut -c1-32
)"
hash_file="$build/.vidlib_source_hash"
if [[ "$(cat "$hash_file" 2>/dev/null)" != "$source_hash" ]]; then
  echo "book_cache: vidlib source changed since the cached executions; dropping the execution caches"
  rm -rf "$build"/.jupyter_cache "$build"/.jupyter_cache_quick "$build/.book_ok"
  echo "$source_hash" > "$hash_file"
fi
