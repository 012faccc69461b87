"""An in-memory cache of decoded videos, for small datasets that are read many times.

Decoding dominates the cost of a tiny model's training step: a 64x64 synthetic clip of 8 frames takes
about 5 ms to decode and its whole training step about 4 ms of compute per clip. Something-Synthetic
decodes to about 2 GB of uint8 frames (default split), so it can be decoded once and kept::

    cache = FrameCache(max_gb=4)
    ds = build_dataset("data/synthetic", "train", cfg, "train", frame_cache=cache)

Each video is decoded whole on first use (``uint8 [F, H, W, 3]``) and every later clip indexes the array,
so the samples are exactly those of the uncached dataset. The least recently used videos are evicted
beyond ``max_gb``. With DataLoader workers each worker fills its own copy (a forked worker inherits what
the parent process already holds; a pickled cache arrives empty), so the cache pays off with
``num_workers=0`` or persistent workers.
:func:`shared_frame_cache` is one cache per process, so that successive training runs share it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

__all__ = ["FrameCache", "shared_frame_cache"]


class FrameCache:
    """Least-recently-used store of decoded videos, bounded by ``max_gb`` (of frame bytes)."""

    def __init__(self, max_gb: float = 4.0):
        if max_gb <= 0:
            raise ValueError(f"max_gb must be > 0, got {max_gb}")
        self.max_bytes = int(max_gb * 2**30)
        self._store: OrderedDict[Hashable, tuple[np.ndarray, float]] = OrderedDict()
        self.nbytes = self.hits = self.misses = 0

    def get(self, key: Hashable, decode: Callable[[], tuple[np.ndarray, float]]) -> tuple[np.ndarray, float]:
        """``(frames, fps)`` for ``key``; ``decode()`` is called (and its errors propagate) on a miss."""
        if key in self._store:
            self.hits += 1
            self._store.move_to_end(key)
            return self._store[key]
        self.misses += 1
        frames, fps = decode()
        frames.setflags(write=False)  # shared by every later clip: nobody may write into it
        if frames.nbytes <= self.max_bytes:
            self._store[key] = (frames, fps)
            self.nbytes += frames.nbytes
            while self.nbytes > self.max_bytes:
                _, (old, _) = self._store.popitem(last=False)
                self.nbytes -= old.nbytes
        return frames, fps

    def __getstate__(self) -> dict:  # a copy sent to another process (a spawned worker) starts empty
        return {"max_bytes": self.max_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(max_gb=state["max_bytes"] / 2**30)

    def clear(self) -> None:
        self._store.clear()
        self.nbytes = self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._store)

    def __repr__(self) -> str:
        return (
            f"FrameCache({len(self)} videos, {self.nbytes / 2**30:.2f} of {self.max_bytes / 2**30:.2f} GB, "
            f"hits={self.hits}, misses={self.misses})"
        )


_SHARED: dict[str, FrameCache] = {}


def shared_frame_cache(max_gb: float = 4.0) -> FrameCache:
    """This process's shared cache (created with ``max_gb`` on first call; later calls return it)."""
    if "cache" not in _SHARED:
        _SHARED["cache"] = FrameCache(max_gb)
    return _SHARED["cache"]
