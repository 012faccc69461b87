"""The shared 2D ResNet, the TSN/TSM classification head and the 2D recognizer.

TSN (Wang et al., arXiv 1608.00859), TSM (Lin et al., arXiv 1811.08383), TANet
(arXiv 2005.06803) and TIN (arXiv 2001.06499) all run an ImageNet ResNet-50 on every
frame of a clip and average the per-frame class scores. This file holds that common
part; each paper's file only adds its temporal module into the residual branch of the
blocks.

    clip [B, 3, T, H, W] -> frames [B*T, 3, H, W] -> ResNet2d -> [B*T, 2048, h, w]
        -> ClsHead(ndim=2): avg-pool -> dropout -> fc_cls -> [B*T, K]
        -> mean over T -> logits [B, K]

State-dict keys follow mmaction2 1.x (``ConvModule`` = ``.conv`` + ``.bn``), so
mmaction2 checkpoints load nearly by identity:

    backbone.conv1.{conv,bn}                 backbone.layerX.Y.conv{1,2,3}.{conv,bn}
    backbone.layerX.0.downsample.{conv,bn}   cls_head.fc_cls.{weight,bias}

TSN and TSM are taught in the TIN chapter (``book/tin.md``), as the fixed-shift baseline
TIN learns to improve on, and serve as baselines in the TAM chapter (``book/tam.md``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
import torch.nn as nn

from ..weights import init_from_torchvision
from ._registry import make_cfg, register_model, with_cfg
from .common import ClsHead, check_clip

__all__ = [
    "ConvBN",
    "Bottleneck",
    "ResNet2d",
    "Recognizer2D",
    "build_recognizer",
    "register_tiny",
    "STAGE_BLOCKS",
    "tsn_r50",
    "tsn_tiny",
]

#: Blocks per stage for the bottleneck ResNets (He et al., arXiv 1512.03385, Table 1).
STAGE_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


class ConvBN(nn.Module):
    """Conv2d (no bias) + BatchNorm2d (+ ReLU): mmcv's ``ConvModule`` with the same key
    names."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        act: bool = True,
    ):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """The ResNet bottleneck (1x1 -> 3x3 (stride) -> 1x1, expansion 4), "pytorch"
    style."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = ConvBN(inplanes, planes, 1)
        self.conv2 = ConvBN(planes, planes, 3, stride, 1)
        self.conv3 = ConvBN(planes, out, 1, act=False)
        self.downsample = (
            ConvBN(inplanes, out, 1, stride, act=False)
            if stride != 1 or inplanes != out
            else None
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.conv3(self.conv2(self.conv1(x)))
        return self.relu(out + identity)


class ResNet2d(nn.Module):
    """A 2D bottleneck ResNet on frames ``[N*T, 3, H, W]`` with mmaction2 key names.

    Args:
        depth: 50, 101 or 152 (ignored when ``stage_blocks`` is given).
        stage_blocks: blocks per stage, e.g. ``(1, 1, 1, 1)`` for the tiny variants.
        base_width: channels of the stem and of the first stage's bottleneck (64 for
            ResNet-50); stage i has ``base_width * 2**i`` bottleneck channels and 4x
            that at its output.
        out_indices: 0-based stages whose outputs :meth:`forward` returns, e.g.
            ``(2, 3)`` = res4, res5.

    :meth:`forward` always returns a tuple (one tensor per ``out_indices`` entry).
    Temporal models modify the blocks in place after construction, as mmaction2 does
    (see ``tsm.py``, ``tin.py``, ``tam.py``); :meth:`blocks` lists them.
    """

    def __init__(
        self,
        depth: int = 50,
        *,
        stage_blocks: tuple[int, ...] | None = None,
        base_width: int = 64,
        out_indices: tuple[int, ...] = (3,),
    ):
        super().__init__()
        if stage_blocks is None:
            if depth not in STAGE_BLOCKS:
                raise ValueError(
                    f"ResNet2d: depth must be one of {sorted(STAGE_BLOCKS)} "
                    f"(bottleneck ResNets), got {depth}"
                )
            stage_blocks = STAGE_BLOCKS[depth]
        if not out_indices or any(not 0 <= i < len(stage_blocks) for i in out_indices):
            raise ValueError(
                f"ResNet2d: out_indices must be in [0, {len(stage_blocks)}), "
                f"got {out_indices}"
            )
        self.depth = depth
        self.stage_blocks, self.out_indices = tuple(stage_blocks), tuple(out_indices)
        self.conv1 = ConvBN(3, base_width, 7, 2, 3)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = base_width
        self.res_layers = []
        for i, n in enumerate(stage_blocks):
            planes = base_width * 2**i
            blocks = [
                Bottleneck(
                    inplanes if j == 0 else planes * 4,
                    planes,
                    (1 if i == 0 else 2) if j == 0 else 1,
                )
                for j in range(n)
            ]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            self.res_layers.append(f"layer{i + 1}")
            inplanes = planes * Bottleneck.expansion
        self.stage_channels = tuple(
            base_width * 2**i * Bottleneck.expansion for i in range(len(stage_blocks))
        )
        self.feat_dim = self.stage_channels[-1]
        #: module-path segments that temporal wrappers insert (".net" for TSM ...),
        #: removed to map torchvision keys onto this backbone (mmaction2's
        #: ``_get_wrap_prefix``).
        self.wrap_prefixes: tuple[str, ...] = ()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal (fan_out, ReLU) convolutions, BN weight 1 / bias 0
        (mmaction2's scratch init)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def stages(self) -> list[nn.Sequential]:
        """The residual stages ``layer1..layer4`` in order."""
        return [getattr(self, name) for name in self.res_layers]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(
                f"{type(self).__name__}: expected frames [N*T, 3, H, W], "
                f"got {tuple(x.shape)}"
            )
        x = self.maxpool(self.conv1(x))  # [N*T, base_width, H/4, W/4]
        outs = []
        for i, stage in enumerate(self.stages()):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


class Recognizer2D(nn.Module):
    """mmaction2's ``Recognizer2D`` on vidlib's clip layout: ``[B, 3, T, H, W]`` ->
    logits ``[B, K]``.

    Args:
        backbone: a :class:`ResNet2d` (possibly with temporal modules) returning a tuple
            of stages.
        num_classes, dropout, init_std: see :class:`~vidlib.models.common.ClsHead` (here
            ``ndim=2``).
        num_frames: T. Models with temporal modules (TSM, TANet, TIN) mix exactly T
            frames and reject clips of another length; TSN (``fixed_frames=False``)
            accepts any T.
    """

    def __init__(
        self,
        backbone: ResNet2d,
        *,
        num_classes: int,
        num_frames: int,
        dropout: float = 0.5,
        init_std: float = 0.001,
        fixed_frames: bool = True,
    ):
        super().__init__()
        self.backbone = backbone
        self.cls_head = ClsHead(
            backbone.feat_dim, num_classes, dropout, init_std, ndim=2
        )
        self.num_frames, self.num_classes = num_frames, num_classes
        self.fixed_frames = fixed_frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_clip(
            x,
            type(self).__name__,
            num_frames=self.num_frames if self.fixed_frames else None,
        )
        b, c, t, h, w = x.shape
        # [B, 3, T, H, W] -> [B*T, 3, H, W]
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        feat = self.backbone(frames)[-1]  # [B*T, C, h, w]
        return self.cls_head(feat, t)


def build_recognizer(
    backbone: ResNet2d,
    *,
    num_classes: int,
    num_frames: int,
    dropout: float,
    init_std: float = 0.001,
    fixed_frames: bool = True,
    imagenet_init=None,
    cfg: dict,
) -> Recognizer2D:
    """Wrap ``backbone`` in a :class:`Recognizer2D`, load ImageNet weights if asked,
    attach ``default_cfg``.

    ``imagenet_init`` is a torchvision 2D ResNet file or state dict for
    :func:`vidlib.weights.init_from_torchvision`. It is loaded by key, after every
    temporal module exists, so those modules keep their own init.
    """
    model = Recognizer2D(
        backbone,
        num_classes=num_classes,
        num_frames=num_frames,
        dropout=dropout,
        init_std=init_std,
        fixed_frames=fixed_frames,
    )
    if imagenet_init is not None:
        init_from_torchvision(model, imagenet_init)
    return with_cfg(model, cfg)


# ---------------------------------------------------------------------- TSN entrypoints
#: The tiny backbone every ``*_tiny`` model uses: one bottleneck per stage, widths
#: 16/32/64/128.
TINY = dict(stage_blocks=(1, 1, 1, 1), base_width=16)
TSN_URL = (
    "https://download.openmmlab.com/mmaction/v1.0/recognition/tsn/"
    "tsn_imagenet-pretrained-r50_8xb32-1x1x8-100e_kinetics400-rgb/"
    "tsn_imagenet-pretrained-r50_8xb32-1x1x8-100e_kinetics400-rgb_20220906-2692d16c.pth"
)


def seg_sampling(num_frames: int, test_clips: int | None = None) -> dict:
    """TSN segment sampling ``1x1xT`` (``test_clips`` overrides the number of test-time
    segments)."""
    return dict(
        name="SampleFrames",
        clip_len=1,
        frame_interval=1,
        num_clips=test_clips or num_frames,
    )


def tiny_cfg(num_frames: int, **extra) -> dict:
    """Default cfg of the tiny variants: 1x1xT segment sampling at the synthetic
    benchmark's native 64x64.

    (The models themselves take any size; ``benchmarks/models.py`` times them at
    112x112.)
    """
    return make_cfg(
        num_frames=num_frames,
        crop_size=64,
        resize_short=64,
        sampling=seg_sampling(num_frames),
        **extra,
    )


def register_tiny(
    name: str, make_backbone: Callable[..., ResNet2d], paper: str, **options
) -> Callable[..., Recognizer2D]:
    """Register ``name``, the ``*_tiny`` variant of a 2D model with a temporal module
    (TSM, TIN, TANet): ``make_backbone(num_segments=T, **options)`` on the tiny ResNet
    (:data:`TINY`), in a :class:`Recognizer2D` with :func:`tiny_cfg`.

    The entrypoint's keywords and defaults, in this order: ``num_classes=400``,
    ``num_frames=8`` (T), ``dropout=0.5``, ``options`` (the temporal module's, e.g.
    ``shift_div=8``), ``imagenet_init=None`` (see :func:`build_recognizer`). Its
    signature says so, so that :func:`~vidlib.models.create_model` names them when a
    keyword is unknown.
    """
    defaults = dict(num_classes=400, num_frames=8, dropout=0.5, **options)
    defaults["imagenet_init"] = None

    def entrypoint(**kw) -> Recognizer2D:
        kw = {**defaults, **kw}
        own = {k: kw[k] for k in options}
        backbone = make_backbone(num_segments=kw["num_frames"], **own, **TINY)
        return build_recognizer(
            backbone,
            num_classes=kw["num_classes"],
            num_frames=kw["num_frames"],
            dropout=kw["dropout"],
            imagenet_init=kw["imagenet_init"],
            cfg=tiny_cfg(kw["num_frames"], paper=paper),
        )

    keyword = inspect.Parameter.KEYWORD_ONLY
    entrypoint.__signature__ = inspect.Signature(
        [inspect.Parameter(k, keyword, default=v) for k, v in defaults.items()]
    )
    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__module__ = make_backbone.__module__  # the model's own module
    entrypoint.__doc__ = (
        f"``{make_backbone.__name__}`` on the tiny ResNet (one bottleneck per stage, "
        f"widths 16/32/64/128), arXiv {paper}; see :func:`register_tiny`."
    )
    return register_model(entrypoint)


@register_model
def tsn_r50(
    *,
    num_classes: int = 400,
    num_frames: int = 8,
    dropout: float = 0.4,
    imagenet_init=None,
) -> Recognizer2D:
    """TSN with ResNet-50 (mmaction2
    ``tsn_imagenet-pretrained-r50_8xb32-1x1x8-100e_kinetics400-rgb``).

    Test protocol: 25 segments x TenCrop(224), as in the config's inherited
    ``test_pipeline``. ``imagenet_init``: a torchvision ResNet-50 file or state dict
    (:func:`build_recognizer`).
    """
    cfg = make_cfg(
        num_frames=num_frames,
        sampling=seg_sampling(num_frames),
        test_sampling=seg_sampling(num_frames, 25),
        test_crops=10,
        url=TSN_URL,
        paper="1608.00859",
        published="tsn_r50_k400",
    )
    return build_recognizer(
        ResNet2d(50),
        num_classes=num_classes,
        num_frames=num_frames,
        dropout=dropout,
        init_std=0.01,
        fixed_frames=False,
        imagenet_init=imagenet_init,
        cfg=cfg,
    )


@register_model
def tsn_tiny(
    *,
    num_classes: int = 400,
    num_frames: int = 8,
    dropout: float = 0.4,
    imagenet_init=None,
) -> Recognizer2D:
    """TSN on the tiny ResNet (one bottleneck per stage, widths 16/32/64/128) for CPU
    experiments."""
    return build_recognizer(
        ResNet2d(**TINY),
        num_classes=num_classes,
        num_frames=num_frames,
        dropout=dropout,
        init_std=0.01,
        fixed_frames=False,
        imagenet_init=imagenet_init,
        cfg=tiny_cfg(num_frames, paper="1608.00859"),
    )
