"""Annotation lists in mmaction2's formats.

- video list (``VideoDataset``): one ``relpath label`` per line, e.g. ``abseiling/abc.mp4 0``;
- rawframe list (``RawframeDataset``): ``frame_dir total_frames label``, e.g. ``1234 47 12`` for
  Something-Something V1 (frames ``1234/00001.jpg`` ... ``1234/00047.jpg``);
- label map: one class name per line, line ``i`` naming class ``i``.

Paths may contain spaces (the label, and the frame count, are the last fields). Parse errors name the
file and line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from ..errors import MissingInputError

__all__ = [
    "VideoRecord",
    "read_video_list",
    "read_rawframe_list",
    "read_label_map",
    "read_classes",
    "write_video_list",
    "write_label_map",
    "missing_files",
    "STHV1_FLIP_LABEL_MAP",
]

#: Something-Something V1 classes whose meaning flips with a horizontal flip ("left" <-> "right"): the
#: ``flip_label_map`` of mmaction2's sthv1 configs (TSM, TANet, TPN-TSM), class index -> flipped index.
STHV1_FLIP_LABEL_MAP = {2: 4, 4: 2, 30: 41, 41: 30, 52: 66, 66: 52}


class VideoRecord(NamedTuple):
    """One annotation: ``path`` relative to the data prefix, ``label``, and ``total_frames`` (rawframes)."""

    path: str
    label: int
    total_frames: int | None = None


def _lines(path: str | os.PathLike):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                yield path, n, line.rstrip("\n")


def read_video_list(path: str | os.PathLike) -> list[VideoRecord]:
    """Parse a ``relpath label`` list."""
    out = []
    for p, n, line in _lines(path):
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise ValueError(f"{p}:{n}: expected 'relpath label', got {line!r}")
        out.append(VideoRecord(parts[0].strip(), int(parts[1])))
    return out


def read_rawframe_list(path: str | os.PathLike) -> list[VideoRecord]:
    """Parse a ``frame_dir total_frames label`` list."""
    out = []
    for p, n, line in _lines(path):
        parts = line.rsplit(None, 2)
        if len(parts) != 3 or not (parts[1].isdigit() and parts[2].lstrip("-").isdigit()):
            raise ValueError(f"{p}:{n}: expected 'frame_dir total_frames label', got {line!r}")
        out.append(VideoRecord(parts[0].strip(), int(parts[2]), int(parts[1])))
    return out


def read_label_map(path: str | os.PathLike) -> list[str]:
    """Class names, index = line number (0-based)."""
    return [line.strip() for _, _, line in _lines(path)]


def read_classes(root: str | os.PathLike) -> list[str]:
    """The class names of a dataset folder, from its ``label_map.txt`` (required: it sets the classifier
    size). A missing folder or label map raises :class:`~vidlib.errors.MissingInputError` naming it."""
    root = Path(root)
    if not root.is_dir():
        raise MissingInputError(f"data folder not found: {root} (expected train.txt, val.txt, label_map.txt)")
    label_map = root / "label_map.txt"
    if not label_map.is_file():
        raise MissingInputError(
            f"{label_map} is missing: a dataset folder needs a label map (one class name per "
            "line, in label order), which sets the number of classes"
        )
    return read_label_map(label_map)


def write_video_list(path: str | os.PathLike, records) -> Path:
    """Write ``(relpath, label)`` pairs as an mmaction2 video list."""
    path = Path(path)
    path.write_text("".join(f"{r[0]} {int(r[1])}\n" for r in records), encoding="utf-8")
    return path


def write_label_map(path: str | os.PathLike, names: list[str]) -> Path:
    path = Path(path)
    path.write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    return path


def missing_files(records: list[VideoRecord], data_prefix: str | os.PathLike) -> list[int]:
    """Positions of the records whose file (or frame folder) does not exist under ``data_prefix``."""
    root = Path(data_prefix)
    return [i for i, r in enumerate(records) if not (root / r.path).exists()]
