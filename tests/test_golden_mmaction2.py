"""Golden equivalence with mmaction2 1.2.0: same weights, same clips -> same logits in float64.

Each ``tests/golden/mmaction2_*.json`` was written by ``tests/golden/make_mmaction2_golden.py`` in a
scratch environment with mmaction2 installed (see ``tests/golden/README.md``). Here both sides'
weights come from the fill rule (``tests/golden/fill_rule.py``) applied to the *reference* key
names, loaded into vidlib through :func:`vidlib.checkpoints.load_mmaction2` (strict).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import vidlib
from vidlib.checkpoints import load_mmaction2

from golden import load as _load  # tests/golden/__init__.py (tests/ is on sys.path under pytest)

GOLDEN = Path(__file__).resolve().parent / "golden"
FILES = sorted(GOLDEN.glob("mmaction2_*.json"))
REFERENCE = "mmaction2 1.2.0 / mmengine 0.10.7 / mmcv-lite 2.1.0"
RTOL = 1e-7  # max|diff| <= RTOL * max(1, max|logit|), per clip




fill_rule = _load("fill_rule")


def _assert_close(actual: torch.Tensor, expected: list, what: str) -> None:
    expected = torch.tensor(expected, dtype=torch.float64)
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    for row, (a, e) in enumerate(zip(actual, expected)):  # per clip: CSN magnitudes differ per clip
        diff = (a - e).abs().max().item()
        tol = RTOL * max(1.0, e.abs().max().item())
        assert diff <= tol, f"{what}, clip {row}: max|diff| = {diff:.3e} > {tol:.3e}"


def test_every_generator_case_has_a_file():
    """No silent loss of coverage: each case of the generator has its committed JSON."""
    stems = [case.stem for case in _load("make_mmaction2_golden").CASES]
    assert sorted(f"mmaction2_{s}.json" for s in stems) == [f.name for f in FILES]


def test_reference_tin_shift_hand_example():
    """The harness's transcription of mmcv's CUDA ``tin_shift`` kernel, on a hand-worked tensor."""
    _load("make_mmaction2_golden")._check_reference_tin_shift()


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_golden_mmaction2(path: Path):
    data = json.loads(path.read_text())
    assert data["reference"] == REFERENCE and data["dtype"] == "float64"
    assert data["rule"] == "tests/golden/fill_rule.py"
    name = data["model"]
    registered = vidlib.list_models()
    assert name in registered, f"{path.name}: model {name!r} is not registered (have {registered})"

    shapes = data["state_dict_shapes"]
    state_dict = fill_rule.fill_state_dict(shapes)
    assert list(state_dict) == list(shapes), f"{path.name}: the fill produced a different key set"
    assert all(list(state_dict[k].shape) == s for k, s in shapes.items())

    model = vidlib.create_model(name, **data["kwargs"]).double().eval()
    dropped = load_mmaction2(model, state_dict)
    assert not dropped, f"{path.name}: vidlib dropped reference keys {dropped}"

    want_aux = "aux_logits" in data
    for i, inp in enumerate(data["inputs"]):
        assert inp["shape"][2] == data["kwargs"].get("num_frames", inp["shape"][2])
        x = fill_rule.make_input(inp["name"], inp["shape"], inp["lo"], inp["hi"])
        with torch.no_grad():
            out = model(x, return_aux=True) if want_aux else model(x)
        logits, extras = out if want_aux else (out, None)
        assert logits.dtype == torch.float64
        _assert_close(logits, data["logits"][i], f"{path.name} logits, input {inp['name']}")
        if want_aux:
            _assert_close(extras["aux"], data["aux_logits"][i], f"{path.name} aux logits, input {inp['name']}")
