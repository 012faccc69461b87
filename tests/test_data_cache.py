"""FrameCache: the same clips as decoding every time, LRU eviction within the byte budget, errors kept."""

import numpy as np
import pytest
import torch

from vidlib.data import FrameCache, VideoReadError, build_dataset, shared_frame_cache
from vidlib.data import synthetic as syn
from vidlib.models._registry import make_cfg


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return syn.generate(
        tmp_path_factory.mktemp("syn_cache") / "a",
        seed=0,
        per_class={"train": 1, "val": 1},
        workers=1,
        verbose=False,
    )


CFG = make_cfg(
    num_frames=8,
    crop_size=48,
    resize_short=56,
    test_crops=3,
    test_crop_size=56,
    sampling=dict(name="SampleFrames", clip_len=1, frame_interval=1, num_clips=8),
    test_sampling=dict(name="SampleFrames", clip_len=1, frame_interval=1, num_clips=8, twice_sample=True),
)


@pytest.mark.parametrize("mode", ["train", "val", "test"])
def test_cached_clips_equal_decoded_clips(tiny, mode):
    cache = FrameCache(max_gb=1)
    plain = build_dataset(tiny, "train", CFG, mode)
    cached = build_dataset(tiny, "train", CFG, mode, frame_cache=cache)
    for epoch in range(2):  # the second pass reads from memory
        for i in range(0, len(plain), 5):
            torch.manual_seed(100 * epoch + i)
            a, ya = plain[i]
            torch.manual_seed(100 * epoch + i)
            b, yb = cached[i]
            assert ya == yb and torch.equal(a, b), (mode, epoch, i)
    n = len(range(0, len(plain), 5))
    assert (cache.misses, cache.hits, len(cache)) == (n, n, n)


def test_lru_eviction_and_budget():
    cache = FrameCache(max_gb=3 * 1000 / 2**30)  # room for three 1000-byte videos
    video = lambda: (np.zeros((10, 10, 10), np.uint8), 12.0)  # noqa: E731  1000 bytes
    for k in "abc":
        cache.get(k, video)
    cache.get("a", video)  # a is now the most recent
    cache.get("d", video)  # evicts b, the least recently used
    assert len(cache) == 3 and cache.nbytes == 3000
    calls = []
    cache.get("b", lambda: calls.append(1) or video())
    assert calls == [1]  # b was evicted and decoded again
    frames, fps = cache.get("a", lambda: pytest.fail("a must still be cached"))
    assert fps == 12.0 and not frames.flags.writeable  # shared arrays are read-only
    big = np.zeros(4000, np.uint8)
    cache.get("big", lambda: (big, 1.0))  # larger than the budget: returned, not stored
    assert "big" not in cache._store and cache.nbytes <= cache.max_bytes
    with pytest.raises(ValueError, match="max_gb"):
        FrameCache(max_gb=0)


def test_decode_errors_propagate_and_are_not_cached(tiny, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.mp4").write_bytes(b"not a video at all")
    (broken / "train.txt").write_text("bad.mp4 0\n")
    cache = FrameCache(max_gb=1)
    ds = build_dataset(broken, "train", CFG, "train", frame_cache=cache)
    for _ in range(2):
        with pytest.raises(VideoReadError, match="bad.mp4"):
            ds[0]
    assert len(cache) == 0 and cache.misses == 2


def test_shared_cache_is_one_per_process():
    assert shared_frame_cache() is shared_frame_cache()


def test_a_pickled_cache_arrives_empty_with_its_budget():
    import pickle

    cache = FrameCache(max_gb=0.5)
    cache.get("a", lambda: (np.zeros(100, np.uint8), 1.0))
    copy = pickle.loads(pickle.dumps(cache))
    assert len(copy) == 0 and copy.max_bytes == cache.max_bytes and len(cache) == 1
