"""Classification metrics for video recognition: top-k, mean-class accuracy, confusion matrix.

All functions take NumPy arrays (or anything ``np.asarray`` accepts): ``scores`` ``[N, C]`` (logits or
probabilities; only their order matters) and integer ``labels`` ``[N]``.

Mean-class accuracy follows the usual definition: the mean of the per-class recall over the classes
that occur in ``labels``. mmaction2's ``mean_class_accuracy`` averages over the classes that occur in
the labels *or* the predictions, so a class that is predicted but absent from the labels counts as 0;
``mmaction2_compat=True`` reproduces that (both agree when every class has a sample, e.g. on the full
Kinetics-400 validation list).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "topk_accuracy",
    "confusion_matrix",
    "per_class_accuracy",
    "mean_class_accuracy",
    "classification_report",
    "pair_accuracy",
    "per_pair_accuracy",
]


def _check(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    scores, labels = np.asarray(scores), np.asarray(labels)
    if scores.ndim != 2 or labels.ndim != 1 or len(scores) != len(labels):
        raise ValueError(f"expected scores [N, C] and labels [N], got {scores.shape} and {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ValueError(
            f"labels must lie in [0, {scores.shape[1]}), got range [{labels.min()}, {labels.max()}]"
        )
    return scores, labels.astype(np.int64)


def topk_accuracy(scores, labels, ks=(1, 5)) -> dict[int, float]:
    """Fraction of samples whose label is among the ``k`` highest scores, for each ``k`` in ``ks``.

    ``k`` larger than the number of classes C is clipped to C (then the accuracy is 1).
    """
    scores, labels = _check(scores, labels)
    order = np.argsort(-scores, axis=1, kind="stable")  # [N, C], best first
    hits = order == labels[:, None]  # [N, C]
    if not len(labels):
        return {k: float("nan") for k in ks}
    return {k: float(hits[:, : min(k, scores.shape[1])].any(axis=1).mean()) for k in ks}


def confusion_matrix(preds, labels, num_classes: int) -> np.ndarray:
    """``[num_classes, num_classes]`` counts; row = true class, column = predicted class."""
    preds, labels = np.asarray(preds, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    if preds.shape != labels.shape:
        raise ValueError(f"preds {preds.shape} and labels {labels.shape} differ in shape")
    flat = np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)  # [C_true, C_pred]


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Per-class recall from a confusion matrix; ``nan`` for classes without samples."""
    cm = np.asarray(cm, dtype=np.float64)
    counts = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, np.diag(cm) / counts, np.nan)


def mean_class_accuracy(scores, labels, *, mmaction2_compat: bool = False) -> float:
    """Mean of the per-class accuracies (see the module docstring for ``mmaction2_compat``)."""
    scores, labels = _check(scores, labels)
    preds = scores.argmax(axis=1)
    acc = per_class_accuracy(confusion_matrix(preds, labels, scores.shape[1]))
    if mmaction2_compat:
        used = np.unique(np.concatenate([preds, labels]))
        return float(np.mean(np.nan_to_num(acc[used], nan=0.0)))
    return float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan")


def classification_report(scores, labels, class_names: list[str] | None = None, ks=(1, 5)) -> dict:
    """Everything the engine reports for one evaluation, as JSON-friendly Python types.

    Returns ``top1``, ``top5`` (one key per ``k``), ``mean_class_acc``, ``num_samples``,
    ``per_class`` (list of ``{"class", "name", "support", "accuracy"}``), ``confusion_matrix``
    (list of lists) and ``preds``.
    """
    scores, labels = _check(scores, labels)
    num_classes = scores.shape[1]
    preds = scores.argmax(axis=1)
    cm = confusion_matrix(preds, labels, num_classes)
    acc = per_class_accuracy(cm)
    names = class_names or [str(c) for c in range(num_classes)]
    out = {f"top{k}": v for k, v in topk_accuracy(scores, labels, ks).items()}
    out["mean_class_acc"] = mean_class_accuracy(scores, labels)
    out["num_samples"] = int(len(labels))
    out["per_class"] = [
        {
            "class": c,
            "name": names[c],
            "support": int(cm[c].sum()),
            "accuracy": None if np.isnan(acc[c]) else float(acc[c]),
        }
        for c in range(num_classes)
    ]
    out["confusion_matrix"] = cm.tolist()
    out["preds"] = preds.tolist()
    return out


# --------------------------------------------------------------------------------- reversal pairs
def pair_accuracy(scores, labels, pairs) -> dict:
    """Metrics of a benchmark with **reversal pairs** (a class and the same videos
    played backwards).

    Args:
        scores: ``[N, C]``; labels: ``[N]``; pairs: ``[(a, b), ...]`` class indices,
            ``b`` = ``a`` reversed.

    Returns ``top1`` (all videos), ``top1_pairs`` (top-1 on the videos of paired
    classes), ``pair_acc`` (of the true class and its partner, does the true one score
    higher?) and ``n_pair_videos``. A model that ignores frame order sees the same
    frames for both classes of a pair: its ``pair_acc`` is 0.5.
    """
    scores, labels = _check(scores, labels)
    partner = {a: b for p in pairs for a, b in (tuple(p), tuple(p)[::-1])}
    paired = np.isin(labels, list(partner))
    rows, y = np.flatnonzero(paired), labels[paired]
    other = np.array([partner[int(c)] for c in y], dtype=np.int64)
    if len(rows):
        top1_pairs = float((scores[rows].argmax(1) == y).mean())
        pair_acc = float((scores[rows, y] > scores[rows, other]).mean())
    else:
        top1_pairs = pair_acc = float("nan")
    return dict(
        top1=float((scores.argmax(1) == labels).mean()),
        top1_pairs=top1_pairs,
        pair_acc=pair_acc,
        n_pair_videos=int(paired.sum()),
    )


def per_pair_accuracy(scores, labels, pairs, names=None) -> dict[str, float]:
    """Pair accuracy of each reversal pair, keyed ``"name_a / name_b"`` (``names``: class names or ids)."""
    scores, labels = _check(scores, labels)
    out = {}
    for a, b in pairs:
        rows = np.flatnonzero(np.isin(labels, [a, b]))
        other = np.where(labels[rows] == a, b, a)
        key = f"{names[a]} / {names[b]}" if names is not None else f"{a} / {b}"
        out[key] = (
            float((scores[rows, labels[rows]] > scores[rows, other]).mean()) if len(rows) else float("nan")
        )
    return out
