"""Summaries of repeated runs: mean and spread over seeds, the spread between CPU kernel settings, and a
relative-tolerance check of a live number against a published one."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["mean_std", "fmt_mean_std", "kernel_spread", "assert_close"]


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


def assert_close(live: float, expected: float, rel: float = 0.01, what: str = "value") -> float:
    """Raise ``AssertionError`` unless ``|live / expected - 1| <= rel``; returns the ratio."""
    ratio = live / expected
    if abs(ratio - 1) > rel:
        raise AssertionError(
            f"{what}: live {live:.6g} vs published {expected:.6g} (ratio {ratio:.4f}, tolerance {rel:.1%})"
        )
    return ratio
