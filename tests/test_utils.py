"""Tests of vidlib/utils.py: device choice, seeding, the VIDLIB_QUICK switch, the project root,
source display and parameter counting."""

from __future__ import annotations

import inspect
import random
from pathlib import Path

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


# --- is_quick ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["1", "true", "True", "YES", "on", " 1 ", "yes\n"])
def test_is_quick_true(monkeypatch, value):
    monkeypatch.setenv("VIDLIB_QUICK", value)
    assert utils.is_quick() is True


@pytest.mark.parametrize("value", ["0", "", "false", "no", "off", "2", "quick"])
def test_is_quick_false(monkeypatch, value):
    monkeypatch.setenv("VIDLIB_QUICK", value)
    assert utils.is_quick() is False


def test_is_quick_unset_is_default_mode(monkeypatch):
    monkeypatch.delenv("VIDLIB_QUICK", raising=False)
    assert utils.is_quick() is False


# --- project_root ------------------------------------------------------------------------------
def test_project_root_environment_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("VIDLIB_ROOT", str(tmp_path))
    assert utils.project_root() == tmp_path.resolve()


def test_project_root_found_from_a_chapter_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("VIDLIB_ROOT", raising=False)
    (tmp_path / "_config.yml").write_text("title: t\n")
    (tmp_path / "vidlib").mkdir()
    (tmp_path / "book" / "sub").mkdir(parents=True)
    assert utils.project_root(tmp_path / "book" / "sub") == tmp_path.resolve()
    monkeypatch.chdir(tmp_path / "book")
    assert utils.project_root() == tmp_path.resolve()


def test_project_root_needs_both_markers(monkeypatch, tmp_path):
    monkeypatch.delenv("VIDLIB_ROOT", raising=False)
    (tmp_path / "_config.yml").write_text("title: t\n")  # a book without the package is not the root
    (tmp_path / "book").mkdir()
    assert utils.project_root(tmp_path / "book") == (tmp_path / "book").resolve()


def test_project_root_of_this_checkout(monkeypatch):
    monkeypatch.delenv("VIDLIB_ROOT", raising=False)
    root = utils.project_root(Path(__file__).parent)
    assert (root / "_config.yml").is_file() and (root / "vidlib" / "utils.py").is_file()


# --- source_of / show_source -------------------------------------------------------------------
def test_source_of_is_the_file_text():
    src = utils.source_of(utils.is_quick)
    assert src.startswith("def is_quick(")
    assert src in Path(utils.__file__).read_text(), "source_of must return the code as it is in the file"
    namespace: dict = {"os": utils.os, "_TRUE": utils._TRUE}
    exec(compile(src, "<is_quick>", "exec"), namespace)  # the real, runnable definition
    assert namespace["is_quick"].__code__.co_code == utils.is_quick.__code__.co_code


def test_source_of_dedents_methods():
    class Holder:
        def method(self):
            return 1

    src = utils.source_of(Holder.method)
    assert src.startswith("def method(self):")
    compile(src, "<method>", "exec")


def test_show_source_renders_markdown_with_the_source():
    shown = utils.show_source(vidlib.create_model)
    text = shown.data
    assert utils.source_of(vidlib.create_model) in text
    assert "```python\n" in text and text.rstrip().endswith("```")
    assert "models/_registry.py" in text and "create_model" in text
    assert shown._repr_markdown_() == text
    assert "My title" in utils.show_source(vidlib.create_model, title="My title").data


def _narrow(x):
    """A function that fits the book's code column."""
    return x + 1


def _too_wide(x):
    """A function with a line wider than the book's code column."""
    return x + len("this string literal makes the line wider than the 88 columns of the book")


class _Indented:
    def method(self):
        return "in the file, this line is 90 columns wide; displayed (dedented), it is 86"


def _wide_lines(obj) -> list[tuple[int, int]]:
    """(file line number, width) of the lines of ``obj`` wider than 88 columns once dedented."""
    lines, first = inspect.getsourcelines(obj)
    indent = len(lines[0]) - len(lines[0].lstrip())
    widths = [len(line.rstrip("\n")) - indent for line in lines]
    return [(first + i, w) for i, w in enumerate(widths) if w > utils.SHOW_SOURCE_WIDTH]


def test_show_source_refuses_lines_wider_than_the_book_column():
    wide = _wide_lines(_too_wide)
    assert len(wide) == 1 and 88 < wide[0][1] <= 110, wide  # one line too wide for the book, not for ruff
    line, width = wide[0]
    with pytest.raises(ValueError) as e:
        utils.show_source(_too_wide)
    msg = str(e.value)
    assert "test_utils._too_wide" in msg, msg  # the object
    assert "tests/test_utils.py" in msg, msg  # its file
    assert f"line {line} ({width} columns)" in msg, msg  # the line and its length


def test_show_source_displays_a_narrow_function():
    assert _wide_lines(_narrow) == []
    shown = utils.show_source(_narrow)
    assert utils.source_of(_narrow) in shown.data and "tests/test_utils.py" in shown.data


def test_show_source_measures_the_displayed_dedented_lines():
    lines, _ = inspect.getsourcelines(_Indented.method)
    assert max(len(line.rstrip("\n")) for line in lines) == 90  # too wide in the file ...
    assert _wide_lines(_Indented.method) == []  # ... but not as displayed
    assert "def method(self):" in utils.show_source(_Indented.method).data


# --- num_params --------------------------------------------------------------------------------
def test_num_params_counts_all_and_trainable():
    layer = torch.nn.Linear(3, 4)
    assert utils.num_params(layer) == 3 * 4 + 4
    layer.bias.requires_grad_(False)
    assert utils.num_params(layer) == 16
    assert utils.num_params(layer, trainable_only=True) == 12


def test_public_api_is_exported():
    for name in (
        "get_device",
        "seed_everything",
        "is_quick",
        "project_root",
        "show_source",
        "source_of",
        "num_params",
    ):
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
