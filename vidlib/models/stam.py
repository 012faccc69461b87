"""STAM: a spatial ViT per frame + a temporal transformer over the frame embeddings.

Paper: G. Sharir, A. Noy, L. Zelnik-Manor, "An Image is Worth 16x16 Words, What is a
Video Worth?", arXiv 2103.13915. Official code: Alibaba-MIIL/STAM (``STAM_224``,
``TAggregate``, ``MeanAggregate``).
Explained in: the STAM chapter of the book.

::

    video [B, 3, T, 224, 224], values in [0, 1], NO mean/std normalisation
      -> frames [B*T, 3, 224, 224] (video-major, as the official collate)
      -> spatial ViT-B/16 per frame: patch 16 -> 196 tokens + CLS,
         + pos_embed [1, 197, 768], 12 pre-norm blocks (12 heads, MLP 3072,
         exact GELU, qkv bias), LayerNorm(eps 1e-5)
      -> final-LN CLS of every frame                      [B, T, 768]
      -> temporal aggregation: prepend a video CLS, + pos_embed [1, T+1, 768],
         6 post-norm nn.TransformerEncoderLayer (8 heads, FF 2048, ReLU,
         dropout 0.1), LayerNorm
      -> video CLS -> head Linear(768, num_classes)        [B, num_classes]

State-dict keys equal the official ``state['model']`` layout (``patch_embed.proj.*``,
``cls_token``, ``pos_embed``, ``blocks.{i}.*``, ``norm.*``, ``aggregate.*``,
``head.*``), so :func:`load_stam` only strips an optional ``module.`` prefix. The
spatial ViT's parts (patch embedding, attention, MLP, block, and
:func:`~vidlib.models.vit.init_spatial_from_vit` for an image-ViT initialisation) are
generic and live in ``vit.py``; this file holds STAM's own contribution: the temporal
aggregation and the model around it.
"""

from __future__ import annotations

import re
import warnings

import torch
import torch.nn as nn

from ..weights import (
    CheckpointError,
    load_state_dict_strict,
    read_checkpoint,
    register_layout,
    source_name,
)
from ._registry import make_cfg, register_model, with_cfg
from .common import check_clip
from .vit import Block, ConvStem, PatchEmbed, init_spatial_from_vit, trunc_normal_

__all__ = [
    "STAM",
    "TemporalAggregate",
    "MeanAggregate",
    "load_stam",
    "stam_8",
    "stam_16",
    "stam_32",
    "stam_64",
    "stam_tiny",
    "stam_mean_tiny",
]

_URL = (
    "https://miil-public-eu.oss-eu-central-1.aliyuncs.com/model-zoo/STAM/v2/stam_{}.pth"
)


class TemporalAggregate(nn.Module):
    """STAM's temporal transformer (``TAggregate`` in the official code) over per-frame
    embeddings.

    Args:
        num_frames: T, the clip length (sets ``pos_embed`` to ``[1, T+1, embed_dim]``).
        embed_dim: D, the frame-embedding width (768).
        num_layers: the number of post-norm ``nn.TransformerEncoderLayer`` (6).
        num_heads: attention heads per layer (8).
        dim_feedforward: the hidden width of each layer's ReLU MLP (2048, PyTorch's
            default).
        dropout: dropout inside every layer, active in training only (0.1, PyTorch's
            default).

    The layers run sequence-first (``[T+1, B, D]``) as in the official code; the output
    is the final-LN video CLS token ``[B, D]``.
    """

    def __init__(
        self,
        num_frames: int,
        embed_dim: int = 768,
        num_layers: int = 6,
        num_heads: int = 8,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.num_frames = num_frames
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_frames + 1, embed_dim))
        # ReLU, post-norm
        layer = nn.TransformerEncoderLayer(
            embed_dim, num_heads, dim_feedforward, dropout
        )
        self.transformer_enc = nn.TransformerEncoder(
            layer, num_layers, norm=nn.LayerNorm(embed_dim), enable_nested_tensor=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]  # x: [B, T, D]
        # [B, T+1, D]
        x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1) + self.pos_embed
        x = self.transformer_enc(x.transpose(0, 1))  # [T+1, B, D], sequence-first
        return x[0]  # the video CLS: [B, D]


class MeanAggregate(nn.Module):
    """The mean-aggregation baseline of the official code: the plain mean of the frame
    embeddings."""

    def __init__(self, num_frames: int):
        super().__init__()
        self.num_frames = num_frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)  # [B, T, D] -> [B, D]


class STAM(nn.Module):
    """STAM: a ViT applied to every frame, then a temporal transformer (or the mean)
    over the frame CLS tokens.

    Args:
        num_frames: T, the frames per clip.
        num_classes: size of the ``head`` output.
        img_size: the square input frame size (224).
        patch_size: ViT patch size P (16; the paper's 16x16 "words").
        embed_dim: ViT width D (768).
        depth: number of spatial ViT blocks (12).
        num_heads: spatial attention heads (12).
        mlp_ratio: ViT MLP hidden width / D (4, i.e. 3072).
        qkv_bias: bias on the fused qkv projection (True since the official "fix qkv
            bias" commit).
        norm_eps: eps of every spatial LayerNorm (1e-5, ``nn.LayerNorm``'s default; timm
            uses 1e-6).
        stem: ``"patch"`` (STAM's linear P x P patch projection) or ``"conv"`` (a
            :class:`~vidlib.models.vit.ConvStem`, not in the paper; for tiny models
            trained from scratch).
        init_std: std of the truncated-normal init of tokens and Linear weights (0.02,
            the official value, made for D = 768; a narrow model needs a wider init,
            e.g. ``0.02 * (768 / D) ** 0.5``, or its temporal layers barely learn).
        freeze_spatial: keep the spatial ViT as it is (no gradients, BatchNorm of a conv
            stem in eval mode): only the aggregation and the head train (vidlib's, for a
            pre-trained frame encoder).
        aggregate: ``"transformer"`` (STAM) or ``"mean"`` (the :class:`MeanAggregate`
            baseline).
        temporal_layers, temporal_heads, temporal_ff, temporal_dropout: see
            :class:`TemporalAggregate`.

    Input ``[B, 3, T, img_size, img_size]`` in [0, 1] (no normalisation); output
    ``[B, num_classes]``.
    """

    def __init__(
        self,
        num_frames: int,
        num_classes: int = 400,
        *,
        img_size: int = 224,
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-5,
        stem: str = "patch",
        init_std: float = 0.02,
        freeze_spatial: bool = False,
        aggregate: str = "transformer",
        temporal_layers: int = 6,
        temporal_heads: int = 8,
        temporal_ff: int = 2048,
        temporal_dropout: float = 0.1,
    ):
        super().__init__()
        self.num_frames, self.img_size = num_frames, img_size
        if stem not in ("patch", "conv"):
            raise ValueError(f"stem must be 'patch' or 'conv', got {stem!r}")
        embed = PatchEmbed if stem == "patch" else ConvStem
        self.patch_embed = embed(img_size, patch_size, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.patch_embed.num_patches + 1, embed_dim)
        )
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, norm_eps)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        if aggregate == "transformer":
            self.aggregate = TemporalAggregate(
                num_frames,
                embed_dim,
                temporal_layers,
                temporal_heads,
                temporal_ff,
                temporal_dropout,
            )
        elif aggregate == "mean":
            self.aggregate = MeanAggregate(num_frames)
        else:
            raise ValueError(
                f"aggregate must be 'transformer' or 'mean', got {aggregate!r}"
            )
        self.head = nn.Linear(embed_dim, num_classes)
        self._init_weights(init_std)
        self.freeze_spatial = freeze_spatial
        for p in self.spatial_parameters() if freeze_spatial else ():
            p.requires_grad_(False)

    def spatial_parameters(self):
        """The spatial ViT's parameters: patch embedding, tokens, blocks, final norm."""
        yield from (self.cls_token, self.pos_embed)
        for m in (self.patch_embed, self.blocks, self.norm):
            yield from m.parameters()

    def train(self, mode: bool = True) -> STAM:
        super().train(mode)
        if self.freeze_spatial:  # a frozen encoder computes as in eval (BatchNorm)
            for m in (self.patch_embed, self.blocks, self.norm):
                m.eval()
        return self

    def _init_weights(self, std: float) -> None:
        """As the official code: tokens and every Linear ~ trunc. normal(std; official:
        0.02), biases 0, LayerNorm 1/0.

        The patch conv and the temporal ``in_proj_weight`` (a bare Parameter) keep
        PyTorch's default init.
        """
        for p in (self.cls_token, self.pos_embed, *self._temporal_tokens()):
            trunc_normal_(p, std)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _temporal_tokens(self) -> tuple[nn.Parameter, ...]:
        agg = self.aggregate
        return (
            (agg.cls_token, agg.pos_embed) if isinstance(agg, TemporalAggregate) else ()
        )

    def forward_frames(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial ViT on a batch of frames ``[N, 3, H, W]`` -> final-LN CLS tokens
        ``[N, D]``."""
        x = self.patch_embed(x)  # [N, L, D]
        # [N, L+1, D]
        x = (
            torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
            + self.pos_embed
        )
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x[:, 0])  # final LayerNorm of the CLS token: [N, D]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_clip(x, "STAM", num_frames=self.num_frames, size=self.img_size)
        B, C, T, H, W = x.shape
        # [B*T, 3, H, W], video-major
        frames = x.transpose(1, 2).reshape(B * T, C, H, W)
        feats = self.forward_frames(frames).view(B, T, -1)  # [B, T, D]
        return self.head(self.aggregate(feats))  # [B, num_classes]


# ------------------------------------------------------------------------------ loading
_QKV_BIAS = re.compile(r"blocks\.\d+\.attn\.qkv\.bias")


@register_layout("stam_official", "official STAM")
def load_stam(
    model: STAM, checkpoint, *, zero_missing_qkv_bias: bool = False
) -> list[str]:
    """Load an official STAM checkpoint strictly. (Upstream's ``infer.py`` loads it
    with ``strict=False``; this loader has no such switch.)

    Args:
        model: a :class:`STAM` with the checkpoint's T and number of classes.
        checkpoint: a path, ``{'model': state_dict}`` (the official files) or a bare
            state dict. An optional ``module.`` prefix (DataParallel) is stripped.
        zero_missing_qkv_bias: checkpoints made before the upstream "fix qkv bias"
            commit (852c55d) have no ``blocks.*.attn.qkv.bias``; their model had no such
            bias, which equals a zero bias. With this option the missing biases are set
            to zero and listed in a warning; without it they are errors.

    Returns:
        the keys that were set to zero (empty unless ``zero_missing_qkv_bias`` filled
        some).

    Raises:
        CheckpointError: listing every missing, unexpected or mis-shaped key.
    """
    sd = read_checkpoint(checkpoint, "model")
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    missing_bias = [
        k
        for k, v in model.state_dict().items()
        if _QKV_BIAS.fullmatch(k) and k not in sd
    ]
    if missing_bias and zero_missing_qkv_bias:
        for k in missing_bias:
            sd[k] = torch.zeros_like(model.state_dict()[k])
        warnings.warn(
            "load_stam: the checkpoint predates the qkv-bias fix; "
            f"set {len(missing_bias)} qkv biases to zero: {', '.join(missing_bias)}",
            stacklevel=2,
        )
    try:
        load_state_dict_strict(model, sd, source=source_name(checkpoint))
    except CheckpointError as e:
        if not missing_bias or zero_missing_qkv_bias:
            raise
        raise CheckpointError(
            e.source,
            e.missing,
            e.unexpected,
            e.mismatched,
            note=(
                "  hint: a checkpoint without blocks.*.attn.qkv.bias predates "
                "the upstream 'fix qkv bias' commit; "
                "load it with load_stam(..., zero_missing_qkv_bias=True)"
            ),
        ) from e
    return missing_bias if zero_missing_qkv_bias else []


# ----------------------------------------------------------------------------- registry
def _cfg(
    num_frames: int,
    *,
    crop_size: int,
    resize_short: int,
    published: str | None = None,
    **extra,
) -> dict:
    """STAM's data cfg: T frames at T/10 fps from the start, 1 clip x 1 centre crop,
    [0, 1], no normalisation.

    ``resize_short = crop_size / 0.875`` (the official ``val_zoom_factor``: 256 for
    224).
    """
    sampling = dict(
        name="STAMSampleFrames",
        num_frames=num_frames,
        window_seconds=10.0,
        short_video="loop",
    )
    return make_cfg(
        num_frames=num_frames,
        crop_size=crop_size,
        resize_short=resize_short,
        sampling=sampling,
        test_crops=1,
        mean=None,
        std=None,
        value_scale=1.0,
        layout="stam_official",
        paper="2103.13915",
        published=published,
        **extra,
    )


def _with_vit_init(model: STAM, cfg: dict, vit_init) -> STAM:
    """Attach the cfg; ``vit_init`` (an image ViT checkpoint in timm's layout)
    initialises the spatial ViT."""
    if vit_init is not None:
        init_spatial_from_vit(model, vit_init)
    return with_cfg(model, cfg)


def _stam(T: int, num_classes: int, num_frames: int | None, vit_init, kw: dict) -> STAM:
    if num_frames not in (None, T):
        raise ValueError(
            f"stam_{T} is defined for num_frames={T}, got {num_frames}; "
            "use STAM(num_frames=...)"
        )
    model = STAM(T, num_classes, **kw)
    cfg = _cfg(
        T,
        crop_size=model.img_size,
        resize_short=model.img_size * 8 // 7,
        published=f"stam_{T}_k400",
        url=_URL.format(T),
    )
    return _with_vit_init(model, cfg, vit_init)


@register_model
def stam_8(
    *, num_classes: int = 400, num_frames: int | None = None, vit_init=None, **kw
) -> STAM:
    """STAM-8: ViT-B/16 + 6-layer temporal transformer on 8 frames (released v2 weights,
    no official factory).

    ``vit_init``: an image ViT-B/16 checkpoint (timm layout) for the spatial ViT
    (:func:`~vidlib.models.vit.init_spatial_from_vit`; the authors started from
    ImageNet-21k). ``**kw``: see :class:`STAM`.
    """
    return _stam(8, num_classes, num_frames, vit_init, kw)


@register_model
def stam_16(
    *, num_classes: int = 400, num_frames: int | None = None, vit_init=None, **kw
) -> STAM:
    """STAM-16 (the official default model); arguments as :func:`stam_8`."""
    return _stam(16, num_classes, num_frames, vit_init, kw)


@register_model
def stam_32(
    *, num_classes: int = 400, num_frames: int | None = None, vit_init=None, **kw
) -> STAM:
    """STAM-32; arguments as :func:`stam_8`."""
    return _stam(32, num_classes, num_frames, vit_init, kw)


@register_model
def stam_64(
    *, num_classes: int = 400, num_frames: int | None = None, vit_init=None, **kw
) -> STAM:
    """STAM-64; arguments as :func:`stam_8`."""
    return _stam(64, num_classes, num_frames, vit_init, kw)


_TINY = dict(  # calibrated in the STAM chapter (recipe synthetic_stam_tiny)
    img_size=32,
    patch_size=8,
    stem="conv",
    embed_dim=64,
    depth=2,
    num_heads=2,
    temporal_layers=2,
    temporal_heads=4,
    temporal_ff=256,
    init_std=0.02 * (768 / 64) ** 0.5,  # the official 0.02, scaled from D = 768 to 64
)


def _tiny(
    num_classes: int, num_frames: int | None, aggregate: str, vit_init, kw: dict
) -> STAM:
    T = num_frames or 8
    model = STAM(T, num_classes, **{**_TINY, "aggregate": aggregate, **kw})
    return _with_vit_init(
        model,
        _cfg(T, crop_size=model.img_size, resize_short=model.img_size * 8 // 7),
        vit_init,
    )


@register_model
def stam_tiny(
    *, num_classes: int = 400, num_frames: int | None = None, vit_init=None, **kw
) -> STAM:
    """A small STAM for CPU experiments: at 32 px, a conv stem to a 4 x 4 token grid,
    a ViT of D 64, depth 2, 2 heads, and 2 temporal layers (4 heads, FF 256); the init
    std scaled to the width. Any :class:`STAM` argument can be overridden."""
    return _tiny(num_classes, num_frames, "transformer", vit_init, kw)


@register_model
def stam_mean_tiny(
    *, num_classes: int = 400, num_frames: int | None = None, vit_init=None, **kw
) -> STAM:
    """``stam_tiny`` with the :class:`MeanAggregate` baseline instead of the temporal
    transformer."""
    return _tiny(num_classes, num_frames, "mean", vit_init, kw)
