"""Tests of vidlib/weights.py (the strict loader's error messages, checkpoint reading, the mmaction2 and
torchvision layouts) and of the loaders built on it for the original TAM and TIN repositories' layouts
(``vidlib/models/tam.py``, ``vidlib/models/tin.py``)."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn as nn
import torchvision

import vidlib
from vidlib.models.tam import load_tam_original
from vidlib.models.tin import load_tin_original
from vidlib.weights import (
    CheckpointError,
    init_from_torchvision,
    load_mmaction2,
    load_state_dict_strict,
    read_checkpoint,
    source_name,
)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.bn = nn.BatchNorm1d(2)


def _sd():
    return {k: v.clone() for k, v in Tiny().state_dict().items()}


# --- load_state_dict_strict ---------------------------------------------------------------------
def test_strict_loader_names_a_missing_key():
    sd = _sd()
    del sd["fc.bias"]
    with pytest.raises(CheckpointError, match=r"missing key .*: fc\.bias") as e:
        load_state_dict_strict(Tiny(), sd, source="my.pth")
    assert "my.pth" in str(e.value) and e.value.missing == ["fc.bias"]


def test_strict_loader_names_an_extra_key():
    sd = {**_sd(), "head.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match=r"unexpected key .*: head\.weight"):
        load_state_dict_strict(Tiny(), sd)


def test_strict_loader_names_a_wrong_shape():
    sd = {**_sd(), "fc.weight": torch.zeros(2, 4)}
    with pytest.raises(
        CheckpointError, match=r"wrong shape: fc\.weight: checkpoint \(2, 4\) vs model \(2, 3\)"
    ):
        load_state_dict_strict(Tiny(), sd)


def test_strict_loader_reports_every_problem_at_once():
    sd = {**_sd(), "fc.weight": torch.zeros(5), "extra": torch.zeros(1)}
    del sd["bn.running_var"]
    msg = str(pytest.raises(CheckpointError, load_state_dict_strict, Tiny(), sd).value)
    assert all(s in msg for s in ("bn.running_var", "extra", "fc.weight"))


def test_strict_loader_loads_and_casts():
    sd = {k: v.double() + 1 if v.is_floating_point() else v for k, v in _sd().items()}
    model = load_state_dict_strict(Tiny(), sd)
    assert model.fc.weight.dtype == torch.float32 and torch.allclose(model.fc.weight, sd["fc.weight"].float())


# --- read_checkpoint ----------------------------------------------------------------------------
@pytest.mark.parametrize("wrap", ["state_dict", "model", None])
def test_read_checkpoint_layouts(tmp_path, wrap):
    sd = _sd()
    obj = sd if wrap is None else {wrap: sd, "meta": {"epoch": 3}}
    torch.save(obj, tmp_path / "ck.pth")
    for src in (obj, tmp_path / "ck.pth", str(tmp_path / "ck.pth")):
        got = read_checkpoint(src)
        assert list(got) == list(sd) and all(torch.equal(got[k], sd[k]) for k in sd)


def test_read_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        read_checkpoint(tmp_path / "nope.pth")
    torch.save({"state_dict": {"a": 1}}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"bad\.pth.*\n.*non-tensor entries \['a'\]"):
        read_checkpoint(tmp_path / "bad.pth")
    torch.save({"state_dict": _sd(), "obj": Tiny()}, tmp_path / "pickled.pth")  # arbitrary pickled objects
    with pytest.raises(CheckpointError, match=r"pickled\.pth.*\n.*weights_only=True"):
        read_checkpoint(tmp_path / "pickled.pth")


# --- load_mmaction2 -----------------------------------------------------------------------------
def test_load_mmaction2_round_trip(tmp_path):
    src = vidlib.create_model("tanet_tiny", num_classes=5).eval()
    torch.save({"meta": {"mmaction2_version": "1.2.0"}, "state_dict": src.state_dict()}, tmp_path / "mm.pth")
    dst = vidlib.create_model("tanet_tiny", num_classes=5).eval()
    assert load_mmaction2(dst, tmp_path / "mm.pth") == []
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        assert torch.equal(src(x), dst(x))


def test_load_mmaction2_reports_wrong_head_size():
    sd = vidlib.create_model("tsm_tiny", num_classes=174).state_dict()
    with pytest.raises(
        CheckpointError, match=r"cls_head\.fc_cls\.weight: checkpoint \(174, 512\) vs model \(400, 512\)"
    ):
        load_mmaction2(vidlib.create_model("tsm_tiny"), sd)


def test_load_mmaction2_key_map_drops_and_reports():
    model = Tiny()
    model.mmaction2_key_map = lambda k: None if k.startswith("aux.") else k.replace("head.", "fc.")
    sd = {k.replace("fc.", "head."): v for k, v in _sd().items()} | {"aux.w": torch.zeros(1)}
    with pytest.warns(UserWarning, match="dropped checkpoint key 'aux.w'"):
        assert load_mmaction2(model, sd) == ["aux.w"]


# --- torchvision ImageNet init ------------------------------------------------------------------
@pytest.fixture(scope="module")
def tv_r50():
    return torchvision.models.resnet50().state_dict()


@pytest.mark.parametrize(
    "name, conv1, down",
    [
        ("tsn_r50", "backbone.layer3.2.conv1.conv.weight", "backbone.layer2.0.downsample.bn.running_var"),
        ("tsm_r50", "backbone.layer3.2.conv1.conv.net.weight", "backbone.layer2.0.downsample.bn.running_var"),
        (
            "tanet_r50",
            "backbone.layer3.2.block.conv1.conv.weight",
            "backbone.layer2.0.block.downsample.bn.running_var",
        ),
        (
            "tin_r50",
            "backbone.layer3.2.conv1.conv.net2.weight",
            "backbone.layer2.0.downsample.bn.running_var",
        ),
    ],
)
def test_init_from_torchvision(tv_r50, name, conv1, down):
    model = vidlib.create_model(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    kept = init_from_torchvision(model, tv_r50)
    after = model.state_dict()
    assert torch.equal(after[conv1], tv_r50["layer3.2.conv1.weight"])
    assert torch.equal(after[down], tv_r50["layer2.0.downsample.1.running_var"])
    assert torch.equal(after["backbone.conv1.bn.weight"], tv_r50["bn1.weight"])
    # fc is never loaded; the temporal modules keep their own init (the TANet init-order pitfall)
    assert torch.equal(after["cls_head.fc_cls.weight"], before["cls_head.fc_cls.weight"])
    assert all(torch.equal(after["backbone." + k], before["backbone." + k]) for k in kept)
    expected_kept = {"tsn_r50": 0, "tsm_r50": 0, "tanet_r50": 16 * 14, "tin_r50": 16 * 8}[name]
    assert len(kept) == expected_kept
    assert all(re.search(r"\.(tam|net1)\.", k) for k in kept)


def test_imagenet_init_kwarg_loads_a_torchvision_file(tmp_path, tv_r50):
    torch.save(tv_r50, tmp_path / "resnet50.pth")
    model = vidlib.create_model("tanet_r50", imagenet_init=str(tmp_path / "resnet50.pth"))
    assert torch.equal(model.backbone.layer1[0].block.conv2.conv.weight, tv_r50["layer1.0.conv2.weight"])


def test_init_from_torchvision_is_strict(tv_r50):
    sd = dict(tv_r50)
    del sd["layer1.0.bn2.weight"]
    sd["layer9.0.conv1.weight"] = torch.zeros(1)
    msg = str(pytest.raises(CheckpointError, init_from_torchvision, vidlib.create_model("tsm_r50"), sd).value)
    assert "missing key (in the model, not in the checkpoint): layer1.0.conv2.bn.weight" in msg
    assert "unexpected key (in the checkpoint, not in the model): layer9.0.conv1.weight" in msg
    with pytest.raises(
        CheckpointError,
        match=r"wrong shape: conv1\.conv\.weight: checkpoint \(64, 3, 7, 7\) vs model \(16, 3, 7, 7\)",
    ):
        init_from_torchvision(vidlib.create_model("tsm_tiny"), tv_r50)


# --- the original repositories' layouts ---------------------------------------------------------
def _to_tam_original(key: str, old_names: bool) -> str:
    """vidlib TANet key -> official TAM repository key (the inverse map, written independently)."""
    if key.startswith("cls_head.fc_cls."):
        return "module.new_fc." + key.split(".")[-1]
    k = key.removeprefix("backbone.")
    k = k.replace("conv1.conv.weight", "conv1.weight") if k.startswith("conv1.") else k
    k = re.sub(r"^conv1\.bn\.", "bn1.", k)
    k = re.sub(r"\.block\.conv(\d)\.conv\.", r".net.conv\1.", k)
    k = re.sub(r"\.block\.conv(\d)\.bn\.", r".net.bn\1.", k)
    k = k.replace(".block.downsample.conv.", ".net.downsample.0.").replace(
        ".block.downsample.bn.", ".net.downsample.1."
    )
    if old_names:
        k = k.replace(".tam.G.", ".self_conv.conv_f.").replace(".tam.L.", ".self_conv.conv_g.")
    return "module.base_model." + k


def _to_tin_original(key: str) -> str:
    if key.startswith("cls_head.fc_cls."):
        return "module.new_fc." + key.split(".")[-1]
    k = key.removeprefix("backbone.")
    k = k.replace("conv1.conv.weight", "conv1.weight") if k.startswith("conv1.") else k
    k = re.sub(r"^conv1\.bn\.", "bn1.", k)
    for mine, theirs in [
        ("offset_net.conv", "biasnet.net.conv"),
        ("offset_net.fc1", "biasnet.net.fc"),
        ("offset_net.fc2", "biasnet.net.lastlayer"),
        ("weight_net.conv", "weightnet.net.lastlayer"),
    ]:
        k = k.replace(".conv1.conv.net1." + mine + ".", ".conv1.net1." + theirs + ".")
    k = k.replace(".conv1.conv.net2.", ".conv1.net2.")
    k = re.sub(r"\.conv(\d)\.conv\.", r".conv\1.", k)
    k = re.sub(r"\.conv(\d)\.bn\.", r".bn\1.", k)
    k = k.replace(".downsample.conv.", ".downsample.0.").replace(".downsample.bn.", ".downsample.1.")
    return "module.base_model." + k


def _randomised(model):
    return {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in model.state_dict().items()}


@pytest.mark.parametrize("old_names", [False, True])
def test_load_tam_original(old_names):
    ours = _randomised(vidlib.create_model("tanet_tiny", num_classes=5))
    theirs = {"state_dict": {_to_tam_original(k, old_names): v for k, v in ours.items()}}
    assert "module.base_model.layer2.0.net.downsample.0.weight" in theirs["state_dict"]
    model = load_tam_original(vidlib.create_model("tanet_tiny", num_classes=5), theirs)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ours.items())


def test_load_tin_original():
    ours = _randomised(vidlib.create_model("tin_tiny", num_classes=5))
    theirs = {"state_dict": {_to_tin_original(k): v for k, v in ours.items()}}
    assert "module.base_model.layer1.0.conv1.net1.biasnet.net.lastlayer.bias" in theirs["state_dict"]
    model = load_tin_original(vidlib.create_model("tin_tiny", num_classes=5), theirs)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ours.items())


def test_load_tin_original_names_unknown_keys():
    ours = vidlib.create_model("tin_tiny", num_classes=5).state_dict()
    theirs = {_to_tin_original(k): v for k, v in ours.items()} | {"module.consensus.w": torch.zeros(1)}
    with pytest.raises(
        CheckpointError, match=r"official TIN layout.*\n.*unexpected key .*module\.consensus\.w"
    ):
        load_tin_original(vidlib.create_model("tin_tiny", num_classes=5), theirs)


def test_source_name_names_files_and_objects(tmp_path):
    assert source_name(tmp_path / "a.pth") == f"'{tmp_path / 'a.pth'}'" and source_name("b.pth") == "'b.pth'"
    assert source_name({}) == "<dict>"


def test_weights_module_knows_no_model():
    """The paper-specific loaders live next to their models; vidlib.weights re-exports none of them."""
    import vidlib.weights as w

    for name in (
        "load_tam_original",
        "load_tin_original",
        "inflate_from_2d",
        "load_stam",
        "tam_original_key",
    ):
        assert not hasattr(w, name), name


def test_load_backbone_is_strict_and_takes_bare_or_prefixed_keys():
    """CSN's IG-65M pre-training is a backbone-only file: its keys fill model.backbone exactly (with or
    without a 'backbone.' prefix); an extra classifier key or a missing key is an error naming it."""
    from vidlib.weights import load_backbone

    torch.manual_seed(0)
    src = vidlib.create_model("ircsn_tiny", num_classes=5)
    bare = src.backbone.state_dict()
    for sd in (bare, {f"backbone.{k}": v for k, v in bare.items()}, {"state_dict": bare}):
        torch.manual_seed(1)
        dst = vidlib.create_model("ircsn_tiny", num_classes=5, backbone_init=sd)
        assert all(torch.equal(v, dst.backbone.state_dict()[k]) for k, v in bare.items())
        assert not torch.equal(dst.cls_head.fc_cls.weight, src.cls_head.fc_cls.weight)  # head: its own init
    with pytest.raises(CheckpointError, match="fc.weight"):
        load_backbone(vidlib.create_model("ircsn_tiny"), {**bare, "fc.weight": torch.zeros(3, 128)})
    missing = {k: v for k, v in bare.items() if k != "layer1.0.conv2.0.conv.weight"}
    with pytest.raises(CheckpointError, match=r"layer1\.0\.conv2\.0\.conv\.weight"):
        load_backbone(vidlib.create_model("ircsn_tiny"), missing)
