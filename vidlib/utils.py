"""Small helpers every part of vidlib and every chapter uses.

- :func:`get_device` picks cuda, then mps, then cpu.
- :func:`seed_everything` seeds Python, NumPy and torch, optionally with deterministic kernels.
- :func:`is_quick` reads the ``VIDLIB_QUICK`` switch that CI sets (``VIDLIB_QUICK=1``).
- :func:`show_source` displays library code inside a chapter, so chapters never copy it (and refuses lines
  wider than the book's code column).
- :func:`capture_outputs` records what chosen modules take and return during a forward pass.
- :func:`describe_file` says what a file looks like (for error messages).
"""

from __future__ import annotations

import inspect
import os
import random
import statistics
import textwrap
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
    "is_quick",
    "is_full",
    "project_root",
    "source_of",
    "show_source",
    "SHOW_SOURCE_WIDTH",
    "num_params",
    "describe_file",
    "capture_outputs",
    "Captured",
    "signature_defaults",
    "time_interleaved",
]

_TRUE = {"1", "true", "yes", "on"}


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


def is_full() -> bool:
    """True when ``VIDLIB_FULL`` is set: chapters also train the paper's full-size model (toy size
    on a CPU)."""
    return os.environ.get("VIDLIB_FULL", "0").strip().lower() in _TRUE


def is_quick() -> bool:
    """True when ``VIDLIB_QUICK`` is set to 1/true/yes/on: chapters then run their small, fast setting."""
    return os.environ.get("VIDLIB_QUICK", "0").strip().lower() in _TRUE


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The book's root directory (the one holding ``_config.yml`` and ``data/``).

    Chapters call ``os.chdir(project_root())`` first, so that they use paths relative to the root
    however they are run: from ``book/`` (Jupyter, Jupyter Book) or from a temporary copy under nbval,
    where ``make test`` sets ``VIDLIB_ROOT``. Order: ``$VIDLIB_ROOT``, then the nearest parent of
    ``start`` (default: the working directory) holding ``_config.yml``, then the working directory.
    """
    env = os.environ.get("VIDLIB_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(start or os.getcwd()).resolve()
    for d in (here, *here.parents):
        if (d / "_config.yml").is_file() and (d / "vidlib").is_dir():
            return d
    return here


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


def source_of(obj) -> str:
    """The source code of a vidlib function, class or method, dedented."""
    return textwrap.dedent(inspect.getsource(obj))


#: The widest source line :func:`show_source` displays: the book's code column shows about 88 characters
#: (``vidlib/models/ruff.toml`` keeps the model files, which the chapters display, at that width).
SHOW_SOURCE_WIDTH = 88


def show_source(obj, title: str | None = None):
    """Display the source of ``obj`` in a notebook as a highlighted code block.

    Returns an ``IPython.display.Markdown`` object (so the last line of a cell renders it); outside
    IPython it returns the plain source string.

    Raises ``ValueError`` naming the object, its file, and the number and length of every displayed line
    wider than :data:`SHOW_SOURCE_WIDTH` (88) columns, so that a chapter displaying a too-wide function
    fails its build instead of showing a listing with a horizontal scroll bar.
    """
    src = source_of(obj)
    where = f"{inspect.getmodule(obj).__name__}.{getattr(obj, '__qualname__', '')}"
    package_dir = Path(__file__).resolve().parent  # .../vidlib
    # e.g. vidlib/models/tam.py
    rel = Path(inspect.getsourcefile(obj)).resolve().relative_to(package_dir.parent).as_posix()
    first = max(inspect.getsourcelines(obj)[1], 1)  # the file's line number of the first displayed line
    wide = [(first + i, len(line)) for i, line in enumerate(src.split("\n")) if len(line) > SHOW_SOURCE_WIDTH]
    if wide:
        lines = ", ".join(f"line {n} ({width} columns)" for n, width in wide)
        raise ValueError(
            f"show_source({where}): {rel} has lines wider than the {SHOW_SOURCE_WIDTH} columns "
            f"the book displays: {lines}; wrap them"
        )
    header = f"**{title or where}** (from `{rel}`)\n\n"
    try:
        from IPython.display import Markdown
    except ImportError:  # pragma: no cover - IPython is installed with jupyter
        return src
    return Markdown(header + "```python\n" + src + "```")


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
