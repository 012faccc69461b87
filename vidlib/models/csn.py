"""Channel-Separated Convolutional Networks (CSN): ir-CSN and ip-CSN.

Paper: Tran, Wang, Torresani, Feiszli, "Video Classification with Channel-Separated
Convolutional Networks", ICCV 2019, arXiv 1904.02811. Reference code: mmaction2 1.2.0
``ResNet3dCSN`` (ports of the official VMZ/Caffe2 weights). Explained in: the CSN
chapter.

CSN factorises the dense 3x3x3 conv of a 3D bottleneck (``r3d_*`` in ``resnet3d.py``) so
that channel interactions and spatio-temporal interactions are separated::

    dense (R3D):  1x1x1 -> 3x3x3 (planes x planes)                   -> 1x1x1
    ip-CSN:       1x1x1 -> 1x1x1 + BN (no ReLU) -> 3x3x3 depthwise   -> 1x1x1
                  (interaction-preserved)
    ir-CSN:       1x1x1 ->                        3x3x3 depthwise    -> 1x1x1
                  (interaction-reduced)

The network is mmaction2's 3D ResNet with stem (3,7,7), temporal strides (1,2,2,2) and
BatchNorm eps 1e-3 (Caffe2's). Keys: ``backbone.layerX.Y.conv2.0.{conv,bn}`` (ir: the
depthwise conv; ip: the 1x1x1), ``backbone.layerX.Y.conv2.1.{conv,bn}`` (ip: the
depthwise conv), ``cls_head.fc_cls``.
"""

from __future__ import annotations

import torch.nn as nn

from ..weights import load_backbone
from ._registry import dataset_protocol, register_model
from .resnet3d import (
    TINY,
    Bottleneck3d,
    ConvBNAct3d,
    Recognizer3D,
    ResNet3d,
    build_recognizer_3d,
    cfg_3d,
    tiny_cfg_3d,
)

__all__ = [
    "conv2_cost",
    "CSNBottleneck3d",
    "ResNet3dCSN",
    "ircsn_r50",
    "ircsn_r152",
    "ipcsn_r152",
    "ircsn_tiny",
    "ipcsn_tiny",
]


def conv2_cost(
    mode: str, channels: int, in_size: tuple, out_size: tuple, kernel=(3, 3, 3)
) -> dict:
    """Weights and multiply-adds of a bottleneck's conv2 with C = ``channels`` in and
    out (BN not counted), for an input of ``in_size`` = (T, H, W) positions and an
    output of ``out_size`` (the stride is in the 3x3x3 conv)::

        dense (R3D): params k C^2     MACs k C^2 |out|
        ip-CSN:      params C^2 + k C MACs C^2 |in| + k C |out|   (1x1x1 runs unstrided)
        ir-CSN:      params k C       MACs k C |out|

    with k = kt kh kw (27). ``mode``: ``"dense"``, ``"ip"`` or ``"ir"``.
    """
    k = kernel[0] * kernel[1] * kernel[2]
    n_in = in_size[0] * in_size[1] * in_size[2]
    n_out = out_size[0] * out_size[1] * out_size[2]
    c = channels
    costs = {
        "dense": (k * c * c, k * c * c * n_out),
        "ip": (c * c + k * c, c * c * n_in + k * c * n_out),
        "ir": (k * c, k * c * n_out),
    }
    if mode not in costs:
        raise ValueError(f"mode must be 'dense', 'ip' or 'ir', got {mode!r}")
    params, macs = costs[mode]
    return dict(params=params, macs=macs)


class CSNBottleneck3d(Bottleneck3d):
    """A 3D bottleneck whose conv2 is channel-separated.

    Args:
        bottleneck_mode: ``"ir"`` (interaction-reduced: conv2 = depthwise 3x3x3 + BN +
            ReLU) or ``"ip"`` (interaction-preserved: 1x1x1 conv + BN, no ReLU, then the
            depthwise 3x3x3 + BN + ReLU).
        other arguments: see :class:`~vidlib.models.resnet3d.Bottleneck3d`.
    """

    def __init__(
        self, inplanes: int, planes: int, *, bottleneck_mode: str = "ir", **kw
    ):
        if bottleneck_mode not in ("ir", "ip"):
            raise ValueError(
                f"bottleneck_mode must be 'ir' or 'ip', got {bottleneck_mode!r}"
            )
        super().__init__(inplanes, planes, conv2_kw=dict(mode=bottleneck_mode), **kw)
        self.bottleneck_mode = bottleneck_mode

    def make_conv2(
        self, planes: int, kernel: tuple, stride: tuple, eps: float, mode: str = "ir"
    ) -> nn.Sequential:
        """ir: ``[depthwise]``; ip: ``[1x1x1 + BN, depthwise]`` (keys ``conv2.0.*``,
        ``conv2.1.*``)."""
        # one filter per channel
        depthwise = ConvBNAct3d(planes, planes, kernel, stride, groups=planes, eps=eps)
        if mode == "ir":
            return nn.Sequential(depthwise)
        return nn.Sequential(
            ConvBNAct3d(planes, planes, 1, act=False, eps=eps), depthwise
        )


class ResNet3dCSN(ResNet3d):
    """The CSN backbone: :class:`ResNet3d` with :class:`CSNBottleneck3d` blocks and
    frozen-BN options.

    Args:
        depth: 50 or 152 (101 also works); ``tiny=True`` uses the tiny layout instead.
        bottleneck_mode: ``"ir"`` or ``"ip"``.
        norm_eval: in ``train()`` every BatchNorm stays in eval mode, so its running
            statistics are frozen.
        bn_frozen: also freeze the BatchNorm affine parameters (``requires_grad=False``
            from construction on, so optimisers built at any time never update them).
            Requires ``norm_eval`` (as in mmaction2, where ``bn_frozen`` without
            ``norm_eval`` silently does nothing).
        eps: BatchNorm eps, Caffe2's 1e-3.
    """

    def __init__(
        self,
        *,
        depth: int = 152,
        tiny: bool = False,
        bottleneck_mode: str = "ir",
        norm_eval: bool = False,
        bn_frozen: bool = False,
        eps: float = 1e-3,
        **kw,
    ):
        if bn_frozen and not norm_eval:
            raise ValueError(
                "bn_frozen=True requires norm_eval=True (frozen affine parameters "
                "with updating running statistics is not a CSN configuration)"
            )
        size = TINY if tiny else dict(depth=depth)
        super().__init__(
            **size,
            block=CSNBottleneck3d,
            block_kw=dict(bottleneck_mode=bottleneck_mode),
            conv1_kernel=(3, 7, 7),
            temporal_strides=(1, 2, 2, 2),
            inflate=(1, 1, 1, 1),
            inflate_style="3x3x3",
            eps=eps,
            norm_eval=norm_eval,
            zero_init_residual=False,
            **kw,
        )
        self.bn_frozen = bn_frozen
        if bn_frozen:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.requires_grad_(False)


_MM = "https://download.openmmlab.com/mmaction/"
_V1 = _MM + "v1.0/recognition/csn/"
_VMZ = _MM + "recognition/csn/vmz/vmz_"
#: VMZ normalisation (0-255 scale) used by the Sports1M and scratch ports: 255 x
#: (0.43216, 0.394666, 0.37645) and 255 x (0.22803, 0.22145, 0.216989).
VMZ_MEAN, VMZ_STD = (110.2008, 100.63983, 95.99475), (58.14765, 56.46975, 55.332195)


def _vmz(name: str, epochs: int, stamp: str) -> str:
    return f"{_VMZ}{name}_32x2x1_{epochs}e_kinetics400_rgb_{stamp}.pth"


#: The published K400 checkpoints, by (entrypoint, ``pretrain``):
#: (``results/published.yaml`` key, mmaction2 config, url, normalisation). mmaction2
#: trained the first two itself; the others are ports of the VMZ (Caffe2) weights, whose
#: Sports1M and scratch models expect the VMZ mean/std instead of ImageNet's (mmaction2
#: pull request 1116).
CHECKPOINTS = {
    ("ircsn_r152", "ig65m"): (
        "ircsn_r152_ig65m_bnfrozen_k400",
        c := "ircsn_ig65m-pretrained-r152-bnfrozen_8xb12-32x2x1-58e_kinetics400-rgb",
        f"{_V1}{c}/{c}_20220811-7d1dacde.pth",
        "imagenet",
    ),
    ("ircsn_r50", "ig65m"): (
        "ircsn_r50_ig65m_bnfrozen_k400",
        c := "ircsn_ig65m-pretrained-r50-bnfrozen_8xb12-32x2x1-58e_kinetics400-rgb",
        f"{_V1}{c}/{c}_20220811-44395bae.pth",
        "imagenet",
    ),
    ("ipcsn_r152", "ig65m"): (
        "ipcsn_r152_ig65m_bnfrozen_k400",
        "ipcsn_ig65m-pretrained-r152-bnfrozen_32x2x1-58e_kinetics400-rgb",
        _vmz("ipcsn_ig65m_pretrained_r152", 58, "20210617-c3be9793"),
        "imagenet",
    ),
    ("ircsn_r152", "sports1m"): (
        "ircsn_r152_sports1m_bnfrozen_k400",
        "ircsn_sports1m-pretrained-r152-bnfrozen_32x2x1-58e_kinetics400-rgb",
        _vmz("ircsn_sports1m_pretrained_r152", 58, "20210617-b9b10241"),
        "vmz",
    ),
    ("ipcsn_r152", "sports1m"): (
        "ipcsn_r152_sports1m_bnfrozen_k400",
        "ipcsn_sports1m-pretrained-r152-bnfrozen_32x2x1-58e_kinetics400-rgb",
        _vmz("ipcsn_sports1m_pretrained_r152", 58, "20210617-3367437a"),
        "vmz",
    ),
    ("ircsn_r152", "scratch"): (
        "ircsn_r152_k400",
        "ircsn_r152_32x2x1-180e_kinetics400-rgb",
        _vmz("ircsn_from_scratch_r152", 180, "20210617-5c933ae1"),
        "vmz",
    ),
    ("ipcsn_r152", "scratch"): (
        "ipcsn_r152_k400",
        "ipcsn_r152_32x2x1-180e_kinetics400-rgb",
        _vmz("ipcsn_from_scratch_r152", 180, "20210617-d565828d"),
        "vmz",
    ),
}


def _csn_cfg(model: str, num_frames: int, pretrain: str) -> dict:
    """mmaction2 CSN protocol: the 3D Kinetics protocol with 32x2 clips
    (:func:`~vidlib.models.resnet3d.cfg_3d`: 10 clips x ThreeCrop(256) = 30 views at
    test, 'prob'); the checkpoint and mean/std of ``pretrain``."""
    ports = {p: v for (m, p), v in CHECKPOINTS.items() if m == model}
    published, config, url, norm = dataset_protocol(model, pretrain, ports, "pretrain")
    norm = dict(mean=VMZ_MEAN, std=VMZ_STD) if norm == "vmz" else {}
    return cfg_3d(
        num_frames,
        2,
        url=url,
        config=config,
        paper="1904.02811",
        published=published,
        **norm,
    )


def _csn(
    name: str,
    cfg: dict,
    *,
    num_classes: int,
    dropout: float,
    backbone_init=None,
    **kw,
) -> Recognizer3D:
    """``backbone_init``: a backbone checkpoint (mmaction2 layout, e.g. the IG-65M
    pre-training the recipes name), loaded strictly
    (:func:`vidlib.weights.load_backbone`)."""
    model = build_recognizer_3d(ResNet3dCSN(**kw), name, num_classes, dropout, cfg)
    if backbone_init is not None:
        load_backbone(model, backbone_init)
    return model


def _csn_k400(
    name: str,
    depth: int,
    mode: str,
    *,
    num_classes: int = 400,
    num_frames: int = 32,
    dropout: float = 0.5,
    norm_eval: bool = True,
    bn_frozen: bool = True,
    pretrain: str = "ig65m",
    **kw,
) -> Recognizer3D:
    """A published CSN (``depth``, ``mode`` ``"ir"`` or ``"ip"``) with the keywords of
    every CSN entrypoint: BN frozen (``norm_eval``, ``bn_frozen``) as in every mmaction2
    config; ``pretrain``: the published checkpoint the cfg names (``"ig65m"``,
    ``"sports1m"`` or ``"scratch"``; the last two with the VMZ mean/std);
    ``backbone_init`` (see :func:`_csn`); the rest go to :class:`ResNet3dCSN`."""
    return _csn(
        name, _csn_cfg(name, num_frames, pretrain), num_classes=num_classes,
        dropout=dropout, depth=depth, bottleneck_mode=mode, norm_eval=norm_eval,
        bn_frozen=bn_frozen, **kw,
    )  # fmt: skip


@register_model
def ircsn_r152(**kw) -> Recognizer3D:
    """ir-CSN-152 (29,703,568 params with the 400-class head). Keywords and defaults:
    ``num_classes=400, num_frames=32, dropout=0.5, norm_eval=True, bn_frozen=True,
    pretrain="ig65m"`` (or ``"sports1m"``, ``"scratch"``), ``backbone_init=None``
    (:func:`_csn_k400`)."""
    return _csn_k400("ircsn_r152", 152, "ir", **kw)


@register_model
def ipcsn_r152(**kw) -> Recognizer3D:
    """ip-CSN-152 (33,016,592 params with the 400-class head); keywords as
    :func:`ircsn_r152`."""
    return _csn_k400("ipcsn_r152", 152, "ip", **kw)


@register_model
def ircsn_r50(**kw) -> Recognizer3D:
    """ir-CSN-50 (13,131,152 params with the 400-class head); keywords as
    :func:`ircsn_r152`, IG65M only."""
    return _csn_k400("ircsn_r50", 50, "ir", **kw)


def _csn_tiny(
    name: str,
    mode: str,
    *,
    num_classes: int = 400,
    num_frames: int = 8,
    dropout: float = 0.5,
    **kw,
) -> Recognizer3D:
    cfg = tiny_cfg_3d(num_frames, paper="1904.02811")
    return _csn(
        name, cfg, num_classes=num_classes, dropout=dropout, tiny=True,
        bottleneck_mode=mode, **kw,
    )  # fmt: skip


@register_model
def ircsn_tiny(**kw) -> Recognizer3D:
    """ir-CSN on the tiny backbone (compare with ``r3d_tiny``); BN trains normally
    unless asked. Keywords and defaults: ``num_classes=400, num_frames=8,
    dropout=0.5``; the rest go to :class:`ResNet3dCSN`."""
    return _csn_tiny("ircsn_tiny", "ir", **kw)


@register_model
def ipcsn_tiny(**kw) -> Recognizer3D:
    """ip-CSN on the tiny backbone; keywords as :func:`ircsn_tiny`."""
    return _csn_tiny("ipcsn_tiny", "ip", **kw)
