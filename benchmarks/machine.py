"""This machine: its matmul peak, every model's throughput / memory / share of that peak, data loading,
and the book's build times. ``make bench`` runs it (``tools/bench.sh``); the performance page reads the
file it writes::

    python benchmarks/machine.py --out results/bench_cpu.json             # the CPU (2 threads here)
    python benchmarks/machine.py --device cuda --out results/bench_gpu.json

- **Peak**: the best rate of square matmuls (fp32 2048² and 4096² on the CPU; fp32 and bf16 4096² and
  8192² on a GPU; 10 repeats each), measured before and after the models (a shared machine's rate
  varies) and the larger used, in GMAC/s: multiply-adds per second, the unit of the papers' "FLOPs" and
  of ``vidlib.flops``. A model whose large matmuls run at a better moment can still exceed it.
- **Models**: every row of ``benchmarks/models.py``'s ``MODELS`` (each paper's single test view at batch 1,
  and the tiny CPU variants at batch 8), each in a fresh process: forward clips/s and peak memory (CPU:
  ``benchmarks/models.bench_one``), the fvcore MAC count of one clip (``vidlib.flops``; STAM as T x one
  frame + the rest), and MAC/s as a fraction of the peak. On a GPU: fp32 at batch 1, bf16 at batch 1 and
  8, and bf16 channels_last for the 2D models (what the engine uses), against the bf16 peak.
- **Data loading**: ``benchmarks/data_loading.py --quick`` (CPU only): clips/s per backend and workers.
- **Book build**: each chapter's execution seconds as the book's execution caches recorded them
  (``_build/.jupyter_cache_quick``: quick mode, filled by ``make test`` or ``make book QUICK=1``;
  ``_build/.jupyter_cache``: default mode, filled by ``make book``), with the date of the execution;
  a mode whose cache is empty is recorded as not measured, with the command that fills it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import models as model_bench  # noqa: E402  (benchmarks/models.py)

CHANNELS_LAST = {"tsn", "tsm", "tanet", "tin"}  # 2D backbones: the engine converts them on a GPU


def matmul_peak(device: str, dtype: torch.dtype, n: int, repeats: int) -> float:
    """GMAC/s of the best of ``repeats`` ``[n, n] @ [n, n]`` products (n³ multiply-adds each)."""
    from vidlib.utils import time_interleaved

    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    # one product warms up; the GPU's are waited for inside each timing
    best = time_interleaved(
        {"mm": lambda: torch.mm(a, b)}, warmup=1, repeats=repeats, synchronize=device == "cuda"
    )["mm"]
    return n**3 / best / 1e9


def count_gmacs(name: str, kwargs: dict, shape: tuple) -> float:
    """fvcore MACs (GMAC) of ONE clip ``[1, *shape[1:]]`` (in a subprocess of its own); a frame-wise
    model (STAM) as T x one frame + the rest (``vidlib.flops.count_frame_model``, equal to the whole)."""
    import vidlib
    from vidlib.flops import count_flops, count_frame_model

    model = vidlib.create_model(name, **kwargs).eval()
    if hasattr(model, "forward_frames"):
        if (model.num_frames, model.img_size, model.img_size) != tuple(shape[2:]):
            raise ValueError(f"{name} is built for {model.num_frames} x {model.img_size}^2, not {shape}")
        return count_frame_model(model)["total"]
    return count_flops(model, (1, *shape[1:])).gflops


def gpu_rows(name: str, kwargs: dict, shape: tuple, warmup: int, repeats: int) -> list[dict]:
    """fp32 b1, bf16 b1, bf16 b8 and (2D) bf16 b8 channels_last forward timings of one model."""
    import vidlib
    from vidlib.utils import time_interleaved

    model = vidlib.create_model(name, **kwargs).cuda().eval()
    rows = []
    settings = [(1, "fp32", False), (1, "bf16", False), (8, "bf16", False)]
    if name.split("_")[0] in CHANNELS_LAST:
        settings.append((8, "bf16", True))
    for batch, dtype, cl in settings:
        x = torch.randn(batch, *shape[1:], device="cuda")
        model.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
        torch.cuda.reset_peak_memory_stats()

        def run(x=x, bf16=dtype == "bf16"):
            with torch.no_grad(), torch.autocast("cuda", torch.bfloat16, enabled=bf16):
                model(x)

        sec = time_interleaved({"f": run}, warmup=warmup, repeats=repeats, synchronize=True)["f"]
        rows.append(
            dict(
                batch=batch,
                dtype=dtype,
                channels_last=cl,
                clips_per_s=batch / sec,
                peak_mib=torch.cuda.max_memory_allocated() / 2**20,
            )
        )
    return rows


def _in_subprocess(fn: str, *args) -> object:
    code = (
        f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import machine as m; "
        f"print(json.dumps(m.{fn}(*json.loads(sys.argv[1]))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(args)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())},
    )
    if out.returncode != 0:
        raise RuntimeError(f"{fn}{args[:1]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_models(device: str, pattern: str, warmup: int, repeats: int) -> list[dict]:
    rows = []
    threads = torch.get_num_threads()
    for name, kwargs, shape in model_bench.MODELS:
        if not any(fnmatch.fnmatch(name, p) for p in pattern.split(",")):
            continue
        gmacs = _in_subprocess("count_gmacs", name, kwargs, list(shape))
        row = dict(model=name, kwargs=kwargs, input=list(shape), gmacs_per_clip=gmacs)
        if device == "cpu":
            r = _in_subprocess("bench_one_cpu", name, kwargs, list(shape), threads, warmup, repeats)
            row.update(r, gmac_per_s=gmacs * r["clips_per_s"])
            print(
                f"{name:<18} {r['clips_per_s']:8.2f} clips/s  {gmacs:8.2f} GMAC/clip  "
                f"{row['gmac_per_s']:7.1f} GMAC/s  peak {r['peak_mib']:6.0f} MiB",
                flush=True,
            )
        else:
            row["gpu"] = _in_subprocess("gpu_rows", name, kwargs, list(shape), warmup, repeats)
        rows.append(row)
    return rows


def bench_one_cpu(name, kwargs, shape, threads, warmup, repeats) -> dict:
    return model_bench.bench_one(name, kwargs, tuple(shape), threads, warmup, repeats)


def build_times() -> dict:
    """Per chapter: execution seconds and date from the book's execution caches, per mode."""
    from jupyter_cache import get_cache

    out = {}
    for mode, folder in (("quick", "_build/.jupyter_cache_quick"), ("default", "_build/.jupyter_cache")):
        path = ROOT / folder
        records = get_cache(str(path)).list_cache_records() if path.is_dir() else []
        chapters = {}
        for rec in records:
            seconds = (rec.data or {}).get("execution_seconds")
            name = Path(rec.uri).stem
            if seconds is not None and name not in chapters:
                chapters[name] = dict(seconds=seconds, executed=rec.created.isoformat(timespec="seconds"))
        fill = "make test (or make book QUICK=1)" if mode == "quick" else "make book"
        out[mode] = dict(chapters=chapters, not_measured=None if chapters else f"empty cache: run {fill}")
    return out


def toc_chapters() -> list[str]:
    """The page names of ``_toc.yml`` (root and chapters)."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [Path(p).name for p in [toc["root"]] + [c["file"] for c in toc.get("chapters", [])]]


def cached_pages() -> set[str]:
    """The toc pages the execution caches hold: all but those executed on every build
    (``execution_mode: force`` in their front matter, e.g. the report and performance pages)."""
    pages = toc_chapters()
    return {n for n in pages if "execution_mode: force" not in (ROOT / "book" / f"{n}.md").read_text()}


def merge_build_times(old: dict | None, new: dict) -> dict:
    """Per mode, the new reading if its cache holds every cached page (a complete build), else the old one:
    a cache emptied by a code change and refilled by a partial build does not replace a full measurement."""
    out, pages = dict(old or {}), cached_pages()
    for mode, reading in new.items():
        missing = sorted(pages - set(reading["chapters"]))
        if not missing or not (old or {}).get(mode, {}).get("chapters"):
            out[mode] = reading
        else:
            print(f"{mode} mode: the cache lacks {missing}; keeping the recorded times of that mode")
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out")
    p.add_argument(
        "--update-build-times",
        action="store_true",
        help="only re-read the build times from the execution caches into the existing --out file",
    )
    p.add_argument(
        "--check-build-cache",
        action="store_true",
        help="exit 0 if the quick execution cache holds every page of _toc.yml, else 1",
    )
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--models", default="*", help="comma-separated shell patterns over MODELS")
    p.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 16))
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-data", action="store_true", help="skip the data-loading benchmark")
    a = p.parse_args(argv)
    if a.check_build_cache:
        missing = sorted(set(toc_chapters()) - set(build_times()["quick"]["chapters"]))
        print(f"quick execution cache: missing {missing}" if missing else "quick execution cache: complete")
        raise SystemExit(1 if missing else 0)
    if not a.out:
        p.error("--out is required")
    if a.update_build_times:  # after tools/run_nbval.sh filled the quick cache, or after make book
        out = json.loads(Path(a.out).read_text())
        out["book_build"] = merge_build_times(out.get("book_build"), build_times())
        tmp = Path(a.out).with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=1) + "\n")
        tmp.replace(a.out)
        return print(f"updated the book build times in {a.out}")
    torch.set_num_threads(a.threads)
    from vidbook.results import code_identity

    start = time.perf_counter()
    out = dict(
        device=a.device,
        threads=a.threads,
        torch=torch.__version__,
        code=code_identity(),
        date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
    dtypes = {"fp32": torch.float32} if a.device == "cpu" else {"bf16": torch.bfloat16, "fp32": torch.float32}
    sizes = (2048, 4096) if a.device == "cpu" else (4096, 8192)

    def peaks_now() -> dict:  # the best over sizes; this machine's rate varies, so measured twice
        return {k: max(matmul_peak(a.device, dt_, n, 10) for n in sizes) for k, dt_ in dtypes.items()}

    if a.device == "cpu":
        out["device_name"] = cpu_name()
        out["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    else:
        out["device_name"] = torch.cuda.get_device_name(0)
        out["cuda_driver"] = cuda_driver()
    before = peaks_now()
    print(f"matmul peak before: {before} GMAC/s", flush=True)
    out["models"] = bench_models(a.device, a.models, a.warmup, a.repeats)
    after = peaks_now()
    peaks = {k: max(before[k], after[k]) for k in dtypes}
    main_dtype = next(iter(dtypes))
    out["peak"] = dict(
        dtype=main_dtype,
        sizes=list(sizes),
        gmac_per_s=peaks[main_dtype],
        before=before,
        after=after,
        fp32_gmac_per_s=peaks["fp32"],
    )
    print(f"matmul peak after: {after} GMAC/s; used: {peaks}", flush=True)
    for row in out["models"]:  # each row's share of the peak of its own dtype
        if "gmac_per_s" in row:
            row["peak_fraction"] = row["gmac_per_s"] / peaks["fp32"]
        for g in row.get("gpu", []):
            g["peak_fraction"] = row["gmacs_per_clip"] * g["clips_per_s"] / peaks[g["dtype"]]
    if a.device == "cpu" and not a.no_data:
        tmp = Path(a.out).with_suffix(".data.json")
        subprocess.run(
            [
                sys.executable,
                str(HERE / "data_loading.py"),
                "--quick",
                "--data",
                "data/synthetic_quick",
                "--json",
                str(tmp),
            ],
            check=True,
            cwd=ROOT,
        )
        out["data_loading"] = json.loads(tmp.read_text())
        tmp.unlink()
    out["book_build"] = build_times()
    out["wall_s"] = time.perf_counter() - start
    out["loadavg_after"] = os.getloadavg()  # 1, 5, 15 minutes: other work on the machine shows here
    tmp = Path(a.out).with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    tmp.replace(a.out)
    print(f"wrote {a.out} ({out['wall_s']:.0f} s)")


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def cuda_driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.CalledProcessError):
        return None


if __name__ == "__main__":
    main()
