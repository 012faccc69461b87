"""Plots of training runs: curves and confusion matrices (matplotlib; every function returns the figure)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["plot_curves", "plot_confusion"]


def _history(run) -> list[dict]:
    if isinstance(run, Mapping):
        return list(run["history"])
    return list(run)


def plot_curves(runs: Mapping[str, object] | Sequence[dict], *, metrics=("train_loss", "train_top1", "val_top1"),
                title: str | None = None):
    """Training curves, one panel per metric, one line per run.

    Args:
        runs: ``{label: summary_or_history}`` (summaries from :func:`vidlib.engine.train` or their
            ``history`` lists), or a single history list.
        metrics: keys of the history entries to draw against the epoch.
    """
    import matplotlib.pyplot as plt

    if not isinstance(runs, Mapping) or "history" in runs:
        runs = {"run": runs}
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for label, run in runs.items():
            pts = [(h["epoch"], h[metric]) for h in _history(run) if h.get(metric) is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_title(metric.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion(cm, class_names: Sequence[str] | None = None, *, normalize: bool = True,
                   title: str | None = None, ax=None):
    """A confusion matrix (rows = true class, columns = predicted), row-normalised by default."""
    import matplotlib.pyplot as plt

    cm = np.asarray(cm, dtype=np.float64)
    if normalize:
        with np.errstate(invalid="ignore", divide="ignore"):
            cm = np.nan_to_num(cm / cm.sum(axis=1, keepdims=True))
    n = cm.shape[0]
    if ax is None:
        side = max(4.0, 0.28 * n + 2)
        fig, ax = plt.subplots(figsize=(side, side))
    else:
        fig = ax.figure
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    ax.set_xticks(range(n), names, rotation=90, fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig
