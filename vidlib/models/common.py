"""What every model family shares: the input check and the classification head.

- :func:`check_clip`: every model's forward starts with it, so a wrong dtype
  (``TypeError``) or shape (``ValueError``) is reported up front, naming what was
  expected and what came.
- :class:`ClsHead`: average pool -> dropout -> ``fc_cls`` (keys
  ``cls_head.fc_cls.{weight,bias}``), for per-frame 2D features (mmaction2's
  ``TSNHead`` / ``TSMHead``: class scores averaged over T) and for 3D features
  (mmaction2's ``I3DHead``, also TPN's head at test time).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import BadConfigError

__all__ = ["check_clip", "ClsHead"]


def check_clip(
    x: torch.Tensor, who: str, *, num_frames: int | None = None, size: int | None = None
) -> None:
    """Check that ``x`` is a floating-point clip ``[B, 3, T, H, W]``.

    Args:
        x: the model input.
        who: the model's name, for the message.
        num_frames: the T the model needs, or ``None`` for any T.
        size: the H = W the model needs (STAM's fixed position embedding), or ``None``
            for any.

    Raises:
        TypeError: ``x`` is not floating point (e.g. a uint8 clip straight from a video
            reader).
        ValueError: the shape is not ``[B, 3, T, H, W]`` with the required T (and H, W);
            the message names the expected and the actual shape.
    """
    if not torch.is_floating_point(x):
        raise TypeError(
            f"{who}: expected a floating-point clip [B, 3, T, H, W] "
            f"normalised as model.default_cfg says, got {x.dtype}"
        )
    t = "T" if num_frames is None else str(num_frames)
    hw = "H, W" if size is None else f"{size}, {size}"
    if (
        x.ndim != 5
        or x.shape[1] != 3
        or (num_frames is not None and x.shape[2] != num_frames)
        or (size is not None and tuple(x.shape[3:]) != (size, size))
    ):
        # plain ints, also while a FLOP counter traces the model
        shape = tuple(int(d) for d in x.shape)
        raise BadConfigError(f"{who}: expected a clip [B, 3, {t}, {hw}], got {shape}")


class ClsHead(nn.Module):
    """Average pool -> dropout -> ``fc_cls``: mmaction2's ``TSNHead``/``TSMHead`` (2D)
    and ``I3DHead`` (3D).

    Args:
        in_channels: C, the feature channels (2048 for ResNet-50).
        num_classes: K, the number of classes.
        dropout: dropout ratio before ``fc_cls`` (TSN 0.4, TSM/TANet-K400 0.5, TIN-sthv1
            0.8, 3D models 0.5).
        init_std: std of the normal init of ``fc_cls.weight`` (TSM/TANet/TIN 0.001; TSN
            and the 3D heads 0.01).
        ndim: 2 for per-frame features ``[N*T, C, h, w]``: the class scores of the T
            frames are averaged (pass ``num_frames`` to :meth:`forward`); 3 for clip
            features ``[N, C, T, h, w]``.

    ``TSNHead`` averages the pooled features over T before ``fc_cls`` and ``TSMHead``
    the scores after it; the fc is linear, so in eval mode (no dropout) both give the
    same logits.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        dropout: float = 0.5,
        init_std: float = 0.01,
        *,
        ndim: int = 3,
    ):
        super().__init__()
        if ndim not in (2, 3):
            raise ValueError(
                "ClsHead: ndim must be 2 (per-frame features) or 3 (clip features), "
                f"got {ndim}"
            )
        self.ndim = ndim
        self.avg_pool = (
            nn.AdaptiveAvgPool2d(1) if ndim == 2 else nn.AdaptiveAvgPool3d(1)
        )
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc_cls = nn.Linear(in_channels, num_classes)
        nn.init.normal_(self.fc_cls.weight, std=init_std)
        nn.init.zeros_(self.fc_cls.bias)

    def forward(self, x: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        # [N*T, C, 1, 1] (2D) or [N, C, 1, 1, 1] (3D) -> [N*T or N, C]
        x = self.avg_pool(x).flatten(1)
        scores = self.fc_cls(self.dropout(x))  # [N*T or N, K]
        if self.ndim == 3:
            return scores
        if num_frames is None:
            raise ValueError(
                "ClsHead(ndim=2): forward needs num_frames to average the frame scores"
            )
        # [N, T, K] -> [N, K]
        return scores.view(-1, num_frames, scores.shape[-1]).mean(dim=1)
