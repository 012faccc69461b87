"""Plots of training runs: curves and confusion matrices (matplotlib; every function returns the figure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["plot_curves", "plot_confusion", "plot_seed_curves", "plot_confusions"]


def _history(run) -> list[dict]:
    if isinstance(run, Mapping):
        return list(run["history"])
    return list(run)


def plot_curves(
    runs: Mapping[str, object] | Sequence[dict],
    *,
    metrics=("train_loss", "train_top1", "val_top1"),
    title: str | None = None,
):
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


def plot_confusion(
    cm, class_names: Sequence[str] | None = None, *, normalize: bool = True, title: str | None = None, ax=None
):
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


def plot_seed_curves(
    runs: Mapping[str, Sequence], metrics=(("train_loss", "training loss"), ("val_top1", "validation top-1"))
):
    """Mean over seeds of each model's curves: ``runs`` is
    ``{model: [history of seed 0, history of seed 1, ...]}``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.5), squeeze=False)
    for ax, (key, title) in zip(axes[0], metrics):
        for model, histories in runs.items():
            epochs = [h["epoch"] for h in histories[0] if h.get(key) is not None]
            values = np.mean([[h[key] for h in hist if h.get(key) is not None] for hist in histories], axis=0)
            ax.plot(epochs, values, "o-", label=model)
        ax.set(title=title, xlabel="epoch")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_confusions(cms: Mapping[str, object], class_names: Sequence[str] | None = None):
    """Several row-normalised confusion matrices side by side, ``{title: matrix}``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(cms), figsize=(5 * len(cms), 4.8), squeeze=False)
    for ax, (title, cm) in zip(axes[0], cms.items()):
        cm = np.asarray(cm, dtype=np.float64)
        ax.imshow(cm / cm.sum(1, keepdims=True).clip(min=1), cmap="Blues", vmin=0, vmax=1)
        names = list(class_names) if class_names is not None else [str(i) for i in range(len(cm))]
        ax.set(title=title, xlabel="predicted", ylabel="true")
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
        ax.set_yticks(range(len(names)), names, fontsize=6)
    fig.tight_layout()
    return fig
