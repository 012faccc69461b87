"""Clip transforms on uint8 video tensors ``[N, 3, H, W]`` (N frames of all views), mmaction2 semantics.

Built on ``torchvision.transforms.v2`` wherever it has the operation (resize, crops, flip, colour
jitter, normalise); every random choice is drawn once per clip, so all frames get the same crop and
flip. The pieces mmaction2 defines differently are written out here:

- :class:`ResizeShort`: short side to ``size``, long side ``int(long * size / short + 0.5)`` (mmcv's
  ``rescale_size``), bilinear without antialiasing (as ``cv2.INTER_LINEAR``).
- :class:`MultiScaleCrop`: mmaction2's TSN/TSM crop (scales 1, .875, .75, .66 of the short side, w/h scale
  levels at most ``max_wh_scale_gap`` apart, 5 or 13 fixed positions), followed by a resize to the input.
- :class:`ThreeCrop`: three ``crop_size`` squares along the long side (left, right, middle); :class:`TenCrop`:
  corners and centre, each with its mirror image.
- :class:`Flip`: horizontal flip that relabels direction classes through ``flip_label_map``.
- :class:`ToModelInput`: float, ``value_scale`` and per-model mean/std (0-255 scale for mmaction2
  models, ``[0, 1]`` and none for STAM), and the layout ``[V, 3, T, H, W]``.

A transform takes and returns ``(video, label)``; :class:`Compose` chains them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

__all__ = [
    "Compose",
    "ResizeShort",
    "Resize",
    "MultiScaleCrop",
    "RandomResizedCrop",
    "CenterCrop",
    "ThreeCrop",
    "TenCrop",
    "Flip",
    "ColorJitter",
    "ToModelInput",
    "build_transform",
]


def _check_video(video: torch.Tensor, where: str) -> None:
    if video.ndim != 4 or video.shape[1] != 3:
        raise ValueError(f"{where}: expected a video [N, 3, H, W], got shape {list(video.shape)}")


class Compose:
    """Apply ``transforms`` in order to ``(video, label)``."""

    def __init__(self, transforms: Sequence):
        self.transforms = list(transforms)

    def __call__(self, video: torch.Tensor, label: int = -1):
        for t in self.transforms:
            video, label = t(video, label)
        return video, label

    def __repr__(self) -> str:
        return "Compose(\n  " + ",\n  ".join(map(repr, self.transforms)) + "\n)"


class _VideoOnly:
    """Wrap a ``torchvision.transforms.v2`` transform: one random draw for the whole clip."""

    def __init__(self, t: v2.Transform):
        self.t = t

    def __call__(self, video, label):
        _check_video(video, type(self).__name__)
        return self.t(video), label

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.t!r})"


class ResizeShort:
    """Resize the short side to ``size`` keeping the aspect ratio (mmaction2 ``Resize((-1, size))``)."""

    def __init__(self, size: int, antialias: bool = False):
        self.size, self.antialias = int(size), antialias

    def __call__(self, video, label):
        _check_video(video, "ResizeShort")
        h, w = video.shape[-2:]
        scale = self.size / min(h, w)
        new_h, new_w = int(h * scale + 0.5), int(w * scale + 0.5)
        if (new_h, new_w) != (h, w):
            video = F.resize(video, [new_h, new_w], antialias=self.antialias)
        return video, label

    def __repr__(self) -> str:
        return f"ResizeShort({self.size})"


class Resize(_VideoOnly):
    """Resize to a fixed ``size x size`` (mmaction2 ``Resize((s, s), keep_ratio=False)``)."""

    def __init__(self, size: int, antialias: bool = False):
        super().__init__(v2.Resize([size, size], antialias=antialias))


class MultiScaleCrop:
    """mmaction2's ``MultiScaleCrop`` (``random_crop=False``), then a resize to ``input_size``.

    Crop sides are ``int(min(H, W) * s)`` for ``s`` in ``scales``; width and height take scale levels
    ``i, j`` with ``|i - j| <= max_wh_scale_gap``; a side within 2 px of ``input_size`` snaps to it. The
    position is one of 5 fixed ones (corners, centre) or 13 (plus edge centres and quarter points) on a
    grid of ``(W - w) // 4`` by ``(H - h) // 4`` steps.

    Args:
        input_size: the network input side (224), the final output size.
        scales: crop scales relative to the short side.
        max_wh_scale_gap: largest allowed difference between the width and height scale levels.
        num_fixed_crops: 5 or 13 (TANet uses 13).
    """

    _FIXED_5 = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2)]
    _FIXED_EXTRA = [(0, 2), (4, 2), (2, 4), (2, 0), (1, 1), (3, 1), (1, 3), (3, 3)]

    def __init__(
        self,
        input_size: int,
        scales=(1, 0.875, 0.75, 0.66),
        max_wh_scale_gap: int = 1,
        num_fixed_crops: int = 5,
    ):
        if num_fixed_crops not in (5, 13):
            raise ValueError(f"num_fixed_crops must be 5 or 13, got {num_fixed_crops}")
        self.input_size, self.scales = int(input_size), tuple(scales)
        self.max_wh_scale_gap, self.num_fixed_crops = max_wh_scale_gap, num_fixed_crops
        self.positions = self._FIXED_5 + (self._FIXED_EXTRA if num_fixed_crops == 13 else [])

    def crop_box(self, h: int, w: int, gen: torch.Generator | None = None) -> tuple[int, int, int, int]:
        """A random ``(top, left, height, width)`` for an ``h x w`` frame."""
        sides = [int(min(h, w) * s) for s in self.scales]
        candidates = [
            (cw, ch)
            for i, ch in enumerate(sides)
            for j, cw in enumerate(sides)
            if abs(i - j) <= self.max_wh_scale_gap
        ]
        cw, ch = candidates[int(torch.randint(len(candidates), (1,), generator=gen))]
        cw = self.input_size if abs(cw - self.input_size) < 3 else cw
        ch = self.input_size if abs(ch - self.input_size) < 3 else ch
        w_step, h_step = (w - cw) // 4, (h - ch) // 4
        px, py = self.positions[int(torch.randint(len(self.positions), (1,), generator=gen))]
        return py * h_step, px * w_step, ch, cw

    def __call__(self, video, label):
        _check_video(video, "MultiScaleCrop")
        top, left, ch, cw = self.crop_box(*video.shape[-2:])
        video = F.crop(video, top, left, ch, cw)
        return F.resize(video, [self.input_size, self.input_size], antialias=False), label

    def __repr__(self) -> str:
        return (
            f"MultiScaleCrop({self.input_size}, scales={self.scales}, "
            f"max_wh_scale_gap={self.max_wh_scale_gap}, num_fixed_crops={self.num_fixed_crops})"
        )


class RandomResizedCrop(_VideoOnly):
    """Inception-style crop (area 8-100%, aspect 3/4-4/3) resized to ``size`` (TPN, CSN training)."""

    def __init__(self, size: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), antialias: bool = False):
        super().__init__(v2.RandomResizedCrop(size, scale=scale, ratio=ratio, antialias=antialias))


class CenterCrop(_VideoOnly):
    """Centre ``size x size`` crop; top-left at ``((H - size) // 2, (W - size) // 2)`` as mmaction2."""

    def __init__(self, size: int):
        super().__init__(v2.CenterCrop(size))
        self.size = int(size)

    def __call__(self, video, label):
        _check_video(video, "CenterCrop")
        h, w = video.shape[-2:]
        if self.size > min(h, w):
            raise ValueError(f"CenterCrop({self.size}) does not fit frames of {h}x{w}")
        top, left = (h - self.size) // 2, (w - self.size) // 2  # torchvision rounds; mmaction2 floors
        return F.crop(video, top, left, self.size, self.size), label


class ThreeCrop:
    """Three ``size x size`` crops along the long side: left/top, right/bottom, middle (mmaction2 order).

    The short side must equal ``size`` (resize the short side to it first), as mmaction2 asserts.
    Returns ``[3, N, 3, size, size]``: crop-major, as mmaction2 concatenates its crops.
    """

    def __init__(self, size: int):
        self.size = int(size)

    def __call__(self, video, label):
        _check_video(video, "ThreeCrop")
        h, w = video.shape[-2:]
        s = self.size
        if h == s and w >= s:
            step = (w - s) // 2
            boxes = [(0, 0), (0, 2 * step), (0, step)]
        elif w == s and h >= s:
            step = (h - s) // 2
            boxes = [(0, 0), (2 * step, 0), (step, 0)]
        else:
            raise ValueError(
                f"ThreeCrop({s}) needs the short side of the {h}x{w} frames to equal {s}; "
                f"resize the short side to {s} first"
            )
        return torch.stack([F.crop(video, t, l, s, s) for t, l in boxes]), label  # [3, N, 3, s, s]

    def __repr__(self) -> str:
        return f"ThreeCrop({self.size})"


class TenCrop:
    """Ten ``size x size`` views: 4 corners and the centre, each followed by its mirror (mmaction2 order).

    Positions are on the grid of ``(W - size) // 4`` and ``(H - size) // 4`` steps (TSN's K400 test
    protocol: 25 segments x TenCrop 224). Returns ``[10, N, 3, size, size]``.
    """

    def __init__(self, size: int):
        self.size = int(size)

    def __call__(self, video, label):
        _check_video(video, "TenCrop")
        h, w = video.shape[-2:]
        s = self.size
        if s > min(h, w):
            raise ValueError(f"TenCrop({s}) does not fit frames of {h}x{w}")
        ws, hs = (w - s) // 4, (h - s) // 4
        crops = []
        for px, py in [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2)]:
            c = F.crop(video, py * hs, px * ws, s, s)
            crops += [c, F.horizontal_flip(c)]
        return torch.stack(crops), label  # [10, N, 3, s, s]

    def __repr__(self) -> str:
        return f"TenCrop({self.size})"


class Flip:
    """Horizontal flip with probability ``p``; a flipped clip's label goes through ``flip_label_map``.

    ``flip_label_map`` maps a class to its mirror class (e.g. "moving left" <-> "moving right", and
    clockwise <-> counter-clockwise); labels not in the map keep their value (mmaction2 ``Flip``).
    """

    def __init__(self, p: float = 0.5, flip_label_map: dict[int, int] | None = None):
        self.p = p
        self.flip_label_map = {int(k): int(v) for k, v in (flip_label_map or {}).items()}

    def __call__(self, video, label):
        _check_video(video, "Flip")
        if float(torch.rand(())) < self.p:
            video = F.horizontal_flip(video)
            label = self.flip_label_map.get(int(label), label) if label is not None and label >= 0 else label
        return video, label

    def __repr__(self) -> str:
        return f"Flip(p={self.p}, flip_label_map={self.flip_label_map or None})"


class ColorJitter(_VideoOnly):
    """Brightness/contrast/saturation/hue jitter, one draw per clip (TPN: 0.5, 0.5, 0.5, 0.1)."""

    def __init__(self, brightness=0.5, contrast=0.5, saturation=0.5, hue=0.1):
        super().__init__(v2.ColorJitter(brightness, contrast, saturation, hue))


class ToModelInput:
    """uint8 ``[N, 3, H, W]`` (or ``[K, N, 3, H, W]`` after ThreeCrop) -> float ``[V, 3, T, H, W]``.

    Pixels are scaled to ``[0, value_scale]`` (255: mmaction2's 0-255 scale; 1: STAM's ``ToTensor``),
    then ``(x - mean) / std`` when ``mean``/``std`` are given (on the same scale). Views are crop-major,
    then the sampler's views in order (mmaction2's order), each of ``num_frames`` frames.

    Args:
        num_frames: T, frames per view.
        mean, std: per-channel statistics or ``None`` (no normalisation).
        value_scale: 255.0 or 1.0.
    """

    def __init__(self, num_frames: int, mean=None, std=None, value_scale: float = 255.0):
        if (mean is None) != (std is None):
            raise ValueError(f"give both mean and std or neither (mean={mean}, std={std})")
        self.num_frames, self.value_scale = int(num_frames), float(value_scale)
        stat = lambda v: torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1, 1)  # noqa: E731  [1, 3, 1, 1, 1]
        self.mean = None if mean is None else stat(mean)
        self.std = None if std is None else stat(std)

    def __call__(self, video, label):
        crops = video if video.ndim == 5 else video.unsqueeze(0)  # [K, N, 3, H, W]
        k, n, c, h, w = crops.shape
        if n % self.num_frames:
            raise ValueError(f"ToModelInput: {n} frames do not split into views of T={self.num_frames}")
        x = crops.reshape(k * n // self.num_frames, self.num_frames, c, h, w)  # [V, T, 3, H, W]
        x = x.permute(0, 2, 1, 3, 4).float()  # [V, 3, T, H, W]
        if self.value_scale != 255.0:
            x = x * (self.value_scale / 255.0)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x.contiguous(), label

    def __repr__(self) -> str:
        m = None if self.mean is None else self.mean.flatten().tolist()
        s = None if self.std is None else self.std.flatten().tolist()
        return f"ToModelInput(T={self.num_frames}, value_scale={self.value_scale:g}, mean={m}, std={s})"


def build_transform(
    cfg: dict, mode: str, num_frames: int, flip_label_map: dict[int, int] | None = None
) -> Compose:
    """The transform of a model cfg (see ``vidlib.models._registry.make_cfg``) for ``mode``.

    - ``train``: ResizeShort(resize_short) -> ``cfg["train_crop"]`` (``"multiscale"``, the default,
      with ``num_fixed_crops`` 5 or 13, or ``"random_resized"``) -> Flip(``cfg["flip"]``, default 0.5,
      with ``flip_label_map``; a probability, ``True`` = 0.5, 0 = off) -> ColorJitter if
      ``cfg["color_jitter"]`` -> ToModelInput.
    - ``val``: ResizeShort -> CenterCrop(crop_size) -> ToModelInput.
    - ``test``: ResizeShort -> CenterCrop (``test_crops=1``), ThreeCrop (3) or TenCrop (10) of
      ``test_crop_size`` -> ToModelInput.

    ``resize_short=None`` skips the resize.
    """
    if mode not in ("train", "val", "test"):
        raise ValueError(f"mode must be 'train', 'val' or 'test', got {mode!r}")
    ts = [ResizeShort(cfg["resize_short"])] if cfg.get("resize_short") else []
    crop = int(cfg["crop_size"])
    if mode == "train":
        kind = cfg.get("train_crop", "multiscale")
        if kind == "multiscale":
            ts.append(MultiScaleCrop(crop, num_fixed_crops=cfg.get("num_fixed_crops", 5)))
        elif kind == "random_resized":
            ts.append(RandomResizedCrop(crop))
        else:
            raise ValueError(f"cfg['train_crop'] must be 'multiscale' or 'random_resized', got {kind!r}")
        flip = cfg.get("flip", 0.5)
        if flip:
            ts.append(Flip(0.5 if flip is True else float(flip), flip_label_map))
        if cfg.get("color_jitter"):
            ts.append(ColorJitter())
    elif mode == "val":
        ts.append(CenterCrop(crop))
    else:
        size, n = int(cfg.get("test_crop_size") or crop), int(cfg.get("test_crops", 1))
        if n not in (1, 3, 10):
            raise ValueError(f"cfg['test_crops'] must be 1, 3 or 10, got {n}")
        ts.append({1: CenterCrop, 3: ThreeCrop, 10: TenCrop}[n](size))
    ts.append(ToModelInput(num_frames, cfg.get("mean"), cfg.get("std"), cfg.get("value_scale", 255.0)))
    return Compose(ts)
