"""Samplers against hand-worked mmaction2 1.2.0 cases (test mode exact, train mode within its bounds)."""

import numpy as np
import pytest

from vidlib.data import DenseSampleFrames, SampleFrames, STAMSampleFrames, build_sampler


def rng(seed=0):
    return np.random.default_rng(seed)


# ------------------------------------------------------------------ SampleFrames, test mode (exact)
def test_tsn_1x1x8_test_is_segment_centres():
    # N=300, 8 segments of 37.5 frames: centres 18.75 + 37.5 i, truncated
    assert SampleFrames(1, 1, 8)(300, test_mode=True).tolist() == [18, 56, 93, 131, 168, 206, 243, 281]


def test_tsn_twice_sample_appends_segment_starts():
    got = SampleFrames(1, 1, 8, twice_sample=True)(300, test_mode=True)
    assert got.tolist() == [18, 56, 93, 131, 168, 206, 243, 281, 0, 37, 75, 112, 150, 187, 225, 262]
    assert SampleFrames(1, 1, 8, twice_sample=True).num_views(test_mode=True) == 2


def test_tsn_short_video_repeats_frames():
    # N=5: segment length 0.625, centres 0.3125 + 0.625 i
    assert SampleFrames(1, 1, 8)(5, test_mode=True).tolist() == [0, 0, 1, 2, 2, 3, 4, 4]


def test_3d_single_clip_is_centred():
    # 32x2x1, N=300: clip spans (32-1)*2+1 = 63 frames, max offset 237, start 237 // 2 = 118
    assert SampleFrames(32, 2, 1)(300, test_mode=True).tolist() == list(range(118, 181, 2))


def test_3d_ten_clips_evenly_spaced():
    # 8x8x10, N=300: span 57, max offset 243, starts round(27 i)
    got = SampleFrames(8, 8, 10)(300, test_mode=True).reshape(10, 8)
    assert got[:, 0].tolist() == [0, 27, 54, 81, 108, 135, 162, 189, 216, 243]
    assert got[1].tolist() == [27, 35, 43, 51, 59, 67, 75, 83]


def test_3d_rounding_half_to_even():
    # 8x8x3, N=60: max offset 3, starts round(0, 1.5, 3) = 0, 2, 3 (numpy rounds half to even)
    assert SampleFrames(8, 8, 3)(60, test_mode=True).reshape(3, 8)[:, 0].tolist() == [0, 2, 3]


def test_3d_short_video_loops_or_repeats_last():
    # 8x8x1, N=20: max offset 0, indices 0..56 step 8
    assert SampleFrames(8, 8, 1)(20, test_mode=True).tolist() == [0, 8, 16, 4, 12, 0, 8, 16]
    assert SampleFrames(8, 8, 1, out_of_bound_opt="repeat_last")(20, test_mode=True).tolist() == [
        0,
        8,
        16,
        16,
        16,
        16,
        16,
        16,
    ]


# ------------------------------------------------------------------ SampleFrames, train mode (bounds)
def test_tsn_train_one_frame_per_segment():
    s = SampleFrames(1, 1, 8)
    draws = np.stack([s(300, rng=rng(i)) for i in range(400)])  # avg interval (300 - 1 + 1) // 8 = 37
    lo, hi = np.arange(8) * 37, np.arange(8) * 37 + 36
    assert (draws >= lo).all() and (draws <= hi).all()
    assert (draws.min(0) == lo).all() and (draws.max(0) == hi).all()  # the whole segment is reachable


def test_train_is_seeded():
    s = SampleFrames(1, 1, 8)
    assert (s(300, rng=rng(3)) == s(300, rng=rng(3))).all()


def test_tsn_train_short_video_even_spread():
    # N=5 < 8 segments: avg 0, offsets around(i * 5/8) (deterministic)
    assert SampleFrames(1, 1, 8)(5, rng=rng()).tolist() == [0, 1, 1, 2, 2, 3, 4, 4]


def test_3d_train_clip_inside_video():
    s = SampleFrames(8, 8, 1)
    starts = np.array([s(100, rng=rng(i))[0] for i in range(300)])  # avg = 100 - 64 + 1 = 37
    assert starts.min() == 0 and starts.max() == 36
    # too short: start 0, loop
    assert SampleFrames(8, 8, 1)(12, rng=rng()).tolist() == [0, 8, 4, 0, 8, 4, 0, 8]


# ------------------------------------------------------------------ DenseSampleFrames
def test_dense_test_ten_starts():
    s = DenseSampleFrames(1, 1, 8, sample_range=64, num_sample_positions=10)
    got = s(300, test_mode=True).reshape(10, 8)  # positions 237: linspace(0, 236, 10) truncated
    assert got[:, 0].tolist() == [0, 26, 52, 78, 104, 131, 157, 183, 209, 236]
    assert got[3].tolist() == [78 + 8 * k for k in range(8)]
    assert s.num_views(test_mode=True) == 10


def test_dense_short_video_wraps():
    assert DenseSampleFrames(1, 1, 8)(40, test_mode=True).reshape(10, 8)[0].tolist() == [
        0,
        8,
        16,
        24,
        32,
        0,
        8,
        16,
    ]


def test_dense_train_start_range():
    s = DenseSampleFrames(1, 1, 8)
    assert s(64, rng=rng()).tolist() == list(range(0, 64, 8))  # one position only
    starts = {int(s(70, rng=rng(i))[0]) for i in range(300)}  # 7 positions, randint(0, 6) -> 0..5
    assert starts == {0, 1, 2, 3, 4, 5}


# ------------------------------------------------------------------ STAM
def test_stam_non_integer_step():
    # 30 fps, T=16 -> 1.6 fps, step 18.75
    got = STAMSampleFrames(16)(300, test_mode=True, fps=30)
    assert got.tolist() == [0, 18, 37, 56, 75, 93, 112, 131, 150, 168, 187, 206, 225, 243, 262, 281]


def test_stam_integer_step_and_short_video():
    s = STAMSampleFrames(16)
    assert s(160, test_mode=True, fps=16).tolist() == list(range(0, 160, 10))
    assert not s.last_was_short and s.num_short == 0
    with pytest.warns(UserWarning, match="shorter than 10 s"):
        looped = s(100, test_mode=True, fps=16)  # ceil(100 / 10) = 10 < 16 resampled frames
    assert looped.tolist() == list(range(0, 100, 10)) + list(range(0, 60, 10))
    assert s.last_was_short and s.num_short == 1
    padded = STAMSampleFrames(16, short_video="pad")
    with pytest.warns(UserWarning):
        assert padded(100, test_mode=True, fps=16).tolist() == list(range(0, 100, 10)) + [99] * 6


def test_stam_short_rule_matches_torchvision():
    s = STAMSampleFrames(16)
    assert s.resampled_length(250, 25) == 16 and not s.is_short(250, 25)  # floor(250 * 1.6 / 25)
    assert s.resampled_length(200, 25) == 12 and s.is_short(200, 25)
    with pytest.raises(ValueError, match="fps"):
        s(100, test_mode=True)


def test_stam_train_shifts_inside_video():
    s = STAMSampleFrames(8)  # 0.8 fps; at 8 fps, step 10
    firsts = {int(s(200, rng=rng(i), fps=8)[0]) for i in range(200)}  # 20 resampled frames -> starts 0..12
    assert firsts == {10 * k for k in range(13)}


def test_build_sampler_and_errors():
    s = build_sampler({"name": "DenseSampleFrames", "clip_len": 1, "frame_interval": 1, "num_clips": 8})
    assert isinstance(s, DenseSampleFrames) and s.num_frames == 8
    with pytest.raises(KeyError, match="available"):
        build_sampler({"name": "Nope"})
    with pytest.raises(ValueError, match="total_frames"):
        SampleFrames(1, 1, 8)(0, test_mode=True)
