"""Small helpers the library uses.

- :func:`get_device` picks cuda, then mps, then cpu.
- :func:`seed_everything` seeds Python, NumPy and torch, optionally with deterministic kernels.
- :func:`num_params` and :func:`signature_defaults` describe a model and a function.
- :func:`capture_outputs` records what chosen modules take and return during a forward pass.
- :func:`describe_file` says what a file looks like (for error messages).
"""

from __future__ import annotations

import inspect
import os
import random
import statistics
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

__all__ = [
    "get_device",
    "seed_everything",
    "num_params",
    "describe_file",
    "capture_outputs",
    "Captured",
    "signature_defaults",
    "time_interleaved",
]


def get_device(prefer: str | None = None) -> torch.device:
    """Return the best available device: cuda, then mps, then cpu.

    ``prefer`` (or the ``VIDLIB_DEVICE`` environment variable) forces a device, e.g. ``"cpu"``.
    """
    prefer = prefer or os.environ.get("VIDLIB_DEVICE")
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed ``random``, NumPy and torch (all devices).

    With ``deterministic=True`` torch uses deterministic algorithms (``warn_only`` so ops without a
    deterministic kernel still run) and cuDNN autotuning is switched off.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def num_params(module: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def signature_defaults(fn) -> dict:
    """``{argument: default}`` of a function or class (``"required"`` for arguments without one), in order."""
    params = inspect.signature(fn).parameters
    return {
        k: ("required" if v.default is inspect.Parameter.empty else v.default)
        for k, v in params.items()
        if v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)
    }


def describe_file(path: str | os.PathLike) -> str:
    """What a file looks like from its first bytes, for error messages: ``"an empty file"``,
    ``"a text file"``, ``"an MP4 video"``, ``"a ZIP archive (the PyTorch format)"``, ``"a pickle"``,
    ``"binary data"``."""
    path = Path(path)
    if not path.is_file():
        return "not a file"
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        return "an empty file"
    if head[4:8] == b"ftyp":
        return "an MP4 video"
    if head[:4] == b"PK\x03\x04":
        return "a ZIP archive (the PyTorch format)"
    if head[:1] == b"\x80":
        return "a pickle"
    if b"\0" not in head:
        try:
            head.decode("utf-8")
            return "a text file"
        except UnicodeDecodeError:
            pass
    return "binary data"


class Captured(NamedTuple):
    """One call of a module seen by :func:`capture_outputs`: its first input and its output (detached;
    a tuple or list of tensors, such as a backbone's levels, stays a tuple or list)."""

    input: Any
    output: Any


def _detach(x):
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, (tuple, list)):
        return type(x)(_detach(v) for v in x)
    return x


@contextmanager
def capture_outputs(modules: Mapping[str, torch.nn.Module]):
    """Record what ``modules`` take and return while the ``with`` block runs.

    Yields ``{name: [Captured(input, output), ...]}``, one entry per call, tensors detached; the hooks are
    removed when the block ends, even on an error::

        with capture_outputs({"tam": model.backbone.layer1[0].tam}) as seen:
            model(clip)
        seen["tam"][0].output.shape
    """
    records: dict[str, list[Captured]] = {name: [] for name in modules}

    def hook(name):
        def fn(module, inputs, output):
            records[name].append(Captured(_detach(inputs[0]), _detach(output)))

        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items()]
    try:
        yield records
    finally:
        for h in handles:
            h.remove()


def time_interleaved(
    fns: Mapping[str, Callable[[], Any]],
    *,
    warmup: int = 3,
    repeats: int = 10,
    statistic: str = "min",
    synchronize: bool = False,
) -> dict:
    """Wall time (seconds) of each function in ``fns``, called in turn: vidlib's one timer.

    The functions run interleaved (a, b, c, a, b, c, ...), so a change of machine load affects them all
    alike. ``warmup`` rounds run first and are not timed (allocator and kernel caches warm up).

    Args:
        statistic: what each value is: ``"min"`` (the best of ``repeats``: the least disturbed run),
            ``"median"``, or ``"all"`` (the list of the ``repeats`` times, in order).
        synchronize: wait for the GPU (``torch.cuda.synchronize()``) before starting each clock and before
            stopping it, so that the asynchronous CUDA work of a call is inside its time.
    """
    reduce = {"min": min, "median": statistics.median, "all": list}
    if repeats < 1:
        raise ValueError(f"time_interleaved: repeats must be >= 1, got {repeats}")
    if statistic not in reduce:
        raise ValueError(f"time_interleaved: statistic must be one of {', '.join(reduce)}, got {statistic!r}")
    sync = torch.cuda.synchronize if synchronize else (lambda: None)
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    return {name: reduce[statistic](ts) for name, ts in times.items()}
