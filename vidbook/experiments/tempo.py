"""Playback speed through the sampler: the same validation videos, shown faster or slower.

A sampler spec with ``playback_speed`` (:class:`vidlib.data.PlaybackSpeed`) multiplies the sampling
interval of every view by the speed around the view's centre: TSN segments closer together (slow motion,
``speed < 1``) or further apart (``speed > 1``, the video holding its first and last frame where the
positions leave it), a dense clip's ``frame_interval`` likewise. The TPN chapter uses it to ask how a
model trained at one tempo copes with others, without new videos (:func:`evaluate_speeds`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch.nn as nn

from vidlib.engine.evaluation import evaluate_recipe
from vidlib.engine.metrics import pair_accuracy, topk_accuracy
from vidlib.engine.recipes import recipe_data

__all__ = ["speed_sampling", "evaluate_speeds", "tempo_metrics"]


def speed_sampling(sampling: dict, speed: float) -> dict:
    """The sampler spec ``sampling`` played ``speed`` times as fast (speeds compose: a spec that already
    has a ``playback_speed`` gets the product)."""
    if not isinstance(sampling, dict) or "name" not in sampling:
        raise ValueError(f"a sampler spec is a dict with a 'name' key, got {sampling!r}")
    if not speed > 0:
        raise ValueError(f"playback speed must be > 0, got {speed!r}")
    total = sampling.get("playback_speed", 1.0) * speed
    out = {k: v for k, v in sampling.items() if k != "playback_speed"}
    return out if total == 1.0 else dict(out, playback_speed=total)


def evaluate_speeds(
    model: nn.Module,
    root: str | os.PathLike,
    recipe: dict,
    speeds: Sequence[float],
    *,
    frame_cache=None,
    batch_size: int = 16,
    device=None,
) -> dict[float, dict]:
    """Evaluate ``model`` on ``root``'s validation split once per playback speed.

    The data are prepared as ``recipe`` prepares them for validation (its data overrides on the model's
    cfg: one view, centre crop); only the sampler changes (:func:`speed_sampling`). Returns
    ``{speed: report}`` with :func:`~vidlib.engine.evaluate`'s reports (``scores``, ``labels``,
    ``top1`` ...). ``device``: default, the model's.
    """
    base = recipe_data(recipe)[0].get("sampling") or model.default_cfg["sampling"]
    return {
        speed: evaluate_recipe(
            model,
            root,
            recipe,
            sampling=speed_sampling(base, speed),
            frame_cache=frame_cache,
            batch_size=batch_size,
            device=device,
        )
        for speed in speeds
    }


def tempo_metrics(scores, labels, tempo_groups) -> dict:
    """Two numbers for a model shown videos at another speed.

    ``top1_other``: top-1 over the videos whose class is in no tempo group (their
    label does not depend on speed); ``tempo_acc``: within-pair accuracy on the tempo
    groups (does the true class of the pair score higher than its partner?
    :func:`~vidlib.engine.metrics.pair_accuracy`).
    """
    scores, labels = np.asarray(scores), np.asarray(labels)
    keep = ~np.isin(labels, [c for g in tempo_groups for c in g])  # speed-free classes
    return dict(
        top1_other=topk_accuracy(scores[keep], labels[keep], ks=(1,))[1],
        tempo_acc=pair_accuracy(scores, labels, tempo_groups)["pair_acc"],
    )
