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
    a, b = (
        VideoReader(numbered_mp4, "decord").get_batch(idx),
        VideoReader(numbered_mp4, "pyav").get_batch(idx),
    )
    # same decoder, possibly different colour conversion
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


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


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_bad_files_name_the_file_and_the_reason(tmp_path, backend, numbered_mp4):
    import pickle

    cases = {
        "empty.mp4": (b"", "empty file"),
        "text.mp4": (b"hello\n" * 40, "not a video (text)"),
        "noise.mp4": (bytes(range(256)) * 20, "not a video container"),
    }
    data = numbered_mp4.read_bytes()
    cases["cut.mp4"] = (data[: len(data) // 2], "")  # moov at the end: cut before the index
    for name, (content, reason) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(VideoReadError) as e:
            VideoReader(tmp_path / name, backend).get_batch([0])
        assert str(e.value).startswith(str(tmp_path / name)) and reason in e.value.reason, (
            name,
            str(e.value),
        )
        # how it reaches the main process from a DataLoader worker
        again = pickle.loads(pickle.dumps(e.value))
        assert (again.path, again.reason, str(again)) == (e.value.path, e.value.reason, str(e.value))


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_a_truncated_file_with_its_index_in_front_is_refused(tmp_path, backend):
    """An mp4 whose index (moov, written first) lists frames that were cut off: PyAV used to read the rest."""
    import av

    path = tmp_path / "faststart.mp4"
    frames = numbered_frames(60)
    with av.open(str(path), mode="w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=12)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    assert len(VideoReader(path, backend)) == 60
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(
        VideoReadError, match=r"faststart.mp4: truncated: header says 60 frames, \d+ decodable"
    ):
        VideoReader(path, backend)


def test_a_pyav_read_before_forking_data_loader_workers_does_not_hang(tmp_path):
    """PyAV's colour conversion ran on swscale's thread pool, which a fork does not carry over: after a read
    in the main process, a forked DataLoader worker hung in its first conversion (the CLI tests did, once
    the CLI's default became in-process loading). The backend converts on the calling thread."""
    import subprocess
    import sys
    import textwrap

    video = tmp_path / "v.mp4"
    write_video(video, np.random.default_rng(0).integers(0, 255, (16, 32, 32, 3), dtype=np.uint8), fps=8)
    code = textwrap.dedent(f"""
        import numpy as np, torch
        from vidlib.data.video import VideoReader
        path = {str(video)!r}
        VideoReader(path, backend="pyav").get_batch([0, 1])  # the parent decodes first

        class Clips(torch.utils.data.Dataset):
            def __len__(self):
                return 4

            def __getitem__(self, i):
                return torch.from_numpy(np.asarray(VideoReader(path, backend="pyav").get_batch([0, 1, 2])))

        ctx = torch.multiprocessing.get_context("fork")
        n = sum(len(b) for b in torch.utils.data.DataLoader(Clips(), batch_size=2, num_workers=2,
                                                             multiprocessing_context=ctx))
        print("read", n)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "read 4" in out.stdout, out.stderr[-2000:]
