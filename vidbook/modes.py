"""How a chapter runs here: its mode (quick, default, GPU), the book's root folder, and the environment
record that goes into every results file.

- ``VIDLIB_QUICK=1`` (CI, ``make test``) selects the quick mode: small data, few epochs, toy sizes;
- ``VIDLIB_FULL=1`` also runs the full-size-model branch (the GPU mode's) at toy size on a CPU;
- on a CUDA device, a chapter that is not quick runs its GPU mode.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ChapterMode", "chapter_mode", "environment", "is_quick", "is_full", "project_root"]

_TRUE = {"1", "true", "yes", "on"}


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
        if (d / "_config.yml").is_file() and (d / "vidbook").is_dir():
            return d
    return here


@dataclass(frozen=True)
class ChapterMode:
    """How a chapter runs here: ``name`` is ``"quick"`` (CI: ``VIDLIB_QUICK=1``), ``"default"`` (CPU) or
    ``"gpu"`` (a GPU, not quick). ``full_size``: also train the paper's full-size model (on a GPU, or at toy
    size on the CPU with ``VIDLIB_FULL=1``, so that CI runs that branch too)."""

    name: str
    device: Any
    full_size: bool
    data_root: str

    @property
    def quick(self) -> bool:
        return self.name == "quick"

    def pick(self, *, quick, default, gpu=None):
        """The value for this mode (``gpu`` defaults to ``default``)."""
        return {"quick": quick, "default": default, "gpu": default if gpu is None else gpu}[self.name]


def chapter_mode() -> ChapterMode:
    """The :class:`ChapterMode` of this process (``VIDLIB_QUICK``, ``VIDLIB_FULL``, the device)."""
    from vidlib.utils import get_device

    device = get_device()
    name = "quick" if is_quick() else ("gpu" if device.type == "cuda" else "default")
    return ChapterMode(
        name=name,
        device=device,
        full_size=name == "gpu" or is_full(),
        data_root="data/synthetic_quick" if name == "quick" else "data/synthetic",
    )


def environment(data_root: str | None = None, **extra) -> dict:
    """What determines a chapter's numbers on this machine, for its results file: torch and vidlib versions,
    the CPU kernel set (``ATEN_CPU_CAPABILITY``), threads, the device, and the data's identity
    (content hash)."""
    import platform

    import torch

    from vidlib import __version__

    env = dict(
        torch=torch.__version__,
        vidlib=__version__,
        python=platform.python_version(),
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
        cpu=platform.processor() or platform.machine(),
        torch_threads=torch.get_num_threads(),
        cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    )
    if data_root is not None:
        from vidlib.data.synthetic import data_identity

        env["data"] = data_identity(data_root)
    return env | extra
