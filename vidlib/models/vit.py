"""The generic Vision Transformer parts (Dosovitskiy et al., arXiv 2010.11929) that STAM
runs on every frame.

STAM's own contribution (the temporal transformer over the frame embeddings) is in
``stam.py``; this file holds what any image ViT has, with the key names of the official
ViT / timm layout, so that image ViT checkpoints load by key
(:func:`init_spatial_from_vit`)::

    frame [N, 3, H, W] -> PatchEmbed (conv P x P, stride P)
                       -> tokens [N, (H/P)*(W/P), D]
    Block (pre-norm): x + Attention(LayerNorm(x)), then x + Mlp(LayerNorm(x))  [N, L, D]

Keys: ``patch_embed.proj.*``, ``cls_token``, ``pos_embed``,
``blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*``, ``norm.*``. The
attention uses ``F.scaled_dot_product_attention`` (``vidlib.flops.count_flops`` counts
its QK^T and AV matmuls).
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..weights import (
    CheckpointError,
    load_state_dict_strict,
    read_checkpoint,
    source_name,
)

__all__ = [
    "trunc_normal_",
    "PatchEmbed",
    "ConvStem",
    "Attention",
    "Mlp",
    "Block",
    "SPATIAL_KEYS",
    "SpatialInitReport",
    "init_spatial_from_vit",
]


def trunc_normal_(t: torch.Tensor, std: float = 0.02) -> torch.Tensor:
    """The official STAM init: ``N(0, 1)`` folded into (-2, 2) by ``fmod``, times
    ``std`` (a cheap truncated normal)."""
    with torch.no_grad():
        return t.normal_().fmod_(2).mul_(std)


class PatchEmbed(nn.Module):
    """Cut a frame into non-overlapping ``patch_size`` patches and project each to
    ``embed_dim``."""

    def __init__(self, img_size: int, patch_size: int, embed_dim: int):
        super().__init__()
        if img_size % patch_size:
            raise ValueError(
                f"img_size {img_size} is not a multiple of patch_size {patch_size}"
            )
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # [N, D, h, w] -> [N, h*w, D]


class ConvStem(nn.Module):
    """Early convolutions instead of the P x P patch projection (Xiao et al., "Early
    Convolutions Help Transformers See Better", arXiv 2106.14881): log2(P) 3x3 convs of
    stride 2 with BatchNorm and ReLU, channels doubling up to ``embed_dim``, then a 1x1
    conv to ``embed_dim``. The token grid is the patch embedding's: (H/P) x (W/P).

    Not part of STAM; the book's tiny STAMs use it (``stem="conv"``) because a tiny ViT
    with a linear patch projection learns too slowly from scratch on CPU budgets.
    """

    def __init__(self, img_size: int, patch_size: int, embed_dim: int):
        super().__init__()
        n = patch_size.bit_length() - 1  # stride-2 convs: P = 2**n
        if patch_size < 2 or 2**n != patch_size or img_size % patch_size:
            raise ValueError(
                f"ConvStem needs a power-of-two patch_size >= 2 dividing img_size, "
                f"got patch_size={patch_size}, img_size={img_size}"
            )
        if embed_dim % 2 ** (n - 1):
            raise ValueError(
                f"embed_dim {embed_dim} is not divisible by 2**{n - 1} (the first "
                "conv's width is embed_dim / 2**(log2(P) - 1))"
            )
        self.num_patches = (img_size // patch_size) ** 2
        widths = [3] + [embed_dim // 2 ** (n - 1 - i) for i in range(n)]
        layers = []
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
        self.stem = nn.Sequential(*layers)
        self.proj = nn.Conv2d(embed_dim, embed_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(self.stem(x))  # [N, D, H/P, W/P]
        return x.flatten(2).transpose(1, 2)  # [N, (H/P)*(W/P), D]


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (keys ``qkv``, ``proj`` as
    in the official ViT)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, L, D = x.shape
        # [N, L, 3, heads, D/heads]
        qkv = self.qkv(x).reshape(N, L, 3, self.num_heads, D // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [N, heads, L, D/heads]
        # softmax(q k^T / sqrt(D/heads)) v: [N, heads, L, D/heads]
        x = F.scaled_dot_product_attention(q, k, v)
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

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        qkv_bias: bool,
        norm_eps: float,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SpatialInitReport(NamedTuple):
    """What :func:`init_spatial_from_vit` did: keys loaded, checkpoint keys ignored,
    model keys left as they were."""

    loaded: list[str]
    ignored: list[str]
    not_initialised: list[str]


#: Prefixes of the spatial ViT's keys (what an image ViT checkpoint provides).
SPATIAL_KEYS = ("patch_embed.", "cls_token", "pos_embed", "blocks.", "norm.")
#: The image classifier of a ViT checkpoint, which the video model does not use.
_IGNORED_VIT = re.compile(r"(head|pre_logits|fc_norm)\..*")


def init_spatial_from_vit(model: nn.Module, path_or_state_dict) -> SpatialInitReport:
    """Initialise the spatial ViT of ``model`` (e.g. STAM's) from an image ViT
    checkpoint in timm's key layout.

    ``path_or_state_dict``: a torch file or a ``.safetensors`` file (as timm downloads
    Google's ViT weights), ``{'model'|'state_dict': sd}`` or a bare state dict; Google's
    JAX ``.npz`` files need timm's conversion.

    Every spatial key of ``model`` (:data:`SPATIAL_KEYS`: ``patch_embed``,
    ``cls_token``, ``pos_embed``, ``blocks``, ``norm``) must be in the checkpoint with
    the same shape; the image classifier (``head.*``, ``pre_logits.*``, ``fc_norm.*``)
    is ignored; any other checkpoint key is an error. The model's other keys (STAM:
    ``aggregate.*`` and ``head.*``) keep their values and are reported. Note: timm's
    ViTs use LayerNorm eps 1e-6 and STAM 1e-5; this loads the weights into STAM's 1e-5
    model, as the authors did.

    Returns:
        a :class:`SpatialInitReport`.
    """
    sd = _read_vit(path_or_state_dict)
    own = model.state_dict()
    kept = [k for k in own if not k.startswith(SPATIAL_KEYS)]
    ignored = sorted(k for k in sd if _IGNORED_VIT.fullmatch(k))
    unexpected = sorted(
        k for k in sd if k not in ignored and (k not in own or k in kept)
    )
    if unexpected:
        raise CheckpointError(
            source_name(path_or_state_dict),
            unexpected=unexpected,
            note="  (these are not part of the spatial ViT; only head.*, pre_logits.*, "
            "fc_norm.* are ignored)",
        )
    spatial = {k: v for k, v in sd.items() if k not in ignored}
    load_state_dict_strict(
        model,
        {**spatial, **{k: own[k] for k in kept}},
        source=source_name(path_or_state_dict),
    )
    return SpatialInitReport(sorted(spatial), ignored, kept)


def _read_vit(path_or_state_dict) -> dict[str, torch.Tensor]:
    """A timm-layout state dict from a torch file, a ``.safetensors`` file (timm's hub
    format) or a dict."""
    if isinstance(path_or_state_dict, (str, os.PathLike)):
        suffix = os.fspath(path_or_state_dict).rsplit(".", 1)[-1]
        if suffix == "npz":
            raise CheckpointError(
                source_name(path_or_state_dict),
                note=(
                    "  a Google JAX .npz file: convert it with timm first, e.g. "
                    "timm.create_model('vit_base_patch16_224', pretrained=True, "
                    "pretrained_cfg_overlay=dict(file=path)).state_dict()"
                ),
            )
        if suffix == "safetensors" and os.path.isfile(path_or_state_dict):
            from safetensors.torch import load_file

            path_or_state_dict = load_file(os.fspath(path_or_state_dict))
    sd = read_checkpoint(path_or_state_dict, "model", "state_dict")
    return {k.removeprefix("module."): v for k, v in sd.items()}
