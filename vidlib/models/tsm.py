"""TSM: Temporal Shift Module for Efficient Video Understanding (Lin, Gan, Han;
arXiv 1811.08383).

TSM makes a per-frame 2D ResNet temporal at zero extra parameters: inside the residual
branch of every bottleneck ("blockres" placement), before the first 1x1 convolution,
1/shift_div of the channels take their value from the next frame and another 1/shift_div
from the previous frame (zero-padded at the clip ends). TSN (arXiv 1608.00859) is the
same network without the shift.

    block input [N*T, C, H, W] -> shift -> conv1 (1x1) -> conv2 (3x3) -> conv3 (1x1)
                               -> + shortcut

The wrapped convolution sits under ``.net`` as in mmaction2
(``layerX.Y.conv1.conv.net.weight``). :func:`resnet_tsm` is the public backbone
constructor (TPN-TSM builds on it).

TSN and TSM are taught in the TIN chapter (``book/tin.md``), as the fixed shift that TIN
makes learnable, and serve as baselines in the TAM chapter (``book/tam.md``).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ._registry import make_cfg, register_model
from .resnet2d import (
    Recognizer2D,
    ResNet2d,
    build_recognizer,
    register_tiny,
    seg_sampling,
)

__all__ = [
    "temporal_shift",
    "TemporalShift",
    "TemporalConv",
    "resnet_tsm",
    "tsm_r50",
    "tsm_tiny",
]

TSM_URL = (
    "https://download.openmmlab.com/mmaction/v1.0/recognition/tsm/"
    "tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb/"
    "tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb_20220831-64d69186.pth"
)


def temporal_shift(
    x: torch.Tensor, num_segments: int, shift_div: int = 8
) -> torch.Tensor:
    """Shift channel folds of ``x`` ``[N*T, C, H, W]`` along T (zero-padded), with
    fold = C // shift_div.

    channels ``[0, fold)``: out[t] = x[t+1]; ``[fold, 2*fold)``: out[t] = x[t-1]; the
    rest: unchanged.
    """
    nt, c, h, w = x.shape
    if nt % num_segments:
        raise ValueError(
            f"temporal_shift: the batch of frames ({nt}) "
            f"is not a multiple of T = {num_segments}"
        )
    fold = c // shift_div
    x = x.view(nt // num_segments, num_segments, c, h, w)  # [N, T, C, H, W]
    out = torch.zeros_like(x)
    out[:, :-1, :fold] = x[:, 1:, :fold]  # from the next frame
    out[:, 1:, fold : 2 * fold] = x[:, :-1, fold : 2 * fold]  # from the previous frame
    out[:, :, 2 * fold :] = x[:, :, 2 * fold :]
    return out.view(nt, c, h, w)  # [N*T, C, H, W]


class TemporalShift(nn.Module):
    """Shift, then apply the wrapped module ``net`` (mmaction2's ``TemporalShift``).

    Args:
        net: the wrapped layer (the block's first 1x1 ``Conv2d``).
        num_segments: T, the frames per clip.
        shift_div: 1/shift_div of the channels move each way (8 in the paper: 1/4 moved
            in total).
    """

    def __init__(self, net: nn.Module, num_segments: int = 8, shift_div: int = 8):
        super().__init__()
        self.net, self.num_segments, self.shift_div = net, num_segments, shift_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(temporal_shift(x, self.num_segments, self.shift_div))

    def extra_repr(self) -> str:
        return f"num_segments={self.num_segments}, shift_div={self.shift_div}"


class TemporalConv(nn.Module):
    """A learned temporal convolution where TSM shifts: the baseline TSM and TIN are
    compared with (an r-TCN-like block: a full 3x1x1 convolution of all C channels on
    the residual branch, before the wrapped layer ``net``).

    It costs 3C² multiply-adds per pixel and frame where the shift costs none; the TIN
    chapter times the three side by side. Initialised to the identity (the centre tap
    is 1), so an ImageNet ResNet starts unchanged.

    Args:
        net: the wrapped layer (the block's first 1x1 ``Conv2d``).
        num_segments: T.
        kernel_size: the temporal taps (3).
    """

    def __init__(self, net: nn.Module, num_segments: int = 8, kernel_size: int = 3):
        super().__init__()
        c = net.in_channels
        self.net, self.num_segments = net, num_segments
        self.conv = nn.Conv3d(
            c, c, (kernel_size, 1, 1), padding=(kernel_size // 2, 0, 0), bias=False
        )
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[:, :, kernel_size // 2, 0, 0] = torch.eye(c)

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        """The temporal convolution alone, on ``[N*T, C, H, W]``."""
        nt, c, h, w = x.shape
        t = self.num_segments
        x = x.view(nt // t, t, c, h, w).transpose(1, 2)  # [N, C, T, H, W]
        return self.conv(x).transpose(1, 2).reshape(nt, c, h, w)  # [N*T, C, H, W]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.mix(x))


def add_temporal_shift(
    backbone: ResNet2d, num_segments: int, shift_div: int = 8
) -> ResNet2d:
    """Wrap ``conv1.conv`` of the blocks of ``backbone`` in :class:`TemporalShift` (in
    place).

    Every block is shifted, except that ResNets with >= 23 blocks in stage 3 (R101/R152)
    shift every other block ("n_round = 2"), as mmaction2's ``ResNetTSM`` does.
    """
    n_round = 2 if len(backbone.stages()[2]) >= 23 else 1
    for stage in backbone.stages():
        for i, block in enumerate(stage):
            if i % n_round == 0:
                block.conv1.conv = TemporalShift(
                    block.conv1.conv, num_segments, shift_div
                )
    backbone.num_segments = num_segments
    backbone.wrap_prefixes = (".net",)
    return backbone


def resnet_tsm(
    *,
    depth: int = 50,
    num_segments: int = 8,
    shift_div: int = 8,
    out_indices: tuple[int, ...] = (3,),
    stage_blocks: tuple[int, ...] | None = None,
    base_width: int = 64,
) -> ResNet2d:
    """The TSM backbone: a :class:`ResNet2d` whose blocks shift before ``conv1``
    (mmaction2 ``ResNetTSM``).

    Args:
        depth, stage_blocks, base_width, out_indices: see :class:`ResNet2d`; ``(2, 3)``
            returns res4 and res5.
        num_segments: T. The forward takes frames ``[N*T, 3, H, W]`` and returns a tuple
            of stage outputs.
        shift_div: see :class:`TemporalShift`.
    """
    backbone = ResNet2d(
        depth, stage_blocks=stage_blocks, base_width=base_width, out_indices=out_indices
    )
    return add_temporal_shift(backbone, num_segments, shift_div)


@register_model
def tsm_r50(
    *,
    num_classes: int = 400,
    num_frames: int = 8,
    dropout: float = 0.5,
    shift_div: int = 8,
    imagenet_init=None,
) -> Recognizer2D:
    """TSM-R50 (mmaction2
    ``tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb``).

    Test protocol: 8 segments x TenCrop(224) = 10 views. ``imagenet_init``: a
    torchvision ResNet-50 file or state dict, copied into the backbone by key
    (:func:`vidlib.weights.init_from_torchvision`).
    """
    cfg = make_cfg(
        num_frames=num_frames,
        sampling=seg_sampling(num_frames),
        test_crops=10,
        url=TSM_URL,
        paper="1811.08383",
        published="tsm_r50_k400",
    )
    return build_recognizer(
        resnet_tsm(num_segments=num_frames, shift_div=shift_div),
        num_classes=num_classes,
        num_frames=num_frames,
        dropout=dropout,
        imagenet_init=imagenet_init,
        cfg=cfg,
    )


tsm_tiny = register_tiny("tsm_tiny", resnet_tsm, "1811.08383", shift_div=8)
