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

from ..data import average_views, build_dataset, forward_views
from .distributed import DistInfo, ShardSampler, gather_by_index
from .metrics import classification_report

__all__ = ["evaluate", "predict", "autocast_context"]


def autocast_context(device: torch.device, amp: str | None):
    """``torch.autocast`` for ``amp`` in {"bf16", "fp16"}; a no-op context for ``None``/``"off"``."""
    if amp in (None, "off"):
        return contextlib.nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def predict(model: nn.Module, loader, *, device: torch.device, average: str = "prob", amp: str | None = None,
            max_views: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Averaged scores ``[N, C]`` (float64), labels ``[N]`` and per-video CE losses (single-view data only).

    With ``average="prob"`` the scores are probabilities, with ``"score"`` mean logits. The losses are
    ``None`` when a sample has several views (the test protocol) or an unreadable video (label -1).
    """
    model.eval()
    scores, labels, losses = [], [], []
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
    if not scores:
        raise ValueError("predict: the loader yielded no batch (empty dataset?)")
    losses = torch.cat(losses).numpy() if losses is not None else None
    return torch.cat(scores).numpy(), torch.cat(labels).numpy().astype(np.int64), losses


def _as_loader(data, *, split, mode, model_cfg, batch_size, num_workers, info: DistInfo, dataset_kw) -> DataLoader:
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, (str, Path)):
        if model_cfg is None:
            raise ValueError("evaluate(data=<path>) needs the model cfg (model.default_cfg)")
        data = build_dataset(data, split, model_cfg, mode, **(dataset_kw or {}))
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a dataset folder, a Dataset or a DataLoader, got {type(data).__name__}")
    return DataLoader(data, batch_size=batch_size, sampler=ShardSampler(len(data), info), num_workers=num_workers,
                      pin_memory=torch.cuda.is_available(), generator=torch.Generator().manual_seed(0))


def evaluate(model: nn.Module, data, *, split: str = "val", mode: str = "test", batch_size: int = 4,
             num_workers: int = 0, device: torch.device | str | None = None, average_clips: str | None = None,
             class_names: list[str] | None = None, amp: str | None = None, max_views: int = 8,
             info: DistInfo | None = None, dataset_kw: dict | None = None) -> dict:
    """Evaluate ``model`` on a dataset folder, a ``Dataset`` or a ``DataLoader``.

    Args:
        data: a dataset folder (``<data>/<split>.txt``, built with ``model.default_cfg`` for ``mode``), a
            ``Dataset`` yielding ``(clip, label)`` or a ``DataLoader``.
        mode: ``"test"`` (the model's test protocol: all views) or ``"val"`` (one centre view per sampler clip).
        average_clips: ``"prob"`` or ``"score"``; default: the model cfg's ``average_clips`` (``"prob"``).
        class_names: for the per-class table; default: the dataset's label map.
        info: the distributed setting (default: single process).
        dataset_kw: for a dataset folder, keyword arguments of :func:`vidlib.data.build_dataset` (cfg
            overrides such as ``crop_size=64``, ``backend``, ``on_error``).

    Returns a dict with ``top1``, ``top5``, ``mean_class_acc``, ``num_samples``, ``per_class``,
    ``confusion_matrix``, ``preds``, ``labels`` (lists) and ``scores`` (NumPy ``[N, C]``), ``loss`` (CE of
    single-view data, else ``None``), ``average_clips`` and ``num_unreadable`` (videos that could not be
    decoded with ``on_error="skip"``; they are excluded from the metrics and reported, never dropped silently).
    """
    from ..utils import get_device

    device = torch.device(device) if device is not None else get_device()
    cfg = getattr(model, "default_cfg", None)
    average = average_clips or (cfg or {}).get("average_clips", "prob")
    loader = _as_loader(data, split=split, mode=mode, model_cfg=cfg, batch_size=batch_size, num_workers=num_workers,
                        info=info or DistInfo(), dataset_kw=dataset_kw)
    scores, labels, losses = predict(model, loader, device=device, average=average, amp=amp, max_views=max_views)
    if isinstance(loader.sampler, ShardSampler):
        per_rank = losses if losses is not None else [None] * len(labels)
        rows = gather_by_index(loader.sampler.indices, list(zip(scores, labels, per_rank)))
        scores, labels = np.stack([r[0] for r in rows]), np.array([r[1] for r in rows], dtype=np.int64)
        losses = None if any(r[2] is None for r in rows) else np.array([r[2] for r in rows])
    loss = float(losses.mean()) if losses is not None else None
    ok = labels >= 0
    if not ok.all():
        warnings.warn(f"evaluate: {int((~ok).sum())} of {len(labels)} videos could not be read; they are excluded "
                      "from the metrics (see 'num_unreadable')")
    names = class_names or getattr(loader.dataset, "classes", None)
    report = classification_report(scores[ok], labels[ok], names)
    report.update(preds=scores.argmax(axis=1).tolist(), labels=labels.tolist(), scores=scores, loss=loss,
                  average_clips=average,
                  num_unreadable=int((~ok).sum()), mode=mode)
    return report
