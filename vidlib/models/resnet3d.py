"""The 3D ResNet of mmaction2: SlowOnly, the full-3D reference R3D, the 3D recognizer
and 2D->3D inflation.

Papers: SlowFast (SlowOnly pathway, arXiv 1812.03982), I3D inflation (arXiv 1705.07750)
and the ResNet3D baseline of the CSN paper (arXiv 1904.02811). Used by ``tpn.py`` (TPN
on SlowOnly) and ``csn.py`` (channel-separated bottlenecks). Explained in: the TPN and
CSN chapters.

::

    [B, 3, T, H, W] -> conv1 (k_t x 7 x 7, stride 1x2x2)
                    -> maxpool (1x3x3, stride 1x2x2)
                    -> layer1 .. layer4 (Bottleneck3d; stride on conv2 and the shortcut)
                    -> ClsHead(ndim=3) (mmaction2's I3DHead):
                       global average pool -> dropout -> fc_cls
                    -> [B, num_classes]

State-dict keys follow mmaction2 1.x (``backbone.conv1.conv.weight``,
``backbone.layerX.Y.convN.{conv,bn}``, ``backbone.layerX.0.downsample.{conv,bn}``,
``cls_head.fc_cls``), so :func:`vidlib.weights.load_mmaction2` is the identity on them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from ..weights import (
    CheckpointError,
    load_state_dict_strict,
    read_checkpoint,
    source_name,
)
from ._registry import make_cfg, register_model, with_cfg
from .common import ClsHead, check_clip
from .resnet2d import STAGE_BLOCKS

__all__ = [
    "ConvBNAct3d",
    "Bottleneck3d",
    "ResNet3d",
    "Recognizer3D",
    "inflate_from_2d",
    "torchvision_name",
    "cfg_3d",
    "tiny_cfg_3d",
    "build_recognizer_3d",
    "slowonly_r50",
    "slowonly_tiny",
    "r3d_r50",
    "r3d_tiny",
]

#: The tiny backbone used by every ``*_tiny`` 3D model: one bottleneck per stage, stem
#: width 16.
TINY = dict(stage_blocks=(1, 1, 1, 1), base_channels=16)


class ConvBNAct3d(nn.Module):
    """Conv3d (no bias) -> optional BatchNorm3d -> optional ReLU; mmcv ``ConvModule``
    keys ``conv.*``, ``bn.*``.

    Args:
        padding: ``None`` pads ``(k - 1) // 2`` in every dimension ("same" for odd
            kernels).
        norm: add a BatchNorm3d with ``eps``; act: add a ReLU.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=None,
        *,
        groups: int = 1,
        norm: bool = True,
        act: bool = True,
        eps: float = 1e-5,
    ):
        super().__init__()
        k = (kernel_size,) * 3 if isinstance(kernel_size, int) else tuple(kernel_size)
        padding = tuple((d - 1) // 2 for d in k) if padding is None else padding
        self.conv = nn.Conv3d(
            in_channels, out_channels, k, stride, padding, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm3d(out_channels, eps=eps) if norm else None
        self.act = nn.ReLU(inplace=True) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x) if self.act is not None else x


class Bottleneck3d(nn.Module):
    """The 3D bottleneck (mmaction2 ``Bottleneck3d``, 'pytorch' style: the stride sits
    on conv2).

    Args:
        inflate: inflate this block's kernels over time; ``False`` gives 1x1x1 / 1x3x3
            (a 2D block).
        inflate_style: ``"3x1x1"`` (SlowOnly: conv1 is 3x1x1, conv2 1x3x3) or
            ``"3x3x3"`` (I3D/R3D/CSN: conv1 1x1x1, conv2 3x3x3).
        eps: BatchNorm eps (1e-5; CSN uses Caffe2's 1e-3).
        conv2_kw: extra arguments for :meth:`make_conv2` (subclasses such as CSN's use
            it).
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        *,
        spatial_stride: int = 1,
        temporal_stride: int = 1,
        inflate: bool = True,
        inflate_style: str = "3x1x1",
        eps: float = 1e-5,
        downsample: nn.Module | None = None,
        conv2_kw: dict | None = None,
    ):
        super().__init__()
        if inflate_style not in ("3x1x1", "3x3x3"):
            raise ValueError(
                f"inflate_style must be '3x1x1' or '3x3x3', got {inflate_style!r}"
            )
        k1, k2 = (1, 1, 1), (1, 3, 3)
        if inflate:
            k1, k2 = (
                ((3, 1, 1), (1, 3, 3))
                if inflate_style == "3x1x1"
                else ((1, 1, 1), (3, 3, 3))
            )
        stride = (temporal_stride, spatial_stride, spatial_stride)
        self.conv1 = ConvBNAct3d(inplanes, planes, k1, eps=eps)
        self.conv2 = self.make_conv2(planes, k2, stride, eps, **(conv2_kw or {}))
        self.conv3 = ConvBNAct3d(planes, planes * self.expansion, 1, act=False, eps=eps)
        self.downsample = downsample
        self.relu = nn.ReLU(inplace=True)

    def make_conv2(
        self, planes: int, kernel: tuple, stride: tuple, eps: float
    ) -> nn.Module:
        """The spatio-temporal conv of the block: a dense conv + BN + ReLU."""
        return ConvBNAct3d(planes, planes, kernel, stride, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv3(self.conv2(self.conv1(x))) + identity)


def _per_block(value, blocks: int, what: str) -> tuple:
    """A stage setting given as one int or one value per block -> a tuple of ``blocks``
    values."""
    values = (value,) * blocks if isinstance(value, int) else tuple(value)
    if len(values) != blocks:
        raise ValueError(
            f"{what} has {len(values)} entries for a stage of {blocks} blocks"
        )
    return values


class ResNet3d(nn.Module):
    """mmaction2's ``ResNet3d`` (SlowOnly, R3D and CSN are configurations of it).

    Args:
        depth: 50, 101 or 152 (sets ``stage_blocks``); or give ``stage_blocks``
            directly.
        base_channels: width of the stem; stage i has ``base_channels * 2**i`` planes.
        block: the bottleneck class (:class:`Bottleneck3d` or CSN's); ``block_kw`` is
            passed to each block.
        conv1_kernel: stem kernel (1,7,7) for SlowOnly, (3,7,7) for R3D/CSN.
        conv1_stride_t, pool1_stride_t: temporal strides of the stem conv and max pool.
        spatial_strides, temporal_strides: per-stage strides of the first block (conv2
            and shortcut).
        inflate: per stage, 0/1 or one 0/1 per block (SlowOnly: (0, 0, 1, 1)).
        inflate_style: see :class:`Bottleneck3d`.
        out_indices: stages whose outputs :meth:`forward` returns (0-based; 3 = res5).
        eps: BatchNorm eps everywhere.
        norm_eval: keep every BatchNorm in eval mode (running statistics frozen) in
            ``train()``.
        zero_init_residual: start each block's last BN weight at 0 (mmaction2's scratch
            init).
    """

    def __init__(
        self,
        *,
        depth: int = 50,
        stage_blocks: Sequence[int] | None = None,
        base_channels: int = 64,
        block: type[Bottleneck3d] = Bottleneck3d,
        block_kw: dict | None = None,
        conv1_kernel=(1, 7, 7),
        conv1_stride_t: int = 1,
        pool1_stride_t: int = 1,
        spatial_strides=(1, 2, 2, 2),
        temporal_strides=(1, 1, 1, 1),
        inflate=(0, 0, 1, 1),
        inflate_style: str = "3x1x1",
        out_indices: Sequence[int] = (3,),
        eps: float = 1e-5,
        norm_eval: bool = False,
        zero_init_residual: bool = True,
    ):
        super().__init__()
        if stage_blocks is None:
            if depth not in STAGE_BLOCKS:
                raise ValueError(
                    f"depth must be one of {sorted(STAGE_BLOCKS)}, got {depth}"
                )
            stage_blocks = STAGE_BLOCKS[depth]
        if max(out_indices) >= len(stage_blocks):
            raise ValueError(
                f"out_indices {tuple(out_indices)} exceed the "
                f"{len(stage_blocks)} stages"
            )
        self.out_indices, self.norm_eval = tuple(out_indices), norm_eval
        self.conv1 = ConvBNAct3d(
            3, base_channels, conv1_kernel, (conv1_stride_t, 2, 2), eps=eps
        )
        self.maxpool = nn.MaxPool3d((1, 3, 3), (pool1_stride_t, 2, 2), (0, 1, 1))
        inplanes, self.out_channels = base_channels, []
        for i, blocks in enumerate(stage_blocks):
            planes = base_channels * 2**i
            layer = self._make_layer(
                block,
                inplanes,
                planes,
                blocks,
                spatial_strides[i],
                temporal_strides[i],
                _per_block(inflate[i], blocks, f"inflate[{i}]"),
                inflate_style,
                eps,
                block_kw or {},
            )
            self.add_module(f"layer{i + 1}", layer)
            inplanes = planes * block.expansion
            self.out_channels.append(inplanes)
        self.init_weights(zero_init_residual)

    @staticmethod
    def _make_layer(
        block,
        inplanes,
        planes,
        blocks,
        spatial_stride,
        temporal_stride,
        inflate,
        style,
        eps,
        kw,
    ):
        downsample = None
        if spatial_stride != 1 or inplanes != planes * block.expansion:
            downsample = ConvBNAct3d(
                inplanes,
                planes * block.expansion,
                1,
                (temporal_stride, spatial_stride, spatial_stride),
                act=False,
                eps=eps,
            )
        layers = [
            block(
                inplanes,
                planes,
                spatial_stride=spatial_stride,
                temporal_stride=temporal_stride,
                inflate=bool(inflate[0]),
                inflate_style=style,
                eps=eps,
                downsample=downsample,
                **kw,
            )
        ]
        layers += [
            block(
                planes * block.expansion,
                planes,
                inflate=bool(f),
                inflate_style=style,
                eps=eps,
                **kw,
            )
            for f in inflate[1:]
        ]
        return nn.Sequential(*layers)

    def init_weights(self, zero_init_residual: bool = True) -> None:
        """mmaction2's scratch init: Kaiming-normal (fan_out, ReLU) convs, BN weight 1 /
        bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck3d):
                    nn.init.zeros_(m.conv3.bn.weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``[N, 3, T, H, W]`` -> the tuple of stage outputs in ``out_indices``, each
        ``[N, C, T', H', W']``."""
        x = self.maxpool(self.conv1(x))
        outs = []
        # stages after the last requested one are not run
        for i in range(max(self.out_indices) + 1):
            x = getattr(self, f"layer{i + 1}")(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self


class Recognizer3D(nn.Module):
    """``backbone`` (a :class:`ResNet3d`) -> last stage -> ``cls_head``; input
    ``[B, 3, T, H, W]``."""

    def __init__(
        self, backbone: ResNet3d, cls_head: nn.Module, name: str = "Recognizer3D"
    ):
        super().__init__()
        self.backbone, self.cls_head, self.name = backbone, cls_head, name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_clip(x, self.name)
        return self.cls_head(self.backbone(x)[-1])


# ------------------------------------------------------------------- 2D -> 3D inflation
def torchvision_name(name: str) -> tuple[str, str]:
    """torchvision ResNet names of the conv and BN behind the mmaction2 ``ConvModule``
    ``name``.

    ``conv1`` -> (``conv1``, ``bn1``);
    ``layerX.Y.convN`` -> (``layerX.Y.convN``, ``layerX.Y.bnN``);
    ``layerX.Y.downsample`` -> (``layerX.Y.downsample.0``, ``layerX.Y.downsample.1``).
    """
    if name.endswith("downsample"):
        return name + ".0", name + ".1"
    head, _, last = name.rpartition(".")
    if not (last.startswith("conv") and last[4:].isdigit()):
        raise ValueError(f"module {name!r} has no torchvision ResNet counterpart")
    return name, (head + "." if head else "") + "bn" + last[4:]


def inflate_from_2d(model: nn.Module, state_dict_2d) -> list[str]:
    """Initialise a 3D ResNet from a torchvision 2D ResNet checkpoint (I3D inflation, as
    in mmaction2).

    Each 2D kernel ``W2`` ``[O, I, k, k]`` becomes ``W3[:, :, t] = W2 / k_t`` for every
    ``t`` of a ``[O, I, k_t, k, k]`` kernel, so a clip of identical frames reproduces
    the 2D activations. BatchNorm parameters and statistics are copied
    (``num_batches_tracked`` may be absent: old torchvision files lack it). ``fc.*`` is
    ignored. Every other 2D key must be used and every backbone key filled, else
    :class:`vidlib.weights.CheckpointError` lists all offending keys.

    Args:
        model: a recognizer with ``.backbone`` (``slowonly_r50``, ``tpn_slowonly_r50``
            ...) or a :class:`ResNet3d`; only the backbone is touched (the heads keep
            their init).
        state_dict_2d: a torchvision ResNet state dict or a file / dict that
            :func:`vidlib.weights.read_checkpoint` reads.

    Returns the 2D keys that were used.
    """
    source = source_name(state_dict_2d)
    sd2d = read_checkpoint(state_dict_2d, "state_dict", "model")
    backbone = getattr(model, "backbone", model)
    own = backbone.state_dict()
    new, missing, mismatched = {}, [], []
    for name, m in backbone.named_modules():
        if not isinstance(m, ConvBNAct3d):
            continue
        conv2d, bn2d = torchvision_name(name)
        pairs = [(f"{name}.conv.weight", f"{conv2d}.weight")]
        pairs += [(f"{name}.bn.{p}", f"{bn2d}.{p}") for p in _BN_KEYS]
        for key3d, key2d in pairs:
            target = own[key3d]
            if key2d not in sd2d:
                if key2d.endswith("num_batches_tracked"):
                    new[key3d] = target  # keep the model's counter
                else:
                    missing.append(f"{key2d} (for {key3d})")
                continue
            value = sd2d[key2d]
            # drop k_t
            expected = (
                target.shape[:2] + target.shape[3:]
                if target.dim() == 5
                else target.shape
            )
            if value.shape != expected:
                mismatched.append((f"{key2d} (for {key3d})", value.shape, expected))
            elif target.dim() == 5:
                # [O, I, k_t, k, k]
                new[key3d] = value.unsqueeze(2).expand_as(target) / target.shape[2]
            else:
                new[key3d] = value
    read = _used_2d_keys(backbone)
    unexpected = sorted(k for k in sd2d if k not in read and not k.startswith("fc."))
    if missing or unexpected or mismatched:
        raise CheckpointError(
            source,
            missing,
            unexpected,
            mismatched,
            note="  (torchvision 2D ResNet -> 3D backbone by inflation; "
            "fc.* is ignored)",
        )
    load_state_dict_strict(backbone, new, source=f"{source} inflated to 3D")
    return sorted(k for k in sd2d if k in read)


_BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _used_2d_keys(backbone: nn.Module) -> set[str]:
    """Every 2D key :func:`inflate_from_2d` reads for ``backbone``."""
    keys = set()
    for name, m in backbone.named_modules():
        if isinstance(m, ConvBNAct3d):
            conv2d, bn2d = torchvision_name(name)
            keys |= {f"{conv2d}.weight"} | {f"{bn2d}.{p}" for p in _BN_KEYS}
    return keys


# -------------------------------------------------------------------- registered models
def slowonly_backbone(*, tiny: bool = False, out_indices=(3,), **kw) -> ResNet3d:
    """SlowOnly-R50 (8x8): stem (1,7,7), no temporal striding, 3x1x1 conv1 in res4 and
    res5 only."""
    size = TINY if tiny else dict(depth=50)
    return ResNet3d(
        **size,
        conv1_kernel=(1, 7, 7),
        inflate=(0, 0, 1, 1),
        inflate_style="3x1x1",
        out_indices=out_indices,
        **kw,
    )


def r3d_backbone(
    *, tiny: bool = False, depth: int = 50, eps: float = 1e-3, **kw
) -> ResNet3d:
    """The full-3D bottleneck ResNet: CSN's layout (stem (3,7,7), temporal strides
    (1,2,2,2), eps 1e-3) with dense 3x3x3 conv2 in every block: the baseline the CSN
    paper factorises."""
    size = TINY if tiny else dict(depth=depth)
    return ResNet3d(
        **size,
        conv1_kernel=(3, 7, 7),
        temporal_strides=(1, 2, 2, 2),
        inflate=(1, 1, 1, 1),
        inflate_style="3x3x3",
        eps=eps,
        **kw,
    )


def build_recognizer_3d(
    backbone: ResNet3d, name: str, num_classes: int, dropout: float, cfg: dict
) -> Recognizer3D:
    """A :class:`Recognizer3D`: ``backbone`` -> :class:`ClsHead` on its last stage,
    with ``cfg`` as its ``default_cfg``."""
    head = ClsHead(backbone.out_channels[-1], num_classes, dropout)
    return with_cfg(Recognizer3D(backbone, head, name=name), cfg)


def _build3d(
    backbone: ResNet3d,
    name: str,
    num_classes: int,
    dropout: float,
    cfg: dict,
    inflate_from=None,
) -> Recognizer3D:
    model = build_recognizer_3d(backbone, name, num_classes, dropout, cfg)
    if inflate_from is not None:
        inflate_from_2d(model, inflate_from)
    return model


_SLOWONLY_URL = (
    "https://download.openmmlab.com/mmaction/v1.0/recognition/slowonly/"
    "slowonly_imagenet-pretrained-r50_8xb16-8x8x1-steplr-150e_kinetics400-rgb/"
    "slowonly_imagenet-pretrained-r50_8xb16-8x8x1-steplr-150e_kinetics400-rgb_"
    "20220901-df42dc84.pth"
)


def cfg_3d(num_frames: int, interval: int, **extra) -> dict:
    """Kinetics protocol of the mmaction2 3D configs (SlowOnly, R3D, CSN, TPN-SlowOnly):
    1 clip T x interval, RandomResizedCrop and flip for training; 10 clips x
    ThreeCrop(256) at test."""
    train = dict(
        name="SampleFrames", clip_len=num_frames, frame_interval=interval, num_clips=1
    )
    return make_cfg(
        num_frames=num_frames,
        sampling=train,
        test_sampling=dict(train, num_clips=10),
        test_crops=3,
        test_crop_size=256,
        train_crop="random_resized",
        **extra,
    )


def tiny_cfg_3d(num_frames: int, **extra) -> dict:
    """Default cfg of the tiny 3D variants: one clip of T frames every 2nd frame,
    112x112 crops of 128-short-side frames (as the 2D tiny variants; chapters override
    the sizes for their data)."""
    return make_cfg(
        num_frames=num_frames,
        crop_size=112,
        resize_short=128,
        sampling=dict(
            name="SampleFrames", clip_len=num_frames, frame_interval=2, num_clips=1
        ),
        **extra,
    )


@register_model
def slowonly_r50(
    *,
    num_classes: int = 400,
    num_frames: int = 8,
    dropout: float = 0.5,
    inflate_from=None,
    **kw,
):
    """SlowOnly-R50 8x8 (mmaction2
    ``slowonly_imagenet-pretrained-r50_8xb16-8x8x1-steplr-150e``).

    ``inflate_from``: a torchvision 2D ResNet-50 state dict or file, inflated into the
    3D backbone with :func:`inflate_from_2d`.
    """
    cfg = cfg_3d(num_frames, 8, url=_SLOWONLY_URL, paper="1812.03982")
    return _build3d(
        slowonly_backbone(**kw), "slowonly_r50", num_classes, dropout, cfg, inflate_from
    )


@register_model
def slowonly_tiny(
    *, num_classes: int = 400, num_frames: int = 8, dropout: float = 0.5, **kw
):
    """SlowOnly layout on the tiny backbone (one bottleneck per stage, widths 16..128
    planes)."""
    return _build3d(
        slowonly_backbone(tiny=True, **kw),
        "slowonly_tiny",
        num_classes,
        dropout,
        tiny_cfg_3d(num_frames, paper="1812.03982"),
    )


@register_model
def r3d_r50(
    *, num_classes: int = 400, num_frames: int = 32, dropout: float = 0.5, **kw
):
    """Full-3D bottleneck ResNet-50 (dense 3x3x3 conv2), laid out like ``ircsn_r50`` for
    comparison."""
    cfg = cfg_3d(num_frames, 2, paper="1904.02811")
    return _build3d(
        r3d_backbone(zero_init_residual=False, **kw),
        "r3d_r50",
        num_classes,
        dropout,
        cfg,
    )


@register_model
def r3d_tiny(
    *, num_classes: int = 400, num_frames: int = 8, dropout: float = 0.5, **kw
):
    """Full-3D bottleneck on the tiny backbone: the dense counterpart of ``ircsn_tiny``
    / ``ipcsn_tiny``."""
    return _build3d(
        r3d_backbone(tiny=True, zero_init_residual=False, **kw),
        "r3d_tiny",
        num_classes,
        dropout,
        tiny_cfg_3d(num_frames, paper="1904.02811"),
    )
