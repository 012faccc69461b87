"""Frame samplers: which frame indices a clip is made of, at train and at test time.

Notation ``clip_len x frame_interval x num_clips`` as in mmaction2:

- 2D models (TSN/TSM/TANet/TIN): ``1x1x8`` = 8 segments, one frame each; a *view* is the 8 frames.
- 3D models (SlowOnly/TPN, CSN): ``8x8x1``, ``32x2x1`` = one clip of 8 (32) frames every 8 (2) frames;
  at test time ``num_clips=10`` gives 10 views of one clip each.
- STAM: T frames resampled at T/10 fps from the start of the video (10 seconds), one view.

Every sampler is called as ``sampler(total_frames, test_mode=False, rng=None, fps=None)`` and returns
0-based int64 indices, grouped by view: ``indices.reshape(num_views, num_frames)``. Test mode is
deterministic and equals mmaction2 1.2.0 (``mmaction/datasets/transforms/loading.py``) index for index,
including its out-of-range handling (``out_of_bound_opt="loop"``: indices modulo ``total_frames``);
mmaction2 then adds the dataset's ``start_index`` (0 for videos, 1 for rawframes), which
:class:`vidlib.data.VideoReader` applies when it opens a rawframe folder. Train mode draws from ``rng``
(a ``numpy.random.Generator``) with the same distributions as mmaction2's ``np.random`` calls.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

__all__ = [
    "SampleFrames",
    "DenseSampleFrames",
    "STAMSampleFrames",
    "PlaybackSpeed",
    "build_sampler",
    "SAMPLERS",
]


def _check_total(total_frames: int) -> int:
    total_frames = int(total_frames)
    if total_frames <= 0:
        raise ValueError(f"a video needs at least one frame to sample from, got total_frames={total_frames}")
    return total_frames


def _clips_to_indices(
    offsets: np.ndarray, clip_len: int, frame_interval: int, total: int, out_of_bound_opt: str
) -> np.ndarray:
    """Expand clip start offsets into frame indices and bring them into ``[0, total)`` (mmaction2's rule)."""
    inds = offsets[:, None] + np.arange(clip_len)[None, :] * frame_interval  # [num_offsets, clip_len]
    if out_of_bound_opt == "loop":
        inds = np.mod(inds, total)
    else:  # "repeat_last": replace each clip's out-of-range indices by its last valid one
        safe = inds < total
        last = np.max(safe * inds, axis=1, keepdims=True)  # [num_offsets, 1]
        inds = np.where(safe, inds, last)
    return inds.reshape(-1).astype(np.int64)  # truncation as mmaction2's astype(np.int32)


class SampleFrames:
    """TSN segments (``clip_len=1``) or 3D clips (``clip_len>1``), mmaction2 ``SampleFrames``.

    Args:
        clip_len: frames per clip (1 for 2D models).
        frame_interval: step between the frames of a clip.
        num_clips: segments (2D) or clips (3D).
        twice_sample: test mode adds a second view (2D: the segment starts after the segment centres).
        out_of_bound_opt: ``"loop"`` (mmaction2 default) or ``"repeat_last"``.
        keep_tail_frames: mmaction2's alternative train-mode segment rule.

    Test mode (``ori = (clip_len-1)*frame_interval + 1``):

    - 2D: segment centres ``floor(i*N/n + N/(2n))``; ``twice_sample`` appends the starts ``floor(i*N/n)``.
    - 3D, one clip: start ``max(N-ori, 0) // 2``; several clips: starts ``round(i * max(N-ori, 0)/(n-1))``.

    Train mode (``ori = clip_len*frame_interval``, ``avg = (N-ori+1) // n``): start ``i*avg + U{0..avg-1}``;
    if ``avg == 0`` and ``N > max(n, ori)`` sorted uniform starts; else evenly spread or zero starts.
    """

    def __init__(
        self,
        clip_len: int,
        frame_interval: int = 1,
        num_clips: int = 1,
        twice_sample: bool = False,
        out_of_bound_opt: str = "loop",
        keep_tail_frames: bool = False,
    ):
        if out_of_bound_opt not in ("loop", "repeat_last"):
            raise ValueError(f"out_of_bound_opt must be 'loop' or 'repeat_last', got {out_of_bound_opt!r}")
        if min(clip_len, frame_interval, num_clips) < 1:
            raise ValueError(
                "clip_len, frame_interval, num_clips must be >= 1, "
                f"got {clip_len}x{frame_interval}x{num_clips}"
            )
        if twice_sample and clip_len > 1 and num_clips == 1:
            raise ValueError(
                "twice_sample with a single 3D clip divides by zero in mmaction2; use num_clips >= 2"
            )
        self.clip_len, self.frame_interval, self.num_clips = clip_len, frame_interval, num_clips
        self.twice_sample, self.out_of_bound_opt, self.keep_tail_frames = (
            twice_sample,
            out_of_bound_opt,
            keep_tail_frames,
        )

    @property
    def num_frames(self) -> int:
        """T, the frames of one view: ``num_clips`` segments for 2D, ``clip_len`` for 3D."""
        return self.num_clips if self.clip_len == 1 else self.clip_len

    def num_views(self, test_mode: bool) -> int:
        k = 2 if (test_mode and self.twice_sample) else 1
        return k if self.clip_len == 1 else k * self.num_clips

    def _train_offsets(self, n: int, rng: np.random.Generator) -> np.ndarray:
        ori = self.clip_len * self.frame_interval
        if self.keep_tail_frames:
            avg = (n - ori + 1) / float(self.num_clips)
            if n > ori - 1:
                return (np.arange(self.num_clips) * avg + rng.uniform(0, avg, self.num_clips)).astype(
                    np.int64
                )
            return np.zeros(self.num_clips, dtype=np.int64)
        avg = (n - ori + 1) // self.num_clips
        if avg > 0:
            return np.arange(self.num_clips) * avg + rng.integers(avg, size=self.num_clips)
        if n > max(self.num_clips, ori):
            return np.sort(rng.integers(n - ori + 1, size=self.num_clips))
        if avg == 0:
            return np.around(np.arange(self.num_clips) * ((n - ori + 1.0) / self.num_clips))
        return np.zeros(self.num_clips, dtype=np.int64)

    def _test_offsets(self, n: int) -> np.ndarray:
        if self.clip_len == 1:  # 2D: segment centres (+ starts)
            avg = n / float(self.num_clips)
            base = np.arange(self.num_clips) * avg
            offsets = base + avg / 2.0
            return np.concatenate([offsets, base]) if self.twice_sample else offsets
        ori = (self.clip_len - 1) * self.frame_interval + 1
        max_offset = max(n - ori, 0)
        num_clips = self.num_clips * (2 if self.twice_sample else 1)
        if num_clips == 1:
            return np.array([max_offset // 2])
        # mmaction2 divides by (self.num_clips - 1) even when twice_sample doubles
        # the clips
        step = max_offset / float(self.num_clips - 1)
        return np.round(np.arange(num_clips) * step)

    def __call__(
        self,
        total_frames: int,
        test_mode: bool = False,
        rng: np.random.Generator | None = None,
        fps: float | None = None,
    ) -> np.ndarray:
        n = _check_total(total_frames)
        offsets = (
            self._test_offsets(n) if test_mode else self._train_offsets(n, rng or np.random.default_rng())
        )
        return _clips_to_indices(offsets, self.clip_len, self.frame_interval, n, self.out_of_bound_opt)

    def __repr__(self) -> str:
        extra = ", twice_sample=True" if self.twice_sample else ""
        return f"{type(self).__name__}({self.clip_len}x{self.frame_interval}x{self.num_clips}{extra})"


class DenseSampleFrames(SampleFrames):
    """TANet's "dense" sampling (mmaction2 ``DenseSampleFrames``), e.g. dense-1x1x8 on Kinetics.

    The ``num_clips`` frames are ``sample_range // num_clips`` apart (8 for 64 // 8) from one start:

    - train: start uniform in ``{0, ..., P-2}`` with ``P = max(1, 1 + N - sample_range)`` (0 when
      ``P <= 2``; mmaction2's ``randint(0, P-1)`` never draws the last position ``P-1``);
    - test: ``num_sample_positions`` starts ``linspace(0, P-1, num_sample_positions)`` truncated to int,
      one view each (10 views for the TANet K400 protocol).

    Offsets past the end wrap around (``% N``), so short videos loop.

    Args:
        sample_range: frames spanned by one clip (64).
        num_sample_positions: test-time views (10).
    """

    def __init__(
        self,
        clip_len: int = 1,
        frame_interval: int = 1,
        num_clips: int = 8,
        sample_range: int = 64,
        num_sample_positions: int = 10,
        out_of_bound_opt: str = "loop",
    ):
        super().__init__(clip_len, frame_interval, num_clips, out_of_bound_opt=out_of_bound_opt)
        self.sample_range, self.num_sample_positions = sample_range, num_sample_positions

    def num_views(self, test_mode: bool) -> int:
        k = self.num_sample_positions if test_mode else 1
        return k if self.clip_len == 1 else k * self.num_clips

    def _starts(self, n: int, test_mode: bool, rng: np.random.Generator) -> np.ndarray:
        positions = max(1, 1 + n - self.sample_range)
        if test_mode:
            return np.linspace(0, positions - 1, num=self.num_sample_positions, dtype=int)
        return np.array([0 if positions == 1 else rng.integers(0, positions - 1)])

    def __call__(
        self,
        total_frames: int,
        test_mode: bool = False,
        rng: np.random.Generator | None = None,
        fps: float | None = None,
    ) -> np.ndarray:
        n = _check_total(total_frames)
        base = np.arange(self.num_clips) * (self.sample_range // self.num_clips)
        starts = self._starts(n, test_mode, rng or np.random.default_rng())
        offsets = ((base[None, :] + starts[:, None]) % n).reshape(-1)  # [starts * num_clips]
        return _clips_to_indices(offsets, self.clip_len, self.frame_interval, n, self.out_of_bound_opt)

    def __repr__(self) -> str:
        return (
            f"DenseSampleFrames({self.clip_len}x{self.frame_interval}x{self.num_clips}, "
            f"sample_range={self.sample_range}, num_sample_positions={self.num_sample_positions})"
        )


class STAMSampleFrames:
    """STAM's protocol: T frames resampled at ``T / window_seconds`` fps from the start (arXiv 2103.13915).

    STAM evaluates with ``torchvision.datasets.Kinetics400(frames_per_clip=T, frame_rate=T/10,
    step_between_clips=1000)``: the first clip of the video resampled to T/10 fps. With
    ``step = fps / (T / window_seconds)`` the indices are, as torchvision's ``VideoClips`` computes them,

    - ``j * step`` for ``j = 0..T-1`` when ``step`` is an integer (torchvision slices ``[::step]``),
    - else ``floor(float32(j) * step)`` (torchvision's float32 ``arange * step``).

    torchvision *drops* a video that yields fewer than T resampled frames (``ceil(N / step)`` for an
    integer step, else ``floor(N * T / (window_seconds * fps))``) - about 40% of Kinetics val in STAM's
    report (issue #7). Here such a *short* video is kept: ``short_video="loop"`` wraps the indices past
    the end (``% N``), ``"pad"`` repeats the last frame. ``num_short`` counts them (in this process) and
    ``last_was_short`` flags the latest call; the first one also warns.

    Train mode (STAM released no training code; this is vidlib's choice): the same T indices shifted by a
    random whole number of resampled frames, uniform over the starts that keep the clip inside the video.

    Args:
        num_frames: T.
        window_seconds: the 10 seconds the T frames span.
        short_video: ``"loop"`` or ``"pad"``.
    """

    def __init__(self, num_frames: int, window_seconds: float = 10.0, short_video: str = "loop"):
        if short_video not in ("loop", "pad"):
            raise ValueError(f"short_video must be 'loop' or 'pad', got {short_video!r}")
        self.T, self.window_seconds, self.short_video = int(num_frames), float(window_seconds), short_video
        self.num_short, self.last_was_short = 0, False

    @property
    def num_frames(self) -> int:
        return self.T

    def num_views(self, test_mode: bool) -> int:
        return 1

    def step(self, fps: float) -> float:
        """Original frames per resampled frame, ``fps / (T / window_seconds)``."""
        return float(fps) / (self.T / self.window_seconds)

    def resampled_length(self, total_frames: int, fps: float) -> int:
        """How many resampled frames torchvision's ``VideoClips`` makes of the video."""
        step = self.step(fps)
        if step.is_integer():
            return -(-int(total_frames) // int(step))  # len(range(0, N, step))
        return int(np.floor(total_frames * (self.T / self.window_seconds) / float(fps)))

    def is_short(self, total_frames: int, fps: float) -> bool:
        """True when torchvision (so STAM's evaluation) would have dropped the video."""
        return self.resampled_length(total_frames, fps) < self.T

    def __call__(
        self,
        total_frames: int,
        test_mode: bool = False,
        rng: np.random.Generator | None = None,
        fps: float | None = None,
    ) -> np.ndarray:
        n = _check_total(total_frames)
        if fps is None or fps <= 0:
            raise ValueError(f"STAMSampleFrames needs the video's fps (got {fps!r}); pass fps=reader.fps")
        step = self.step(fps)
        j = np.arange(self.T)
        if not test_mode:
            spare = self.resampled_length(n, fps) - self.T
            j = j + (int((rng or np.random.default_rng()).integers(spare + 1)) if spare > 0 else 0)
        if step.is_integer():
            inds = j * int(step)
        else:
            inds = torch.floor(torch.as_tensor(j, dtype=torch.float32) * step).to(torch.int64).numpy()
        self.last_was_short = self.is_short(n, fps)
        if self.last_was_short:
            if self.num_short == 0:
                warnings.warn(
                    f"STAMSampleFrames: a video of {n} frames at {fps:g} fps is shorter than "
                    f"{self.window_seconds:g} s; its frames are {self.short_video}ed (torchvision "
                    "would drop it). `num_short` counts such videos.",
                    stacklevel=2,
                )
            self.num_short += 1
            inds = np.mod(inds, n) if self.short_video == "loop" else np.minimum(inds, n - 1)
        return np.asarray(inds, dtype=np.int64)

    def __repr__(self) -> str:
        return (
            f"STAMSampleFrames(T={self.T}, window={self.window_seconds:g}s, short_video={self.short_video!r})"
        )


SAMPLERS = {c.__name__: c for c in (SampleFrames, DenseSampleFrames, STAMSampleFrames)}


class PlaybackSpeed:
    """Another sampler's views, played ``speed`` times as fast (the TPN chapter's tempo experiment).

    Within each view, every frame's distance from the view's centre (the midpoint of its first and last
    frame) is multiplied by ``speed``: the sampling interval (a dense clip's ``frame_interval``, the
    spacing of TSN segments) scales by ``speed`` around the same centre. ``speed < 1`` is slow motion
    (the middle of the view, stretched); ``speed > 1`` shows the event in less of the view, and the
    positions that fall outside the video hold its first or last frame (clamped, not looped: the video
    stands still before and after, as a sped-up recording padded to the same duration would). Positions
    are rounded to the nearest frame. ``speed=1`` returns the wrapped sampler's indices unchanged.

    Built by :func:`build_sampler` from a spec with ``playback_speed``, e.g.
    ``{"name": "SampleFrames", "clip_len": 1, "num_clips": 8, "playback_speed": 2.0}``.
    """

    def __init__(self, sampler, speed: float):
        if not speed > 0:
            raise ValueError(f"playback speed must be > 0, got {speed!r}")
        self.sampler, self.speed = sampler, float(speed)

    @property
    def num_frames(self) -> int:
        return self.sampler.num_frames

    def num_views(self, test_mode: bool) -> int:
        return self.sampler.num_views(test_mode)

    def __call__(
        self,
        total_frames: int,
        test_mode: bool = False,
        rng: np.random.Generator | None = None,
        fps: float | None = None,
    ) -> np.ndarray:
        inds = self.sampler(total_frames, test_mode=test_mode, rng=rng, fps=fps)
        if self.speed == 1.0:
            return inds
        views = inds.reshape(-1, self.num_frames).astype(np.float64)  # [V, T]
        centre = (views[:, :1] + views[:, -1:]) / 2  # [V, 1]
        moved = np.floor(centre + self.speed * (views - centre) + 0.5)  # round half up
        last = _check_total(total_frames) - 1
        return np.clip(moved, 0, last).astype(np.int64).reshape(-1)  # hold the ends

    def __repr__(self) -> str:
        return f"PlaybackSpeed({self.sampler!r}, speed={self.speed:g})"


def build_sampler(cfg: dict):
    """Build a sampler from a model cfg entry, e.g.
    ``{"name": "SampleFrames", "clip_len": 1, "num_clips": 8}``; a ``playback_speed`` entry wraps it in
    :class:`PlaybackSpeed`."""
    if not isinstance(cfg, dict) or "name" not in cfg:
        raise ValueError(f"a sampler cfg is a dict with a 'name' key, got {cfg!r}")
    if "playback_speed" in cfg:
        speed = cfg["playback_speed"]
        return PlaybackSpeed(build_sampler({k: v for k, v in cfg.items() if k != "playback_speed"}), speed)
    kw = {k: v for k, v in cfg.items() if k != "name"}
    if cfg["name"] not in SAMPLERS:
        raise KeyError(f"unknown sampler {cfg['name']!r}; available: {', '.join(SAMPLERS)}")
    try:
        return SAMPLERS[cfg["name"]](**kw)
    except TypeError as e:
        raise TypeError(f"bad arguments for sampler {cfg['name']}: {kw} ({e})") from e
