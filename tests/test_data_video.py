"""VideoReader against known frames: each frame carries its number as 8 black/white bars."""
import numpy as np
import pytest
from PIL import Image

from vidlib.data import VideoReader, VideoReadError, write_video

N_FRAMES, H, W = 150, 32, 64


def numbered_frames(n=N_FRAMES):
    """Frame k shows the bits of k as 8 vertical bars (white = 1), 8 px each: robust to compression."""
    bits = (np.arange(n)[:, None] >> np.arange(8)[None, :]) & 1  # [n, 8]
    frames = np.repeat(np.repeat(bits * 255, W // 8, axis=1)[:, None, :], H, axis=1)  # [n, H, W]
    return np.repeat(frames[..., None], 3, axis=-1).astype(np.uint8)  # [n, H, W, 3]


def read_numbers(frames):
    bars = frames.reshape(len(frames), H, 8, W // 8, 3).mean(axis=(1, 3, 4)) > 127  # [n, 8]
    return (bars * (1 << np.arange(8))).sum(1)


@pytest.fixture(scope="module")
def numbered_mp4(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("vid") / "numbered.mp4", numbered_frames(), fps=12, gop=10)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_random_access_is_frame_accurate(numbered_mp4, backend):
    r = VideoReader(numbered_mp4, backend)
    assert len(r) == N_FRAMES and abs(r.fps - 12) < 1e-6
    idx = np.random.default_rng(0).integers(0, N_FRAMES, 40)
    idx = np.concatenate([idx, [149, 0, 75, 74, 74, 3]])  # backwards, repeated, both ends
    frames = r.get_batch(idx)
    assert frames.shape == (len(idx), H, W, 3) and frames.dtype == np.uint8
    assert read_numbers(frames).tolist() == idx.tolist()


def test_backends_agree(numbered_mp4):
    idx = [5, 80, 81, 149, 10]
    a, b = VideoReader(numbered_mp4, "decord").get_batch(idx), VideoReader(numbered_mp4, "pyav").get_batch(idx)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2  # same decoder, possibly different colour conversion


def test_rawframes_are_one_based(tmp_path):
    frames = numbered_frames(20)
    for k, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"img_{k + 1:05}.jpg", quality=95)
    r = VideoReader(tmp_path, "rawframes")
    assert len(r) == 20
    assert read_numbers(r.get_batch([0, 19, 7])).tolist() == [0, 19, 7]


def test_missing_file_named(tmp_path):
    for backend in ("decord", "pyav", "rawframes"):
        with pytest.raises(FileNotFoundError, match="nope"):
            VideoReader(tmp_path / "nope.mp4", backend)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_corrupt_and_truncated_files_named(tmp_path, numbered_mp4, backend):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(VideoReadError, match="junk.mp4"):
        VideoReader(junk, backend).get_batch([0])
    cut = tmp_path / "cut.mp4"
    data = numbered_mp4.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoReadError, match="cut.mp4"):
        VideoReader(cut, backend).get_batch([0, 149])


def test_out_of_range_index_named(numbered_mp4):
    with pytest.raises(IndexError, match="numbered.mp4"):
        VideoReader(numbered_mp4).get_batch([0, 150])


def test_write_video_checks_input(tmp_path):
    with pytest.raises(ValueError, match=r"\[T, H, W, 3\]"):
        write_video(tmp_path / "x.mp4", np.zeros((4, 8, 8), np.uint8), 12)
