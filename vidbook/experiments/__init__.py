"""Experiment helpers that only the book's chapters use (the library's training engine is
:mod:`vidlib.engine`):

- :mod:`.tempo`: the same validation videos played faster or slower (TPN chapter);
- :mod:`.pretrain`: a frame encoder pre-trained on rendered Something-Synthetic frames (STAM chapter).
"""

from .pretrain import FramePretrainConfig, FramePretraining, pretrain_frame_encoder, pretrain_to_file
from .tempo import evaluate_speeds, speed_sampling, tempo_metrics

__all__ = [
    "FramePretrainConfig",
    "FramePretraining",
    "pretrain_frame_encoder",
    "pretrain_to_file",
    "evaluate_speeds",
    "speed_sampling",
    "tempo_metrics",
]
