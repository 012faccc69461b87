"""Pre-training a frame encoder on images: what an image-pretrained backbone gives a video model.

STAM initialises its spatial ViT from ImageNet-21k weights; the book's tiny STAMs have no such weights,
and from scratch their frame encoder learns only slowly where things are (the STAM chapter measures it).
:func:`pretrain_frame_encoder` gives them the analogue on Something-Synthetic's world: single frames
rendered by :func:`vidlib.data.synthetic.render_frames`, and a regression of the main object's state in
each frame (position, size, opacity, rotation, mouth). Only the frame encoder (``forward_frames``) and a
temporary linear head are trained; the encoder's weights come back in the layout
:func:`vidlib.models.vit.init_spatial_from_vit` loads (``vit_init=`` of the STAM entrypoints).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vidlib.models.vit import SPATIAL_KEYS
from vidlib.utils import seed_everything

__all__ = ["FramePretraining", "FramePretrainConfig", "pretrain_frame_encoder", "pretrain_to_file"]


@dataclass
class FramePretraining:
    """What :func:`pretrain_frame_encoder` returns.

    ``state_dict``: the encoder's weights (the :data:`~vidlib.models.vit.SPATIAL_KEYS` of the model);
    ``history``: per epoch, the training loss and the held-out R^2 of every state (``r2``, a dict) and
    their mean (``r2_mean``); ``minutes``: wall time.
    """

    state_dict: dict
    history: list[dict] = field(default_factory=list)
    minutes: float = 0.0
    config: dict = field(default_factory=dict)


def _to_input(frames: np.ndarray, size: int) -> torch.Tensor:
    """uint8 ``[N, S, S, 3]`` -> float ``[N, 3, size, size]`` in [0, 1] (antialiased resize)."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255)  # [N, 3, S, S]
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x


def _r2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Coefficient of determination per column: 1 - SSE / SST (targets standardised)."""
    sst = ((target - target.mean(0)) ** 2).sum(0).clamp_min(1e-12)
    return 1 - ((pred - target) ** 2).sum(0) / sst


def pretrain_frame_encoder(
    model: nn.Module,
    frames: np.ndarray,
    states: np.ndarray,
    *,
    names=None,
    epochs: int = 4,
    lr: float = 2e-3,
    weight_decay: float = 0.05,
    batch_size: int = 128,
    held_out: float = 0.1,
    seed: int = 0,
) -> FramePretraining:
    """Train ``model.forward_frames`` (+ a linear head) to regress ``states`` from
    ``frames``.

    Args:
        model: a frame-wise video model (STAM): ``forward_frames([N, 3, H, W]) ->
            [N, D]``, ``img_size``. Trained in place; only its spatial keys return.
        frames: uint8 ``[N, S, S, 3]`` (resized to ``model.img_size``).
        states: ``[N, k]`` targets, standardised per column here.
        names: the ``k`` state names for the R^2 report (default ``s0..``).
        epochs, lr, weight_decay, batch_size: AdamW, a one-epoch linear warm-up,
            then a cosine decay to 0.
        held_out: the fraction of frames kept out of training to measure R^2 (the
            last ones).
        seed: the head's initialisation and the data order.
    """
    import time

    t0 = time.time()
    seed_everything(seed)
    x = _to_input(frames, model.img_size)  # [N, 3, H, W] in [0, 1]
    y = torch.as_tensor(states, dtype=torch.float32)
    y = (y - y.mean(0)) / y.std(0).clamp_min(1e-6)  # [N, k], standardised
    names = list(names or [f"s{i}" for i in range(y.shape[1])])
    n_val = max(1, int(round(held_out * len(x))))
    x_tr, y_tr, x_val, y_val = x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]
    head = nn.Linear(model.forward_frames(x[:1]).shape[-1], y.shape[1])
    params = [p for p in model.parameters() if p.requires_grad]
    params += list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    per_epoch = math.ceil(len(x_tr) / batch_size)
    decay = max(1, (epochs - 1) * per_epoch)

    def factor(step: int) -> float:  # warm-up for one epoch, then cosine to 0
        if step < per_epoch:
            return (step + 1) / per_epoch
        return 0.5 * (1 + math.cos(math.pi * (step - per_epoch) / decay))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    gen = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(1, epochs + 1):
        model.train(), head.train()
        losses = []
        for idx in torch.randperm(len(x_tr), generator=gen).split(batch_size):
            pred = head(model.forward_frames(x_tr[idx]))
            loss = F.mse_loss(pred, y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        model.eval(), head.eval()
        with torch.no_grad():
            pred = torch.cat([head(model.forward_frames(b)) for b in x_val.split(256)])
        r2 = _r2(pred, y_val)
        history.append(
            dict(
                epoch=epoch,
                loss=float(np.mean(losses)),
                r2_mean=float(r2.mean()),
                r2=dict(zip(names, map(float, r2))),
            )
        )
    state = model.state_dict()
    keep = [k for k in state if k.startswith(SPATIAL_KEYS)]  # the frame encoder
    spatial = {k: state[k].detach().clone() for k in keep}
    return FramePretraining(spatial, history, (time.time() - t0) / 60)


@dataclass(frozen=True)
class FramePretrainConfig:
    """The frame-encoder pre-training of the STAM chapter (calibrated there; the recipe
    ``synthetic_stam_tiny`` records it): rendered clips, frames kept per clip, and the optimisation."""

    num_clips: int = 960
    frames_per_clip: int = 8
    size: int = 64
    epochs: int = 20
    lr: float = 2e-3
    weight_decay: float = 0.05
    batch_size: int = 128
    seed: int = 0


def pretrain_to_file(
    path, model: str = "stam_tiny", cfg: FramePretrainConfig = FramePretrainConfig(), **model_kw
) -> FramePretraining:
    """Render the frames (:func:`vidlib.data.synthetic.render_frames`), build ``model`` (a registered
    frame-wise model, seeded with ``cfg.seed``), pre-train its frame encoder on them
    (:func:`pretrain_frame_encoder`) and write the encoder's weights to ``path`` atomically (a torch file
    that ``vit_init=`` loads). The same ``cfg`` gives the same weights on the same machine.

    Returns the :class:`FramePretraining`, with ``config`` (``cfg`` and the model) filled in.
    """
    import time

    from vidlib import create_model
    from vidlib.data.synthetic import STATE_NAMES, render_frames

    t0 = time.time()
    frames, states, _ = render_frames(
        cfg.num_clips, seed=cfg.seed, size=cfg.size, frames_per_clip=cfg.frames_per_clip
    )
    seed_everything(cfg.seed)
    net = create_model(model, **model_kw)
    result = pretrain_frame_encoder(
        net,
        frames,
        states,
        names=STATE_NAMES,
        epochs=cfg.epochs,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(result.state_dict, tmp)
    os.replace(tmp, path)  # atomic: a killed run leaves no half-written file
    result.minutes = (time.time() - t0) / 60
    result.config = dict(asdict(cfg), model=model, model_kw=model_kw)
    return result
