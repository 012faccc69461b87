"""The book's tables, generated from data: Markdown tables, recipes, seeds, and costs next to the published
ones; and :func:`glue_all`, which hands numbers to the prose (every number in the prose is glued)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from vidlib.utils import num_params

from .results import published
from .stats import fmt_mean_std

__all__ = [
    "table_text",
    "markdown_table",
    "recipe_rows",
    "recipe_table",
    "seed_table",
    "cost_rows",
    "cost_table",
    "COST_COLUMNS",
    "DATASET_KEYWORD",
    "glue_all",
]


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
    from vidlib.engine.recipes import get_recipe

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
    from vidlib import create_model
    from vidlib.flops import count_flops

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
