"""Training checkpoints that never lose work.

- :func:`atomic_save` writes a temporary file in the target directory, flushes and fsyncs it, renames it
  over the target with ``os.replace`` (atomic on POSIX and Windows), then fsyncs the directory. A crash
  at any point leaves either the previous file or the new one, never a truncated mix.
- :class:`CheckpointManager` keeps ``last.pth`` (every save) and ``best.pth`` (best validation metric)
  in the work dir.
- :func:`get_rng_state` / :func:`set_rng_state` capture Python, NumPy, torch and CUDA generators as
  tensors and plain Python values, so checkpoints load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..weights import read_checkpoint_file

__all__ = [
    "atomic_save",
    "load_checkpoint_file",
    "get_rng_state",
    "set_rng_state",
    "CheckpointManager",
    "CHECKPOINT_FORMAT",
    "TRAIN_FORMATS",
]

#: The format tag of the training checkpoints this version writes.
CHECKPOINT_FORMAT = "vidlib-train-2"
#: The training-checkpoint formats this version reads (``vidlib-train-1``: flat counters).
TRAIN_FORMATS = (CHECKPOINT_FORMAT, "vidlib-train-1")


def _fsync_dir(path: Path) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` atomically (temp file in the same dir, fsync, ``os.replace``, fsync dir)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a checkpoint gets the usual permissions
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def load_checkpoint_file(path: str | os.PathLike) -> dict:
    """Load a checkpoint dict written by :func:`atomic_save` (tensors and plain Python only), with
    :func:`vidlib.weights.read_checkpoint_file` (the one safe reader of checkpoint files).

    A file that is not one raises ``RuntimeError`` (:class:`~vidlib.errors.BadFileError`) saying what the
    file is (text, a video, truncated ...).
    """
    return read_checkpoint_file(path)


def get_rng_state() -> dict:
    """The state of every random generator training touches (Python, NumPy, torch CPU, all CUDA)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`get_rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class CheckpointManager:
    """Keeps ``last.pth`` and ``best.pth`` in ``work_dir``.

    Args:
        work_dir: where the files live.
        metric: the validation metric that decides "best" (higher is better), e.g. ``"top1"``.
    """

    def __init__(self, work_dir: str | os.PathLike, metric: str = "top1"):
        self.work_dir = Path(work_dir)
        self.metric = metric

    @property
    def last(self) -> Path:
        return self.work_dir / "last.pth"

    @property
    def best(self) -> Path:
        return self.work_dir / "best.pth"

    def save(self, state: dict, *, is_best: bool = False) -> Path:
        """Write ``state`` to ``last.pth`` (and to ``best.pth`` when ``is_best``), atomically."""
        atomic_save(state, self.last)
        if is_best:
            atomic_save(state, self.best)
        return self.last

    def latest(self) -> Path | None:
        """``last.pth`` if it exists, else ``None``."""
        return self.last if self.last.is_file() else None
