"""Probes: what a trained module computes, measured for a chapter. They read a model from the library;
the model files keep only the papers' models.

- :func:`temporal_profiles`, :func:`change_share`: CSN's depthwise 3D filters along time;
- :func:`interlace_outputs`: the offsets and weights TIN's interlace modules predict for clips;
- :func:`temporal_attention`: STAM's temporal attention maps.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from vidlib.models.common import check_clip
from vidlib.models.stam import STAM, TemporalAggregate
from vidlib.models.tin import TemporalInterlace
from vidlib.utils import capture_outputs

__all__ = ["temporal_profiles", "change_share", "interlace_outputs", "temporal_attention"]


def temporal_profiles(model: nn.Module) -> dict[str, torch.Tensor]:
    """The temporal profile of every depthwise 3D filter of ``model``: its weights
    summed over space, ``[C, kt]`` per depthwise convolution (module name -> tensor)."""
    return {
        name: m.weight.detach().sum(dim=(-2, -1))[:, 0]  # [C, 1, kt, kh, kw] -> [C, kt]
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv3d) and m.groups == m.in_channels > 1
    }


def change_share(profiles: torch.Tensor) -> torch.Tensor:
    """Per filter (row of ``[C, kt]`` profiles), the share of its energy that is not a
    plain average over frames, ``1 - (sum_t w_t)^2 / (kt sum_t w_t^2)``: 0 for a filter
    that averages its kt frames (a temporal low-pass), 1 for one whose taps sum to zero
    (it responds only to change). Independent random taps give (kt - 1) / kt on average.
    """
    kt = profiles.shape[1]
    return 1 - profiles.sum(1) ** 2 / (kt * (profiles**2).sum(1)).clamp_min(1e-30)


@torch.no_grad()
def interlace_outputs(model: nn.Module, clips: torch.Tensor) -> dict[str, tuple]:
    """What every interlace module of ``model`` predicts for ``clips``
    ``[V, 3, T, H, W]``: ``{module name: (offsets [V, 2], weights [V, T, 2])}``, in
    network order."""
    nets = {
        n.removeprefix("backbone."): m for n, m in model.named_modules() if isinstance(m, TemporalInterlace)
    }
    subnets = {f"{n}/o": m.offset_net for n, m in nets.items()}
    subnets |= {f"{n}/w": m.weight_net for n, m in nets.items()}
    with capture_outputs(subnets) as seen:
        model(clips)
    return {n: (seen[f"{n}/o"][0].output, seen[f"{n}/w"][0].output) for n in nets}


@torch.no_grad()
def temporal_attention(model: STAM, x: torch.Tensor) -> torch.Tensor:
    """The attention weights of every temporal layer of ``model`` on clips ``x``.

    ``x``: ``[B, 3, T, H, W]`` as the model takes it. Returns ``[layers, B, heads, T+1,
    T+1]``; index 0 of the last two axes is the video CLS token, 1..T the frames in
    the clip's order, and row 0 is what the video CLS attends to. The layers run in
    eval mode (no dropout), exactly as in :meth:`STAM.forward`.
    """
    agg = model.aggregate
    if not isinstance(agg, TemporalAggregate):
        raise TypeError(f"{type(agg).__name__} has no attention weights")
    check_clip(x, "STAM", num_frames=model.num_frames, size=model.img_size)
    was_training = model.training
    model.eval()
    B, C, T, H, W = x.shape
    feats = model.forward_frames(x.transpose(1, 2).reshape(B * T, C, H, W))
    # [T+1, B, D]: the video CLS + temporal position embedding, sequence-first
    s = (torch.cat((agg.cls_token.expand(B, -1, -1), feats.view(B, T, -1)), dim=1)
         + agg.pos_embed).transpose(0, 1)  # fmt: skip
    maps = []
    for layer in agg.transformer_enc.layers:  # post-norm: attention sees the input
        maps.append(layer.self_attn(s, s, s, average_attn_weights=False)[1])
        s = layer(s)  # [T+1, B, D]
    model.train(was_training)
    return torch.stack(maps)  # [layers, B, heads, T+1, T+1]
