#!/usr/bin/env bash
# `make test` after the install and the quick data: three stages, each run even when an earlier one
# failed, so one run reports every failure; the exit status is non-zero if any stage failed.
#
#   1. the book in quick mode (tools/build_book.sh with VIDLIB_QUICK=1) into _build/html;
#   2. pytest tests/  (unit, golden and the rendered-book checks in tests/test_book_html.py, which
#      open the stage-1 pages in headless Chromium);
#   3. every chapter under pytest --nbval-lax in quick mode (tools/run_nbval.sh).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="$root/.venv/bin/python"
export PYTHONDONTWRITEBYTECODE=1 PYDEVD_DISABLE_FILE_VALIDATION=1

declare -a names=() codes=() times=()
stage() {  # stage NAME COMMAND...
  local name="$1" start=$SECONDS rc
  shift
  echo "=== make test: $name"
  "$@"
  rc=$?
  if [[ "$name" == pytest* ]] && (( rc == 5 )); then   # pytest: no tests collected
    echo "=== make test: $name collected no tests"
    rc=0
  fi
  names+=("$name"); codes+=("$rc"); times+=("$((SECONDS - start))")
}

stage "book (quick mode)" env VIDLIB_QUICK=1 "$root/tools/build_book.sh"
stage "pytest tests/" env VIDLIB_ROOT="$root" "$py" -m pytest -p no:cacheprovider tests/
stage "pytest --nbval-lax chapters" "$root/tools/run_nbval.sh"

status=0
echo "=== make test summary"
for i in "${!names[@]}"; do
  if (( codes[i] == 0 )); then verdict="ok"; else verdict="FAILED (exit ${codes[i]})"; status=1; fi
  printf '  %-30s %-18s %5d s\n' "${names[i]}" "$verdict" "${times[i]}"
done
exit "$status"
