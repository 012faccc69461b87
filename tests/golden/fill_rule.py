"""The documented rule that fills every state-dict entry for the golden tests.

Golden tests compare vidlib with reference code (mmaction2 1.2.0, official STAM) **given the same
weights**. We cannot ship weights, so both sides fill each key with values computed from the key's
*name* and *shape* alone, by pure float64 arithmetic (no random generator, so the values do not depend
on the torch or NumPy version). This file imports only ``math``, ``zlib`` and ``torch``; it is copied
verbatim into nothing and imported by both the generator scripts (run in a scratch environment next to
the reference code) and the tests.

Rule, for a key ``k`` with shape ``s`` (``n`` elements, ``i = 0..n-1``):

    phase = 2*pi * (crc32(k) mod 100003) / 100003
    u[i]  = sin(0.7548776662466927 * 2*pi * i + phase)              # in [-1, 1], aperiodic
    num_batches_tracked            -> 0  (int64)
    running_var                    -> 0.75 + 0.25 * u                 # in [0.5, 1.0]
    running_mean                   -> 0.1 * u
    1-D "*.weight" (norm scale)    -> 1 + 0.1 * u
    "*bias" / "*in_proj_bias"      -> 0.1 * u
    any other tensor with fan_in f -> u * sqrt(3 / f) * gain          # variance ~ gain^2 / f
        f = prod(s[1:]) (or s[-1] for 1-D / token tables), gain = 1

Inputs are made the same way by :func:`make_input` (key ``"input/<name>"``), mapped to [lo, hi].
"""
from __future__ import annotations

import math
import zlib

import torch

__all__ = ["fill_value", "fill_state_dict", "make_input"]

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
    elif key.endswith("running_mean"):
        v = 0.1 * u
    elif key.endswith("bias"):
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
