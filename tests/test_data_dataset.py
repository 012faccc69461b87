"""Synthetic generator (determinism, reversal by construction) and datasets built from it."""

import json
import shutil

import numpy as np
import pytest
import torch

from vidlib.data import VideoReader, VideoReadError, build_dataset, load_meta, make_loader, read_video_list
from vidlib.data import synthetic as syn
from vidlib.models._registry import make_cfg

TINY = {"train": 1, "val": 1}  # 24 + 24 videos


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return syn.generate(
        tmp_path_factory.mktemp("syn") / "a", seed=0, per_class=TINY, workers=1, verbose=False
    )


def cfg(**kw):
    base = dict(
        num_frames=8,
        crop_size=56,
        resize_short=64,
        test_crops=3,
        test_crop_size=64,
        sampling=dict(name="SampleFrames", clip_len=1, frame_interval=1, num_clips=8),
        test_sampling=dict(name="SampleFrames", clip_len=1, frame_interval=1, num_clips=8, twice_sample=True),
    )
    return make_cfg(**{**base, **kw})


def test_layout_and_meta(tiny):
    meta = load_meta(tiny)
    assert meta["num_classes"] == 24 == len((tiny / "label_map.txt").read_text().splitlines())
    assert meta["counts"] == {"train": 24, "val": 24} and meta["resolution"] == [64, 64]
    assert len(meta["reversal_pairs"]) == 9 and meta["flip_label_map"] == syn.FLIP_LABEL_MAP
    recs = read_video_list(tiny / "train.txt")
    assert sorted(r.label for r in recs) == list(range(24))
    lengths = [len(VideoReader(tiny / r.path)) for r in recs]
    assert min(lengths) >= 24 and max(lengths) <= 96


def test_same_seed_same_frames_any_worker_count(tiny, tmp_path):
    other = syn.generate(tmp_path / "b", seed=0, per_class={"train": 1}, workers=2, verbose=False)
    assert (other / "train.txt").read_text() == (tiny / "train.txt").read_text()
    for r in read_video_list(tiny / "train.txt")[:6]:
        a, b = VideoReader(tiny / r.path), VideoReader(other / r.path)
        idx = np.arange(len(a))
        assert len(a) == len(b) and np.array_equal(a.get_batch(idx), b.get_batch(idx))


def test_reversed_class_is_the_partner_played_backwards():
    for a, b in syn.REVERSAL_PAIRS:
        fwd = syn.render_clip(a, np.random.default_rng([7, a]), 32)
        bwd = syn.render_clip(b, np.random.default_rng([7, a]), 32)
        assert np.array_equal(bwd, fwd[::-1]), (syn.CLASS_IDS[a], syn.CLASS_IDS[b])


def test_decoded_video_close_to_rendered(tiny):
    r = read_video_list(tiny / "val.txt")[0]
    # regenerate the same video in memory: val split code 1, label, index 0
    frames = syn.render_clip(r.label, np.random.default_rng([0, 1, r.label, 0]), 64)
    dec = VideoReader(tiny / r.path).get_batch(np.arange(len(frames)))
    assert np.abs(dec.astype(float) - frames).mean() < 6  # H.264 at crf 17


def test_build_dataset_shapes(tiny):
    train = build_dataset(tiny, "train", cfg(), "train")
    x, y = train[0]
    assert x.shape == (3, 8, 56, 56) and x.dtype == torch.float32 and 0 <= y < 24
    flips = [f for f in train.transform.transforms if type(f).__name__ == "Flip"]
    assert flips and flips[0].flip_label_map == syn.FLIP_LABEL_MAP
    x, _ = build_dataset(tiny, "val", cfg(), "val")[0]
    assert x.shape == (3, 8, 56, 56)
    test = build_dataset(tiny, "val", cfg(), "test")
    x, _ = test[0]
    assert test.num_views == 6 and x.shape == (6, 3, 8, 64, 64)  # 2 clips (twice_sample) x 3 crops
    dense = build_dataset(
        tiny, "val", cfg(sampling=dict(name="DenseSampleFrames", clip_len=1, num_clips=8)), "val"
    )
    assert dense[0][0].shape == (10, 3, 8, 56, 56)  # mmaction2's dense val pipeline has 10 clips


def test_loader_is_reproducible(tiny):
    ds = build_dataset(tiny, "train", cfg(), "train")
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        runs.append([(x.sum().item(), y.tolist()) for x, y in make_loader(ds, 8, shuffle=True, seed=1)])
    assert runs[0] == runs[1]


def test_missing_and_corrupt_videos(tiny, tmp_path):
    root = tmp_path / "broken"
    shutil.copytree(tiny, root)
    recs = read_video_list(root / "val.txt")
    (root / recs[1].path).write_bytes(b"not a video" * 100)
    with pytest.raises(VideoReadError, match=recs[1].path):
        build_dataset(root, "val", cfg(), "val")[1]
    ds = build_dataset(root, "val", cfg(), "val", on_error="skip")
    with pytest.warns(UserWarning, match="SKIPPED"):
        x, y = ds[1]
    # evaluation keeps the video, label -1
    assert y == -1 and x.shape == (3, 8, 56, 56) and ds.num_failed == 1
    (root / recs[0].path).unlink()
    with pytest.raises(FileNotFoundError, match="1 of 24 videos"):
        build_dataset(root, "val", cfg(), "val")
    with pytest.warns(UserWarning, match="SKIPPING 1 of 24"):
        ds = build_dataset(root, "val", cfg(), "val", on_error="skip")
    assert len(ds) == 23 and ds.missing == [str(root / recs[0].path)]


def test_ensure_only_generates_when_missing(tiny):
    before = (tiny / "meta.json").stat().st_mtime_ns
    assert syn.ensure(tiny) == tiny and (tiny / "meta.json").stat().st_mtime_ns == before
    assert json.loads((tiny / "meta.json").read_text())["seed"] == 0


def test_content_hash_identifies_the_data(tiny, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny, copy)
    assert syn.content_hash(copy) == syn.content_hash(tiny) == syn.data_identity(tiny)["content_sha256"]
    video = next((copy / "videos").rglob("*.mp4"))
    video.write_bytes(video.read_bytes()[:-1])
    assert syn.content_hash(copy) != syn.content_hash(tiny)


def test_make_loader_is_the_trainers_loader(tiny):
    """Same seed, same batches, whatever the worker count (each sample is drawn from (seed, epoch, index))."""
    ds = build_dataset(tiny, "train", cfg(), "train")
    batches = []
    for workers in (0, 2):
        loader = make_loader(ds, 8, seed=3, num_workers=workers)
        loader.sampler.set_epoch(1)
        batches.append([(x.sum().item(), y.tolist()) for x, y in loader])
    assert batches[0] == batches[1]
