#!/usr/bin/env bash
# `make bench`: the measurements behind book/performance.md, written to results/ (commit them).
#
#   results/bench_cpu.json            this machine: matmul peak, every model's throughput, memory and share
#                                     of the peak, data loading, the book's build times (benchmarks/machine.py)
#   results/bench_reference_cpu.json  vidlib side by side with mmaction2 1.2.0 and the official STAM
#                                     (benchmarks/compare_reference.py, run in a scratch environment)
#   results/bench_gpu.json, results/bench_reference_gpu.json   the same on a CUDA device, when there is one
#
# Not part of `make test`. From a fresh clone it takes about 45 minutes on 2 CPU cores: it creates the
# reference environment (.scratch/mm/venv, the packages of tests/golden/README.md from the registry),
# clones the official STAM at its pinned commit (STAM_SRC=<checkout> to use one you have, STAM_REPO=<url
# or path> to clone from elsewhere; without one the STAM row says it was not measured), and, when the
# quick book's execution cache lacks a chapter, runs the chapters under nbval first (tools/run_nbval.sh)
# so that the quick build times are measured. Run it on an otherwise idle machine: the files record the
# load average.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="$root/.venv/bin/python"
scratch="$root/.scratch/mm/venv"
stam_commit=6749baf
STAM_SRC="${STAM_SRC:-$root/.scratch/stam/STAM}"
STAM_REPO="${STAM_REPO:-https://github.com/Alibaba-MIIL/STAM}"

# 1. the reference environment: mmaction2 1.2.0 next to the project's torch (tests/golden/README.md)
if ! "$scratch/bin/python" -c "import mmaction, mmengine" 2>/dev/null; then
  echo "bench: creating the reference environment in $scratch"
  "$py" -m venv "$scratch"
  site="$("$scratch/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  "$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$site/zz_main_venv.pth"
  "$scratch/bin/pip" install -q mmaction2==1.2.0 mmengine==0.10.7 mmcv-lite==2.1.0 importlib_metadata
fi

# 2. the official STAM at its pinned commit
if [[ ! -d "$STAM_SRC/stam" ]]; then
  echo "bench: cloning the official STAM from $STAM_REPO into $STAM_SRC"
  if git clone -q "$STAM_REPO" "$STAM_SRC"; then
    git -C "$STAM_SRC" checkout -q "$stam_commit"
  else
    echo "bench: could not clone $STAM_REPO: STAM will be recorded as not measured" >&2
  fi
fi
stam_args=()
if [[ -d "$STAM_SRC/stam" ]]; then
  head="$(git -C "$STAM_SRC" rev-parse HEAD)"
  if [[ "$head" != "$stam_commit"* ]]; then
    echo "bench: $STAM_SRC is at $head, expected $stam_commit" >&2
    exit 2
  fi
  stam_args=(--stam "$STAM_SRC")
fi

# 3. this machine, then the side-by-side (and the same on a GPU when there is one)
"$py" benchmarks/machine.py --out results/bench_cpu.json
"$scratch/bin/python" benchmarks/compare_reference.py --device cpu --out results/bench_reference_cpu.json \
  "${stam_args[@]}"
if "$py" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  "$py" benchmarks/machine.py --device cuda --no-data --out results/bench_gpu.json
  "$scratch/bin/python" benchmarks/compare_reference.py --device cuda --out results/bench_reference_gpu.json \
    "${stam_args[@]}"
fi

# 4. quick build times: the chapters under nbval, unless the quick cache already holds every page
if ! "$py" benchmarks/machine.py --check-build-cache; then
  echo "bench: timing the chapters in quick mode (tools/run_nbval.sh)"
  tools/run_nbval.sh || echo "bench: a chapter failed under nbval: its quick build time is not recorded" >&2
fi
"$py" benchmarks/machine.py --update-build-times --out results/bench_cpu.json
echo "bench: done; the performance page (book/performance.md) reads these files"
