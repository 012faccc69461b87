"""The performance page's data: the files ``make bench`` writes, checked for staleness, as table rows.

``make bench`` (``tools/bench.sh``) writes ``results/bench_<kind>.json``:

- ``cpu`` / ``gpu``: this machine (``benchmarks/machine.py``): matmul peak, every model's throughput,
  memory and share of the peak, data loading, the book's build times;
- ``reference_cpu`` / ``reference_gpu``: vidlib side by side with mmaction2 1.2.0 and the official STAM
  (``benchmarks/compare_reference.py``);
- ``reference_h200_2026-11-29``: a GPU side-by-side measured once on a lent H200 (copied in, with its
  provenance; ``make bench`` does not regenerate it).

Each generated file records :func:`vidbook.results.code_identity` at measurement time; :func:`stale_parts`
compares it with the source now, and :func:`load_bench` refuses a stale file unless asked not to.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from .modes import project_root
from .results import source_hash

__all__ = [
    "BENCH_FILES",
    "bench_path",
    "load_bench",
    "stale_parts",
    "side_by_side_rows",
    "ratio_summary",
    "machine_rows",
    "data_loading_rows",
    "build_time_rows",
    "PAGE_BUDGET_S",
    "over_budget",
    "geomean",
]

#: What each generated file measured, i.e. the sources whose change makes it stale.
BENCH_FILES = {
    "cpu": ("models", "data"),
    "reference_cpu": ("models",),
    "gpu": ("models",),
    "reference_gpu": ("models",),
}
#: The project's time budget for one page of the book on 2 CPU cores, per execution mode (seconds):
#: quick (what CI runs) at most 2 minutes, default (``make book``) about 10 minutes (CONTRIBUTING.md).
PAGE_BUDGET_S = {"quick": 120.0, "default": 600.0}
#: The command that regenerates every file of :data:`BENCH_FILES`.
COMMAND = "make bench"


def bench_path(kind: str) -> Path:
    """``results/bench_<kind>.json``."""
    return project_root() / "results" / f"bench_{kind}.json"


def stale_parts(data: Mapping, parts: Sequence[str]) -> list[str]:
    """The parts of vidlib (``"models"``, ``"data"``) whose source changed since ``data`` was measured
    (a part the file did not record counts as changed)."""
    recorded = (data.get("code") or {}).get("source_hash") or {}
    return [p for p in parts if recorded.get(p) != source_hash(p)]


def load_bench(kind: str, *, allow_stale: bool = False) -> dict:
    """Read ``results/bench_<kind>.json``; a missing file or (for generated kinds) one measured on other
    model/data source raises, naming the file, what changed and the command that regenerates it."""
    path = bench_path(kind)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `{COMMAND}`")
    data = json.loads(path.read_text())
    stale = stale_parts(data, BENCH_FILES[kind]) if kind in BENCH_FILES else []
    if stale and not allow_stale:
        raise RuntimeError(
            f"{path} is stale: vidlib/{', vidlib/'.join(stale)} changed since it was measured "
            f"(at {data['code'].get('commit')}): run `{COMMAND}`"
        )
    return data


def geomean(values: Sequence[float]) -> float:
    """Geometric mean (the mean of ratios that treats 2x and 0.5x symmetrically)."""
    values = list(values)
    if not values or min(values) <= 0:
        raise ValueError(f"geomean needs positive values, got {values}")
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _pair_cell(entry: Mapping | None, key: str = "clips_per_s", fmt: str = ".2f") -> str:
    if not entry or "vidlib" not in entry:
        return "–"
    if "reference" not in entry:  # measured on vidlib's side only
        return f"{entry['vidlib'][key]:{fmt}} (vidlib only)"
    a, b = entry["vidlib"][key], entry["reference"][key]
    return f"{a:{fmt}} / {b:{fmt}} = {a / b:.2f}"


def side_by_side_rows(data: Mapping) -> list[dict]:
    """One row per model: parity, then ``vidlib / reference = ratio`` per timed setting (clips/s), and
    the memory (CPU: MiB above the built model, one process per side; GPU: peak allocated)."""
    rows = []
    for pair in data["pairs"]:
        if "skipped" in pair:
            rows.append(dict(model=pair["model"], parity="not measured: " + pair["skipped"]))
            continue
        row = dict(model=pair["model"], input=f"{pair['frames']}×{pair['size']}²")
        row["parity"] = f"{pair['parity']['max_rel_err']:.1e}"
        for name, entry in pair["settings"].items():
            row[name] = _pair_cell(entry)
        mem = pair.get("memory")
        if mem:
            row["train_mib"] = _pair_cell(
                dict(vidlib=mem["vidlib"], reference=mem["reference"]), "train_peak_mib", ".0f"
            )
            row["infer_mib"] = _pair_cell(
                dict(vidlib=mem["vidlib"], reference=mem["reference"]), "infer_peak_mib", ".0f"
            )
        else:
            name = next((n for n in pair["settings"] if n.startswith("train") and "fp32" in n), None)
            if name and "peak_mib" in pair["settings"][name]["vidlib"]:
                row["train_mib"] = _pair_cell(pair["settings"][name], "peak_mib", ".0f")
        rows.append(row)
    return rows


def ratio_summary(data: Mapping) -> dict[str, dict]:
    """Per timed setting: the geometric mean, minimum and maximum of vidlib / reference over the models
    that have both sides."""
    ratios: dict[str, list[float]] = {}
    for pair in data["pairs"]:
        for name, entry in pair.get("settings", {}).items():
            if entry.get("ratio") is not None:
                ratios.setdefault(name, []).append(entry["ratio"])
    return {
        name: dict(geomean=geomean(r), min=min(r), max=max(r), models=len(r)) for name, r in ratios.items()
    }


def machine_rows(data: Mapping) -> list[dict]:
    """One row per model of ``benchmarks/machine.py`` (CPU layout): throughput, MACs, share of peak."""
    rows = []
    for m in data["models"]:
        b, _, t, h, w = m["input"]
        row = dict(model=m["model"], input=f"{b}×{t}×{h}²", gmacs=m["gmacs_per_clip"])
        if "clips_per_s" in m:
            row.update(
                params_m=m["params_m"],
                clips_per_s=m["clips_per_s"],
                ms_per_clip=m["ms_per_clip"],
                peak_mib=m["peak_mib"],
                gmac_per_s=m["gmac_per_s"],
                peak_pct=100 * m["peak_fraction"],
            )
        for g in m.get("gpu", []):
            name = f"b{g['batch']} {g['dtype']}" + (" cl" if g["channels_last"] else "")
            row[name] = f"{g['clips_per_s']:.1f} ({100 * g['peak_fraction']:.1f}%)"
        rows.append(row)
    return rows


def data_loading_rows(data: Mapping) -> list[dict]:
    """clips/s per source, pipeline, backend and worker count (``benchmarks/data_loading.py``)."""
    return [
        dict(
            source=r["source"],
            pipeline=r["pipeline"],
            backend=r["backend"],
            workers=r["workers"],
            clips_per_s=r["clips_per_s"],
        )
        for r in data["data_loading"]["rows"]
    ]


def build_time_rows(data: Mapping, train_minutes: Mapping[str, float]) -> list[dict]:
    """Per chapter: quick-mode and default-mode execution seconds from the book's execution caches (with
    the date), and the default-mode training minutes its results file records."""
    build = data["book_build"]
    names = sorted(set(build["quick"]["chapters"]) | set(build["default"]["chapters"]) | set(train_minutes))
    rows = []
    for name in names:
        q, d = build["quick"]["chapters"].get(name), build["default"]["chapters"].get(name)
        rows.append(
            dict(
                chapter=name,
                quick_s=q["seconds"] if q else None,
                default_s=d["seconds"] if d else None,
                default_date=d["executed"][:10] if d else None,
                train_min=train_minutes.get(name),
            )
        )
    return rows


def over_budget(rows: Sequence[Mapping], mode: str) -> dict[str, float]:
    """The pages of :func:`build_time_rows` whose ``mode`` (``"quick"`` or ``"default"``) execution took
    longer than :data:`PAGE_BUDGET_S`, with their seconds; pages not measured in that mode are left out."""
    key = {"quick": "quick_s", "default": "default_s"}[mode]
    return {r["chapter"]: r[key] for r in rows if r[key] is not None and r[key] > PAGE_BUDGET_S[mode]}
