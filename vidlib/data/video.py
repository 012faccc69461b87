"""Frame-accurate video reading (decord, PyAV, rawframe folders) and writing (PyAV).

:class:`VideoReader` gives one interface over three backends::

    r = VideoReader("clip.mp4")              # decord, the default (as mmaction2's DecordInit/Decode)
    r = VideoReader("clip.mp4", "pyav")      # PyAV: demux once to index the frames, then seek + decode
    r = VideoReader("frames/abc", "rawframes", filename_tmpl="img_{:05}.jpg", start_index=1)
    len(r), r.fps
    r.get_batch([0, 17, 3])                  # uint8 numpy [N, H, W, 3] (RGB), in the order asked

Indices are 0-based positions in presentation order for every backend. Rawframe folders map index
``i`` to the file ``filename_tmpl.format(i + start_index)`` (mmaction2's ``RawframeDataset`` default is
``start_index=1``, i.e. ``img_00001.jpg`` is frame 0).

Every failure names the file: a missing path raises :class:`FileNotFoundError`, an unreadable,
corrupt or truncated one :class:`VideoReadError`, an index out of range :class:`IndexError`.
"""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["VideoReader", "VideoReadError", "diagnose", "write_video", "rgb_to_yuv420p", "BACKENDS"]

BACKENDS = ("decord", "pyav", "rawframes")


class VideoReadError(InputError, RuntimeError):
    """A video (or rawframe folder) exists but cannot be decoded; the message names the file and the reason.

    ``path`` and ``reason`` keep the two parts (e.g. ``"empty file"``, ``"truncated: header says 74 frames,
    39 decodable"``).
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None, reason: str | None = None):
        super().__init__(message)
        self.path, self.reason = (os.fspath(path) if path is not None else None), reason

    def __reduce__(self):  # keep path and reason when sent between processes
        return _rebuild_read_error, (self.args[0], self.path, self.reason)


def _rebuild_read_error(message, path, reason):
    return VideoReadError(message, path=path, reason=reason)


def diagnose(path: str | os.PathLike) -> str:
    """Why a video file cannot be read, in a few words: ``"empty file"``, ``"truncated: header says N frames,
    M decodable"``, ``"not a video (text)"``, ``"not a video container (...)"``."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        return "empty file"
    head = path.read_bytes()[:512]
    try:
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            header, packets = stream.frames, 0
            try:
                for packet in container.demux(stream):
                    packets += packet.pts is not None and packet.size > 0
            except Exception:  # noqa: BLE001 - a broken packet ends the count
                pass
            if header and packets < header:
                return f"truncated: header says {header} frames, {packets} decodable"
            return f"cannot decode ({packets} packets, {size} bytes)"
    except Exception as e:  # noqa: BLE001 - the container cannot be opened at all
        if head[4:8] == b"ftyp":
            return "cannot open: an MP4 without its index (truncated before the moov box?)"
        if b"\0" not in head and head.isascii():
            return "not a video (text)"
        why = getattr(e, "strerror", None) or str(e).splitlines()[0]
        return f"cannot open: not a video container ({why[:80]})"


class VideoReader:
    """Random access to the frames of one video.

    Args:
        path: a video file (decord, pyav) or a folder of frames (rawframes).
        backend: ``"decord"`` (default), ``"pyav"`` or ``"rawframes"``.
        num_threads: decoder threads (decord, pyav). 1 suits DataLoader workers.
        filename_tmpl, start_index: rawframes only, as in mmaction2 (``img_{:05}.jpg``, 1).
        num_frames: rawframes only: the frame count from the annotation list (mmaction2's
            ``total_frames``); ``None`` counts the files matching the template.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        backend: str = "decord",
        *,
        num_threads: int = 1,
        filename_tmpl: str = "img_{:05}.jpg",
        start_index: int = 1,
        num_frames: int | None = None,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r} for {path}; choose one of {BACKENDS}")
        self.path = Path(path)
        self.backend = backend
        if not self.path.exists():
            raise FileNotFoundError(
                f"{backend} reader: no such {'folder' if backend == 'rawframes' else 'file'}: {self.path}"
            )
        if backend == "decord":
            self._impl = _DecordBackend(self.path, num_threads)
        elif backend == "pyav":
            self._impl = _PyAVBackend(self.path, num_threads)
        else:
            self._impl = _RawframeBackend(self.path, filename_tmpl, start_index, num_frames)

    def __len__(self) -> int:
        return self._impl.num_frames

    @property
    def fps(self) -> float:
        """Average frame rate (rawframe folders report 30.0 unless told otherwise, like mmaction2)."""
        return self._impl.fps

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames at ``indices`` (0-based, any order, repeats allowed) as uint8 ``[N, H, W, 3]`` RGB."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)  # [N]
        n = len(self)
        bad = idx[(idx < 0) | (idx >= n)]
        if bad.size:
            raise IndexError(f"{self.path}: frame indices {bad[:5].tolist()} out of range for {n} frames")
        if idx.size == 0:
            raise ValueError(f"{self.path}: get_batch called with no indices")
        try:
            frames = self._impl.get_batch(idx)
        except (VideoReadError, IndexError):
            raise
        except Exception as e:  # decoder errors come in many types (DECORDError, av.FFmpegError, OSError ...)
            reason = f"cannot decode frames {idx[:8].tolist()} ({str(e).splitlines()[0][:120]})"
            raise VideoReadError(
                f"{self.path}: {reason} ({self.backend})", path=self.path, reason=reason
            ) from e
        if frames.shape[0] != idx.size:
            reason = f"returned {frames.shape[0]} frames for {idx.size} indices"
            raise VideoReadError(f"{self.path}: {reason} ({self.backend})", path=self.path, reason=reason)
        return frames

    def __repr__(self) -> str:
        return (
            f"VideoReader({str(self.path)!r}, backend={self.backend!r}, "
            f"frames={len(self)}, fps={self.fps:.3g})"
        )


class _DecordBackend:
    def __init__(self, path: Path, num_threads: int):
        try:
            import decord
        except ImportError as e:  # pragma: no cover - decord is in requirements.txt
            raise ImportError("the decord backend needs `pip install decord`; or use backend='pyav'") from e
        try:
            self.vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=num_threads)
            self.num_frames = len(self.vr)
            self.fps = float(self.vr.get_avg_fps())
        except Exception as e:
            reason = diagnose(path)
            raise VideoReadError(f"{path}: {reason} (decord cannot open it)", path=path, reason=reason) from e
        if self.num_frames <= 0:
            raise VideoReadError(f"{path}: no frames (decord)", path=path, reason="no frames")

    def get_batch(self, idx: np.ndarray) -> np.ndarray:
        return self.vr.get_batch(idx.tolist()).asnumpy()  # [N, H, W, 3]


class _PyAVBackend:
    """Frame-accurate PyAV access: demux once (no decoding) to list each frame's pts and keyframes,
    then for each wanted frame seek to the keyframe before it only when decoding forward is not shorter."""

    def __init__(self, path: Path, num_threads: int):
        import av

        self.path = path
        try:
            self.container = av.open(str(path))
            stream = self.container.streams.video[0]
        except Exception as e:
            reason = diagnose(path)
            raise VideoReadError(f"{path}: {reason} (PyAV cannot open it)", path=path, reason=reason) from e
        stream.thread_count = num_threads
        self.stream = stream
        pts, key_pts = [], []
        try:
            for packet in self.container.demux(stream):
                if packet.pts is None or packet.size == 0:
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe:
                    key_pts.append(packet.pts)
        except Exception as e:
            reason = f"corrupt after {len(pts)} frames ({str(e).splitlines()[0][:80]})"
            raise VideoReadError(f"{path}: {reason} (PyAV)", path=path, reason=reason) from e
        if not pts:
            raise VideoReadError(f"{path}: no video frames (PyAV)", path=path, reason="no frames")
        # the index (moov at the front) lists frames the file lacks
        if stream.frames and len(pts) < stream.frames:
            reason = f"truncated: header says {stream.frames} frames, {len(pts)} decodable"
            raise VideoReadError(f"{path}: {reason} (PyAV)", path=path, reason=reason)
        self.pts = sorted(pts)  # presentation order
        self.pos_of_pts = {p: i for i, p in enumerate(self.pts)}
        key_set = set(key_pts)
        self.key_positions = [i for i, p in enumerate(self.pts) if p in key_set] or [0]
        self.num_frames = len(self.pts)
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else 30.0

    def get_batch(self, idx: np.ndarray) -> np.ndarray:
        wanted = sorted(set(idx.tolist()))
        got: dict[int, np.ndarray] = {}
        decoder, pos = None, -1  # pos: index of the last decoded frame
        for i in wanted:
            k = bisect.bisect_right(self.key_positions, i) - 1
            key = self.key_positions[max(k, 0)]
            if decoder is None or pos >= i or key > pos + 1:
                self.container.seek(
                    self.pts[key],
                    stream=self.stream,
                    backward=True,
                    any_frame=False,
                )
                decoder, pos = self.container.decode(self.stream), None
            for frame in decoder:
                pos = self.pos_of_pts.get(frame.pts)
                if pos is None:
                    msg = f"decoded a frame with unknown pts {frame.pts} (PyAV)"
                    raise VideoReadError(
                        f"{self.path}: {msg}",
                        path=self.path,
                        reason="unknown pts",
                    )
                if pos == i:
                    # threads=1: swscale's thread pool (0 = auto) does not survive a
                    # fork: a DataLoader worker forked after a read here hung in it
                    got[i] = frame.to_ndarray(format="rgb24", threads=1)
                    break
                if pos > i:
                    msg = f"seek overshot frame {i} (landed on {pos}; PyAV)"
                    raise VideoReadError(
                        f"{self.path}: {msg}",
                        path=self.path,
                        reason="seek overshot",
                    )
            else:
                reason = f"truncated: ended before frame {i} of {self.num_frames}"
                raise VideoReadError(
                    f"{self.path}: {reason} (PyAV)",
                    path=self.path,
                    reason=reason,
                )
        return np.stack([got[i] for i in idx.tolist()])  # [N, H, W, 3]


class _RawframeBackend:
    def __init__(self, path: Path, filename_tmpl: str, start_index: int, num_frames: int | None):
        if not path.is_dir():
            raise VideoReadError(f"{path}: not a folder (rawframes reader)", path=path, reason="not a folder")
        self.path, self.tmpl, self.start_index = path, filename_tmpl, start_index
        if num_frames is None:
            pattern = re.compile("^" + re.escape(filename_tmpl).replace(re.escape("{:05}"), r"\d+") + "$")
            num_frames = sum(1 for f in os.listdir(path) if pattern.match(f))
        if num_frames <= 0:
            raise VideoReadError(
                f"{path}: no frames named like {filename_tmpl!r} (rawframes reader)",
                path=path,
                reason="no frames",
            )
        self.num_frames = num_frames
        self.fps = 30.0

    def get_batch(self, idx: np.ndarray) -> np.ndarray:
        from PIL import Image

        out = []
        for i in idx.tolist():
            f = self.path / self.tmpl.format(i + self.start_index)
            if not f.is_file():
                raise VideoReadError(
                    f"{self.path}: missing frame file {f.name} (frame {i} of {self.num_frames})",
                    path=self.path,
                    reason=f"missing frame file {f.name}",
                )
            with Image.open(f) as img:
                out.append(np.asarray(img.convert("RGB")))  # [H, W, 3]
        return np.stack(out)  # [N, H, W, 3]


def rgb_to_yuv420p(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB ``[H, W, 3]`` -> planar YUV 4:2:0 ``[H * 3 // 2, W]`` (BT.601, limited range).

    Done here, not by swscale, because swscale's first conversion in a process can differ from the
    later ones, which made encoded files depend on the order videos were written in.
    """
    x = rgb.astype(np.float32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    cb = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    cr = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    h, w = y.shape
    sub = lambda c: c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # noqa: E731  2x2 average: [H/2, W/2]
    planes = [y.reshape(-1), sub(cb).reshape(-1), sub(cr).reshape(-1)]  # [H*W], [H*W/4], [H*W/4]
    return np.clip(np.concatenate(planes) + 0.5, 0, 255).astype(np.uint8).reshape(h * 3 // 2, w)  # [H*3/2, W]


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float,
    *,
    codec: str | None = None,
    gop: int = 8,
    crf: int = 17,
    threads: int = 1,
) -> Path:
    """Write uint8 RGB frames ``[T, H, W, 3]`` to an mp4 with PyAV.

    Args:
        codec: ``"libx264"`` when PyAV has it, else ``"mpeg4"``.
        gop: keyframe interval. Short GOPs (8-12) keep random access cheap: the cost of one frame is
            decoding from the keyframe before it (x264's default GOP of 250 makes an 8-frame TSN clip
            cost ~250 ms, see the data chapter).
        crf: x264 quality (lower is better; 17 is visually lossless).
        threads: encoder threads; 1 makes the output bytes reproducible.

    H and W must be even (yuv420p).
    """
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"write_video({path}): expected uint8 frames [T, H, W, 3], "
            f"got {frames.dtype} {list(frames.shape)}"
        )
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"write_video({path}): height and width must be even for yuv420p, got {h}x{w}")
    codec = codec or ("libx264" if "libx264" in av.codecs_available else "mpeg4")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from fractions import Fraction

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.thread_count = threads
        stream.codec_context.max_b_frames = 0
        if codec == "libx264":
            stream.options = {
                "crf": str(crf),
                "preset": "fast",
                "x264-params": f"keyint={gop}:scenecut=0:bframes=0:threads={threads}",
            }
        else:
            stream.codec_context.bit_rate = 4_000_000
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb_to_yuv420p(f), format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
