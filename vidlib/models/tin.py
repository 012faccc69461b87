"""TIN: Temporal Interlacing Network (Shao, Qian, Liu; AAAI 2020, arXiv 2001.06499).

TIN replaces TSM's fixed +-1 shift by a *learned, fractional* shift. In every
bottleneck, before the first 1x1 convolution, the first C' = C / shift_div channels of
the block input are split into 4 groups; a tiny OffsetNet predicts two offsets (o1, o2)
in (-2, 2) per video, the groups move by (o1, o2, -o1, -o2) frames with linear
interpolation between the two neighbouring integer shifts, and a WeightNet rescales each
frame of each group by a factor in (0, 2):

    Z_g[t] = (1 - f) * X_g[t - floor(o_g)] + f * X_g[t - floor(o_g) - 1],
    f = o_g - floor(o_g)

(zero outside [0, T), the semantics of mmcv's ``tin_shift`` CUDA kernel). The integer
shifts carry no gradient; the offsets learn through f. Here the shift is pure PyTorch
(one row gather for both integer shifts), so TIN runs on any device.

Keys follow mmaction2's ``ResNetTIN``:
``layerX.Y.conv1.conv.net1.{offset_net,weight_net}.*`` and the wrapped 1x1 convolution
``layerX.Y.conv1.conv.net2.weight``; :func:`load_tin_original` reads the official
repository's layout.

Explained in: chapter "TIN" (``book/tin.md``).
"""

from __future__ import annotations

import re

import torch
import torch.nn as nn

from ..weights import (
    CheckpointError,
    load_renamed,
    read_checkpoint,
    source_name,
    torchvision_to_mmaction2,
    unwrap_key,
)
from ._registry import dataset_protocol, make_cfg, register_model
from .resnet2d import (
    Recognizer2D,
    ResNet2d,
    build_recognizer,
    register_tiny,
    seg_sampling,
)

__all__ = [
    "tin_shift",
    "linear_sampler",
    "OffsetNet",
    "WeightNet",
    "TemporalInterlace",
    "CombineNet",
    "tin_backbone",
    "tin_original_key",
    "load_tin_original",
    "init_from_tsm",
    "tin_r50",
    "tin_tiny",
]

_TIN = "https://download.openmmlab.com/mmaction/v1.0/recognition/tin/"
URLS = {
    "tin_r50_sthv1": _TIN + "tin_imagenet-pretrained-r50_8xb6-1x1x8-40e_sthv1-rgb/"
    "tin_imagenet-pretrained-r50_8xb6-1x1x8-40e_sthv1-rgb_20220913-9b7804d6.pth",
    "tin_r50_sthv2": _TIN + "tin_imagenet-pretrained-r50_8xb6-1x1x8-40e_sthv2-rgb/"
    "tin_imagenet-pretrained-r50_8xb6-1x1x8-40e_sthv2-rgb_20220913-84f9b4b0.pth",
    "tin_r50_k400": _TIN
    + "tin_kinetics400-pretrained-tsm-r50_1x1x8-50e_kinetics400-rgb/"
    "tin_kinetics400-pretrained-tsm-r50_1x1x8-50e_kinetics400-rgb_"
    "20220913-7f10d0c0.pth",
}
#: The published protocols (``dataset=``): number of classes and the configs' dropout
#: before ``fc_cls``.
PROTOCOLS = {
    "k400": dict(num_classes=400, dropout=0.5),
    "sthv1": dict(num_classes=174, dropout=0.8),
    "sthv2": dict(num_classes=174, dropout=0.8),
}


def tin_shift(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Integer temporal shift per channel group:
    ``out[n, t, c] = x[n, t - shift[n, g(c)], c]``, 0 outside [0, T).

    Args:
        x: ``[N, T, C, HW]``.
        shift: integer ``[N, G]``; channel c belongs to group ``g(c) = c // (C / G)``.
    """
    n, t, c, _ = x.shape
    if shift.ndim != 2 or shift.shape[0] != n or c % shift.shape[1]:
        raise ValueError(
            f"tin_shift: shift must be [N={n}, G] with G dividing C={c}, "
            f"got {tuple(shift.shape)}"
        )
    shift_c = shift.long().repeat_interleave(c // shift.shape[1], dim=1)  # [N, C]
    # [N, T, C] source frame
    src = torch.arange(t, device=x.device)[None, :, None] - shift_c[:, None, :]
    valid = ((src >= 0) & (src < t)).unsqueeze(-1)  # [N, T, C, 1]
    rows = torch.arange(n, device=x.device)[:, None, None]  # [N, 1, 1]
    cols = torch.arange(c, device=x.device)[None, None, :]  # [1, 1, C]
    return x[rows, src.clamp(0, t - 1), cols] * valid  # [N, T, C, HW]


def linear_sampler(
    x: torch.Tensor, offset: torch.Tensor, scale: torch.Tensor | None = None
) -> torch.Tensor:
    """Fractional temporal shift by linear interpolation of two integer shifts
    (differentiable in ``offset``).

    ``out[t] = (1 - f) * x[t - o0] + f * x[t - o0 - 1]`` per video and channel group,
    with ``o0 = floor(offset)``, ``f = offset - o0`` and zeros outside [0, T)
    (= ``tin_shift`` by o0 and o0 + 1).

    Args:
        x: ``[N, T, C, H, W]``.
        offset: float ``[N, G]``, one offset per video and channel group (G divides C).
        scale: optional ``[N, T, C]`` factor applied to the output (TIN's WeightNet),
            folded into the interpolation coefficients so that no extra full-size tensor
            is made.

    One ``index_select`` of whole ``H*W`` rows fetches frames ``t - o0`` for
    ``t = -1 .. T-1``; both integer shifts are views of that one copy
    (S_{o0+1}[t] = S_{o0}[t - 1]).
    """
    n, t, c, h, w = x.shape
    g = offset.shape[1]
    if offset.shape[0] != n or c % g:
        raise ValueError(
            f"linear_sampler: offset must be [N={n}, G] with G dividing C={c}, "
            f"got {tuple(offset.shape)}"
        )
    o0 = torch.floor(offset).detach()  # [N, G], integer part (no gradient)
    f = (offset - o0).repeat_interleave(c // g, dim=1)[:, None, :]  # [N, 1, C]
    o0 = o0.long().repeat_interleave(c // g, dim=1)[:, None, :]  # [N, 1, C]
    # [N, T+1, C] source frame of t = -1..T-1
    src = torch.arange(-1, t, device=x.device)[None, :, None] - o0
    valid = (src >= 0) & (src < t)
    # [N, T+1, C] row index into x viewed as [N*T*C, HW]
    rows = (
        torch.arange(n, device=x.device)[:, None, None] * t + src.clamp(0, t - 1)
    ) * c + torch.arange(c, device=x.device)
    # [N*(T+1)*C, HW]
    frames = x.reshape(n * t * c, h * w).index_select(0, rows.flatten())
    # [N, T+1, C, HW]: frames[:, i] = S_{o0}(x)[i - 1]
    frames = frames.view(n, t + 1, c, h * w)
    # [N, T, C] weights of S_{o0} and S_{o0+1}
    a, b = (1 - f) * valid[:, 1:], f * valid[:, :-1]
    if scale is not None:
        a, b = a * scale, b * scale
    out = frames[:, 1:] * a[..., None]  # [N, T, C, HW]
    # [N, T, C, H, W]
    return out.addcmul_(frames[:, :-1], b[..., None]).view(n, t, c, h, w)


class OffsetNet(nn.Module):
    """Predicts 2 offsets per video in (-2, 2): Conv1d(C'->1, 3) -> fc1 (T->T) -> ReLU
    -> fc2 (T->2) -> 4(σ-1/2).

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
    """Predicts a per-frame, per-group scale in (0, 2): Conv1d(C'->2, 3) -> 2σ (bias 0:
    starts at 1)."""

    def __init__(self, in_channels: int, groups: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, groups, 3, padding=1)
        nn.init.zeros_(self.conv.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # [N, C', T] -> [N, T, G]
        return 2 * torch.sigmoid(self.conv(z)).permute(0, 2, 1)


class TemporalInterlace(nn.Module):
    """The temporal interlace module on ``[N*T, C, H, W]``; only channels
    ``[0, C/shift_div)`` move.

    Args:
        in_channels: C, the block's input channels.
        num_segments: T.
        shift_div: C' = C / shift_div channels are interlaced (4 in TIN's configs), in 4
            groups.
    """

    deform_groups = 2  # (o1, o2); the groups are (o1, o2, -o1, -o2)

    def __init__(self, in_channels: int, num_segments: int = 8, shift_div: int = 4):
        super().__init__()
        folds = in_channels // shift_div
        if folds % (2 * self.deform_groups):
            raise ValueError(
                f"TemporalInterlace: C/shift_div = {folds} must be a multiple of 4"
            )
        self.in_channels, self.num_segments = in_channels, num_segments
        self.folds = folds
        self.offset_net = OffsetNet(folds, self.deform_groups, num_segments)
        self.weight_net = WeightNet(folds, self.deform_groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        t, f = self.num_segments, self.folds
        if nt % t or c != self.in_channels:
            raise ValueError(
                f"TemporalInterlace: expected [N*{t}, {self.in_channels}, H, W], "
                f"got {tuple(x.shape)}"
            )
        n = nt // t
        xs = x[:, :f].reshape(n, t, f, h, w)  # [N, T, C', H, W]
        z = xs.mean(dim=(3, 4)).permute(0, 2, 1)  # [N, C', T]
        offset = self.offset_net(z)  # [N, 2]
        weight = self.weight_net(z)  # [N, T, 2]
        # [N, T, C'], groups (w1, w2, w1, w2)
        weight = weight.repeat(1, 1, 2).repeat_interleave(f // 4, dim=2)
        # [N, T, C', H, W]
        shifted = linear_sampler(xs, torch.cat([offset, -offset], dim=1), weight)
        # [N*T, C, H, W]
        return torch.cat([shifted.reshape(nt, f, h, w), x[:, f:]], dim=1)


class CombineNet(nn.Module):
    """``net2(net1(x))``: the interlace module followed by the wrapped 1x1 convolution
    (mmaction2 names)."""

    def __init__(self, net1: nn.Module, net2: nn.Module):
        super().__init__()
        self.net1, self.net2 = net1, net2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net2(self.net1(x))


def tin_backbone(
    *,
    depth: int = 50,
    num_segments: int = 8,
    shift_div: int = 4,
    out_indices: tuple[int, ...] = (3,),
    stage_blocks: tuple[int, ...] | None = None,
    base_width: int = 64,
) -> ResNet2d:
    """mmaction2's ``ResNetTIN``: every bottleneck's ``conv1.conv`` becomes
    ``CombineNet(interlace, conv)``."""
    backbone = ResNet2d(
        depth, stage_blocks=stage_blocks, base_width=base_width, out_indices=out_indices
    )
    for stage in backbone.stages():
        for block in stage:
            conv = block.conv1.conv
            block.conv1.conv = CombineNet(
                TemporalInterlace(conv.in_channels, num_segments, shift_div), conv
            )
    backbone.num_segments = num_segments
    backbone.wrap_prefixes = (".net2",)
    return backbone


_TIN_SUBNETS = {
    "biasnet.net.conv": "offset_net.conv",
    "biasnet.net.fc": "offset_net.fc1",
    "biasnet.net.lastlayer": "offset_net.fc2",
    "weightnet.net.lastlayer": "weight_net.conv",
}


def tin_original_key(key: str) -> str:
    """Map a key of the official TIN code to vidlib's unwrapped TIN naming.

    The layout of deepcs233/TIN @ 801494a (``ops/temporal_interlace.py``:
    ``CombinNet.net1/net2``, ``biasnet``, ``weightnet``; ``ops/models.py``:
    ``module.base_model``, ``new_fc``):
    ``...layerX.Y.conv1.net1.biasnet.net.{conv,fc,lastlayer}`` ->
    ``...conv1.conv.net1.offset_net.{conv,fc1,fc2}``,
    ``...net1.weightnet.net.lastlayer`` -> ``...weight_net.conv``,
    ``...conv1.net2.weight`` -> the block's 1x1 conv, ``bnN`` -> ``convN.bn``,
    ``module.new_fc`` -> ``cls_head.fc_cls``. Unknown keys are unchanged.
    """
    k = key.removeprefix("module.")
    if k.startswith("new_fc."):
        return "cls_head.fc_cls." + k[len("new_fc.") :]
    if not k.startswith("base_model."):
        return key
    k = k[len("base_model.") :]
    m = re.match(r"^(layer\d+\.\d+)\.conv1\.net1\.(\w+\.net\.\w+)\.(weight|bias)$", k)
    if m and m.group(2) in _TIN_SUBNETS:
        return (
            f"backbone.{m.group(1)}.conv1.conv.net1."
            f"{_TIN_SUBNETS[m.group(2)]}.{m.group(3)}"
        )
    # CombinNet's wrapped conv
    k = re.sub(r"^(layer\d+\.\d+)\.conv1\.net2\.", r"\1.conv1.", k)
    mm = torchvision_to_mmaction2(k)  # the ResNet keys keep torchvision's names
    return key if mm is None else "backbone." + mm


def load_tin_original(model: nn.Module, checkpoint) -> nn.Module:
    """Load a checkpoint of the official TIN code (deepcs233/TIN) into a vidlib TIN,
    strictly."""
    return load_renamed(model, checkpoint, tin_original_key, "official TIN layout")


def init_from_tsm(model: nn.Module, checkpoint) -> list[str]:
    """Initialise a TIN from a TSM checkpoint (mmaction2 layout), strictly, except the
    interlace sub-nets, which keep their init (offsets near +-0.5, weights near 1).

    TIN's K400 recipe fine-tunes from TSM-R50. TSM stores each block's first 1x1 conv
    as ``...conv1.conv.net.weight``, TIN as ``...conv1.conv.net2.weight``: mmengine's
    non-strict ``load_from`` skips those 16 convs without a word. Here both names lose
    their wrapper, every TSM key must land on a TIN key of the same shape, and every
    TIN key must be filled except the sub-nets' (``net1``). Returns the keys that kept
    their init.
    """
    source = f"{source_name(checkpoint)} (TSM -> TIN)"
    tsm = read_checkpoint(checkpoint, "state_dict", "model")
    own = model.state_dict()
    # unwrapped name -> TIN name: "...conv1.conv.weight" -> "...conv1.conv.net2.weight"
    tin_name = {unwrap_key(k, model.backbone.wrap_prefixes): k for k in own}
    sd = {tin_name.get(unwrap_key(k, (".net",)), k): v for k, v in tsm.items()}
    kept = [k for k in own if ".net1." in k]  # OffsetNet, WeightNet
    missing = [k for k in own if k not in sd and k not in kept]
    unexpected = [k for k in sd if k not in own or k in kept]
    mismatched = [
        (k, tuple(v.shape), tuple(own[k].shape))
        for k, v in sd.items()
        if k in own and v.shape != own[k].shape
    ]
    if missing or unexpected or mismatched:
        raise CheckpointError(source, missing, unexpected, mismatched)
    with torch.no_grad():
        for k, v in sd.items():
            own[k].copy_(v)
    return kept


@register_model
def tin_r50(
    *,
    dataset: str = "k400",
    num_classes: int | None = None,
    num_frames: int = 8,
    dropout: float | None = None,
    shift_div: int = 4,
    imagenet_init=None,
    tsm_init=None,
) -> Recognizer2D:
    """TIN-R50 with the protocol of ``dataset``: ``"k400"`` (400 classes, dropout 0.5),
    ``"sthv1"`` or ``"sthv2"`` (174 classes, dropout 0.8). All: 1x1x8 segments; test 8
    frames x CenterCrop(224) = 1 view.

    Args:
        dataset: selects the cfg (checkpoint url, published entry) and the defaults
            below.
        num_classes: K; default from ``dataset``. Changes only the size of ``fc_cls``.
        num_frames: T (the interlace modules' ``num_segments``).
        dropout: before ``fc_cls``; default from ``dataset``.
        shift_div: C / C', the fraction of channels that are interlaced (4).
        imagenet_init: a torchvision ResNet-50 file or state dict, copied into the
            backbone by key (:func:`vidlib.weights.init_from_torchvision`).
        tsm_init: a TSM-R50 checkpoint (mmaction2 layout, file or state dict) for
            everything but the interlace sub-nets (:func:`init_from_tsm`; the K400
            recipe fine-tunes from TSM).
    """
    proto = dataset_protocol("tin_r50", dataset, PROTOCOLS)
    key = f"tin_r50_{dataset}"
    cfg = make_cfg(
        num_frames=num_frames,
        sampling=seg_sampling(num_frames),
        url=URLS[key],
        paper="2001.06499",
        published=key,
    )
    backbone = tin_backbone(num_segments=num_frames, shift_div=shift_div)
    model = build_recognizer(
        backbone,
        num_classes=proto["num_classes"] if num_classes is None else num_classes,
        num_frames=num_frames,
        dropout=proto["dropout"] if dropout is None else dropout,
        imagenet_init=imagenet_init,
        cfg=cfg,
    )
    if tsm_init is not None:
        init_from_tsm(model, tsm_init)
    return model


tin_tiny = register_tiny("tin_tiny", tin_backbone, "2001.06499", shift_div=4)
