"""STAM: a spatial ViT per frame + a temporal transformer over the frame embeddings.

Paper: G. Sharir, A. Noy, L. Zelnik-Manor, "An Image is Worth 16x16 Words, What is a Video Worth?",
arXiv 2103.13915. Official code: Alibaba-MIIL/STAM (``STAM_224``, ``TAggregate``, ``MeanAggregate``).
Explained in: the STAM chapter of the book.

::

    video [B, 3, T, 224, 224], values in [0, 1], NO mean/std normalisation
      -> frames [B*T, 3, 224, 224]                        (video-major, as the official collate)
      -> spatial ViT-B/16 per frame: patch 16 -> 196 tokens + CLS, + pos_embed [1, 197, 768],
         12 pre-norm blocks (12 heads, MLP 3072, exact GELU, qkv bias), LayerNorm(eps 1e-5)
      -> final-LN CLS of every frame                      [B, T, 768]
      -> temporal aggregation: prepend a video CLS, + pos_embed [1, T+1, 768],
         6 post-norm nn.TransformerEncoderLayer (8 heads, FF 2048, ReLU, dropout 0.1), LayerNorm
      -> video CLS -> head Linear(768, num_classes)        [B, num_classes]

State-dict keys equal the official ``state['model']`` layout (``patch_embed.proj.*``, ``cls_token``,
``pos_embed``, ``blocks.{i}.*``, ``norm.*``, ``aggregate.*``, ``head.*``), so :func:`load_stam` only strips
an optional ``module.`` prefix. The spatial attention uses ``F.scaled_dot_product_attention``
(``vidlib.flops.count_flops`` counts its QK^T and AV matmuls).
"""
from __future__ import annotations

import os
import re
import warnings
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checkpoints import CheckpointError, load_state_dict_strict, read_checkpoint
from ._registry import make_cfg, register_model

__all__ = [
    "STAM", "TemporalAggregate", "MeanAggregate", "load_stam", "init_spatial_from_vit", "SpatialInitReport",
    "stam_8", "stam_16", "stam_32", "stam_64", "stam_tiny", "stam_mean_tiny",
]

_URL = "https://miil-public-eu.oss-eu-central-1.aliyuncs.com/model-zoo/STAM/v2/stam_{}.pth"


def _trunc_normal_(t: torch.Tensor, std: float = 0.02) -> torch.Tensor:
    """The official init: ``N(0, 1)`` folded into (-2, 2) by ``fmod``, times ``std`` (a cheap truncated normal)."""
    with torch.no_grad():
        return t.normal_().fmod_(2).mul_(std)


class PatchEmbed(nn.Module):
    """Cut a frame into non-overlapping ``patch_size`` patches and project each to ``embed_dim``."""

    def __init__(self, img_size: int, patch_size: int, embed_dim: int):
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # [N, D, h, w] -> [N, h*w, D]


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (keys ``qkv``, ``proj`` as in the official ViT)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, L, D = x.shape
        qkv = self.qkv(x).reshape(N, L, 3, self.num_heads, D // self.num_heads)  # [N, L, 3, heads, D/heads]
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [N, heads, L, D/heads]
        x = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(D/heads)) v: [N, heads, L, D/heads]
        return self.proj(x.transpose(1, 2).reshape(N, L, D))  # [N, L, D]


class Mlp(nn.Module):
    """fc1 -> exact GELU -> fc2."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm ViT block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, norm_eps: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TemporalAggregate(nn.Module):
    """STAM's temporal transformer (``TAggregate`` in the official code) over per-frame embeddings.

    Args:
        num_frames: T, the clip length (sets ``pos_embed`` to ``[1, T+1, embed_dim]``).
        embed_dim: D, the frame-embedding width (768).
        num_layers: the number of post-norm ``nn.TransformerEncoderLayer`` (6).
        num_heads: attention heads per layer (8).
        dim_feedforward: the hidden width of each layer's ReLU MLP (2048, PyTorch's default).
        dropout: dropout inside every layer, active in training only (0.1, PyTorch's default).

    The layers run sequence-first (``[T+1, B, D]``) as in the official code; the output is the final-LN
    video CLS token ``[B, D]``.
    """

    def __init__(self, num_frames: int, embed_dim: int = 768, num_layers: int = 6, num_heads: int = 8,
                 dim_feedforward: int = 2048, dropout: float = 0.1):
        super().__init__()
        self.num_frames = num_frames
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_frames + 1, embed_dim))
        layer = nn.TransformerEncoderLayer(embed_dim, num_heads, dim_feedforward, dropout)  # ReLU, post-norm
        self.transformer_enc = nn.TransformerEncoder(
            layer, num_layers, norm=nn.LayerNorm(embed_dim), enable_nested_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]  # x: [B, T, D]
        x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1) + self.pos_embed  # [B, T+1, D]
        x = self.transformer_enc(x.transpose(0, 1))  # [T+1, B, D], sequence-first
        return x[0]  # the video CLS: [B, D]


class MeanAggregate(nn.Module):
    """The mean-aggregation baseline of the official code: the plain mean of the frame embeddings."""

    def __init__(self, num_frames: int):
        super().__init__()
        self.num_frames = num_frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)  # [B, T, D] -> [B, D]


class STAM(nn.Module):
    """STAM: a ViT applied to every frame, then a temporal transformer (or the mean) over the frame CLS tokens.

    Args:
        num_frames: T, the frames per clip.
        num_classes: size of the ``head`` output.
        img_size: the square input frame size (224).
        patch_size: ViT patch size P (16).
        embed_dim: ViT width D (768).
        depth: number of spatial ViT blocks (12).
        num_heads: spatial attention heads (12).
        mlp_ratio: ViT MLP hidden width / D (4, i.e. 3072).
        qkv_bias: bias on the fused qkv projection (True since the official "fix qkv bias" commit).
        norm_eps: eps of every spatial LayerNorm (1e-5, ``nn.LayerNorm``'s default; timm uses 1e-6).
        aggregate: ``"transformer"`` (STAM) or ``"mean"`` (the :class:`MeanAggregate` baseline).
        temporal_layers, temporal_heads, temporal_ff, temporal_dropout: see :class:`TemporalAggregate`.

    Input ``[B, 3, T, img_size, img_size]`` in [0, 1] (no normalisation); output ``[B, num_classes]``.
    """

    def __init__(self, num_frames: int, num_classes: int = 400, *, img_size: int = 224, patch_size: int = 16,
                 embed_dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, norm_eps: float = 1e-5, aggregate: str = "transformer",
                 temporal_layers: int = 6, temporal_heads: int = 8, temporal_ff: int = 2048,
                 temporal_dropout: float = 0.1):
        super().__init__()
        self.num_frames, self.img_size = num_frames, img_size
        self.patch_embed = PatchEmbed(img_size, patch_size, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, embed_dim))
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, norm_eps) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        if aggregate == "transformer":
            self.aggregate = TemporalAggregate(num_frames, embed_dim, temporal_layers, temporal_heads,
                                               temporal_ff, temporal_dropout)
        elif aggregate == "mean":
            self.aggregate = MeanAggregate(num_frames)
        else:
            raise ValueError(f"aggregate must be 'transformer' or 'mean', got {aggregate!r}")
        self.head = nn.Linear(embed_dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """As the official code: tokens and every Linear ~ trunc. normal(std 0.02), biases 0, LayerNorm 1/0.

        The patch conv and the temporal ``in_proj_weight`` (a bare Parameter) keep PyTorch's default init.
        """
        for p in (self.cls_token, self.pos_embed, *self._temporal_tokens()):
            _trunc_normal_(p)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                _trunc_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _temporal_tokens(self) -> tuple[nn.Parameter, ...]:
        agg = self.aggregate
        return (agg.cls_token, agg.pos_embed) if isinstance(agg, TemporalAggregate) else ()

    def forward_frames(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial ViT on a batch of frames ``[N, 3, H, W]`` -> final-LN CLS tokens ``[N, D]``."""
        x = self.patch_embed(x)  # [N, L, D]
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed  # [N, L+1, D]
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x[:, 0])  # final LayerNorm of the CLS token: [N, D]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (3, self.num_frames, self.img_size, self.img_size)
        if x.ndim != 5 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"STAM expects input [B, {', '.join(map(str, expected))}] "
                             f"([B, 3, T, H, W]), got {list(x.shape)}")
        B, C, T, H, W = x.shape
        frames = x.transpose(1, 2).reshape(B * T, C, H, W)  # [B*T, 3, H, W], video-major
        feats = self.forward_frames(frames).view(B, T, -1)  # [B, T, D]
        return self.head(self.aggregate(feats))  # [B, num_classes]


# ---------------------------------------------------------------------------------------------- loading
_QKV_BIAS = re.compile(r"blocks\.\d+\.attn\.qkv\.bias")


def load_stam(model: STAM, checkpoint, *, zero_missing_qkv_bias: bool = False) -> list[str]:
    """Load an official STAM checkpoint strictly (the official ``infer.py`` uses ``strict=False``).

    Args:
        model: a :class:`STAM` with the checkpoint's T and number of classes.
        checkpoint: a path, ``{'model': state_dict}`` (the official files) or a bare state dict. An optional
            ``module.`` prefix (DataParallel) is stripped.
        zero_missing_qkv_bias: checkpoints made before the upstream "fix qkv bias" commit (852c55d) have no
            ``blocks.*.attn.qkv.bias``; their model had no such bias, which equals a zero bias. With this
            option the missing biases are set to zero and listed in a warning; without it they are errors.

    Returns:
        the keys that were set to zero (empty unless ``zero_missing_qkv_bias`` filled some).

    Raises:
        CheckpointError: listing every missing, unexpected or mis-shaped key.
    """
    sd = read_checkpoint(checkpoint, "model")
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    missing_bias = [k for k, v in model.state_dict().items() if _QKV_BIAS.fullmatch(k) and k not in sd]
    if missing_bias and zero_missing_qkv_bias:
        for k in missing_bias:
            sd[k] = torch.zeros_like(model.state_dict()[k])
        warnings.warn(f"load_stam: the checkpoint predates the qkv-bias fix; set {len(missing_bias)} "
                      f"qkv biases to zero: {', '.join(missing_bias)}", stacklevel=2)
    try:
        load_state_dict_strict(model, sd, source=_describe(checkpoint))
    except CheckpointError as e:
        if not missing_bias or zero_missing_qkv_bias:
            raise
        raise CheckpointError(e.source, e.missing, e.unexpected, e.mismatched, note=(
            "  hint: a checkpoint without blocks.*.attn.qkv.bias predates the upstream 'fix qkv bias' "
            "commit; load it with load_stam(..., zero_missing_qkv_bias=True)")) from e
    return missing_bias if zero_missing_qkv_bias else []


class SpatialInitReport(NamedTuple):
    """What :func:`init_spatial_from_vit` did: keys loaded, checkpoint keys ignored, model keys left as they were."""

    loaded: list[str]
    ignored: list[str]
    not_initialised: list[str]


_IGNORED_VIT = re.compile(r"(head|pre_logits|fc_norm)\..*")


def init_spatial_from_vit(model: STAM, path_or_state_dict) -> SpatialInitReport:
    """Initialise STAM's spatial ViT from an image ViT checkpoint in timm's key layout (e.g. ViT-B/16).

    ``path_or_state_dict``: a torch file or a ``.safetensors`` file (as timm downloads Google's ViT weights),
    ``{'model'|'state_dict': sd}`` or a bare state dict; Google's JAX ``.npz`` files need timm's conversion.

    Every spatial key of ``model`` (``patch_embed``, ``cls_token``, ``pos_embed``, ``blocks``, ``norm``) must be
    in the checkpoint with the same shape; the image classifier (``head.*``, ``pre_logits.*``, ``fc_norm.*``)
    is ignored; any other checkpoint key is an error. ``aggregate.*`` and ``head.*`` of the model keep their
    values and are reported. Note: timm's ViTs use LayerNorm eps 1e-6 and STAM 1e-5; this loads the weights
    into STAM's 1e-5 model, as the authors did.

    Returns:
        a :class:`SpatialInitReport`.
    """
    sd = _read_vit(path_or_state_dict)
    own = model.state_dict()
    kept = [k for k in own if k.startswith(("aggregate.", "head."))]
    ignored = sorted(k for k in sd if _IGNORED_VIT.fullmatch(k))
    unexpected = sorted(k for k in sd if k not in ignored and (k not in own or k in kept))
    if unexpected:
        raise CheckpointError(_describe(path_or_state_dict), unexpected=unexpected,
                              note="  (these are not part of STAM's spatial ViT; only head.*, pre_logits.*, "
                                   "fc_norm.* are ignored)")
    spatial = {k: v for k, v in sd.items() if k not in ignored}
    load_state_dict_strict(model, {**spatial, **{k: own[k] for k in kept}}, source=_describe(path_or_state_dict))
    return SpatialInitReport(sorted(spatial), ignored, kept)


def _read_vit(path_or_state_dict) -> dict[str, torch.Tensor]:
    """A timm-layout state dict from a torch file, a ``.safetensors`` file (timm's hub format) or a dict."""
    if isinstance(path_or_state_dict, (str, os.PathLike)):
        suffix = os.fspath(path_or_state_dict).rsplit(".", 1)[-1]
        if suffix == "npz":
            raise CheckpointError(_describe(path_or_state_dict), note=(
                "  a Google JAX .npz file: convert it with timm first, e.g. timm.create_model("
                "'vit_base_patch16_224', pretrained=True, pretrained_cfg_overlay=dict(file=path)).state_dict()"))
        if suffix == "safetensors" and os.path.isfile(path_or_state_dict):
            from safetensors.torch import load_file

            path_or_state_dict = load_file(os.fspath(path_or_state_dict))
    sd = read_checkpoint(path_or_state_dict, "model", "state_dict")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def _describe(checkpoint) -> str:
    return f"'{os.fspath(checkpoint)}'" if isinstance(checkpoint, (str, os.PathLike)) else "<state dict>"


# ---------------------------------------------------------------------------------------------- registry
def _cfg(num_frames: int, *, crop_size: int, resize_short: int, published: str | None = None, **extra) -> dict:
    """STAM's data cfg: T frames at T/10 fps from the start, 1 clip x 1 centre crop, [0, 1], no normalisation.

    ``resize_short = crop_size / 0.875`` (the official ``val_zoom_factor``: 256 for 224).
    """
    sampling = dict(name="STAMSampleFrames", num_frames=num_frames, window_seconds=10.0, short_video="loop")
    return make_cfg(num_frames=num_frames, crop_size=crop_size, resize_short=resize_short, sampling=sampling,
                    test_crops=1, mean=None, std=None, value_scale=1.0, paper="2103.13915",
                    published=published, **extra)


def _stam(T: int, num_classes: int, num_frames: int | None, kw: dict) -> STAM:
    if num_frames not in (None, T):
        raise ValueError(f"stam_{T} is defined for num_frames={T}, got {num_frames}; use STAM(num_frames=...)")
    model = STAM(T, num_classes, **kw)
    model.default_cfg = _cfg(T, crop_size=model.img_size, resize_short=model.img_size * 8 // 7,
                             published=f"stam_{T}_k400", url=_URL.format(T))
    return model


@register_model
def stam_8(*, num_classes: int = 400, num_frames: int | None = None, **kw) -> STAM:
    """STAM-8: ViT-B/16 + 6-layer temporal transformer on 8 frames (released v2 weights, no official factory)."""
    return _stam(8, num_classes, num_frames, kw)


@register_model
def stam_16(*, num_classes: int = 400, num_frames: int | None = None, **kw) -> STAM:
    """STAM-16 (the official default model)."""
    return _stam(16, num_classes, num_frames, kw)


@register_model
def stam_32(*, num_classes: int = 400, num_frames: int | None = None, **kw) -> STAM:
    """STAM-32."""
    return _stam(32, num_classes, num_frames, kw)


@register_model
def stam_64(*, num_classes: int = 400, num_frames: int | None = None, **kw) -> STAM:
    """STAM-64."""
    return _stam(64, num_classes, num_frames, kw)


_TINY = dict(img_size=112, patch_size=16, embed_dim=192, depth=4, num_heads=3,
             temporal_layers=2, temporal_heads=4, temporal_ff=768)


def _tiny(num_classes: int, num_frames: int | None, aggregate: str, kw: dict) -> STAM:
    T = num_frames or 8
    model = STAM(T, num_classes, **{**_TINY, "aggregate": aggregate, **kw})
    model.default_cfg = _cfg(T, crop_size=model.img_size, resize_short=model.img_size * 8 // 7)
    return model


@register_model
def stam_tiny(*, num_classes: int = 400, num_frames: int | None = None, **kw) -> STAM:
    """A small STAM for CPU experiments: ViT (D 192, depth 4, 3 heads, patch 16) at 112 px + 2 temporal layers."""
    return _tiny(num_classes, num_frames, "transformer", kw)


@register_model
def stam_mean_tiny(*, num_classes: int = 400, num_frames: int | None = None, **kw) -> STAM:
    """``stam_tiny`` with the :class:`MeanAggregate` baseline instead of the temporal transformer."""
    return _tiny(num_classes, num_frames, "mean", kw)
