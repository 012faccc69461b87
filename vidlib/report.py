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
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from .utils import is_quick, num_params, project_root

__all__ = [
    "published", "published_path", "results_path", "save_results", "load_results", "table_text",
    "markdown_table", "mean_std", "fmt_mean_std", "cost_rows", "cost_table", "glue_all", "assert_close",
]

#: Fields every entry of ``published.yaml`` carries (``tests/test_report.py`` checks them).
REQUIRED_FIELDS = ("paper", "source", "config", "dataset", "num_classes", "sampling", "num_frames",
                   "test_protocol", "top1", "top5", "flops", "params", "checkpoint", "verified")


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
    """A copy of one entry of ``results/published.yaml`` (a dict), or of the whole ``section`` when ``key`` is None.

    ``section`` may also be ``"papers"`` or ``"sources"``. Raises ``FileNotFoundError`` naming the path
    when the file is missing and ``KeyError`` listing the known keys for an unknown key.
    """
    path = published_path()
    if not path.is_file():
        raise FileNotFoundError(f"published numbers not found at {path} (is VIDLIB_ROOT / the working directory the repo root?)")
    data = _load_yaml(str(path), path.stat().st_mtime)
    if section not in data:
        raise KeyError(f"{path}: no section {section!r}; sections: {', '.join(data)}")
    table = data[section]
    if key is None:
        return copy.deepcopy(table)
    if key not in table:
        raise KeyError(f"{path}: no {section} key {key!r}; known keys: {', '.join(table)}")
    return copy.deepcopy(table[key])  # callers may modify their copy; the cached file data stays intact


def results_path(name: str, quick: bool | None = None) -> Path:
    """Where a chapter's results live: ``results/<name>.json``, or ``results/runs/<name>_quick.json`` in quick mode."""
    quick = is_quick() if quick is None else quick
    root = project_root() / "results"
    return root / "runs" / f"{name}_quick.json" if quick else root / f"{name}.json"


def save_results(name: str, payload: Mapping[str, Any], quick: bool | None = None) -> Path:
    """Write ``payload`` as JSON to :func:`results_path` (quick mode never touches the committed file)."""
    path = results_path(name, quick)
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


def table_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | Mapping[str, str] | None = None,
               floatfmt: str = ".2f") -> str:
    """A Markdown (pipe) table as a string.

    Args:
        rows: one mapping per row.
        columns: the keys to show, in order; a mapping ``{key: header}`` renames them. Default: the
            keys of the first row.
        floatfmt: ``format`` spec for floats (ints and strings are shown as they are; None as "–").
    """
    if not rows:
        raise ValueError("table_text: no rows")
    if columns is None:
        columns = list(rows[0])
    headers = dict(columns) if isinstance(columns, Mapping) else {c: c for c in columns}
    missing = [k for k in headers if not any(k in r for r in rows)]
    if missing:
        raise KeyError(f"table_text: columns {missing} are in no row; row keys: {list(rows[0])}")
    lines = ["| " + " | ".join(headers.values()) + " |",
             "|" + "|".join(":---" if i == 0 else "---:" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(_cell(r.get(k), floatfmt) for k in headers) + " |" for r in rows]
    return "\n".join(lines)


def markdown_table(rows, columns=None, floatfmt: str = ".2f", caption: str | None = None):
    """:func:`table_text` wrapped in ``IPython.display.Markdown`` so a notebook cell renders it."""
    text = table_text(rows, columns, floatfmt)
    if caption:
        text = f"{text}\n\n*{caption}*"
    from IPython.display import Markdown
    return Markdown(text)


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
def cost_rows(specs: Sequence[Mapping[str, Any]], *, mmcv: bool = True) -> list[dict]:
    """Live params and GFLOPs next to the published ones.

    Each spec is ``dict(label=..., model=<registered name>, num_frames=T, size=H, published=<key or None>,
    num_classes=...)``; ``num_classes`` defaults to the published entry's. FLOPs are counted by
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
        ncls = spec.get("num_classes", pub["num_classes"] if pub else 400)
        t, size = spec["num_frames"], spec["size"]
        model = create_model(spec["model"], num_classes=ncls, num_frames=t).eval()
        shape = (1, 3, t, size, size)
        fc = count_flops(model, shape)
        row = dict(label=spec.get("label", spec["model"]), model=spec["model"], num_classes=ncls, frames=t, size=size,
                   params_m=num_params(model) / 1e6, gflops=fc.gflops, gflops_mmcv=None, pub_params=None,
                   pub_gflops=None, params_ratio=None, flops_ratio=None, pub_input=None, flop_count=fc)
        if pub:
            pub_shape = tuple(pub["flops"]["input_shape"])
            row.update(pub_params=pub["params"].get("as_printed"), pub_input="×".join(map(str, pub_shape[2:])))
            if pub["params"].get("value"):
                row["params_ratio"] = row["params_m"] / pub["params"]["value"]
            if pub_shape == shape:
                row["pub_gflops"] = pub["flops"]["as_printed"]
                row["flops_ratio"] = fc.gflops / pub["flops"]["value"]
                if mmcv:
                    row["gflops_mmcv"] = count_flops(model, shape, by_module=False, style="mmcv").gflops
        rows.append(row)
    return rows


COST_COLUMNS = {"label": "model", "frames": "T", "size": "H=W", "params_m": "params (M)", "pub_params": "published params",
                "params_ratio": "ratio", "gflops": "GFLOPs/view (fvcore)", "gflops_mmcv": "mmcv style",
                "pub_gflops": "published", "flops_ratio": "ratio (fvcore)", "pub_input": "published at T×H×W"}


def cost_table(specs: Sequence[Mapping[str, Any]], caption: str | None = None, *, mmcv: bool = True):
    """(rows, Markdown table) for :func:`cost_rows`; ratios = live / published."""
    rows = cost_rows(specs, mmcv=mmcv)
    return rows, markdown_table(rows, COST_COLUMNS, floatfmt=".3f", caption=caption)


def assert_close(live: float, expected: float, rel: float = 0.01, what: str = "value") -> float:
    """Raise ``AssertionError`` unless ``|live / expected - 1| <= rel``; returns the ratio."""
    ratio = live / expected
    if abs(ratio - 1) > rel:
        raise AssertionError(f"{what}: live {live:.6g} vs published {expected:.6g} (ratio {ratio:.4f}, tolerance {rel:.1%})")
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
