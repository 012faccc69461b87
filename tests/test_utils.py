"""Tests of vidlib/utils.py: device choice, seeding, parameter counting, capturing outputs, describing
files and timing. (The book's switches, project root and source display: tests/test_book_layer.py.)"""

from __future__ import annotations

import inspect
import random

import numpy as np
import pytest
import torch

import vidlib
from vidlib import utils


# --- get_device --------------------------------------------------------------------------------
@pytest.fixture
def no_accelerator(monkeypatch):
    """Pretend neither CUDA nor MPS is available, whatever this machine has."""
    monkeypatch.delenv("VIDLIB_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_get_device_falls_back_to_cpu(no_accelerator):
    assert utils.get_device() == torch.device("cpu")


def test_get_device_prefers_cuda_over_mps(no_accelerator, monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert utils.get_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert utils.get_device() == torch.device("cuda")


def test_get_device_forced_by_argument_and_environment(no_accelerator, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert utils.get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("VIDLIB_DEVICE", "cpu")
    assert utils.get_device() == torch.device("cpu")
    assert utils.get_device("meta") == torch.device("meta"), "the argument wins over VIDLIB_DEVICE"


# --- seed_everything ---------------------------------------------------------------------------
def _draws() -> tuple:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist(), torch.randn(2, 2).sum().item()


def test_seed_everything_makes_every_generator_repeat():
    utils.seed_everything(1234)
    first = _draws()
    utils.seed_everything(1234)
    assert _draws() == first
    utils.seed_everything(1235)
    assert all(a != b for a, b in zip(_draws(), first)), "a different seed must change every generator"


def test_seed_everything_repeats_a_model_initialisation():
    utils.seed_everything(7)
    a = torch.nn.Conv3d(3, 4, kernel_size=3).weight.detach().clone()
    utils.seed_everything(7)
    b = torch.nn.Conv3d(3, 4, kernel_size=3).weight.detach()
    assert torch.equal(a, b)


@pytest.fixture
def restore_determinism(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    torch.use_deterministic_algorithms(False)  # start from torch's default, whatever ran before
    yield
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2], before[3]


def test_seed_everything_deterministic_flags(restore_determinism):
    utils.seed_everything(0)
    assert not torch.are_deterministic_algorithms_enabled(), "seeding alone must not switch determinism on"
    utils.seed_everything(0, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert utils.os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


# --- num_params --------------------------------------------------------------------------------
def test_num_params_counts_all_and_trainable():
    layer = torch.nn.Linear(3, 4)
    assert utils.num_params(layer) == 3 * 4 + 4
    layer.bias.requires_grad_(False)
    assert utils.num_params(layer) == 16
    assert utils.num_params(layer, trainable_only=True) == 12


def test_public_api_is_exported():
    for name in ("get_device", "seed_everything", "num_params"):
        assert getattr(vidlib, name) is getattr(utils, name)
        assert inspect.getdoc(getattr(utils, name)), f"{name} needs a docstring"


def test_capture_outputs_records_calls_and_removes_its_hooks():
    import torch.nn as nn

    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with utils.capture_outputs({"first": net[0], "last": net[2]}) as seen:
        net(torch.randn(5, 4))
        net(torch.randn(1, 4))
    assert [tuple(c.input.shape) for c in seen["first"]] == [(5, 4), (1, 4)]
    assert tuple(seen["last"][0].output.shape) == (5, 2) and not seen["last"][0].output.requires_grad
    assert not net[0]._forward_hooks and not net[2]._forward_hooks  # removed after the block
    with pytest.raises(RuntimeError), utils.capture_outputs({"first": net[0]}):
        net(torch.randn(2, 5))  # wrong width: the hooks go even on an error
    assert not net[0]._forward_hooks


def test_capture_outputs_keeps_tuples_and_lists_of_tensors():
    import torch.nn as nn

    class Levels(nn.Module):  # a backbone returning (res4, res5); a neck taking a list
        def forward(self, x):
            return x * 2, x + 1

    class Sum(nn.Module):
        def forward(self, xs):
            return xs[0] + xs[1]

    levels, total = Levels(), Sum()
    x = torch.randn(2, 3, requires_grad=True)
    with utils.capture_outputs({"levels": levels, "sum": total}) as seen:
        total(list(levels(x)))
    out = seen["levels"][0].output
    assert isinstance(out, tuple) and [tuple(t.shape) for t in out] == [(2, 3), (2, 3)]
    assert not out[0].requires_grad
    inp = seen["sum"][0].input
    assert isinstance(inp, list) and len(inp) == 2 and not inp[1].requires_grad


def test_describe_file(tmp_path):
    cases = {
        "empty": (b"", "an empty file"),
        "text": (b"hello\n", "a text file"),
        "mp4": (b"\x00\x00\x00\x18ftypmp42" + bytes(20), "an MP4 video"),
        "zip": (b"PK\x03\x04" + bytes(20), "a ZIP archive (the PyTorch format)"),
        "pickle": (b"\x80\x02}q\x00.", "a pickle"),
        "bin": (bytes(range(256)), "binary data"),
    }
    for name, (data, kind) in cases.items():
        (tmp_path / name).write_bytes(data)
        assert utils.describe_file(tmp_path / name) == kind, name
    assert utils.describe_file(tmp_path / "nothing") == "not a file"


def test_time_interleaved_times_each_function_and_interleaves_them():
    calls = []
    best = vidlib.utils.time_interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, warmup=1, repeats=3
    )
    assert set(best) == {"a", "b"} and all(0 <= v < 1 for v in best.values())
    assert calls == ["a", "b"] * 4  # one warm-up round, then a, b, a, b, ...
    with pytest.raises(ValueError, match="repeats"):
        vidlib.utils.time_interleaved({"a": lambda: None}, repeats=0)


def test_time_interleaved_statistics_and_gpu_synchronisation(monkeypatch):
    """``statistic`` picks the best, the median or every time; ``synchronize`` waits for the GPU around each
    timed call (the benchmarks and ``python -m vidlib benchmark`` time CUDA work through it)."""
    import time

    def clock(*ticks):  # perf_counter reads: start and stop of each timed call
        it = iter(ticks)
        monkeypatch.setattr(time, "perf_counter", lambda: next(it))

    def run(statistic):
        return vidlib.utils.time_interleaved({"a": lambda: None}, warmup=0, repeats=3, statistic=statistic)

    clock(0.0, 1.0, 10.0, 13.0, 20.0, 22.0)  # calls of 1, 3 and 2 s
    assert run("all") == {"a": [1.0, 3.0, 2.0]}
    clock(0.0, 1.0, 10.0, 13.0, 20.0, 22.0)
    assert run("median") == {"a": 2.0}
    clock(0.0, 1.0, 10.0, 13.0, 20.0, 22.0)
    assert run("min") == {"a": 1.0}
    monkeypatch.undo()
    with pytest.raises(ValueError, match="statistic"):
        vidlib.utils.time_interleaved({"a": lambda: None}, statistic="mean")
    synced = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: synced.append(1))
    vidlib.utils.time_interleaved(
        {"a": lambda: None, "b": lambda: None}, warmup=1, repeats=2, synchronize=True
    )
    assert len(synced) == 2 * 2 * 2  # before and after each of the 4 timed calls
