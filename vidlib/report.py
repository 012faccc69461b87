"""Book-facing helpers: published numbers, results files, tables and cost comparisons.

Chapters import this module; nothing in the library does. It keeps three rules of the book cheap:

- published numbers come only from ``results/published.yaml`` (:func:`published`);
- measured numbers go to ``results/<chapter>.json`` in default mode and under ``results/runs/`` in
  quick mode (:func:`save_results`, :func:`load_results`);
- every number in the prose is glued from code (:func:`glue_all`) and every table is generated
  (:func:`markdown_table`, :func:`cost_table`).
"""

from __future__ import annotations

import copy
import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .utils import is_quick, num_params, project_root

__all__ = [
    "ChapterMode",
    "chapter_mode",
    "environment",
    "recipe_table",
    "seed_table",
    "kernel_spread",
    "published",
    "published_path",
    "results_path",
    "save_results",
    "load_results",
    "table_text",
    "markdown_table",
    "mean_std",
    "fmt_mean_std",
    "cost_rows",
    "cost_table",
    "glue_all",
    "assert_close",
    "source_hash",
    "code_identity",
]

#: Fields every entry of ``published.yaml`` carries (``tests/test_report.py`` checks them).
REQUIRED_FIELDS = (
    "paper",
    "source",
    "config",
    "dataset",
    "num_classes",
    "sampling",
    "num_frames",
    "test_protocol",
    "top1",
    "top5",
    "flops",
    "params",
    "checkpoint",
    "verified",
)


def published_path() -> Path:
    """``<project root>/results/published.yaml``."""
    return project_root() / "results" / "published.yaml"


@lru_cache(maxsize=4)
def _load_yaml(path: str, mtime: float) -> dict:
    with open(path) as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict) or "entries" not in data:
        raise ValueError(f"{path}: expected a mapping with an 'entries' section")
    return data


def published(key: str | None = None, *, section: str = "entries") -> dict:
    """A copy of one entry of ``results/published.yaml`` (a dict), or of the whole ``section``
    when ``key`` is None.

    ``section`` may also be ``"papers"`` or ``"sources"``. Raises ``FileNotFoundError`` naming the path
    when the file is missing and ``KeyError`` listing the known keys for an unknown key.
    """
    path = published_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"published numbers not found at {path} (is VIDLIB_ROOT / the working directory the repo root?)"
        )
    data = _load_yaml(str(path), path.stat().st_mtime)
    if section not in data:
        raise KeyError(f"{path}: no section {section!r}; sections: {', '.join(data)}")
    table = data[section]
    if key is None:
        return copy.deepcopy(table)
    if key not in table:
        raise KeyError(f"{path}: no {section} key {key!r}; known keys: {', '.join(table)}")
    return copy.deepcopy(table[key])  # callers may modify their copy; the cached file data stays intact


@dataclass(frozen=True)
class ChapterMode:
    """How a chapter runs here: ``name`` is ``"quick"`` (CI: ``VIDLIB_QUICK=1``), ``"default"`` (CPU) or
    ``"gpu"`` (a GPU, not quick). ``full_size``: also train the paper's full-size model (on a GPU, or at toy
    size on the CPU with ``VIDLIB_FULL=1``, so that CI runs that branch too)."""

    name: str
    device: Any
    full_size: bool
    data_root: str

    @property
    def quick(self) -> bool:
        return self.name == "quick"

    def pick(self, *, quick, default, gpu=None):
        """The value for this mode (``gpu`` defaults to ``default``)."""
        return {"quick": quick, "default": default, "gpu": default if gpu is None else gpu}[self.name]


def chapter_mode() -> ChapterMode:
    """The :class:`ChapterMode` of this process (``VIDLIB_QUICK``, ``VIDLIB_FULL``, the device)."""
    from .utils import get_device, is_full

    device = get_device()
    name = "quick" if is_quick() else ("gpu" if device.type == "cuda" else "default")
    return ChapterMode(
        name=name,
        device=device,
        full_size=name == "gpu" or is_full(),
        data_root="data/synthetic_quick" if name == "quick" else "data/synthetic",
    )


def environment(data_root: str | None = None, **extra) -> dict:
    """What determines a chapter's numbers on this machine, for its results file: torch and vidlib versions,
    the CPU kernel set (``ATEN_CPU_CAPABILITY``), threads, the device, and the data's identity
    (content hash)."""
    import platform

    import torch

    from . import __version__

    env = dict(
        torch=torch.__version__,
        vidlib=__version__,
        python=platform.python_version(),
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
        cpu=platform.processor() or platform.machine(),
        torch_threads=torch.get_num_threads(),
        cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    )
    if data_root is not None:
        from .data.synthetic import data_identity

        env["data"] = data_identity(data_root)
    return env | extra


def source_hash(part: str) -> str:
    """sha256 (first 16 hex digits) of the Python source under ``vidlib/<part>`` (a subpackage such as
    ``"models"`` or a module such as ``"flops.py"``): every ``.py`` file's path and bytes, in sorted order.
    Formatting-only edits change it too; it says *whether* the measured code changed, not how much."""
    import hashlib

    base = Path(__file__).resolve().parent
    target = base / part
    files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    if not files or not files[0].is_file():
        raise FileNotFoundError(f"source_hash: no Python source at {target}")
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(base).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def code_identity(parts: Sequence[str] = ("models", "data")) -> dict:
    """What a measurement measured, for its results file: the vidlib version, the git commit (with
    ``-dirty`` when the tree has changes; None outside a git checkout) and :func:`source_hash` of each
    part. The staleness tests compare the hashes with the current source."""
    import subprocess

    from . import __version__

    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return dict(vidlib=__version__, commit=commit, source_hash={p: source_hash(p) for p in parts})


def results_path(name: str, quick: bool | None = None, mode: str | None = None) -> Path:
    """Where a chapter's results live: ``results/<name>.json`` (default mode), ``results/<name>_gpu.json``
    (GPU mode), or ``results/runs/<name>_quick.json`` (quick mode, never committed)."""
    if mode is None:
        mode = "quick" if (is_quick() if quick is None else quick) else "default"
    root = project_root() / "results"
    return {
        "quick": root / "runs" / f"{name}_quick.json",
        "default": root / f"{name}.json",
        "gpu": root / f"{name}_gpu.json",
    }[mode]


def save_results(
    name: str, payload: Mapping[str, Any], quick: bool | None = None, mode: str | None = None
) -> Path:
    """Write ``payload`` as JSON to :func:`results_path` (quick mode never touches the committed file)."""
    path = results_path(name, quick, mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n")
    return path


def load_results(name: str, quick: bool | None = None) -> dict:
    """Read a chapter's results written by :func:`save_results` (``quick=False`` reads the committed one)."""
    path = results_path(name, quick)
    if not path.is_file():
        raise FileNotFoundError(f"no results at {path}: run the chapter {name!r} first")
    return json.loads(path.read_text())


# ----------------------------------------------------------------------------------------- tables
def _cell(value: Any, floatfmt: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else format(value, floatfmt)
    return str(value).replace("|", "\\|").replace("\n", " ")


def table_text(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | Mapping[str, str] | None = None,
    floatfmt: str = ".2f",
) -> str:
    """A Markdown (pipe) table as a string.

    Args:
        rows: one mapping per row.
        columns: the keys to show, in order; a mapping ``{key: header}`` renames them. Default: the
            keys of the first row.
        floatfmt: ``format`` spec for floats (ints and strings are shown as they are; None as "–").

    Columns whose values are all numbers are right-aligned, the others left-aligned.
    """
    if not rows:
        raise ValueError("table_text: no rows")
    if columns is None:
        columns = list(rows[0])
    headers = dict(columns) if isinstance(columns, Mapping) else {c: c for c in columns}
    missing = [k for k in headers if not any(k in r for r in rows)]
    if missing:
        raise KeyError(f"table_text: columns {missing} are in no row; row keys: {list(rows[0])}")
    numeric = {
        k: all(isinstance(r.get(k), (int, float)) or r.get(k) is None for r in rows)
        and any(r.get(k) is not None for r in rows)
        for k in headers
    }
    lines = [
        "| " + " | ".join(headers.values()) + " |",  # text columns left, number columns right
        "|" + "|".join("---:" if numeric[k] else ":---" for k in headers) + "|",
    ]
    lines += ["| " + " | ".join(_cell(r.get(k), floatfmt) for k in headers) + " |" for r in rows]
    return "\n".join(lines)


def markdown_table(rows, columns=None, floatfmt: str = ".2f", caption: str | None = None):
    """:func:`table_text` wrapped in ``IPython.display.Markdown`` so a notebook cell renders it."""
    text = table_text(rows, columns, floatfmt)
    if caption:
        text = f"{text}\n\n*{caption}*"
    from IPython.display import Markdown

    return Markdown(text)


def _fmt_sched(schedule: list[dict], epochs: int) -> str:
    parts = []
    for ph in schedule:
        end = ph.get("end", "end")
        unit = "it" if ph.get("by") == "iter" else "ep"
        if ph["name"] == "multistep":
            parts.append(f"x{ph['gamma']} at epochs {', '.join(map(str, ph['milestones']))}")
        elif ph["name"] == "linear":
            parts.append(f"linear warm-up from x{ph['start_factor']} over epoch {ph['begin']}-{end}")
        else:
            parts.append(
                f"{ph['name']} from epoch {ph['begin']} to {end if end != 'end' else epochs}"
                + ("" if unit == "ep" else " (per iteration)")
            )
    return "; ".join(parts)


def _fmt_sampler(s: dict | None) -> str:
    if not s:
        return "the model's sampling"
    args = ", ".join(f"{k}={v}" for k, v in s.items() if k != "name")
    return f"{s['name']}({args})"


def recipe_rows(name: str, **changes) -> list[dict]:
    """The settings of a recipe that decide a result, as ``[{"setting", "value"}]`` rows.

    ``changes`` (e.g. ``epochs=6``) are shown as ``"8 (this run: 6)"``.
    """
    from .engine.recipes import get_recipe

    r = get_recipe(name)
    opt, data = r["optimizer"], r.get("data", {})
    test = data.get("test") or {}
    rows = [
        ("model", r["model"] + (f" {r['model_kwargs']}" if r.get("model_kwargs") else "")),
        ("data", data.get("dataset", "–")),
        (
            "training clips",
            f"{_fmt_sampler(data.get('sampling'))}; {data.get('train_crop', 'the model cfg')} crop "
            f"to {data.get('crop_size') or 224} px; flip {data.get('flip', 0)}",
        ),
        ("test views", test.get("views", "–")),
        ("batch", f"{r['batch_size']} per GPU x {r.get('gpus', 1)} (lr is for {r['base_batch_size']})"),
        ("epochs", r["epochs"]),
        (
            "optimizer",
            f"{opt['name']} lr {opt['lr']}, weight decay {opt.get('weight_decay', 0)}"
            + (f", momentum {opt['momentum']}" if "momentum" in opt else "")
            + f", groups {opt.get('param_groups', 'default')}",
        ),
        ("schedule", _fmt_sched(r["schedule"], r["epochs"])),
        ("gradient clipping", r.get("clip_grad") or "none"),
        ("initialisation", r.get("pretrained") or "from scratch"),
        ("source", r.get("source", "–")),
    ]
    out = []
    for key, value in rows:
        if key in changes and changes[key] != value:
            value = f"{value} (this run: {changes[key]})"
        out.append(dict(setting=key, value=str(value)))
    return out


def recipe_table(name: str, caption: str | None = None, **changes):
    """:func:`recipe_rows` as a rendered two-column table (a compact view of
    ``vidlib.engine.get_recipe(name)``)."""
    return markdown_table(
        recipe_rows(name, **changes),
        {"setting": "setting", "value": "value"},
        caption=caption or f"recipe `{name}` (python -m vidlib recipes {name})",
    )


def seed_table(
    values: Mapping[tuple[str, int], Mapping[str, float]],
    columns: Mapping[str, str],
    *,
    scale: float = 100.0,
    fmt: str = ".1f",
) -> list[dict]:
    """Rows ``{"model", <column>: "mean ± std", <column>_mean, <column>_min}`` over seeds.

    ``values`` maps ``(model, seed)`` to metrics; ``columns`` maps metric keys to headers. Models keep the
    order in which they first appear.
    """
    models = list(dict.fromkeys(m for m, _ in values))
    rows = []
    for m in models:
        row = {"model": m}
        for k in columns:
            v = [scale * values[key][k] for key in values if key[0] == m]
            row[k] = fmt_mean_std(v, fmt)
            row[k + "_mean"], row[k + "_min"], row[k + "_max"] = statistics.fmean(v), min(v), max(v)
        rows.append(row)
    return rows


def kernel_spread(kernels: Mapping[str, Any], metric: str = "pair_acc", scale: float = 100.0) -> dict:
    """How far a chapter's runs move between CPU kernel settings (``benchmarks/kernel_spread.py``'s file).

    ``metric`` is a key of each run's entry, or a dotted path into it (``"groups.tempo_groups.pair_acc"``).
    Returns ``rows`` (per model: the seed mean of ``metric`` under each setting, the range of those means and
    the largest range of one seed), ``columns`` (headers for :func:`markdown_table`), ``max_mean_range`` and
    ``max_seed_range``.
    """
    settings = kernels["settings"]
    path = metric.split(".")

    def value(run):
        for key in path:
            run = run[key]
        return scale * run

    rows = []
    for m in kernels["models"]:
        row = {"model": m}
        per_seed: dict[int, list[float]] = {}
        for name, s in settings.items():
            vals = [value(r) for r in s["runs"].values() if r["model"] == m]
            row[name] = statistics.fmean(vals)
            for r in s["runs"].values():
                if r["model"] == m:
                    per_seed.setdefault(r["seed"], []).append(value(r))
        means = [row[name] for name in settings]
        row["mean_range"] = max(means) - min(means)
        row["seed_range"] = max(max(v) - min(v) for v in per_seed.values())
        rows.append(row)
    columns = {
        "model": "model",
        **{n: f"{n} ({settings[n]['environment']['cpu_capability']})" for n in settings},
        "mean_range": "range of the means",
        "seed_range": "largest range of one seed",
    }
    return dict(
        rows=rows,
        columns=columns,
        max_mean_range=max(r["mean_range"] for r in rows),
        max_seed_range=max(r["seed_range"] for r in rows),
    )


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    v = [float(x) for x in values]
    if not v:
        raise ValueError("mean_std: no values")
    return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)


def fmt_mean_std(values: Iterable[float], fmt: str = ".1f") -> str:
    """``"71.3 ± 2.0"`` from a list of numbers (seeds)."""
    m, s = mean_std(values)
    return f"{m:{fmt}} ± {s:{fmt}}"


# ----------------------------------------------------------------------------------------- cost
#: ``dataset`` of a published entry -> the ``dataset=`` keyword of the entrypoints with several protocols
#: (``None``: Kinetics-400, every entrypoint's default, so nothing is passed).
DATASET_KEYWORD = {"kinetics400": None, "sthv1": "sthv1", "sthv2": "sthv2"}


def _classes(model) -> int:
    """The size of the model's classifier (its last ``nn.Linear``)."""
    import torch.nn as nn

    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1].out_features


def cost_rows(specs: Sequence[Mapping[str, Any]], *, mmcv: bool = True) -> list[dict]:
    """Live params and GFLOPs next to the published ones.

    Each spec is ``dict(label=..., model=<registered name>, num_frames=T, size=H, published=<key or None>,
    num_classes=..., dataset=...)``; ``num_classes`` defaults to the published entry's, and ``dataset`` (the
    entrypoint's protocol keyword) to the entry's dataset through :data:`DATASET_KEYWORD` (a spec may set
    ``dataset=None`` to pass none, e.g. for a tiny model next to an sthv1 entry). FLOPs are counted by
    :func:`vidlib.flops.count_flops` for one view ``[1, 3, T, size, size]`` in fvcore's convention
    (1 multiply-add = 1 FLOP). The published figure is compared (``flops_ratio`` = live / published)
    only when its ``input_shape`` is the one counted; there, with ``mmcv=True``, the row also gets the
    count in the style of mmcv's counter (``gflops_mmcv``), the tool behind the mmaction2 figures.
    Each row keeps the fvcore :class:`~vidlib.flops.FlopCount` under ``"flop_count"`` (per-module table).
    """
    from . import create_model
    from .flops import count_flops

    rows = []
    for spec in specs:
        pub = published(spec["published"]) if spec.get("published") else None
        kw = {}
        ncls = spec.get("num_classes", pub["num_classes"] if pub else None)
        if ncls is not None:
            kw["num_classes"] = ncls
        dataset = (
            spec["dataset"]
            if "dataset" in spec
            else (DATASET_KEYWORD.get(pub["dataset"], pub["dataset"]) if pub else None)
        )
        if dataset is not None:
            kw["dataset"] = dataset
        t, size = spec["num_frames"], spec["size"]
        model = create_model(spec["model"], num_frames=t, **kw).eval()
        ncls = _classes(model)
        shape = (1, 3, t, size, size)
        fc = count_flops(model, shape)
        row = dict(
            label=spec.get("label", spec["model"]),
            model=spec["model"],
            num_classes=ncls,
            frames=t,
            size=size,
            params_m=num_params(model) / 1e6,
            gflops=fc.gflops,
            gflops_mmcv=None,
            pub_params=None,
            pub_gflops=None,
            params_ratio=None,
            flops_ratio=None,
            pub_input=None,
            flop_count=fc,
        )
        if pub:
            pub_shape = tuple(pub["flops"]["input_shape"])
            row.update(
                pub_params=pub["params"].get("as_printed"), pub_input="×".join(map(str, pub_shape[2:]))
            )
            if pub["params"].get("value"):
                row["params_ratio"] = row["params_m"] / pub["params"]["value"]
            if pub_shape == shape:
                row["pub_gflops"] = pub["flops"]["as_printed"]
                row["flops_ratio"] = fc.gflops / pub["flops"]["value"]
                if mmcv:
                    row["gflops_mmcv"] = count_flops(model, shape, by_module=False, style="mmcv").gflops
        rows.append(row)
    return rows


COST_COLUMNS = {
    "label": "model",
    "frames": "T",
    "size": "H=W",
    "params_m": "params (M)",
    "pub_params": "published params",
    "params_ratio": "ratio",
    "gflops": "GFLOPs/view (fvcore)",
    "gflops_mmcv": "mmcv style",
    "pub_gflops": "published",
    "flops_ratio": "ratio (fvcore)",
    "pub_input": "published at T×H×W",
}


def cost_table(specs: Sequence[Mapping[str, Any]], caption: str | None = None, *, mmcv: bool = True):
    """(rows, Markdown table) for :func:`cost_rows`; ratios = live / published."""
    rows = cost_rows(specs, mmcv=mmcv)
    return rows, markdown_table(rows, COST_COLUMNS, floatfmt=".3f", caption=caption)


def assert_close(live: float, expected: float, rel: float = 0.01, what: str = "value") -> float:
    """Raise ``AssertionError`` unless ``|live / expected - 1| <= rel``; returns the ratio."""
    ratio = live / expected
    if abs(ratio - 1) > rel:
        raise AssertionError(
            f"{what}: live {live:.6g} vs published {expected:.6g} (ratio {ratio:.4f}, tolerance {rel:.1%})"
        )
    return ratio


# ----------------------------------------------------------------------------------------- glue
def glue_all(values: Mapping[str, Any], prefix: str = "", fmt: str | None = None) -> dict:
    """``myst_nb.glue`` every item (name = prefix + key) without displaying it; returns what was glued.

    Floats are formatted with ``fmt`` when given (e.g. ``".1f"``), so the prose shows exactly the
    digits the tables show. Outside a notebook build (no myst_nb) the values are only returned.
    """
    out = {prefix + k: (format(v, fmt) if fmt and isinstance(v, float) else v) for k, v in values.items()}
    try:
        from myst_nb import glue
    except ImportError:  # pragma: no cover - myst_nb comes with jupyter-book
        return out
    for name, v in out.items():
        glue(name, v, display=False)
    return out
