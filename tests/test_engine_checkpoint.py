"""Atomic checkpoint writes and RNG state round trips."""

import os
import random
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from vidlib.engine.checkpoint import (
    CheckpointManager,
    atomic_save,
    get_rng_state,
    load_checkpoint_file,
    set_rng_state,
)


def test_atomic_save_round_trip(tmp_path):
    path = atomic_save({"w": torch.arange(3.0), "epoch": 2}, tmp_path / "sub" / "last.pth")
    ck = load_checkpoint_file(path)
    assert ck["epoch"] == 2 and torch.equal(ck["w"], torch.arange(3.0))
    assert sorted(os.listdir(path.parent)) == ["last.pth"]  # no temporary file left


def test_crash_during_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = atomic_save({"epoch": 1}, tmp_path / "last.pth")

    def crashing_save(obj, f, *args, **kw):
        f.write(b"\x80\x02 half a pickle")  # partial bytes, then the process "dies"
        raise KeyboardInterrupt("simulated crash mid-write")

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"epoch": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint_file(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["last.pth"]


def test_sigkill_during_write_keeps_the_previous_checkpoint(tmp_path):
    """A process killed with SIGKILL while writing a large checkpoint never corrupts the old one."""
    path = tmp_path / "last.pth"
    atomic_save({"epoch": 1}, path)
    code = textwrap.dedent(f"""
        import os, signal, torch
        from vidlib.engine.checkpoint import atomic_save
        real_save = torch.save
        def save_then_die(obj, f, *a, **k):
            real_save(obj, f, *a, **k)
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)   # dies after writing the temp file, before the rename
        torch.save = save_then_die
        atomic_save({{"epoch": 2, "big": torch.zeros(1000, 1000)}}, {str(path)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert load_checkpoint_file(path)["epoch"] == 1
    leftovers = [f for f in os.listdir(tmp_path) if f != "last.pth"]
    assert len(leftovers) == 1 and leftovers[0].endswith(".tmp")  # the orphan temp file, never the target


def test_manager_keeps_last_and_best(tmp_path):
    m = CheckpointManager(tmp_path)
    assert m.latest() is None
    m.save({"epoch": 1}, is_best=True)
    m.save({"epoch": 2}, is_best=False)
    assert load_checkpoint_file(m.last)["epoch"] == 2 and load_checkpoint_file(m.best)["epoch"] == 1
    assert m.latest() == m.last


def test_missing_or_corrupt_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.pth"):
        load_checkpoint_file(tmp_path / "nothere.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="bad.pth"):
        load_checkpoint_file(bad)


def test_rng_state_round_trip_through_a_weights_only_file(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    atomic_save({"rng": get_rng_state()}, tmp_path / "r.pth")
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_rng_state(load_checkpoint_file(tmp_path / "r.pth")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a
