"""Published numbers and results files: the data the book's pages read and write.

- published numbers come only from ``results/published.yaml`` (:func:`published`);
- a chapter's measured numbers go to ``results/<chapter>.json`` in default mode,
  ``results/<chapter>_gpu.json`` in GPU mode and ``results/runs/<chapter>_quick.json`` in quick mode
  (:func:`save_results`, :func:`load_results`);
- :func:`code_identity` records which vidlib code a measurement measured (:func:`source_hash`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

import vidlib

from .modes import is_quick, project_root

__all__ = [
    "REQUIRED_FIELDS",
    "published",
    "published_path",
    "results_path",
    "save_results",
    "load_results",
    "source_hash",
    "code_identity",
]

#: Fields every entry of ``published.yaml`` carries (``tests/test_report.py`` checks them).
REQUIRED_FIELDS = (
    "paper",
    "source",
    "config",
    "dataset",
    "num_classes",
    "sampling",
    "num_frames",
    "test_protocol",
    "top1",
    "top5",
    "flops",
    "params",
    "checkpoint",
    "verified",
)


def published_path() -> Path:
    """``<project root>/results/published.yaml``."""
    return project_root() / "results" / "published.yaml"


@lru_cache(maxsize=4)
def _load_yaml(path: str, mtime: float) -> dict:
    with open(path) as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict) or "entries" not in data:
        raise ValueError(f"{path}: expected a mapping with an 'entries' section")
    return data


def published(key: str | None = None, *, section: str = "entries") -> dict:
    """A copy of one entry of ``results/published.yaml`` (a dict), or of the whole ``section``
    when ``key`` is None.

    ``section`` may also be ``"papers"`` or ``"sources"``. Raises ``FileNotFoundError`` naming the path
    when the file is missing and ``KeyError`` listing the known keys for an unknown key.
    """
    path = published_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"published numbers not found at {path} (is VIDLIB_ROOT / the working directory the repo root?)"
        )
    data = _load_yaml(str(path), path.stat().st_mtime)
    if section not in data:
        raise KeyError(f"{path}: no section {section!r}; sections: {', '.join(data)}")
    table = data[section]
    if key is None:
        return copy.deepcopy(table)
    if key not in table:
        raise KeyError(f"{path}: no {section} key {key!r}; known keys: {', '.join(table)}")
    return copy.deepcopy(table[key])  # callers may modify their copy; the cached file data stays intact


def source_hash(part: str) -> str:
    """sha256 (first 16 hex digits) of the Python source under ``vidlib/<part>`` (a subpackage such as
    ``"models"`` or a module such as ``"flops.py"``): every ``.py`` file's path and bytes, in sorted order.
    Formatting-only edits change it too; it says *whether* the measured code changed, not how much."""
    import hashlib

    base = Path(vidlib.__file__).resolve().parent  # the library's package, .../vidlib
    target = base / part
    files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    if not files or not files[0].is_file():
        raise FileNotFoundError(f"source_hash: no Python source at {target}")
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(base).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def code_identity(parts: Sequence[str] = ("models", "data")) -> dict:
    """What a measurement measured, for its results file: the vidlib version, the git commit (with
    ``-dirty`` when the tree has changes; None outside a git checkout) and :func:`source_hash` of each
    part. The staleness tests compare the hashes with the current source."""
    import subprocess

    root = Path(vidlib.__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return dict(vidlib=vidlib.__version__, commit=commit, source_hash={p: source_hash(p) for p in parts})


def results_path(name: str, quick: bool | None = None, mode: str | None = None) -> Path:
    """Where a chapter's results live: ``results/<name>.json`` (default mode), ``results/<name>_gpu.json``
    (GPU mode), or ``results/runs/<name>_quick.json`` (quick mode, never committed)."""
    if mode is None:
        mode = "quick" if (is_quick() if quick is None else quick) else "default"
    root = project_root() / "results"
    return {
        "quick": root / "runs" / f"{name}_quick.json",
        "default": root / f"{name}.json",
        "gpu": root / f"{name}_gpu.json",
    }[mode]


def save_results(
    name: str, payload: Mapping[str, Any], quick: bool | None = None, mode: str | None = None
) -> Path:
    """Write ``payload`` as JSON to :func:`results_path` (quick mode never touches the committed file)."""
    path = results_path(name, quick, mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n")
    return path


def load_results(name: str, quick: bool | None = None) -> dict:
    """Read a chapter's results written by :func:`save_results` (``quick=False`` reads the committed one)."""
    path = results_path(name, quick)
    if not path.is_file():
        raise FileNotFoundError(f"no results at {path}: run the chapter {name!r} first")
    return json.loads(path.read_text())
