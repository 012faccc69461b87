"""Temporal Pyramid Network (TPN): a feature-level pyramid of visual tempos.

Paper: Yang, Xu, Shi, Dai, Zhou, "Temporal Pyramid Network for Action Recognition", CVPR
2020, arXiv 2004.03548. Reference code: mmaction2 1.2.0 (``necks/tpn.py``,
``heads/tpn_head.py``).
Explained in: the TPN chapter.

TPN is a *neck* on two backbone levels, res4 and res5 (SlowOnly-R50 or TSM-R50)::

    res4 [N,1024,T,14,14] --spatial modulation (1x3x3 s2 conv)--> [N,2048,T,7,7]
    res5 [N,2048,T, 7, 7] --identity-------------------------->  [N,2048,T,7,7]
        each --temporal modulation--> M4, M5
        temporal modulation: 3x1x1 conv (groups 32, no BN/ReLU) to 1024 ch,
        then max pool T/8 (ceil)
    top-down:  M4 += M5 (identity upsample)     -> level_fusion_1 -> [N,2048,T/8,7,7]
    bottom-up: M5 += conv3x1x1(M4) on the top-down result
                                                -> level_fusion_2 -> [N,2048,T/8,7,7]
        ("cascade" flow; level fusion: grouped 1x1x1 conv+BN+ReLU per level, concat,
        1x1x1 conv+BN+ReLU)
    pyramid fusion: concat (4096) -> 1x1x1 conv+BN+ReLU -> [N,2048,T/8,7,7]
        -> head (avg pool, fc_cls)
    auxiliary head (training only, loss weight 0.5):
        res4 -> 1x3x3 s2 conv+BN+ReLU -> pool -> fc

mmaction2 tests "fully convolutionally": it pools, then applies ``fc_cls`` as a lazily
built 1x1x1 conv ``cls_head.new_cls`` copied from ``fc_cls`` once (and then never
refreshed during training). Pooling then a linear layer is the same function, so vidlib
computes pool + ``fc_cls`` and its key map drops any ``cls_head.new_cls.*`` found in a
checkpoint, reporting it (:func:`mmaction2_key_map`). In training, mmaction2's 2D
recognizer (TPN-TSM) squeezes the neck's T/8 = 1 axis and average-pools H x W: the same
global average at the configs' T = 8.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from ..data.annotations import STHV1_FLIP_LABEL_MAP
from ..utils import num_params
from ..weights import init_from_torchvision
from ._registry import dataset_protocol, make_cfg, register_model, with_cfg
from .common import ClsHead, check_clip
from .resnet2d import TINY as TINY_2D
from .resnet2d import tiny_cfg
from .resnet3d import (
    ConvBNAct3d,
    cfg_3d,
    inflate_from_2d,
    slowonly_backbone,
    tiny_cfg_3d,
)
from .tsm import resnet_tsm

__all__ = [
    "DownSample",
    "LevelFusion",
    "SpatialModulation",
    "AuxHead",
    "TPNNeck",
    "TPN",
    "AuxClassifier",
    "mmaction2_key_map",
    "tpn_slowonly_r50",
    "tpn_tsm_r50",
    "tpn_slowonly_tiny",
    "tpn_tsm_tiny",
]


class DownSample(nn.Module):
    """mmaction2's ``DownSample``: a conv (``conv``, optionally with BN/ReLU) and a max
    pool whose kernel = stride = ``scale`` (ceil mode), applied after the conv or, with
    ``pool_first``, before it."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size=(3, 1, 1),
        *,
        groups: int = 1,
        norm: bool = False,
        act: bool = False,
        scale=(1, 1, 1),
        pool_first: bool = False,
    ):
        super().__init__()
        self.conv = ConvBNAct3d(
            in_channels, out_channels, kernel_size, groups=groups, norm=norm, act=act
        )
        self.pool = nn.MaxPool3d(scale, scale, ceil_mode=True)
        self.pool_first = pool_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x)) if self.pool_first else self.pool(self.conv(x))


class LevelFusion(nn.Module):
    """Fuse the pyramid levels: per level a grouped 1x1x1 conv + BN + ReLU, concat,
    1x1x1 conv + BN + ReLU."""

    def __init__(self, in_channels: Sequence[int], out_channels: int, groups: int = 32):
        super().__init__()
        self.downsamples = nn.ModuleList(
            DownSample(c, c, 1, groups=groups, norm=True, act=True, pool_first=True)
            for c in in_channels
        )
        self.fusion_conv = ConvBNAct3d(sum(in_channels), out_channels, 1)

    def forward(self, x: Sequence[torch.Tensor]) -> torch.Tensor:
        # [N, sum C, ...]
        x = torch.cat([op(f) for op, f in zip(self.downsamples, x)], 1)
        return self.fusion_conv(x)


class SpatialModulation(nn.Module):
    """Spatial semantic modulation: level i gets log2(C_top / C_i) stride-2 (1x3x3)
    convs + BN + ReLU, each doubling the channels, so that every level matches the top
    level's channels and resolution."""

    def __init__(self, in_channels: Sequence[int], out_channels: int):
        super().__init__()
        ops = []
        for c in in_channels:
            n = (out_channels // c).bit_length() - 1  # log2 of the channel ratio
            convs = [
                ConvBNAct3d(c * 2**j, c * 2 ** (j + 1), (1, 3, 3), (1, 2, 2))
                for j in range(n)
            ]
            ops.append(nn.Sequential(*convs) if convs else nn.Identity())
        self.spatial_modulation = nn.ModuleList(ops)

    def forward(self, x: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [op(f) for op, f in zip(self.spatial_modulation, x)]


class AuxHead(nn.Module):
    """The auxiliary classifier on res4 (training only): 1x3x3 s2 conv + BN + ReLU ->
    pool -> dropout -> fc."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.5):
        super().__init__()
        self.conv = ConvBNAct3d(in_channels, in_channels * 2, (1, 3, 3), (1, 2, 2))
        self.avg_pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels * 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avg_pool(self.conv(x)).flatten(1)  # [N, 2C, 1, 1, 1] -> [N, 2C]
        return self.fc(self.dropout(x))


class TPNNeck(nn.Module):
    """The TPN neck (mmaction2 ``TPN`` with the configs' settings; keys ``neck.*`` as in
    mmaction2).

    Args:
        in_channels: channels of the backbone levels, low to high ((1024, 2048) = res4,
            res5).
        out_channels: channels of each level after temporal modulation (1024).
        fusion_channels: output of each level fusion and of the pyramid fusion (2048;
            the head's input).
        temporal_scales: per level, the temporal max-pool factor of the temporal
            modulation ((8, 8)).
        aux_classes: classes of the auxiliary head on level ``-2``.
        groups: groups of the temporal-modulation and level-fusion convs (32).
        flow: ``"cascade"`` (bottom-up starts from the top-down result, mmaction2's
            default) or ``"parallel"``.
    """

    def __init__(
        self,
        in_channels: Sequence[int] = (1024, 2048),
        out_channels: int = 1024,
        fusion_channels: int = 2048,
        temporal_scales: Sequence[int] = (8, 8),
        aux_classes: int = 400,
        groups: int = 32,
        flow: str = "cascade",
    ):
        super().__init__()
        if flow not in ("cascade", "parallel"):
            raise ValueError(f"flow must be 'cascade' or 'parallel', got {flow!r}")
        top, levels = in_channels[-1], len(in_channels)
        self.flow = flow
        self.aux_head = AuxHead(in_channels[-2], aux_classes)
        self.spatial_modulation = SpatialModulation(in_channels, top)
        self.temporal_modulation_ops = nn.ModuleList(
            DownSample(top, out_channels, (3, 1, 1), groups=groups, scale=(s, 1, 1))
            for s in temporal_scales
        )
        self.downsample_ops = nn.ModuleList(
            DownSample(out_channels, out_channels) for _ in range(levels - 1)
        )
        self.level_fusion_1 = LevelFusion(
            [out_channels] * levels, fusion_channels, groups
        )
        self.level_fusion_2 = LevelFusion(
            [out_channels] * levels, fusion_channels, groups
        )
        self.pyramid_fusion = ConvBNAct3d(2 * fusion_channels, fusion_channels, 1)
        self.init_weights()

    def init_weights(self) -> None:
        """mmaction2's init: Xavier-uniform convs, BN weight 1 / bias 0; aux fc
        normal(std 0.01)."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.xavier_uniform_(m.weight)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.aux_head.fc.weight, std=0.01)
        nn.init.zeros_(self.aux_head.fc.bias)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Backbone levels ``[N, C_i, T, H_i, W_i]`` ->
        ``[N, fusion_channels, T/8, H_top, W_top]``."""
        spatial = self.spatial_modulation(feats)
        levels = [op(f) for op, f in zip(self.temporal_modulation_ops, spatial)]
        top_down = list(levels)
        for i in range(len(top_down) - 1, 0, -1):
            # identity upsample (scale 1x1x1)
            top_down[i - 1] = top_down[i - 1] + top_down[i]
        bottom_up = list(top_down if self.flow == "cascade" else levels)
        for i, op in enumerate(self.downsample_ops):
            bottom_up[i + 1] = bottom_up[i + 1] + op(bottom_up[i])
        # [N, 2F, ...]
        fused = torch.cat(
            [self.level_fusion_1(top_down), self.level_fusion_2(bottom_up)], 1
        )
        return self.pyramid_fusion(fused)


def mmaction2_key_map(key: str) -> str | None:
    """mmaction2 -> vidlib keys for TPN: identical, except the stale fully-convolutional
    test classifier ``cls_head.new_cls.*`` (a copy of ``fc_cls``), which is dropped (the
    loader reports it)."""
    return None if key.startswith("cls_head.new_cls.") else key


class TPN(nn.Module):
    """Backbone (res4, res5) -> :class:`TPNNeck` -> head; input ``[B, 3, T, H, W]``.

    Args:
        backbone: a 3D backbone (``[N, 3, T, H, W]`` in) or, with ``num_segments``, a 2D
            frame backbone (``[N*T, 3, H, W]`` in, e.g. TSM); either returns the tuple
            (res4, res5).
        num_segments: T of a 2D backbone (clips of another length are rejected);
            ``None`` for 3D.

        aux_loss_weight: the weight of the auxiliary loss (0.5 in the configs); the
            engine trains with ``CE(logits) + aux_loss_weight * CE(aux)``. ``None``: no
            auxiliary loss (the ablation; the head stays, untrained, so the keys match).

    ``model(x)`` returns logits and never runs the auxiliary head.
    ``model(x, return_aux=True)`` returns ``(logits, {"aux": aux_logits})``.
    """

    mmaction2_key_map = staticmethod(mmaction2_key_map)

    def __init__(
        self,
        backbone: nn.Module,
        neck: TPNNeck,
        cls_head: nn.Module,
        *,
        num_segments: int | None = None,
        name: str = "TPN",
        aux_loss_weight: float | None = 0.5,
    ):
        super().__init__()
        self.backbone, self.neck, self.cls_head = backbone, neck, cls_head
        self.num_segments, self.name = num_segments, name
        self.aux_loss_weight = aux_loss_weight

    def extract_feat(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The backbone levels as ``[B, C, T, h, w]`` tensors."""
        check_clip(x, self.name, num_frames=self.num_segments)
        if self.num_segments is None:
            return self.backbone(x)
        b, c, t, h, w = x.shape
        # frames [B*T, 3, H, W]
        feats = self.backbone(x.transpose(1, 2).reshape(b * t, c, h, w))
        # [B*T, C, h, w] -> [B, C, T, h, w]
        return tuple(f.view(b, t, *f.shape[1:]).transpose(1, 2) for f in feats)

    def forward(self, x: torch.Tensor, return_aux: bool = False):
        feats = self.extract_feat(x)
        logits = self.cls_head(self.neck(feats))
        if not return_aux:
            return logits
        return logits, {"aux": self.neck.aux_head(feats[-2])}

    def num_params_inference(self) -> int:
        """Parameters used at inference: all but the auxiliary head's (71.80M for
        TPN-SlowOnly-R50)."""
        return num_params(self) - num_params(self.neck.aux_head)


class AuxClassifier(nn.Module):
    """A TPN's auxiliary head as a classifier of its own (backbone up to res4, then the
    auxiliary head; shares the TPN's modules): what res4 alone tells about the clip."""

    def __init__(self, tpn: TPN):
        super().__init__()
        self.tpn = tpn
        self.default_cfg = tpn.default_cfg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tpn.neck.aux_head(self.tpn.extract_feat(x)[-2])  # res4 -> [B, K]


# -------------------------------------------------------------------- registered models
_URL = "https://download.openmmlab.com/mmaction/v1.0/recognition/tpn/{0}/{0}_{1}.pth"
_SLOWONLY = "tpn-slowonly_imagenet-pretrained-r50_8xb8-8x8x1-150e_kinetics400-rgb"
_TSM = "tpn-tsm_imagenet-pretrained-r50_8xb8-1x1x8-150e_sthv1-rgb"


def _tpn(
    backbone,
    name,
    num_classes,
    dropout,
    cfg,
    *,
    channels,
    num_segments=None,
    aux_loss_weight=0.5,
    **neck_kw,
) -> TPN:
    c4, c5 = channels
    neck = TPNNeck(
        (c4, c5),
        out_channels=c4,
        fusion_channels=c5,
        aux_classes=num_classes,
        **neck_kw,
    )
    model = TPN(
        backbone,
        neck,
        ClsHead(c5, num_classes, dropout),
        num_segments=num_segments,
        name=name,
        aux_loss_weight=aux_loss_weight,
    )
    return with_cfg(model, cfg)


@register_model
def tpn_slowonly_r50(
    *,
    num_classes: int = 400,
    num_frames: int = 8,
    dropout: float = 0.5,
    inflate_from=None,
    **kw,
) -> TPN:
    """TPN on SlowOnly-R50 8x8 (mmaction2
    ``tpn-slowonly_imagenet-pretrained-r50_8xb8-8x8x1-150e``).

    91,498,336 params with the 400-class heads, 71.80M without the auxiliary head.
    ``inflate_from``: a torchvision 2D ResNet-50 file or state dict, inflated into the
    3D backbone (:func:`inflate_from_2d`). Train: 8x8 clip, RandomResizedCrop, flip,
    ColorJitter. Test: 10 clips x ThreeCrop(256) = 30 views. (The config's val pipeline
    also has a random ColorJitter; vidlib's val mode does not copy it.) The from-scratch
    variant (published key ``tpn_slowonly_r50_scratch_k400``) has the same architecture.
    """
    cfg = cfg_3d(
        num_frames,
        8,
        color_jitter=True,
        paper="2004.03548",
        published="tpn_slowonly_r50_k400",
        url=_URL.format(_SLOWONLY, "20220913-fed3f4c1"),
    )
    backbone = slowonly_backbone(out_indices=(2, 3))
    model = _tpn(
        backbone,
        "tpn_slowonly_r50",
        num_classes,
        dropout,
        cfg,
        channels=backbone.out_channels[2:],
        **kw,
    )
    if inflate_from is not None:
        inflate_from_2d(model, inflate_from)
    return model


@register_model
def tpn_tsm_r50(
    *,
    dataset: str = "sthv1",
    num_classes: int | None = None,
    num_frames: int = 8,
    dropout: float = 0.5,
    shift_div: int = 8,
    imagenet_init=None,
    **kw,
) -> TPN:
    """TPN on TSM-R50 (mmaction2
    ``tpn-tsm_imagenet-pretrained-r50_8xb8-1x1x8-150e_sthv1``).

    ``dataset``: ``"sthv1"``, the only published protocol (174 classes, the default of
    ``num_classes``, which only sizes the two classifiers). 82,445,724 params with 174
    classes. ``imagenet_init``: a torchvision 2D ResNet-50 file or state dict, copied
    into the TSM backbone by key (:func:`vidlib.weights.init_from_torchvision`). Train:
    1x1x8 segments, RandomResizedCrop, flip with the sthv1 label map, ColorJitter. Test:
    ``twice_sample`` (2 clips of T segments) x ThreeCrop(256) = 6 views.
    """
    proto = dataset_protocol("tpn_tsm_r50", dataset, {"sthv1": dict(num_classes=174)})
    num_classes = proto["num_classes"] if num_classes is None else num_classes
    train = dict(
        name="SampleFrames", clip_len=1, frame_interval=1, num_clips=num_frames
    )
    cfg = make_cfg(
        num_frames=num_frames,
        sampling=train,
        test_sampling=dict(train, twice_sample=True),
        test_crops=3,
        test_crop_size=256,
        train_crop="random_resized",
        color_jitter=True,
        flip_label_map=dict(STHV1_FLIP_LABEL_MAP),
        paper="2004.03548",
        published="tpn_tsm_r50_sthv1",
        url=_URL.format(_TSM, "20230221-940a3615"),
    )
    backbone = resnet_tsm(
        depth=50, num_segments=num_frames, shift_div=shift_div, out_indices=(2, 3)
    )
    model = _tpn(
        backbone,
        "tpn_tsm_r50",
        num_classes,
        dropout,
        cfg,
        channels=backbone.stage_channels[2:],
        num_segments=num_frames,
        **kw,
    )
    if imagenet_init is not None:
        init_from_torchvision(model, imagenet_init)
    return model


@register_model
def tpn_slowonly_tiny(
    *, num_classes: int = 400, num_frames: int = 8, dropout: float = 0.5, **kw
) -> TPN:
    """TPN on the tiny SlowOnly (one bottleneck per stage; levels of 256 and 512
    channels)."""
    backbone = slowonly_backbone(tiny=True, out_indices=(2, 3))
    cfg = tiny_cfg_3d(num_frames, paper="2004.03548")
    return _tpn(
        backbone,
        "tpn_slowonly_tiny",
        num_classes,
        dropout,
        cfg,
        channels=backbone.out_channels[2:],
        **kw,
    )


@register_model
def tpn_tsm_tiny(
    *,
    num_classes: int = 400,
    num_frames: int = 8,
    dropout: float = 0.5,
    shift_div: int = 8,
    **kw,
) -> TPN:
    """TPN on the tiny TSM (one bottleneck per stage; levels of 256 and 512
    channels)."""
    backbone = resnet_tsm(
        num_segments=num_frames, shift_div=shift_div, out_indices=(2, 3), **TINY_2D
    )
    cfg = tiny_cfg(num_frames, paper="2004.03548")
    return _tpn(
        backbone,
        "tpn_tsm_tiny",
        num_classes,
        dropout,
        cfg,
        channels=backbone.stage_channels[2:],
        num_segments=num_frames,
        **kw,
    )
