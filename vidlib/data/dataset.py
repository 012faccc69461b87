"""Datasets of videos (or rawframe folders) with mmaction2's protocols, test-view averaging, loaders.

``VideoDataset(ann_file, data_prefix, sampler, transform, test_mode, on_error)`` yields ``(clip, label)``:
``clip`` is float ``[3, T, H, W]`` for one view, ``[V, 3, T, H, W]`` when the sampler or the crops make
several views (test mode; also validation with a multi-view sampler such as ``DenseSampleFrames``).

Errors (``on_error``):

- missing files are found when the dataset is built: ``"raise"`` lists the first ones; ``"skip"`` drops
  them from the list with a warning and keeps them in ``dataset.missing``;
- an unreadable video is found when it is read: ``"raise"`` re-raises (the message names the file and
  the reason); ``"skip"`` warns and records it in ``dataset.unreadable`` (shared across DataLoader
  workers) and, in training, reads another random video instead; in evaluation it returns a zero clip
  with label ``-1`` so that the evaluation set is never shortened silently: evaluation code must report
  label ``-1``. Reports (training summaries, evaluation reports) list both.

:func:`build_dataset` wires the sampler and transforms of a model cfg; :func:`average_views` and
:func:`forward_views` implement mmaction2's test-time averaging with bounded memory; the seeded loader
is in :mod:`vidlib.data.loader`.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import BadDataError
from .annotations import missing_files, read_label_map, read_rawframe_list, read_video_list
from .cache import FrameCache
from .samplers import build_sampler
from .transforms import build_transform
from .video import VideoReader, VideoReadError

__all__ = [
    "VideoDataset",
    "DataWarning",
    "build_dataset",
    "average_views",
    "forward_views",
    "load_meta",
    "loader_throughput",
]


class DataWarning(UserWarning):
    """A video was skipped (missing or unreadable). Shown every time, never only once per process."""


warnings.simplefilter("always", DataWarning)


class VideoDataset(Dataset):
    """Videos listed in an mmaction2 annotation file.

    Args:
        ann_file: ``relpath label`` list (``format="video"``) or ``frame_dir total_frames label``
            (``format="rawframes"``).
        data_prefix: folder the relative paths start from.
        sampler: a sampler from :mod:`vidlib.data.samplers` (``sampler(total_frames, test_mode, rng, fps)``).
        transform: ``(uint8 video [N, 3, H, W], label) -> (float clip, label)``, e.g. :func:`build_transform`.
        test_mode: deterministic sampling (val and test).
        on_error: ``"raise"`` or ``"skip"`` (see the module docstring).
        label_map: class names (a list, or a label-map file); only for display and checks.
        backend: ``"decord"`` or ``"pyav"`` for videos (rawframes use the rawframe reader).
        format: ``"video"`` or ``"rawframes"``.
        filename_tmpl, start_index: rawframe file names (mmaction2 defaults ``img_{:05}.jpg``, 1).
        frame_cache: a :class:`~vidlib.data.cache.FrameCache`: decode each video once, whole, and sample
            later clips from memory (the same clips as without it).
    """

    def __init__(
        self,
        ann_file,
        data_prefix,
        sampler,
        transform: Callable,
        test_mode: bool = False,
        on_error: str = "raise",
        label_map=None,
        backend: str = "decord",
        format: str = "video",
        filename_tmpl: str = "img_{:05}.jpg",
        start_index: int = 1,
        frame_cache: FrameCache | None = None,
    ):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if format not in ("video", "rawframes"):
            raise ValueError(f"format must be 'video' or 'rawframes', got {format!r}")
        self.ann_file, self.data_prefix = Path(ann_file), Path(data_prefix)
        self.sampler, self.transform, self.test_mode, self.on_error = sampler, transform, test_mode, on_error
        self.backend, self.format, self.filename_tmpl, self.start_index = (
            backend,
            format,
            filename_tmpl,
            start_index,
        )
        self.frame_cache = frame_cache
        records = (read_rawframe_list if format == "rawframes" else read_video_list)(self.ann_file)
        if not records:
            raise BadDataError(f"annotation file {self.ann_file} lists no videos")
        self.classes = read_label_map(label_map) if isinstance(label_map, (str, os.PathLike)) else label_map
        bad_labels = [r for r in records if r.label < 0 or (self.classes and r.label >= len(self.classes))]
        if bad_labels:
            raise BadDataError(
                f"{self.ann_file}: labels out of range for {len(self.classes or [])} classes, "
                f"e.g. {bad_labels[:3]}"
            )
        missing = missing_files(records, self.data_prefix)
        self.missing = [str(self.data_prefix / records[i].path) for i in missing]
        if missing and on_error == "raise":
            raise FileNotFoundError(
                f"{len(missing)} of {len(records)} videos listed in {self.ann_file} are missing "
                f"under {self.data_prefix}, e.g. {self.missing[:5]}"
            )
        if missing:
            warnings.warn(
                f"SKIPPING {len(missing)} of {len(records)} videos of {self.ann_file} (missing files, e.g. "
                f"{self.missing[:3]}); see dataset.missing",
                DataWarning,
                stacklevel=2,
            )
            gone = set(missing)
            records = [r for i, r in enumerate(records) if i not in gone]
        self.records = records
        self._failed = multiprocessing.Array("b", len(records))  # 1 = failed to decode (shared with workers)

    @property
    def unreadable(self) -> list[str]:
        """Paths of the videos that failed to decode so far (all DataLoader workers together)."""
        with self._failed.get_lock():
            flags = list(self._failed)
        return [str(self.data_prefix / self.records[i].path) for i, f in enumerate(flags) if f]

    @property
    def num_failed(self) -> int:
        """How many videos failed to decode so far (``len(dataset.unreadable)``)."""
        return len(self.unreadable)

    @property
    def num_views(self) -> int:
        """Views per clip: sampler views x crops (3 with a ThreeCrop in the transform, 10 with a TenCrop)."""
        names = {type(t).__name__ for t in getattr(self.transform, "transforms", [])}
        crops = 10 if "TenCrop" in names else 3 if "ThreeCrop" in names else 1
        return self.sampler.num_views(self.test_mode) * crops

    def __len__(self) -> int:
        return len(self.records)

    def labels(self) -> np.ndarray:
        return np.array([r.label for r in self.records], dtype=np.int64)

    def open(self, index: int) -> VideoReader:
        r = self.records[index]
        if self.format == "rawframes":
            return VideoReader(
                self.data_prefix / r.path,
                "rawframes",
                filename_tmpl=self.filename_tmpl,
                start_index=self.start_index,
                num_frames=r.total_frames,
            )
        return VideoReader(self.data_prefix / r.path, self.backend)

    def load(self, index: int) -> tuple[torch.Tensor, int]:
        """Decode, sample and transform video ``index`` (errors propagate)."""
        seed = int(torch.randint(0, 2**62, ()))  # one RNG stream: torch's, which DataLoader seeds per worker
        rng = np.random.default_rng(seed)
        if self.frame_cache is None:
            reader = self.open(index)
            inds = self.sampler(len(reader), test_mode=self.test_mode, rng=rng, fps=reader.fps)
            frames = reader.get_batch(inds)  # [N, H, W, 3]
        else:
            video, fps = self.frame_cache.get(self._cache_key(index), lambda: self._decode_all(index))
            inds = self.sampler(len(video), test_mode=self.test_mode, rng=rng, fps=fps)
            frames = video[np.asarray(inds, dtype=np.int64).reshape(-1)]  # [N, H, W, 3] (a copy)
        frames = torch.from_numpy(frames).permute(0, 3, 1, 2)  # [N, 3, H, W]
        clip, label = self.transform(frames, self.records[index].label)
        return (clip[0] if clip.shape[0] == 1 else clip), label  # [3, T, H, W] or [V, 3, T, H, W]

    def _cache_key(self, index: int) -> tuple:
        r = self.records[index]
        return (
            str(self.data_prefix / r.path),
            self.format,
            self.backend,
            self.filename_tmpl,
            self.start_index,
            r.total_frames,
        )

    def _decode_all(self, index: int) -> tuple[np.ndarray, float]:
        reader = self.open(index)
        return reader.get_batch(np.arange(len(reader))), reader.fps  # [F, H, W, 3]

    def __getitem__(self, index: int):
        attempts = 10 if (self.on_error == "skip" and not self.test_mode) else 1
        for _ in range(attempts):
            try:
                return self.load(index)
            except (VideoReadError, OSError) as e:
                if self.on_error == "raise":
                    raise
                with self._failed.get_lock():
                    self._failed[index] = 1
                warnings.warn(
                    f"SKIPPED unreadable video ({self.num_failed} so far): {e}", DataWarning, stacklevel=1
                )
                if self.test_mode:
                    return self._placeholder(), -1
                index, error = int(torch.randint(len(self), ())), e  # training: another random video
        raise VideoReadError(f"{attempts} videos in a row of {self.ann_file} failed to decode; last: {error}")

    def _placeholder(self) -> torch.Tensor:
        """A zero clip shaped like the others (from the first readable video), label -1."""
        if not hasattr(self, "_shape"):
            for i in range(len(self)):
                try:
                    self._shape = self.load(i)[0].shape
                    break
                except (VideoReadError, OSError):
                    continue
            else:
                raise VideoReadError(f"no video of {self.ann_file} can be read")
        return torch.zeros(self._shape)

    def __repr__(self) -> str:
        return (
            f"VideoDataset({len(self)} videos from {self.ann_file}, sampler={self.sampler!r}, "
            f"test_mode={self.test_mode}, views={self.num_views})"
        )


def load_meta(root) -> dict:
    """A dataset folder's ``meta.json`` (synthetic benchmark) with integer ``flip_label_map`` keys, or
    ``{}``."""
    f = Path(root) / "meta.json"
    if not f.is_file():
        return {}
    meta = json.loads(f.read_text())
    meta["flip_label_map"] = {int(k): int(v) for k, v in meta.get("flip_label_map", {}).items()}
    return meta


def build_dataset(
    root,
    split: str,
    model_cfg: dict,
    mode: str,
    *,
    on_error: str = "raise",
    backend: str = "decord",
    ann_file=None,
    data_prefix=None,
    format: str = "video",
    filename_tmpl: str = "img_{:05}.jpg",
    start_index: int = 1,
    frame_cache: FrameCache | None = None,
    **overrides,
) -> VideoDataset:
    """The dataset ``<root>/<split>.txt`` (videos under ``<root>``) prepared for a model.

    Args:
        root: a dataset folder with ``<split>.txt``, optional ``label_map.txt`` and ``meta.json``.
        split: ``"train"``, ``"val"`` ...
        model_cfg: ``model.default_cfg`` (see ``make_cfg``): ``sampling``, ``test_sampling``,
            ``resize_short``, ``crop_size``, ``test_crops``, ``test_crop_size``, ``mean``, ``std``,
            ``value_scale``, and optional ``train_crop``, ``num_fixed_crops``, ``flip``, ``color_jitter``,
            ``flip_label_map``.
        mode: ``"train"`` (random sampling, augmentation), ``"val"`` (the training sampler in test mode,
            centre crop) or ``"test"`` (``test_sampling``, ``test_crops`` crops: all views).
        ann_file, data_prefix: an mmaction2 list and its folder instead of ``<root>/<split>.txt`` and ``root``
            (e.g. ``kinetics400_val_list_videos.txt`` and ``videos_val/``).
        format, filename_tmpl, start_index: ``"rawframes"`` lists (Something-Something V1:
            ``filename_tmpl="{:05}.jpg"``).
        frame_cache: keep decoded videos in memory (:class:`~vidlib.data.cache.FrameCache`).
        **overrides: replace cfg entries, e.g. ``crop_size=64, resize_short=64`` for the synthetic set.

    The flip relabels classes with ``meta.json``'s ``flip_label_map`` when the folder has one (the
    synthetic benchmark), otherwise with ``model_cfg["flip_label_map"]`` (Something-Something configs).
    """
    if mode not in ("train", "val", "test"):
        raise ValueError(f"mode must be 'train', 'val' or 'test', got {mode!r}")
    root = Path(root)
    ann = Path(ann_file) if ann_file else root / f"{split}.txt"
    if not ann.is_file():
        raise FileNotFoundError(
            f"no annotation list {ann}" + ("" if ann_file else f" (expected '{split}.txt' in {root})")
        )
    cfg = {**model_cfg, **overrides}
    meta = load_meta(root)
    flip_map = meta["flip_label_map"] if meta else cfg.get("flip_label_map")
    sampler = build_sampler(cfg["test_sampling"] if mode == "test" else cfg["sampling"])
    transform = build_transform(cfg, mode, sampler.num_frames, flip_map)
    label_map = root / "label_map.txt"
    return VideoDataset(
        ann,
        data_prefix or root,
        sampler,
        transform,
        test_mode=(mode != "train"),
        on_error=on_error,
        label_map=label_map if label_map.is_file() else None,
        backend=backend,
        format=format,
        filename_tmpl=filename_tmpl,
        start_index=start_index,
        frame_cache=frame_cache,
    )


def average_views(scores: torch.Tensor, mode: str = "prob") -> torch.Tensor:
    """Average ``[B, V, C]`` view scores to ``[B, C]`` (mmaction2 ``average_clip``).

    ``"prob"``: softmax over classes, then mean over views; ``"score"``: mean of the
    logits.
    """
    if scores.ndim != 3:
        shape = list(scores.shape)
        raise ValueError(f"average_views expects scores [B, V, C], got shape {shape}")
    if mode == "prob":
        return scores.softmax(dim=-1).mean(dim=1)
    if mode == "score":
        return scores.mean(dim=1)
    raise ValueError(f"average_views mode must be 'prob' or 'score', got {mode!r}")


@torch.no_grad()
def forward_views(model: Callable, clips: torch.Tensor, max_views: int = 8) -> torch.Tensor:
    """Run ``model`` on every view of ``clips [B, V, 3, T, H, W]`` at most ``max_views`` at a time.

    Memory is bounded by ``max_views`` clips whatever ``B x V`` is (30-view protocols). Returns the
    per-view scores ``[B, V, C]`` for :func:`average_views`. ``[B, 3, T, H, W]`` counts as ``V = 1``.
    """
    if clips.ndim == 5:
        clips = clips.unsqueeze(1)  # [B, 1, 3, T, H, W]
    if clips.ndim != 6:
        raise ValueError(f"forward_views expects clips [B, V, 3, T, H, W], got shape {list(clips.shape)}")
    b, v = clips.shape[:2]
    flat = clips.flatten(0, 1)  # [B*V, 3, T, H, W]
    out = torch.cat([model(flat[i : i + max_views]) for i in range(0, b * v, max_views)])  # [B*V, C]
    return out.view(b, v, -1)  # [B, V, C]


def loader_throughput(loader, max_clips: int = 64, warmup_batches: int = 1) -> dict:
    """Clips per second a loader delivers, timed after ``warmup_batches`` (which start the workers)."""
    import time

    it = iter(loader)
    for _ in range(warmup_batches):
        next(it)
    n, t0 = 0, time.perf_counter()
    for x, _ in it:
        n += x.shape[0]
        if n >= max_clips:
            break
    dt = time.perf_counter() - t0
    return dict(clips=n, seconds=round(dt, 3), clips_per_s=n / dt if dt > 0 else float("nan"))
