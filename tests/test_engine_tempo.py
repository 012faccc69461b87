"""Playback speed through the sampler (vidlib.data.PlaybackSpeed, vidbook.experiments.tempo): the index
arithmetic, the spec, and an evaluation at several speeds that changes only the frames sampled; and
``evaluate_recipe``, the recipe's validation view of any split, which the speed sweep is built on."""

import numpy as np
import pytest
import torch
from conftest import SMALL

import vidlib
from vidbook.experiments import evaluate_speeds, speed_sampling, tempo_metrics
from vidlib.data import PlaybackSpeed, SampleFrames, build_dataset, build_sampler
from vidlib.engine import evaluate, evaluate_recipe, get_recipe
from vidlib.engine.recipes import apply_overrides

SEGMENTS = dict(name="SampleFrames", clip_len=1, frame_interval=1, num_clips=8)
DENSE = dict(name="SampleFrames", clip_len=4, frame_interval=2, num_clips=1)


def test_speed_one_is_the_wrapped_sampler_index_for_index():
    for spec in (SEGMENTS, DENSE, dict(DENSE, num_clips=3)):
        plain, fast = build_sampler(spec), build_sampler(dict(spec, playback_speed=1.0))
        for n in (5, 24, 97):
            assert np.array_equal(plain(n, test_mode=True), fast(n, test_mode=True))
            a, b = np.random.default_rng(1), np.random.default_rng(1)
            assert np.array_equal(plain(n, rng=a), fast(n, rng=b))


def test_segments_scale_around_the_centre_and_hold_the_ends():
    base = SampleFrames(1, 1, 8)(80, test_mode=True)  # centres 5, 15, ..., 75
    assert base.tolist() == [5, 15, 25, 35, 45, 55, 65, 75]
    slow = PlaybackSpeed(SampleFrames(1, 1, 8), 0.5)(80, test_mode=True)
    assert slow.tolist() == [23, 28, 33, 38, 43, 48, 53, 58]  # the middle half, half the interval
    fast = PlaybackSpeed(SampleFrames(1, 1, 8), 2.0)(80, test_mode=True)
    assert fast.tolist() == [0, 0, 10, 30, 50, 70, 79, 79]  # twice the interval; clamped at the ends
    assert np.diff(slow).tolist() == [5] * 7 and np.diff(fast[2:6]).tolist() == [20] * 3


def test_a_dense_clip_gets_its_interval_scaled_per_view():
    sampler = build_sampler(dict(DENSE, num_clips=2, playback_speed=2.0))
    assert isinstance(sampler, PlaybackSpeed) and sampler.num_frames == 4 and sampler.num_views(True) == 2
    views = sampler(40, test_mode=True).reshape(2, 4)  # base views [0, 2, 4, 6] and [33, 35, 37, 39]
    assert views.tolist() == [[0, 1, 5, 9], [30, 34, 38, 39]]


def test_speed_sampling_composes_and_rejects_bad_speeds():
    assert speed_sampling(SEGMENTS, 1) == SEGMENTS
    assert speed_sampling(SEGMENTS, 2) == dict(SEGMENTS, playback_speed=2)
    assert speed_sampling(dict(SEGMENTS, playback_speed=2), 0.5) == SEGMENTS
    assert "playback_speed" not in SEGMENTS  # not modified in place
    for bad in (0, -1):
        with pytest.raises(ValueError, match="> 0"):
            speed_sampling(SEGMENTS, bad)
        with pytest.raises(ValueError, match="> 0"):
            build_sampler(dict(SEGMENTS, playback_speed=bad))


def test_evaluate_speeds_changes_only_the_sampled_frames(tiny_data):
    torch.manual_seed(0)
    model = vidlib.create_model("tsn_tiny", num_classes=3, num_frames=4).eval()
    recipe = get_recipe("synthetic_tiny")
    apply_overrides(recipe, SMALL)
    reports = evaluate_speeds(model, tiny_data, recipe, [0.5, 1, 2], batch_size=4)
    assert list(reports) == [0.5, 1, 2]
    # speed 1 is the plain validation of the recipe's data
    over = {k.split(".", 1)[1]: v for k, v in SMALL.items()}
    val = build_dataset(tiny_data, "val", model.default_cfg, "val", **over)
    plain = evaluate(model, val, batch_size=4)
    assert np.allclose(reports[1]["scores"], plain["scores"])
    # other speeds see other frames of the same videos: other scores, the same labels
    assert reports[2]["labels"] == reports[1]["labels"] == plain["labels"]
    assert not np.allclose(reports[2]["scores"], reports[1]["scores"])
    assert not np.allclose(reports[0.5]["scores"], reports[1]["scores"])


def test_evaluate_recipe_reads_any_split_as_the_recipe_validates(tiny_data):
    """The train split through the recipe's validation view: every training video once, no augmentation
    (the same scores twice), the same as building that dataset by hand."""
    torch.manual_seed(0)
    model = vidlib.create_model("tsn_tiny", num_classes=3, num_frames=4).eval()
    recipe = get_recipe("synthetic_tiny")
    apply_overrides(recipe, SMALL)
    first, again = (evaluate_recipe(model, tiny_data, recipe, split="train", batch_size=4) for _ in range(2))
    assert first["num_samples"] == 12 and first["labels"] == [0] * 4 + [1] * 4 + [2] * 4
    assert np.array_equal(first["scores"], again["scores"])  # deterministic: centre crop, no flip
    over = {k.split(".", 1)[1]: v for k, v in SMALL.items()}
    train = build_dataset(tiny_data, "train", model.default_cfg, "val", **over)
    assert np.allclose(first["scores"], evaluate(model, train, batch_size=4)["scores"])
    val = evaluate_recipe(model, tiny_data, recipe, batch_size=4)  # default: the val split
    assert val["num_samples"] == 6


def test_tempo_metrics_split_the_classes():
    # classes 0..3; (2, 3) is the tempo pair. Videos: 0 right, 1 wrong, 2 right (2 > 3), 3 wrong (2 > 3)
    scores = np.array([[0.9, 0.1, 0, 0], [0.8, 0.2, 0, 0], [0, 0, 0.7, 0.3], [0, 0, 0.6, 0.4]])
    m = tempo_metrics(scores, [0, 1, 2, 3], [[2, 3]])
    assert m == dict(top1_other=0.5, tempo_acc=0.5)
