"""Shared fixtures: a 12-video, 3-class dataset of 32x32 px clips that every engine and CLI test trains on."""

from pathlib import Path

import numpy as np
import pytest

from vidlib.data import write_video

#: Recipe overrides for the 32 px clips of :func:`tiny_data`.
SMALL = {"data.resize_short": 32, "data.crop_size": 32, "data.test_crop_size": 32}


def make_tiny_data(root: Path) -> Path:
    """3 classes (a bright square moving right / left / staying), 4 train + 2 val videos each, 16 frames."""
    rng = np.random.default_rng(0)
    lists = {"train": [], "val": []}
    for split, n in (("train", 4), ("val", 2)):
        for label in range(3):
            for i in range(n):
                frames = rng.integers(0, 60, (16, 32, 32, 3), dtype=np.uint8)
                for t in range(16):
                    x = {0: 2 + t, 1: 26 - t, 2: 14}[label]
                    frames[t, 12:20, x : x + 6] = 250
                rel = f"videos/{split}_{label}_{i}.mp4"
                write_video(root / rel, frames, fps=8)
                lists[split].append(f"{rel} {label}\n")
    for split, lines in lists.items():
        (root / f"{split}.txt").write_text("".join(lines))
    (root / "label_map.txt").write_text("right\nleft\nstill\n")
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """The tiny dataset (read-only: copy it before breaking anything)."""
    return make_tiny_data(tmp_path_factory.mktemp("tiny_data"))
