"""Data-loading throughput: clips/s for decord and PyAV at 8 x 224 x 224, with 0, 1 and 2 workers.

Pipelines (mmaction2 val protocol: resize the short side to 256, centre crop 224, normalise):

- TSN 1x1x8 (``SampleFrames(1, 1, 8)``, 8 frames spread over the video),
- SlowOnly 8x8x1 (``SampleFrames(8, 8, 1)``, 8 frames 8 apart),

on two sources:

- ``synthetic``: the Something-Synthetic val split (64 x 64, 24-96 frames, GOP 8);
- ``long``: one long 340 x 256 video (1800 frames at 30 fps; 60 s) encoded with x264's default GOP of
  250 and with a GOP of 12, to show that random access costs a decode from the previous keyframe.

Usage::

    python benchmarks/data_loading.py [--data data/synthetic] [--clips 48] [--quick] [--json out.json]

``--quick`` runs a subset (decord and PyAV, 0 and 2 workers, TSN, both sources) with fewer clips.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

from vidlib.data import (
    VideoDataset,
    build_transform,
    loader_throughput,
    make_loader,
    synthetic,
    write_video,
    write_video_list,
)
from vidlib.data.samplers import SampleFrames
from vidlib.models._registry import make_cfg

PIPELINES = {
    "tsn_1x1x8": dict(clip_len=1, frame_interval=1, num_clips=8),
    "slowonly_8x8x1": dict(clip_len=8, frame_interval=8, num_clips=1),
}


def long_video(folder: Path, gop: int, frames: int = 1800, fps: int = 30) -> Path:
    """A 340 x 256 video of a drifting texture with a moving square (made once, then cached)."""
    path = folder / f"long_{frames}f_gop{gop}.mp4"
    if path.is_file():
        return path
    rng = np.random.default_rng(0)
    tex = rng.integers(0, 256, size=(64, 96, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)  # [512, 768, 3]
    out = np.empty((frames, 256, 340, 3), np.uint8)
    for t in range(frames):
        ox, oy = (3 * t) % 400, int(100 + 80 * np.sin(t / 40))
        out[t] = tex[oy : oy + 256, ox : ox + 340]
        x = int(170 + 120 * np.sin(t / 25))
        out[t, 100:150, x - 25 : x + 25] = (255, 40, 40)
    return write_video(path, out, fps, gop=gop, threads=2)


def dataset_for(
    source: str, data: Path, cache: Path, sampler_kw: dict, backend: str, n_repeat: int
) -> VideoDataset:
    cfg = make_cfg(
        num_frames=8, crop_size=224, resize_short=256, sampling=dict(name="SampleFrames", **sampler_kw)
    )
    sampler = SampleFrames(**sampler_kw)
    transform = build_transform(cfg, "val", sampler.num_frames)
    if source == "synthetic":
        return VideoDataset(data / "val.txt", data, sampler, transform, test_mode=True, backend=backend)
    gop = int(source.rsplit("gop", 1)[1])
    video = long_video(cache, gop)
    ann = cache / f"{video.stem}.txt"
    write_video_list(ann, [(video.name, 0)] * n_repeat)
    # train mode: a different random TSN offset / 3D start for every clip, so decoding cannot be reused
    return VideoDataset(ann, cache, sampler, transform, test_mode=False, backend=backend)


def run(data: Path, cache: Path, clips: int, quick: bool) -> list[dict]:
    rows = []
    backends, workers = ("decord", "pyav"), ((0, 2) if quick else (0, 1, 2))
    pipelines = ("tsn_1x1x8",) if quick else tuple(PIPELINES)
    sources = ("synthetic", "long_gop250", "long_gop12")
    for source in sources:
        for pipe in pipelines:
            for backend in backends:
                for nw in workers:
                    ds = dataset_for(source, data, cache, PIPELINES[pipe], backend, n_repeat=4 * clips)
                    loader = make_loader(
                        ds, batch_size=8, shuffle=True, num_workers=nw, seed=0, persistent_workers=False
                    )
                    r = loader_throughput(loader, max_clips=clips, warmup_batches=1 if nw == 0 else 2)
                    rows.append(dict(source=source, pipeline=pipe, backend=backend, workers=nw, **r))
                    print(
                        f"{source:12s} {pipe:15s} {backend:7s} workers={nw}  {r['clips_per_s']:7.1f} clips/s",
                        flush=True,
                    )
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--data", default="data/synthetic", help="Something-Synthetic folder (generated if missing)"
    )
    ap.add_argument("--cache", default="data/cache/bench", help="where the long videos are written")
    ap.add_argument("--clips", type=int, default=48, help="clips timed per setting")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    data = synthetic.ensure(a.data, quick="quick" in Path(a.data).name)
    cache = Path(a.cache)
    cache.mkdir(parents=True, exist_ok=True)
    rows = run(data, cache, 16 if a.quick else a.clips, a.quick)
    env = dict(
        cpus=os.cpu_count(), torch_threads=1, python=platform.python_version(), torch=torch.__version__
    )
    if a.json:
        Path(a.json).write_text(json.dumps(dict(env=env, rows=rows), indent=1))
    print(json.dumps(env))


if __name__ == "__main__":
    main()
