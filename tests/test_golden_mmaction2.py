"""Golden equivalence with mmaction2 1.2.0: same weights, same clips -> same logits in float64.

Each ``tests/golden/mmaction2_*.json`` was written by ``tests/golden/make_mmaction2_golden.py`` in a
scratch environment with mmaction2 installed (see ``tests/golden/README.md``). Both sides' weights come
from the fill rule of :mod:`vidlib.golden` applied to the *reference* key names;
:func:`vidlib.golden.check_golden` loads them through :func:`vidlib.weights.load_mmaction2` (strict) and
compares every logit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from golden import make_mmaction2_golden  # tests/golden/ (tests/ is on sys.path under pytest)

from vidlib.golden import check_golden

GOLDEN = Path(__file__).resolve().parent / "golden"
FILES = sorted(GOLDEN.glob("mmaction2_*.json"))
REFERENCE = "mmaction2 1.2.0 / mmengine 0.10.7 / mmcv-lite 2.1.0"


def test_every_generator_case_has_a_file():
    """No silent loss of coverage: each case of the generator has its committed JSON, with its kwargs."""
    cases = {f"mmaction2_{case.stem}.json": case for case in make_mmaction2_golden.CASES}
    assert sorted(cases) == [f.name for f in FILES]
    for f in FILES:
        data = json.loads(f.read_text())
        assert (data["model"], data["kwargs"]) == (cases[f.name].model, cases[f.name].kwargs), f.name


def test_reference_tin_shift_hand_example():
    """The harness's transcription of mmcv's CUDA ``tin_shift`` kernel, on a hand-worked tensor."""
    make_mmaction2_golden._check_reference_tin_shift()


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_golden_mmaction2(path: Path):
    result = check_golden(path)  # raises AssertionError naming the input, error and tolerance
    assert result.reference == REFERENCE and result.tol == 1e-7
    assert result.num_keys == len(json.loads(path.read_text())["state_dict_shapes"])
    assert result.max_rel_err <= result.tol
