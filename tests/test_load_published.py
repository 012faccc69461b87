"""One loader dispatch for published checkpoints: ``vidlib.weights.load_published``, driven by
``default_cfg["layout"]``; and one safe reader of checkpoint files (``read_checkpoint_file``)."""

from __future__ import annotations

import pytest
import torch

import vidlib
from vidlib.engine.checkpoint import load_checkpoint_file
from vidlib.errors import BadFileError
from vidlib.weights import LAYOUTS, CheckpointError, layout_of, load_published, read_checkpoint_file


def test_every_model_names_a_registered_layout():
    for name in vidlib.list_models():
        with torch.device("meta"):
            model = vidlib.create_model(name)
        assert model.default_cfg["layout"] in LAYOUTS, name
        expected = "stam_official" if name.startswith("stam") else "mmaction2"
        assert layout_of(model) == expected, name


def test_mmaction2_layout_round_trip(tmp_path):
    torch.manual_seed(0)
    src = vidlib.create_model("tsm_tiny", num_classes=5)
    torch.save({"state_dict": src.state_dict(), "meta": {}}, tmp_path / "mm.pth")
    dst = vidlib.create_model("tsm_tiny", num_classes=5)
    assert load_published(dst, tmp_path / "mm.pth") == []
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))


def test_stam_layout_goes_through_load_stam(tmp_path):
    torch.manual_seed(0)
    src = vidlib.create_model("stam_tiny", num_classes=3)
    official = {"model": {"module." + k: v for k, v in src.state_dict().items()}}  # DataParallel prefix
    dst = vidlib.create_model("stam_tiny", num_classes=3)
    assert load_published(dst, official) == []  # load_stam strips module.; load_mmaction2 would not
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))
    with pytest.raises(CheckpointError, match="non-tensor entries"):  # mmaction2 reads state_dict
        load_published(vidlib.create_model("tsm_tiny", num_classes=3), official)


def test_unknown_layout_is_named():
    model = vidlib.create_model("tsm_tiny")
    model.default_cfg = dict(model.default_cfg, layout="nowhere")
    with pytest.raises(ValueError, match="nowhere"):
        load_published(model, {})


def test_one_reader_for_published_and_training_checkpoints(tmp_path):
    torch.save({"epoch": 1}, tmp_path / "ok.pth")
    path = tmp_path / "ok.pth"
    assert read_checkpoint_file(path) == load_checkpoint_file(path) == {"epoch": 1}
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(BadFileError, match=r"text\.pth is not a PyTorch checkpoint"):
        load_checkpoint_file(tmp_path / "text.pth")
    with pytest.raises(CheckpointError, match=r"text\.pth.*\n.*text\.pth is not a PyTorch checkpoint"):
        vidlib.weights.read_checkpoint(tmp_path / "text.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(BadFileError, match="holds a list"):
        load_checkpoint_file(tmp_path / "list.pth")
