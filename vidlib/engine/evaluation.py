"""Evaluation with the multi-view test protocol (clips x crops) and ``prob`` / ``score`` averaging.

:func:`evaluate` runs a model over a dataset and returns top-1, top-5, mean-class accuracy, the
per-class table, the confusion matrix and the per-video predictions. In test mode each sample is
``[V, 3, T, H, W]``; the ``V`` views (mmaction2 order: crop-major, then clips) go through the model at
most ``max_views`` at a time (:func:`vidlib.data.forward_views`) and are averaged by
:func:`vidlib.data.average_views` (``"prob"``: softmax, then mean; ``"score"``: mean of logits).

Under ``torchrun`` every rank evaluates its own shard (:class:`~vidlib.engine.distributed.ShardSampler`,
no padding duplicates) and the results are gathered in dataset order.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..data import DataWarning, average_views, build_dataset, forward_views
from ..errors import BadConfigError
from .distributed import DistInfo, ShardSampler, gather_by_index
from .metrics import classification_report
from .recipes import recipe_data
from .runlog import Progress

__all__ = [
    "evaluate",
    "evaluate_recipe",
    "predict",
    "amp_mode",
    "autocast_context",
    "check_classes",
    "data_problems",
]


def amp_mode(amp: str | None, device: torch.device) -> str | None:
    """The autocast dtype name for ``amp`` ("auto", "off", "bf16", "fp16") on ``device``; None = off."""
    if amp in (None, "auto"):
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return None
    if amp not in ("off", "bf16", "fp16"):
        raise BadConfigError(f"amp must be 'auto', 'off', 'bf16' or 'fp16', got {amp!r}")
    return None if amp == "off" else amp


def autocast_context(device: torch.device, amp: str | None):
    """``torch.autocast`` for ``amp`` in {"bf16", "fp16"}; a no-op context for ``None``/``"off"``."""
    if amp in (None, "off"):
        return contextlib.nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return torch.autocast(device_type=device.type, dtype=dtype)


def check_classes(model: nn.Module, classes: list[str], root: Path, what: str = "the model") -> None:
    """Raise :class:`~vidlib.errors.BadConfigError` unless ``model``'s classifier has one output per class
    of ``root/label_map.txt``."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    n_model = getattr(model, "num_classes", None) or (last[-1].out_features if last else None)
    if n_model is not None and len(classes) != n_model:
        raise BadConfigError(f"{what} has {n_model} classes, {root / 'label_map.txt'} has {len(classes)}")


@torch.no_grad()
def predict(
    model: nn.Module,
    loader,
    *,
    device: torch.device,
    average: str = "prob",
    amp: str | None = None,
    max_views: int = 8,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Averaged scores ``[N, C]`` (float64), labels ``[N]`` and per-video CE losses (single-view data only).

    With ``average="prob"`` the scores are probabilities, with ``"score"`` mean logits. The losses are
    ``None`` when a sample has several views (the test protocol) or an unreadable video (label -1).
    ``progress``: a tqdm bar (default: when stderr is a terminal).
    """
    model.eval()
    scores, labels, losses = [], [], []
    bar = Progress(len(loader), "evaluate", bar=progress, interval=0)
    for clips, y in loader:
        clips = clips.to(device, non_blocking=True)
        with autocast_context(device, amp):
            views = forward_views(model, clips, max_views=max_views).float()  # [B, V, C]
        y = torch.as_tensor(y)
        if losses is not None and views.shape[1] == 1 and (y >= 0).all():
            losses.append(F.cross_entropy(views[:, 0], y.to(device), reduction="none").double().cpu())
        else:
            losses = None
        scores.append(average_views(views, average).double().cpu())  # [B, C]
        labels.append(y.cpu())
        bar.update()
    bar.close()
    if not scores:
        raise ValueError("predict: the loader yielded no batch (empty dataset?)")
    losses = torch.cat(losses).numpy() if losses is not None else None
    return torch.cat(scores).numpy(), torch.cat(labels).numpy().astype(np.int64), losses


def _as_loader(
    data, *, split, mode, model_cfg, batch_size, num_workers, info: DistInfo, dataset_kw
) -> DataLoader:
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, (str, Path)):
        if model_cfg is None:
            raise ValueError("evaluate(data=<path>) needs the model cfg (model.default_cfg)")
        data = build_dataset(data, split, model_cfg, mode, **(dataset_kw or {}))
    if not isinstance(data, Dataset):
        raise TypeError(
            f"data must be a dataset folder, a Dataset or a DataLoader, got {type(data).__name__}"
        )
    return DataLoader(
        data,
        batch_size=batch_size,
        sampler=ShardSampler(len(data), info),
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available(),
        generator=torch.Generator().manual_seed(0),
    )


def evaluate(
    model: nn.Module,
    data,
    *,
    split: str = "val",
    mode: str = "test",
    batch_size: int = 4,
    num_workers: int = 0,
    device: torch.device | str | None = None,
    average_clips: str | None = None,
    class_names: list[str] | None = None,
    amp: str | None = None,
    max_views: int = 8,
    info: DistInfo | None = None,
    dataset_kw: dict | None = None,
    progress: bool | None = None,
) -> dict:
    """Evaluate ``model`` on a dataset folder, a ``Dataset`` or a ``DataLoader``.

    Args:
        data: a dataset folder (``<data>/<split>.txt``, built with ``model.default_cfg`` for ``mode``), a
            ``Dataset`` yielding ``(clip, label)`` or a ``DataLoader``.
        mode: ``"test"`` (the model's test protocol: all views) or ``"val"`` (one centre view per sampler
            clip).
        average_clips: ``"prob"`` or ``"score"``; default: the model cfg's ``average_clips`` (``"prob"``).
        class_names: for the per-class table; default: the dataset's label map.
        info: the distributed setting (default: single process).
        dataset_kw: for a dataset folder, keyword arguments of :func:`vidlib.data.build_dataset` (cfg
            overrides such as ``crop_size=64``, ``backend``, ``on_error``).
        progress: a tqdm bar (default: when stderr is a terminal).

    Returns a dict with ``top1``, ``top5``, ``mean_class_acc``, ``num_samples``, ``per_class``,
    ``confusion_matrix``, ``preds``, ``labels`` (lists) and ``scores`` (NumPy ``[N, C]``), ``loss`` (CE of
    single-view data, else ``None``), ``average_clips``, and what could not be evaluated, never dropped
    silently: ``unreadable`` (videos that failed to decode with ``on_error="skip"``; excluded from the
    metrics) and ``missing`` (listed but absent when the dataset was built), with ``num_unreadable`` and
    ``num_missing``.
    """
    from ..utils import get_device

    device = torch.device(device) if device is not None else get_device()
    cfg = getattr(model, "default_cfg", None)
    average = average_clips or (cfg or {}).get("average_clips", "prob")
    loader = _as_loader(
        data,
        split=split,
        mode=mode,
        model_cfg=cfg,
        batch_size=batch_size,
        num_workers=num_workers,
        info=info or DistInfo(),
        dataset_kw=dataset_kw,
    )
    scores, labels, losses = predict(
        model, loader, device=device, average=average, amp=amp, max_views=max_views, progress=progress
    )
    if isinstance(loader.sampler, ShardSampler):
        per_rank = losses if losses is not None else [None] * len(labels)
        rows = gather_by_index(loader.sampler.indices, list(zip(scores, labels, per_rank)))
        scores, labels = np.stack([r[0] for r in rows]), np.array([r[1] for r in rows], dtype=np.int64)
        losses = None if any(r[2] is None for r in rows) else np.array([r[2] for r in rows])
    loss = float(losses.mean()) if losses is not None else None
    ok = labels >= 0
    unreadable = _unreadable(loader, ~ok)
    if unreadable:
        warnings.warn(
            f"evaluate: {len(unreadable)} of {len(labels)} videos could not be read; they are excluded "
            f"from the metrics (report['unreadable']: {unreadable[:3]}...)",
            DataWarning,
            stacklevel=1,
        )
    names = class_names or getattr(loader.dataset, "classes", None)
    report = classification_report(scores[ok], labels[ok], names)
    missing = list(getattr(loader.dataset, "missing", []))
    report.update(
        preds=scores.argmax(axis=1).tolist(),
        labels=labels.tolist(),
        scores=scores,
        loss=loss,
        average_clips=average,
        mode=mode,
        unreadable=unreadable,
        num_unreadable=len(unreadable),
        missing=missing,
        num_missing=len(missing),
    )
    return report


def evaluate_recipe(
    model: nn.Module,
    root,
    recipe: dict,
    *,
    split: str = "val",
    sampling: dict | None = None,
    frame_cache=None,
    batch_size: int = 16,
    device=None,
) -> dict:
    """Evaluate ``model`` on one split of a dataset folder, the videos prepared as
    ``recipe`` prepares them for validation (its data overrides on the model's cfg; one
    view, centre crop, no augmentation).

    ``split="train"`` measures how well a trained model fits its own training videos,
    without the random crops and flips it was trained on. ``sampling``: another sampler
    spec (default: the recipe's, else the model's). ``device``: default, the model's.
    Returns :func:`evaluate`'s report.
    """
    over, files = recipe_data(recipe)
    kw = dict(over, **files, frame_cache=frame_cache)
    if sampling is not None:
        kw["sampling"] = sampling
    if device is None:  # where the model is (a worker's run comes back on the CPU)
        device = next(model.parameters()).device
    return evaluate(
        model,
        root,
        split=split,
        mode="val",
        batch_size=batch_size,
        device=device,
        dataset_kw=kw,
        progress=False,
    )


def _unreadable(loader, failed: np.ndarray) -> list[str]:
    """The videos behind the label -1 rows (in dataset order): their paths when the dataset lists records."""
    rows = np.flatnonzero(failed).tolist()
    records = getattr(loader.dataset, "records", None)
    if records is not None and isinstance(loader.sampler, ShardSampler):  # rows are dataset indices
        prefix = Path(getattr(loader.dataset, "data_prefix", "."))
        return [str(prefix / records[i].path) for i in rows]
    return [f"sample {i}" for i in rows]


def data_problems(report: dict) -> str:
    """``"2 unreadable, 1 missing"`` for an evaluation report (or a summary), ``""`` when nothing was lost."""
    parts = [
        f"{report.get(f'num_{k}', 0)} {k}" for k in ("unreadable", "missing") if report.get(f"num_{k}", 0)
    ]
    return ", ".join(parts)
