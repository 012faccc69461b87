#!/usr/bin/env bash
# `make test` after the install and the quick data: the stages below, each run even when an earlier one
# failed, so one run reports every failure; a summary table at the end; the exit status is non-zero if
# any stage failed. Every chapter is executed once, by nbval; the book is rendered from those executions.
#
#   1. every chapter under pytest --nbval-lax in quick mode (tools/run_nbval.sh): a pass/fail per cell;
#      each chapter that passed is stored in the quick book's execution cache (tools/nbval_save.py);
#   2. the book in quick mode (tools/build_book.sh with VIDLIB_QUICK=1) into _build/html: it finds the
#      chapters of stage 1 in the cache and only renders them (the summary says how many it executed:
#      0 when stage 1 passed; a chapter that failed in stage 1 is executed and fails here too);
#   3. pytest tests/  (unit, golden and the rendered-book checks in tests/test_book_html.py, which
#      open the stage-2 pages in headless Chromium);
#   4. ruff check and ruff format --check of vidlib, vidbook, tests, tools and benchmarks (pyproject.toml).
#
# A stage that collects no tests fails: an empty run must not pass.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="$root/.venv/bin/python"
export PYTHONDONTWRITEBYTECODE=1 PYDEVD_DISABLE_FILE_VALIDATION=1
lint_paths=(vidlib vidbook tests tools benchmarks)

declare -a names=() codes=() times=() notes=()
note=""
stage() {  # stage NAME COMMAND...
  local name="$1" start=$SECONDS rc
  shift
  echo "=== make test: $name"
  note=""
  "$@"
  rc=$?
  if [[ "$name" == pytest* ]] && (( rc == 5 )); then   # pytest: no tests collected
    echo "=== make test: FAILED: $name collected no tests" >&2
    note="no tests collected"
  fi
  names+=("$name"); codes+=("$rc"); times+=("$((SECONDS - start))"); notes+=("$note")
}

book() {  # the quick book, with a count of the chapters it executed itself (stage 1 should leave none)
  local log="$root/_build/make-test-book.log" rc executed cached
  mkdir -p "$root/_build"
  env VIDLIB_QUICK=1 "$root/tools/build_book.sh" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  executed="$(grep -ac 'Executing notebook using' "$log")"
  cached="$(grep -ac 'Using cached notebook' "$log")"
  note="$executed chapter(s) executed, $cached from the cache"
  echo "=== make test: book: $note (log: $log)"
  return "$rc"
}

ruff() {  # ruff SUBCOMMAND...: the venv's ruff (requirements.txt)
  if [[ ! -x "$root/.venv/bin/ruff" ]]; then
    echo "=== make test: FAILED: .venv/bin/ruff is missing (make install)" >&2
    return 1
  fi
  "$root/.venv/bin/ruff" "$@"
}

stage "pytest --nbval-lax chapters" "$root/tools/run_nbval.sh"
stage "book (quick mode)" book
stage "pytest tests/" env VIDLIB_ROOT="$root" "$py" -m pytest -p no:cacheprovider tests/
stage "ruff check" ruff check "${lint_paths[@]}"
stage "ruff format --check" ruff format --check "${lint_paths[@]}"

status=0
echo "=== make test summary"
for i in "${!names[@]}"; do
  if (( codes[i] == 0 )); then verdict="ok"; else verdict="FAILED (exit ${codes[i]})"; status=1; fi
  printf '  %-30s %-18s %5d s  %s\n' "${names[i]}" "$verdict" "${times[i]}" "${notes[i]}"
done
exit "$status"
