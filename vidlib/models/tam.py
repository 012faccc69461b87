"""TAM: Temporal Adaptive Module for Video Recognition (Liu, Wang, Wu, Qian, Lu; arXiv 2005.06803).

TANet puts a TAM after the first 1x1 convolution of **every** bottleneck of a 2D ResNet-50
(16 TAMs). For a feature map X viewed as ``[N, C, T, H, W]`` with z = spatial mean ``[N, C, T]``:

- global branch G (one temporal kernel per video and channel, shared over space):
  w = softmax(FC(αT -> K)(ReLU(BN(FC(T -> αT)(z)))))  ``[N, C, K]``;
- local branch L (location-sensitive importance): s = sigmoid(Conv1d(C/β -> C, 1)(ReLU(BN(Conv1d(C -> C/β, 3)(z)))))
  ``[N, C, T]``;
- Y[n, c, t] = sum_k w[n, c, k] * (X * s)[n, c, t + k - 1]: a depthwise temporal convolution with a
  different kernel for every (video, channel), done as ONE grouped ``F.conv2d`` with groups = N*C.

Keys follow mmaction2's ``TABlock``: ``layerX.Y.block.convN.{conv,bn}``, ``layerX.Y.tam.{G,L}.*``.

Explained in: chapter "TANet".
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._registry import IMAGENET_STD, make_cfg, register_model
from .resnet2d import TINY, Bottleneck, ResNet2d, Recognizer2D, build_recognizer, seg_sampling, tiny_cfg

__all__ = ["TAM", "TABlock", "tanet_backbone", "tanet_r50", "tanet_tiny"]

_TANET = "https://download.openmmlab.com/mmaction/v1.0/recognition/tanet/"
URLS = {
    "tanet_r50_k400": _TANET + "tanet_imagenet-pretrained-r50_8xb8-dense-1x1x8-100e_kinetics400-rgb/"
    "tanet_imagenet-pretrained-r50_8xb8-dense-1x1x8-100e_kinetics400-rgb_20220919-a34346bc.pth",
    "tanet_r50_sthv1_8f": _TANET + "tanet_imagenet-pretrained-r50_8xb8-1x1x8-50e_sthv1-rgb/"
    "tanet_imagenet-pretrained-r50_8xb8-1x1x8-50e_sthv1-rgb_20220906-de50e4ef.pth",
    "tanet_r50_sthv1_16f": _TANET + "tanet_imagenet-pretrained-r50_8xb6-1x1x16-50e_sthv1-rgb/"
    "tanet_imagenet-pretrained-r50_8xb6-1x1x16-50e_sthv1-rgb_20220919-cc37e9b8.pth",
}
#: Something-Something V1 classes whose meaning flips with a horizontal flip (TANet/TSM sthv1 configs).
STHV1_FLIP_LABEL_MAP = {2: 4, 4: 2, 30: 41, 41: 30, 52: 66, 66: 52}


class TAM(nn.Module):
    """The Temporal Adaptive Module on ``[N*T, C, H, W]`` (mmaction2 ``TAM`` defaults = the paper's).

    Args:
        in_channels: C.
        num_segments: T (at least 3).
        alpha: α in the paper, G's hidden width is αT.
        adaptive_kernel_size: K in the paper, the length of the learned temporal kernel.
        beta: β in the paper, L's bottleneck is C/β.
        conv1d_kernel_size: temporal kernel of L's first Conv1d.
        adaptive_convolution_stride, adaptive_convolution_padding: of the aggregation convolution.
    """

    def __init__(self, in_channels: int, num_segments: int, alpha: int = 2, adaptive_kernel_size: int = 3,
                 beta: int = 4, conv1d_kernel_size: int = 3, adaptive_convolution_stride: int = 1,
                 adaptive_convolution_padding: int = 1):
        super().__init__()
        if num_segments < 3:
            raise ValueError(f"TAM needs num_segments >= 3, got {num_segments}")
        t, k = num_segments, adaptive_kernel_size
        self.in_channels, self.num_segments, self.kernel_size = in_channels, t, k
        self.stride, self.padding = adaptive_convolution_stride, adaptive_convolution_padding
        self.G = nn.Sequential(
            nn.Linear(t, t * alpha, bias=False), nn.BatchNorm1d(t * alpha), nn.ReLU(inplace=True),
            nn.Linear(t * alpha, k, bias=False), nn.Softmax(-1))
        self.L = nn.Sequential(
            nn.Conv1d(in_channels, in_channels // beta, conv1d_kernel_size, padding=conv1d_kernel_size // 2,
                      bias=False),
            nn.BatchNorm1d(in_channels // beta), nn.ReLU(inplace=True),
            nn.Conv1d(in_channels // beta, in_channels, 1, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        t = self.num_segments
        if nt % t or c != self.in_channels:
            raise ValueError(f"TAM: expected [N*{t}, {self.in_channels}, H, W], got {tuple(x.shape)}")
        n = nt // t
        x = x.view(n, t, c, h, w).permute(0, 2, 1, 3, 4)  # [N, C, T, H, W]
        z = x.mean(dim=(3, 4))  # [N, C, T]
        kernel = self.G(z.reshape(n * c, t)).view(n * c, 1, self.kernel_size, 1)  # [N*C, 1, K, 1]
        s = self.L(z).view(n, c, t, 1, 1)  # [N, C, T, 1, 1]
        xs = (x * s).reshape(1, n * c, t, h * w)  # [1, N*C, T, H*W]: one "image" with N*C channels
        y = F.conv2d(xs, kernel, stride=(self.stride, 1), padding=(self.padding, 0), groups=n * c)  # [1, N*C, T', H*W]
        t_out = y.shape[2]
        y = y.view(n, c, t_out, h, w).permute(0, 2, 1, 3, 4)  # [N, T', C, H, W]
        return y.reshape(n * t_out, c, h, w)  # [N*T', C, H, W]


class TABlock(nn.Module):
    """A bottleneck with a TAM between its ``conv1`` and ``conv2`` (residual branch only)."""

    def __init__(self, block: Bottleneck, num_segments: int, **tam_kw):
        super().__init__()
        self.block = block
        self.tam = TAM(block.conv1.conv.out_channels, num_segments, **tam_kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.block
        identity = x if b.downsample is None else b.downsample(x)
        out = b.conv3(b.conv2(self.tam(b.conv1(x))))
        return b.relu(out + identity)


def tanet_backbone(*, depth: int = 50, num_segments: int = 8, out_indices: tuple[int, ...] = (3,),
                   stage_blocks: tuple[int, ...] | None = None, base_width: int = 64, **tam_kw) -> ResNet2d:
    """mmaction2's ``TANet``: a :class:`ResNet2d` whose every bottleneck is a :class:`TABlock`.

    The TAMs are created here, after the ResNet and before any checkpoint is loaded; ImageNet weights
    are then copied by key (:func:`vidlib.checkpoints.init_from_torchvision`), so the TAMs keep
    PyTorch's default init exactly as in mmaction2, and nothing re-initialises the ResNet afterwards.
    """
    backbone = ResNet2d(depth, stage_blocks=stage_blocks, base_width=base_width, out_indices=out_indices)
    for stage in backbone.stages():
        for i, block in enumerate(stage):
            stage[i] = TABlock(block, num_segments, **tam_kw)
    backbone.num_segments = num_segments
    backbone.wrap_prefixes = (".block",)
    return backbone


def _tanet_cfg(num_frames: int, num_classes: int) -> dict:
    """The mmaction2 protocol: K400 dense sampling and 10 clips x ThreeCrop(256); sthv1 segments.

    Training crops: MultiScaleCrop with 13 fixed crops (``num_fixed_crops=13`` in every TANet config).
    """
    mean = (123.675, 116.28, 103.5)  # sic: mmaction2's tanet_r50.py base config (fact sheet §0.1)
    if num_classes != 174:
        dense = dict(name="DenseSampleFrames", clip_len=1, frame_interval=1, num_clips=num_frames,
                     sample_range=64, num_sample_positions=10)
        return make_cfg(num_frames=num_frames, sampling=dense, test_crops=3, test_crop_size=256, mean=mean,
                        std=IMAGENET_STD, num_fixed_crops=13, url=URLS["tanet_r50_k400"], paper="2005.06803",
                        published="tanet_r50_k400")
    key = "tanet_r50_sthv1_16f" if num_frames == 16 else "tanet_r50_sthv1_8f"
    if num_frames == 16:  # the 16f config's test_pipeline = val_pipeline: one centre-cropped view
        test = dict(test_sampling=seg_sampling(num_frames), test_crops=1)
    else:  # twice_sample doubles the segments' views, x ThreeCrop(256) = 6 views
        test = dict(test_sampling={**seg_sampling(num_frames), "twice_sample": True}, test_crops=3, test_crop_size=256)
    return make_cfg(num_frames=num_frames, sampling=seg_sampling(num_frames), mean=mean, std=IMAGENET_STD,
                    num_fixed_crops=13, url=URLS[key], paper="2005.06803", published=key, flip_label_map=STHV1_FLIP_LABEL_MAP, **test)


@register_model
def tanet_r50(*, num_classes: int = 400, num_frames: int = 8, dropout: float | None = None, alpha: int = 2,
              beta: int = 4, adaptive_kernel_size: int = 3, pretrained: str | None = None) -> Recognizer2D:
    """TANet-R50. ``num_classes=174`` selects the sthv1 cfg (dropout 0.6), otherwise K400 (dropout 0.5)."""
    dropout = (0.6 if num_classes == 174 else 0.5) if dropout is None else dropout
    backbone = tanet_backbone(num_segments=num_frames, alpha=alpha, beta=beta,
                              adaptive_kernel_size=adaptive_kernel_size)
    return build_recognizer(backbone, num_classes=num_classes, num_frames=num_frames, dropout=dropout,
                            pretrained=pretrained, cfg=_tanet_cfg(num_frames, num_classes))


@register_model
def tanet_tiny(*, num_classes: int = 400, num_frames: int = 8, dropout: float = 0.5, alpha: int = 2, beta: int = 4,
               adaptive_kernel_size: int = 3, pretrained: str | None = None) -> Recognizer2D:
    """TANet on the tiny ResNet (one bottleneck per stage, widths 16/32/64/128)."""
    backbone = tanet_backbone(num_segments=num_frames, alpha=alpha, beta=beta,
                              adaptive_kernel_size=adaptive_kernel_size, **TINY)
    return build_recognizer(backbone, num_classes=num_classes, num_frames=num_frames, dropout=dropout,
                            pretrained=pretrained, cfg=tiny_cfg(num_frames, paper="2005.06803"))
