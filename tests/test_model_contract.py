"""The model contract of CONTRIBUTING.md, checked on every registered ``*_tiny`` model.

A new model family gets these checks by registering its ``*_tiny`` variant: output shape, gradients,
input dtype and shape errors, the ``default_cfg`` keys and a FLOP count. Family-specific behaviour
(clip lengths, protocols, loaders, hand-worked operators) stays in the family's own test file.
"""

from __future__ import annotations

import inspect
import re

import pytest
import torch

import vidlib
from vidlib.flops import count_flops
from vidlib.models import CFG_KEYS

TINY = vidlib.list_models("*_tiny")
NUM_CLASSES = 5
#: The keys CONTRIBUTING.md's "Model contract" lists for ``model.default_cfg``.
CONTRACT_CFG_KEYS = (
    "num_frames",
    "input_size",
    "crop_size",
    "resize_short",
    "sampling",
    "test_sampling",
    "test_crops",
    "test_crop_size",
    "mean",
    "std",
    "value_scale",
    "average_clips",
)
#: Operators whose MACs matter: an uncounted one would make a FLOP count wrong, not just incomplete.
MATRIX_OPS = re.compile(
    r"aten::(_?convolution|conv\w*|linear|addmm|mm|bmm|baddbmm|matmul|einsum|"
    r"scaled_dot_product_attention|_native_multi_head_attention)"
)


@pytest.fixture(autouse=True)
def _one_thread():
    """The contract is cheap on one thread; several threads on a shared 2-core machine only slow it down."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model_and_clip(name: str, batch: int = 2) -> tuple[torch.nn.Module, torch.Tensor]:
    """The model with ``NUM_CLASSES`` classes and a clip ``[batch, *default_cfg["input_size"]]`` (its own T,
    H, W)."""
    torch.manual_seed(0)
    model = vidlib.create_model(name, num_classes=NUM_CLASSES)
    return model, torch.rand(batch, *model.default_cfg["input_size"])


def _returns_aux(model: torch.nn.Module) -> bool:
    return "return_aux" in inspect.signature(model.forward).parameters


def test_every_family_has_a_tiny_variant():
    assert {
        "tsn_tiny",
        "tsm_tiny",
        "tanet_tiny",
        "tin_tiny",
        "slowonly_tiny",
        "r3d_tiny",
        "ircsn_tiny",
        "ipcsn_tiny",
        "tpn_slowonly_tiny",
        "tpn_tsm_tiny",
        "stam_tiny",
        "stam_mean_tiny",
    } <= set(TINY)


def test_contract_cfg_keys_are_the_registry_keys():
    assert CFG_KEYS == CONTRACT_CFG_KEYS


@pytest.mark.parametrize("name", TINY)
def test_output_shape(name):
    model, x = _model_and_clip(name)
    with torch.no_grad():
        out = model.eval()(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, NUM_CLASSES) and out.dtype == x.dtype


@pytest.mark.parametrize("name", TINY)
def test_backward_reaches_every_parameter(name):
    """Every trainable parameter gets a finite gradient (auxiliary heads through ``return_aux=True``)."""
    model, x = _model_and_clip(name)
    model.train()
    if _returns_aux(model):
        logits, extra = model(x, return_aux=True)
        assert extra["aux"].shape == (2, NUM_CLASSES)
        loss = logits.square().sum() + extra["aux"].square().sum()
    else:
        loss = model(x).square().sum()
    loss.backward()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert params, f"{name}: no trainable parameters"
    no_grad = [n for n, p in params if p.grad is None]
    assert not no_grad, f"{name}: no gradient reaches {no_grad}"
    not_finite = [n for n, p in params if not torch.isfinite(p.grad).all()]
    assert not not_finite, f"{name}: non-finite gradient in {not_finite}"


@pytest.mark.parametrize("name", TINY)
def test_wrong_shapes_raise_value_error_naming_the_shape(name):
    model, x = _model_and_clip(name, batch=1)
    model.eval()
    for bad in (x[:, :, 0], x[:, :2], x.transpose(1, 2)):  # no T axis; 2 channels; [B, T, 3, H, W]
        with pytest.raises(ValueError, match=r"\[B, 3, .*\], got " + re.escape(str(tuple(bad.shape)))):
            model(bad)


@pytest.mark.parametrize("name", TINY)
def test_uint8_clip_raises_type_error_naming_the_dtype(name):
    model, x = _model_and_clip(name, batch=1)
    clip = (x * 255).to(torch.uint8)  # what a video reader returns
    with pytest.raises(
        TypeError, match=r"expected a floating-point clip \[B, 3, T, H, W\].*got torch\.uint8"
    ):
        model.eval()(clip)


@pytest.mark.parametrize("name", TINY)
def test_default_cfg_has_every_contract_key(name):
    cfg = vidlib.create_model(name).default_cfg
    missing = [k for k in CONTRACT_CFG_KEYS if k not in cfg]
    assert not missing, f"{name}: default_cfg lacks {missing}"
    assert cfg["input_size"] == (3, cfg["num_frames"], cfg["crop_size"], cfg["crop_size"])
    assert all("name" in cfg[k] for k in ("sampling", "test_sampling"))
    assert cfg["average_clips"] in ("prob", "score")


@pytest.mark.parametrize("name", TINY)
def test_flops_are_counted(name):
    model, _ = _model_and_clip(name)
    fc = count_flops(model, (1, *model.default_cfg["input_size"]), by_module=False)
    assert fc.gflops > 0 and fc.params == vidlib.num_params(model)
    uncounted = sorted(op for op in fc.unsupported if MATRIX_OPS.fullmatch(op))
    assert not uncounted, f"{name}: matrix products not counted: {uncounted}"


def test_unknown_keyword_names_what_the_entrypoint_takes():
    with pytest.raises(
        TypeError,
        match=r"tsn_tiny\(\) got unexpected keyword arguments \['dropuot'\] "
        r"\('dropuot': did you mean 'dropout'\?\); tsn_tiny takes: .*imagenet_init",
    ):
        vidlib.create_model("tsn_tiny", dropuot=0.5)
