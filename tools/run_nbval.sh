#!/usr/bin/env bash
# Run every chapter (book/*.md) under `pytest --nbval-lax` in quick mode.
#
# The jupytext .md chapters are converted to .ipynb in a temporary directory outside the tree
# (removed on exit), then executed by nbval with the venv's python as the kernel. The chapters find
# the repository through VIDLIB_ROOT (their first cell does os.chdir(vidlib.project_root())).
# --nbval-lax checks that every cell runs, plus the cells marked `# NBVAL_CHECK_OUTPUT`.
#
#   tools/run_nbval.sh [extra pytest arguments]     e.g. -k tam, -x
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$root/.venv/bin/python"
shopt -s nullglob
chapters=("$root"/book/*.md)
if (( ${#chapters[@]} == 0 )); then
  echo "run_nbval: no chapters in book/"
  exit 0
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/vidlib-nbval.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
for md in "${chapters[@]}"; do
  name="$(basename "${md%.md}")"
  "$py" -m jupytext --quiet --to ipynb --output "$tmp/$name.ipynb" "$md"
done
printf '[pytest]\n' > "$tmp/pytest.ini"   # keep the repository's pytest settings out

cd "$tmp"
set +e
VIDLIB_ROOT="$root" VIDLIB_QUICK=1 PYDEVD_DISABLE_FILE_VALIDATION=1 PYTHONDONTWRITEBYTECODE=1 \
  "$py" -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=1200 \
  -c "$tmp/pytest.ini" --rootdir "$tmp" -p no:cacheprovider -v --durations=5 \
  "$tmp"/*.ipynb "$@"
rc=$?
set -e
if (( rc == 5 )); then   # pytest: no tests collected (chapters without code cells)
  echo "run_nbval: the chapters have no code cells to run"
  rc=0
fi
exit "$rc"
