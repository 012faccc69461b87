"""TAM: Temporal Adaptive Module for Video Recognition (Liu, Wang, Wu, Qian, Lu;
arXiv 2005.06803).

TANet puts a TAM after the first 1x1 convolution of **every** bottleneck of a 2D
ResNet-50 (16 TAMs). For a feature map X viewed as ``[N, C, T, H, W]`` with z = spatial
mean ``[N, C, T]``:

- global branch G (one temporal kernel per video and channel, shared over space):
  w = softmax(FC(αT -> K)(ReLU(BN(FC(T -> αT)(z)))))  ``[N, C, K]``;
- local branch L (location-sensitive importance):
  s = sigmoid(Conv1d(C/β -> C, 1)(ReLU(BN(Conv1d(C -> C/β, 3)(z)))))  ``[N, C, T]``;
- Y[n, c, t] = sum_k w[n, c, k] * (X * s)[n, c, t + k - 1]: a depthwise temporal
  convolution with a different kernel for every (video, channel), done as ONE grouped
  ``F.conv2d`` with groups = N*C.

Keys follow mmaction2's ``TABlock``: ``layerX.Y.block.convN.{conv,bn}``,
``layerX.Y.tam.{G,L}.*``; :func:`load_tam_original` reads the official repository's
layout.

Explained in: chapter "TANet" (``book/tam.md``).
"""

from __future__ import annotations

import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.annotations import STHV1_FLIP_LABEL_MAP
from ..weights import load_renamed, torchvision_to_mmaction2
from ._registry import IMAGENET_STD, dataset_protocol, make_cfg, register_model
from .resnet2d import (
    Bottleneck,
    Recognizer2D,
    ResNet2d,
    build_recognizer,
    register_tiny,
    seg_sampling,
)

__all__ = [
    "TAM",
    "TABlock",
    "tanet_backbone",
    "tam_original_key",
    "load_tam_original",
    "tanet_r50",
    "tanet_tiny",
]

_TANET = "https://download.openmmlab.com/mmaction/v1.0/recognition/tanet/"
URLS = {
    "tanet_r50_k400": _TANET
    + "tanet_imagenet-pretrained-r50_8xb8-dense-1x1x8-100e_kinetics400-rgb/"
    "tanet_imagenet-pretrained-r50_8xb8-dense-1x1x8-100e_kinetics400-rgb_"
    "20220919-a34346bc.pth",
    "tanet_r50_sthv1_8f": _TANET
    + "tanet_imagenet-pretrained-r50_8xb8-1x1x8-50e_sthv1-rgb/"
    "tanet_imagenet-pretrained-r50_8xb8-1x1x8-50e_sthv1-rgb_20220906-de50e4ef.pth",
    "tanet_r50_sthv1_16f": _TANET
    + "tanet_imagenet-pretrained-r50_8xb6-1x1x16-50e_sthv1-rgb/"
    "tanet_imagenet-pretrained-r50_8xb6-1x1x16-50e_sthv1-rgb_20220919-cc37e9b8.pth",
}
#: The published protocols (``dataset=``): number of classes and the configs' dropout
#: before ``fc_cls``.
PROTOCOLS = {
    "k400": dict(num_classes=400, dropout=0.5),
    "sthv1": dict(num_classes=174, dropout=0.6),
}


class TAM(nn.Module):
    """The Temporal Adaptive Module on ``[N*T, C, H, W]`` (mmaction2 ``TAM`` defaults =
    the paper's).

    Args:
        in_channels: C.
        num_segments: T (at least 3).
        alpha: α in the paper, G's hidden width is αT.
        adaptive_kernel_size: K in the paper, the length of the learned temporal kernel.
        beta: β in the paper, L's bottleneck is C/β.
        conv1d_kernel_size: temporal kernel of L's first Conv1d.
        adaptive_convolution_stride, adaptive_convolution_padding: of the aggregation
            convolution.
    """

    def __init__(
        self,
        in_channels: int,
        num_segments: int,
        alpha: int = 2,
        adaptive_kernel_size: int = 3,
        beta: int = 4,
        conv1d_kernel_size: int = 3,
        adaptive_convolution_stride: int = 1,
        adaptive_convolution_padding: int = 1,
    ):
        super().__init__()
        if num_segments < 3:
            raise ValueError(f"TAM needs num_segments >= 3, got {num_segments}")
        t, k = num_segments, adaptive_kernel_size
        self.in_channels, self.num_segments, self.kernel_size = in_channels, t, k
        self.stride = adaptive_convolution_stride
        self.padding = adaptive_convolution_padding
        self.G = nn.Sequential(
            nn.Linear(t, t * alpha, bias=False),
            nn.BatchNorm1d(t * alpha),
            nn.ReLU(inplace=True),
            nn.Linear(t * alpha, k, bias=False),
            nn.Softmax(-1),
        )
        self.L = nn.Sequential(
            nn.Conv1d(
                in_channels,
                in_channels // beta,
                conv1d_kernel_size,
                padding=conv1d_kernel_size // 2,
                bias=False,
            ),
            nn.BatchNorm1d(in_channels // beta),
            nn.ReLU(inplace=True),
            nn.Conv1d(in_channels // beta, in_channels, 1, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        t = self.num_segments
        if nt % t or c != self.in_channels:
            raise ValueError(
                f"TAM: expected [N*{t}, {self.in_channels}, H, W], got {tuple(x.shape)}"
            )
        n = nt // t
        x = x.view(n, t, c, h, w).permute(0, 2, 1, 3, 4)  # [N, C, T, H, W]
        z = x.mean(dim=(3, 4))  # [N, C, T]
        # [N*C, 1, K, 1]
        kernel = self.G(z.reshape(n * c, t)).view(n * c, 1, self.kernel_size, 1)
        s = self.L(z).view(n, c, t, 1, 1)  # [N, C, T, 1, 1]
        # [1, N*C, T, H*W]: one "image" with N*C channels
        xs = (x * s).reshape(1, n * c, t, h * w)
        # [1, N*C, T', H*W]
        y = F.conv2d(
            xs, kernel, stride=(self.stride, 1), padding=(self.padding, 0), groups=n * c
        )
        t_out = y.shape[2]
        y = y.view(n, c, t_out, h, w).permute(0, 2, 1, 3, 4)  # [N, T', C, H, W]
        return y.reshape(n * t_out, c, h, w)  # [N*T', C, H, W]


class TABlock(nn.Module):
    """A bottleneck with a TAM between its ``conv1`` and ``conv2`` (residual branch
    only)."""

    def __init__(self, block: Bottleneck, num_segments: int, **tam_kw):
        super().__init__()
        self.block = block
        self.tam = TAM(block.conv1.conv.out_channels, num_segments, **tam_kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.block
        identity = x if b.downsample is None else b.downsample(x)
        out = b.conv3(b.conv2(self.tam(b.conv1(x))))
        return b.relu(out + identity)


def tanet_backbone(
    *,
    depth: int = 50,
    num_segments: int = 8,
    out_indices: tuple[int, ...] = (3,),
    stage_blocks: tuple[int, ...] | None = None,
    base_width: int = 64,
    **tam_kw,
) -> ResNet2d:
    """mmaction2's ``TANet``: a :class:`ResNet2d` whose every bottleneck is a
    :class:`TABlock`.

    The TAMs are created here, after the ResNet and before any checkpoint is loaded;
    ImageNet weights are then copied by key
    (:func:`vidlib.weights.init_from_torchvision`), so the TAMs keep PyTorch's default
    init exactly as in mmaction2, and nothing re-initialises the ResNet afterwards.
    """
    backbone = ResNet2d(
        depth, stage_blocks=stage_blocks, base_width=base_width, out_indices=out_indices
    )
    for stage in backbone.stages():
        for i, block in enumerate(stage):
            stage[i] = TABlock(block, num_segments, **tam_kw)
    backbone.num_segments = num_segments
    backbone.wrap_prefixes = (".block",)
    return backbone


def tam_original_key(key: str) -> str:
    """Map a key of the official TAM code to vidlib's unwrapped TANet naming.

    The layout of liu-zhy/temporal-adaptive-module @ 5fcb46f (``ops/models.py``:
    ``module.base_model`` and ``new_fc``; ``ops/temporal_module.py``:
    ``TemporalBottleneck.net`` and ``tam.{G,L}``):
    ``module.base_model.layerX.Y.net.bn1.weight`` ->
    ``backbone.layerX.Y.conv1.bn.weight`` (the loader then adds the ``.block`` wrapper);
    ``...tam.{G,L}`` (older: ``self_conv.conv_{f,g}``) stay TAM keys; ``module.new_fc``
    -> ``cls_head.fc_cls``. Unknown keys are returned unchanged (and then reported).
    """
    k = (
        key.removeprefix("module.")
        .replace("self_conv.conv_f", "tam.G")
        .replace("self_conv.conv_g", "tam.L")
    )
    if k.startswith("new_fc."):
        return "cls_head.fc_cls." + k[len("new_fc.") :]
    if not k.startswith("base_model."):
        return key
    # drop TemporalBottleneck.net
    k = re.sub(r"^(layer\d+\.\d+)\.net\.", r"\1.", k[len("base_model.") :])
    if re.match(r"^layer\d+\.\d+\.tam\.", k):
        return "backbone." + k
    mm = torchvision_to_mmaction2(k)  # the ResNet keys keep torchvision's names
    return key if mm is None else "backbone." + mm


def load_tam_original(model: nn.Module, checkpoint) -> nn.Module:
    """Load a checkpoint of the official TAM code (liu-zhy/temporal-adaptive-module)
    into a vidlib TANet, strictly."""
    return load_renamed(model, checkpoint, tam_original_key, "official TAM layout")


def _tanet_cfg(num_frames: int, dataset: str) -> dict:
    """The mmaction2 protocol: K400 dense sampling and 10 clips x ThreeCrop(256); sthv1
    segments.

    Training crops: MultiScaleCrop with 13 fixed crops (``num_fixed_crops=13`` in every
    TANet config).
    """
    # sic: the base config's typo (published.yaml tanet_r50_k400.recipe.mean_note)
    mean = (123.675, 116.28, 103.5)
    if dataset == "k400":
        dense = dict(
            name="DenseSampleFrames",
            clip_len=1,
            frame_interval=1,
            num_clips=num_frames,
            sample_range=64,
            num_sample_positions=10,
        )
        return make_cfg(
            num_frames=num_frames,
            sampling=dense,
            test_crops=3,
            test_crop_size=256,
            mean=mean,
            std=IMAGENET_STD,
            num_fixed_crops=13,
            url=URLS["tanet_r50_k400"],
            paper="2005.06803",
            published="tanet_r50_k400",
        )
    key = "tanet_r50_sthv1_16f" if num_frames == 16 else "tanet_r50_sthv1_8f"
    if num_frames == 16:
        # the 16f config's test_pipeline = val_pipeline: one centre-cropped view
        test = dict(test_sampling=seg_sampling(num_frames), test_crops=1)
    else:  # twice_sample doubles the segments' views, x ThreeCrop(256) = 6 views
        test = dict(
            test_sampling={**seg_sampling(num_frames), "twice_sample": True},
            test_crops=3,
            test_crop_size=256,
        )
    return make_cfg(
        num_frames=num_frames,
        sampling=seg_sampling(num_frames),
        mean=mean,
        std=IMAGENET_STD,
        num_fixed_crops=13,
        url=URLS[key],
        paper="2005.06803",
        published=key,
        flip_label_map=dict(STHV1_FLIP_LABEL_MAP),
        **test,
    )


@register_model
def tanet_r50(
    *,
    dataset: str = "k400",
    num_classes: int | None = None,
    num_frames: int = 8,
    dropout: float | None = None,
    alpha: int = 2,
    beta: int = 4,
    adaptive_kernel_size: int = 3,
    imagenet_init=None,
) -> Recognizer2D:
    """TANet-R50 with the protocol of ``dataset``: ``"k400"`` (400 classes, dropout 0.5,
    dense sampling) or ``"sthv1"`` (174 classes, dropout 0.6, segments; 8 or 16 frames).

    Args:
        dataset: selects the cfg (sampling, test views, checkpoint url) and the defaults
            below.
        num_classes: K; default from ``dataset``. Changes only the size of ``fc_cls``.
        num_frames: T (the TAMs' ``num_segments``).
        dropout: before ``fc_cls``; default from ``dataset``.
        alpha, beta, adaptive_kernel_size: α, β and K of :class:`TAM`.
        imagenet_init: a torchvision ResNet-50 file or state dict, copied into the
            backbone by key after the TAMs exist
            (:func:`vidlib.weights.init_from_torchvision`).
    """
    proto = dataset_protocol("tanet_r50", dataset, PROTOCOLS)
    backbone = tanet_backbone(
        num_segments=num_frames,
        alpha=alpha,
        beta=beta,
        adaptive_kernel_size=adaptive_kernel_size,
    )
    num_classes = proto["num_classes"] if num_classes is None else num_classes
    return build_recognizer(
        backbone,
        num_classes=num_classes,
        num_frames=num_frames,
        dropout=proto["dropout"] if dropout is None else dropout,
        imagenet_init=imagenet_init,
        cfg=_tanet_cfg(num_frames, dataset),
    )


tanet_tiny = register_tiny(
    "tanet_tiny", tanet_backbone, "2005.06803", alpha=2, beta=4, adaptive_kernel_size=3
)
