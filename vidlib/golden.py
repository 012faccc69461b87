"""Golden checks: vidlib's logits against the reference code's, given the same weights and clips.

No weights can be shipped, so the reference side (a generator script in ``tests/golden/``, run once in
a scratch environment next to the reference code) and vidlib fill every state-dict entry from its key's
*name* and *shape* alone, by pure float64 arithmetic (no random generator, so the values do not depend on
the torch or NumPy version), and the reference's logits are stored as small JSON files
(``tests/golden/*.json``, format in ``tests/golden/README.md``).

The fill rule, for a key ``k`` with shape ``s`` (``n`` elements, ``i = 0..n-1``)::

    phase = 2*pi * (crc32(k) mod 100003) / 100003
    u[i]  = sin(0.7548776662466927 * 2*pi * i + phase)              # in [-1, 1], aperiodic
    num_batches_tracked            -> 0  (int64)
    running_var                    -> 0.75 + 0.25 * u                 # in [0.5, 1.0]
    running_mean                   -> 0.1 * u
    "*bias" / "*in_proj_bias"      -> 0.1 * u
    1-D "*.weight" (norm scale)    -> 1 + 0.1 * u
    any other tensor with fan_in f -> u * sqrt(3 / f)                 # variance ~ 1 / f
        f = prod(s[1:]) (or s[-1] for 1-D tensors and token tables such as cls_token / pos_embed)

Inputs are made the same way by :func:`make_input` (key ``"input/<name>"``), mapped to ``[lo, hi]``.
The golden logits depend on every bit of this rule: change nothing here without regenerating them.

:func:`check_golden` is the whole check for one file; the tests and the chapters call it.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from pathlib import Path
from typing import NamedTuple

import torch

from .models import create_model
from .weights import layout_of, load_published

__all__ = [
    "RULE",
    "TOLERANCES",
    "fill_value",
    "fill_state_dict",
    "make_input",
    "GoldenResult",
    "check_golden",
]

#: The ``rule`` field of every golden JSON: this module.
RULE = "vidlib/golden.py"
#: Default tolerance of :func:`check_golden` per reference (max|diff| <= tol * max(1, max|reference logit|)):
#: float64 round-off, with room for the order in which the two implementations sum.
TOLERANCES = {"mmaction2": 1e-7, "Alibaba-MIIL/STAM": 1e-8}
#: The checkpoint layout each reference writes (``default_cfg["layout"]`` of the model it checks).
_LAYOUTS = {"mmaction2": "mmaction2", "Alibaba-MIIL/STAM": "stam_official"}

_GOLDEN = 0.7548776662466927  # 1/plastic number: low-discrepancy step


def _wave(key: str, n: int) -> torch.Tensor:
    phase = 2 * math.pi * (zlib.crc32(key.encode("utf-8")) % 100003) / 100003
    i = torch.arange(n, dtype=torch.float64)
    return torch.sin(_GOLDEN * 2 * math.pi * i + phase)


def fill_value(key: str, shape, dtype=torch.float64) -> torch.Tensor:
    """The golden value of state-dict entry ``key`` with ``shape`` (see the module docstring)."""
    shape = tuple(int(d) for d in shape)
    n = math.prod(shape) if shape else 1
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    u = _wave(key, n).reshape(shape)
    if key.endswith("running_var"):
        v = 0.75 + 0.25 * u
    elif key.endswith("running_mean") or key.endswith("bias"):
        v = 0.1 * u
    elif key.endswith(".weight") and len(shape) == 1:
        v = 1.0 + 0.1 * u
    else:
        fan_in = math.prod(shape[1:]) if len(shape) > 1 else max(shape[-1] if shape else 1, 1)
        if len(shape) == 3 and shape[0] == 1 and shape[1] > 1 and not key.endswith("weight"):
            fan_in = shape[-1]  # token tables such as cls_token [1,1,D] / pos_embed [1,N,D]
        v = u * math.sqrt(3.0 / max(fan_in, 1))
    return v.to(dtype)


def fill_state_dict(shapes: dict, dtype=torch.float64) -> dict:
    """``{key: fill_value(key, shape)}`` for a ``{key: shape}`` mapping."""
    return {k: fill_value(k, s, dtype) for k, s in shapes.items()}


def make_input(name: str, shape, lo: float = -1.0, hi: float = 1.0, dtype=torch.float64) -> torch.Tensor:
    """A deterministic input tensor in ``[lo, hi]`` (for STAM use ``lo=0, hi=1``)."""
    n = math.prod(shape)
    u = _wave("input/" + name, n).reshape(tuple(shape))
    return (lo + (hi - lo) * (u + 1) / 2).to(dtype)


class GoldenResult(NamedTuple):
    """What :func:`check_golden` found (all checks passed).

    Attributes:
        max_rel_err: the worst ``max|ours - reference| / max(1, max|reference|)`` over the clips (and TPN's
            auxiliary logits).
        num_keys: the number of state-dict entries filled and loaded strictly.
        reference: the reference code the logits came from (the JSON's ``reference``).
        tol: the tolerance the logits were checked against.
    """

    max_rel_err: float
    num_keys: int
    reference: str
    tol: float


def _tolerance(reference: str) -> float:
    for prefix, tol in TOLERANCES.items():
        if reference.startswith(prefix):
            return tol
    raise ValueError(
        f"no default tolerance for the reference {reference!r}; pass tol= (known: {list(TOLERANCES)})"
    )


def _compare(ours: torch.Tensor, expected: list, what: str, tol: float) -> float:
    """The worst per-clip relative error of ``ours`` against ``expected``; AssertionError beyond ``tol``."""
    ref = torch.tensor(expected, dtype=torch.float64)
    assert ours.shape == ref.shape, f"{what}: shape {tuple(ours.shape)} != reference {tuple(ref.shape)}"
    worst = 0.0
    # per clip: the CSN logits differ in magnitude between clips
    for row, (a, e) in enumerate(zip(ours, ref)):
        err = (a - e).abs().max().item() / max(1.0, e.abs().max().item())
        assert err <= tol, (
            f"{what}, clip {row}: max|diff| / max(1, max|reference|) = {err:.3e} > tolerance {tol:.0e}"
        )
        worst = max(worst, err)
    return worst


def check_golden(
    path: str | os.PathLike,
    *,
    tol: float | None = None,
    **model_kw,
) -> GoldenResult:
    """Build the model a golden JSON names, load the filled weights strictly, and
    compare every logit.

    Args:
        path: a ``tests/golden/*.json`` file.
        tol: relative tolerance (see :class:`GoldenResult`); default :data:`TOLERANCES`
            of the file's reference.
        **model_kw: overrides of the JSON's ``kwargs`` for ``vidlib.create_model``
            (e.g. ``norm_eps=1e-6`` to see what a deviation does).

    The weights are filled by :func:`fill_state_dict` on the *reference's* keys and
    shapes, then loaded strictly through the loader users call for the model's published
    checkpoints, :func:`vidlib.weights.load_published` (which must drop no key; the
    model's ``default_cfg["layout"]`` must be the reference's: ``load_mmaction2`` for
    mmaction2 files, ``load_stam`` for the official STAM layout).
    Model and inputs run in float64, eval mode, one input batch after another.

    Returns:
        a :class:`GoldenResult`.

    Raises:
        AssertionError: naming the file, the input, the error and the tolerance, when a
            logit differs (or the file does not have the expected format).
        vidlib.weights.CheckpointError: when the reference's keys do not fit the model.
    """
    path = Path(path)
    data = json.loads(path.read_text())
    what = path.name
    reference = data["reference"]
    dtype = data["dtype"]
    assert dtype == "float64", f"{what}: dtype {dtype!r}, expected 'float64'"
    rule = data["rule"]
    assert rule == RULE, f"{what}: filled by {rule!r}, expected {RULE!r}"
    tol = _tolerance(reference) if tol is None else tol

    shapes = data["state_dict_shapes"]
    state_dict = fill_state_dict(shapes)
    kwargs = {**data["kwargs"], **model_kw}
    model = create_model(data["model"], **kwargs).double().eval()
    layout = next((v for k, v in _LAYOUTS.items() if reference.startswith(k)), None)
    assert layout is not None, f"{what}: no checkpoint layout for {reference!r}"
    loads = layout_of(model)
    assert loads == layout, f"{what}: reference layout {layout!r}, model {loads!r}"
    dropped = load_published(model, state_dict)
    assert not dropped, f"{what}: vidlib dropped reference keys {dropped}"

    worst = 0.0
    want_aux = "aux_logits" in data
    for i, inp in enumerate(data["inputs"]):
        # [B, 3, T, H, W], float64
        x = make_input(inp["name"], inp["shape"], inp["lo"], inp["hi"])
        with torch.no_grad():
            out = model(x, return_aux=True) if want_aux else model(x)
        logits, extra = out if want_aux else (out, None)
        computed = logits.dtype
        assert computed == torch.float64, f"{what}: the model computed in {computed}"
        label = f"{what} logits, input {inp['name']}"
        worst = max(worst, _compare(logits, data["logits"][i], label, tol))
        if want_aux:
            label = f"{what} aux logits, input {inp['name']}"
            aux = _compare(extra["aux"], data["aux_logits"][i], label, tol)
            worst = max(worst, aux)
    return GoldenResult(worst, len(state_dict), reference, tol)
