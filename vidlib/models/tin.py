"""TIN: Temporal Interlacing Network (Shao, Qian, Liu; AAAI 2020, arXiv 2001.06499).

TIN replaces TSM's fixed +-1 shift by a *learned, fractional* shift. In every bottleneck, before the
first 1x1 convolution, the first C' = C / shift_div channels of the block input are split into 4
groups; a tiny OffsetNet predicts two offsets (o1, o2) in (-2, 2) per video, the groups move by
(o1, o2, -o1, -o2) frames with linear interpolation between the two neighbouring integer shifts,
and a WeightNet rescales each frame of each group by a factor in (0, 2):

    Z_g[t] = (1 - f) * X_g[t - floor(o_g)] + f * X_g[t - floor(o_g) - 1],  f = o_g - floor(o_g)

(zero outside [0, T), the semantics of mmcv's ``tin_shift`` CUDA kernel). The integer shifts carry
no gradient; the offsets learn through f. Here the shift is pure PyTorch (one row gather for both
integer shifts), so TIN runs on any device.

Keys follow mmaction2's ``ResNetTIN``: ``layerX.Y.conv1.conv.net1.{offset_net,weight_net}.*`` and the
wrapped 1x1 convolution ``layerX.Y.conv1.conv.net2.weight``.

Explained in: chapter "TIN".
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ._registry import make_cfg, register_model
from .resnet2d import TINY, ResNet2d, Recognizer2D, build_recognizer, seg_sampling, tiny_cfg

__all__ = ["tin_shift", "linear_sampler", "OffsetNet", "WeightNet", "TemporalInterlace", "CombineNet",
           "tin_backbone", "tin_r50", "tin_tiny"]

_TIN = "https://download.openmmlab.com/mmaction/v1.0/recognition/tin/"
URLS = {
    "tin_r50_sthv1": _TIN + "tin_imagenet-pretrained-r50_8xb6-1x1x8-40e_sthv1-rgb/"
    "tin_imagenet-pretrained-r50_8xb6-1x1x8-40e_sthv1-rgb_20220913-9b7804d6.pth",
    "tin_r50_k400": _TIN + "tin_kinetics400-pretrained-tsm-r50_1x1x8-50e_kinetics400-rgb/"
    "tin_kinetics400-pretrained-tsm-r50_1x1x8-50e_kinetics400-rgb_20220913-7f10d0c0.pth",
}


def tin_shift(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Integer temporal shift per channel group: ``out[n, t, c] = x[n, t - shift[n, g(c)], c]``, 0 outside [0, T).

    Args:
        x: ``[N, T, C, HW]``.
        shift: integer ``[N, G]``; channel c belongs to group ``g(c) = c // (C / G)``.
    """
    n, t, c, _ = x.shape
    if shift.ndim != 2 or shift.shape[0] != n or c % shift.shape[1]:
        raise ValueError(f"tin_shift: shift must be [N={n}, G] with G dividing C={c}, got {tuple(shift.shape)}")
    shift_c = shift.long().repeat_interleave(c // shift.shape[1], dim=1)  # [N, C]
    src = torch.arange(t, device=x.device)[None, :, None] - shift_c[:, None, :]  # [N, T, C] source frame
    valid = ((src >= 0) & (src < t)).unsqueeze(-1)  # [N, T, C, 1]
    rows = torch.arange(n, device=x.device)[:, None, None]  # [N, 1, 1]
    cols = torch.arange(c, device=x.device)[None, None, :]  # [1, 1, C]
    return x[rows, src.clamp(0, t - 1), cols] * valid  # [N, T, C, HW]


def linear_sampler(x: torch.Tensor, offset: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """Fractional temporal shift by linear interpolation of two integer shifts (differentiable in ``offset``).

    ``out[t] = (1 - f) * x[t - o0] + f * x[t - o0 - 1]`` per video and channel group, with
    ``o0 = floor(offset)``, ``f = offset - o0`` and zeros outside [0, T) (= ``tin_shift`` by o0 and o0 + 1).

    Args:
        x: ``[N, T, C, H, W]``.
        offset: float ``[N, G]``, one offset per video and channel group (G divides C).
        scale: optional ``[N, T, C]`` factor applied to the output (TIN's WeightNet), folded into the
            interpolation coefficients so that no extra full-size tensor is made.

    One ``index_select`` of whole ``H*W`` rows fetches frames ``t - o0`` for ``t = -1 .. T-1``; both
    integer shifts are views of that one copy (S_{o0+1}[t] = S_{o0}[t - 1]).
    """
    n, t, c, h, w = x.shape
    g = offset.shape[1]
    if offset.shape[0] != n or c % g:
        raise ValueError(f"linear_sampler: offset must be [N={n}, G] with G dividing C={c}, got {tuple(offset.shape)}")
    o0 = torch.floor(offset).detach()  # [N, G], integer part (no gradient)
    f = (offset - o0).repeat_interleave(c // g, dim=1)[:, None, :]  # [N, 1, C]
    o0 = o0.long().repeat_interleave(c // g, dim=1)[:, None, :]  # [N, 1, C]
    src = torch.arange(-1, t, device=x.device)[None, :, None] - o0  # [N, T+1, C] source frame of t = -1..T-1
    valid = (src >= 0) & (src < t)
    rows = (torch.arange(n, device=x.device)[:, None, None] * t + src.clamp(0, t - 1)) * c \
        + torch.arange(c, device=x.device)  # [N, T+1, C] row index into x viewed as [N*T*C, HW]
    frames = x.reshape(n * t * c, h * w).index_select(0, rows.flatten())  # [N*(T+1)*C, HW]
    frames = frames.view(n, t + 1, c, h * w)  # [N, T+1, C, HW]: frames[:, i] = S_{o0}(x)[i - 1]
    a, b = (1 - f) * valid[:, 1:], f * valid[:, :-1]  # [N, T, C] weights of S_{o0} and S_{o0+1}
    if scale is not None:
        a, b = a * scale, b * scale
    out = frames[:, 1:] * a[..., None]  # [N, T, C, HW]
    return out.addcmul_(frames[:, :-1], b[..., None]).view(n, t, c, h, w)  # [N, T, C, H, W]


class OffsetNet(nn.Module):
    """Predicts 2 offsets per video in (-2, 2): Conv1d(C'->1, 3) -> fc1 (T->T) -> ReLU -> fc2 (T->2) -> 4(σ-1/2).

    ``fc2.bias`` starts at 0.5108 = logit(0.625), so the offsets start at +0.5.
    """

    def __init__(self, in_channels: int, groups: int, num_segments: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, 1, 3, padding=1)
        self.fc1 = nn.Linear(num_segments, num_segments)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(num_segments, groups)
        nn.init.constant_(self.fc2.bias, 0.5108)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n, _, t = z.shape  # [N, C', T]
        o = self.fc2(self.relu(self.fc1(self.conv(z).view(n, t))))  # [N, G]
        return 4 * (torch.sigmoid(o) - 0.5)


class WeightNet(nn.Module):
    """Predicts a per-frame, per-group scale in (0, 2): Conv1d(C'->2, 3) -> 2σ (bias 0: starts at 1)."""

    def __init__(self, in_channels: int, groups: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, groups, 3, padding=1)
        nn.init.zeros_(self.conv.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return 2 * torch.sigmoid(self.conv(z)).permute(0, 2, 1)  # [N, C', T] -> [N, T, G]


class TemporalInterlace(nn.Module):
    """The temporal interlace module on ``[N*T, C, H, W]``; only channels ``[0, C/shift_div)`` move.

    Args:
        in_channels: C, the block's input channels.
        num_segments: T.
        shift_div: C' = C / shift_div channels are interlaced (4 in TIN's configs), in 4 groups.
    """

    deform_groups = 2  # (o1, o2); the groups are (o1, o2, -o1, -o2)

    def __init__(self, in_channels: int, num_segments: int = 8, shift_div: int = 4):
        super().__init__()
        folds = in_channels // shift_div
        if folds % (2 * self.deform_groups):
            raise ValueError(f"TemporalInterlace: C/shift_div = {folds} must be a multiple of 4")
        self.in_channels, self.num_segments, self.folds = in_channels, num_segments, folds
        self.offset_net = OffsetNet(folds, self.deform_groups, num_segments)
        self.weight_net = WeightNet(folds, self.deform_groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        t, f = self.num_segments, self.folds
        if nt % t or c != self.in_channels:
            raise ValueError(f"TemporalInterlace: expected [N*{t}, {self.in_channels}, H, W], got {tuple(x.shape)}")
        n = nt // t
        xs = x[:, :f].reshape(n, t, f, h, w)  # [N, T, C', H, W]
        z = xs.mean(dim=(3, 4)).permute(0, 2, 1)  # [N, C', T]
        offset = self.offset_net(z)  # [N, 2]
        weight = self.weight_net(z)  # [N, T, 2]
        weight = weight.repeat(1, 1, 2).repeat_interleave(f // 4, dim=2)  # [N, T, C'], groups (w1, w2, w1, w2)
        shifted = linear_sampler(xs, torch.cat([offset, -offset], dim=1), weight)  # [N, T, C', H, W]
        return torch.cat([shifted.reshape(nt, f, h, w), x[:, f:]], dim=1)  # [N*T, C, H, W]


class CombineNet(nn.Module):
    """``net2(net1(x))``: the interlace module followed by the wrapped 1x1 convolution (mmaction2 names)."""

    def __init__(self, net1: nn.Module, net2: nn.Module):
        super().__init__()
        self.net1, self.net2 = net1, net2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net2(self.net1(x))


def tin_backbone(*, depth: int = 50, num_segments: int = 8, shift_div: int = 4, out_indices: tuple[int, ...] = (3,),
                 stage_blocks: tuple[int, ...] | None = None, base_width: int = 64) -> ResNet2d:
    """mmaction2's ``ResNetTIN``: every bottleneck's ``conv1.conv`` becomes ``CombineNet(interlace, conv)``."""
    backbone = ResNet2d(depth, stage_blocks=stage_blocks, base_width=base_width, out_indices=out_indices)
    for stage in backbone.stages():
        for block in stage:
            conv = block.conv1.conv
            block.conv1.conv = CombineNet(TemporalInterlace(conv.in_channels, num_segments, shift_div), conv)
    backbone.num_segments = num_segments
    backbone.wrap_prefixes = (".net2",)
    return backbone


@register_model
def tin_r50(*, num_classes: int = 400, num_frames: int = 8, dropout: float | None = None, shift_div: int = 4,
            pretrained: str | None = None) -> Recognizer2D:
    """TIN-R50. ``num_classes=174`` selects the Something-Something cfg (dropout 0.8), else K400 (0.5).

    Protocol (all datasets): 1x1x8 segments; test 8 frames x CenterCrop(224) = 1 view.
    """
    sth = num_classes == 174
    dropout = (0.8 if sth else 0.5) if dropout is None else dropout
    key = "tin_r50_sthv1" if sth else "tin_r50_k400"
    cfg = make_cfg(num_frames=num_frames, sampling=seg_sampling(num_frames), url=URLS[key], paper="2001.06499",
                   published=key)
    backbone = tin_backbone(num_segments=num_frames, shift_div=shift_div)
    return build_recognizer(backbone, num_classes=num_classes, num_frames=num_frames, dropout=dropout,
                            pretrained=pretrained, cfg=cfg)


@register_model
def tin_tiny(*, num_classes: int = 400, num_frames: int = 8, dropout: float = 0.5, shift_div: int = 4,
             pretrained: str | None = None) -> Recognizer2D:
    """TIN on the tiny ResNet (one bottleneck per stage, widths 16/32/64/128)."""
    backbone = tin_backbone(num_segments=num_frames, shift_div=shift_div, **TINY)
    return build_recognizer(backbone, num_classes=num_classes, num_frames=num_frames, dropout=dropout,
                            pretrained=pretrained, cfg=tiny_cfg(num_frames, paper="2001.06499"))
