"""Write the mmaction2 golden files ``tests/golden/mmaction2_<model>_t<T>.json``.

Reference: mmaction2 1.2.0 / mmengine 0.10.7 / mmcv-lite 2.1.0 (PyPI), torch 2.14.1.
This script runs ONLY in the scratch environment below (never in the project venv); the tests that
read its output (``tests/test_golden_mmaction2.py``) run everywhere. Of vidlib it uses only the fill rule
(``vidlib.golden``, imported from the checkout); it builds no vidlib model, so the reference side stays
independent of the code it checks.

Setup (from the repository root; ``.scratch/`` is git-ignored)::

    python3 -m venv .scratch/mm/venv
    # see torch/torchvision of the project venv *behind* the scratch venv's own packages
    echo "$PWD/.venv/lib/python3.11/site-packages" \
        > .scratch/mm/venv/lib/python3.11/site-packages/zz_main_venv.pth
    .scratch/mm/venv/bin/pip install mmaction2==1.2.0 mmengine==0.10.7 mmcv-lite==2.1.0 importlib_metadata
    .scratch/mm/venv/bin/python tests/golden/make_mmaction2_golden.py            # all cases
    .scratch/mm/venv/bin/python tests/golden/make_mmaction2_golden.py tin_r50_t8 # some cases

For each case the script builds the recognizer from the config file shipped in the mmaction2 wheel
(``mmaction/.mim/configs/...``) with ``pretrained=None`` (nothing is downloaded), fills EVERY
state-dict key with the fill rule of ``vidlib/golden.py`` and loads it strictly, then runs mmaction2's own
test path (``extract_feat(..., test_mode=True)`` then ``cls_head(...)``) in float64 eval mode and
records the raw logits (before ``average_clip``). The test dataloaders of these configs use batch
size 1, so each clip is run on its own (CSN's ``max_testing_views`` requires it).

Two gaps of the reference are bridged here, without touching the installed packages:

* the 1.2.0 wheel lacks ``mmaction/models/localizers/drn`` (mmaction2 issue 2714), which
  ``mmaction.models.localizers`` imports: a stub module whose ``DRN`` raises when built is put in
  ``sys.modules`` before mmaction is imported (DRN is not used here);
* ``mmcv.ops.tin_shift`` has only CUDA kernels (and mmcv-lite ships no compiled ops at all):
  :func:`reference_tin_shift` is an independent pure-Python transcription of the loop in mmcv's
  ``mmcv/ops/csrc/common/cuda/tin_shift_cuda_kernel.cuh``, installed as ``mmcv.ops.tin_shift``.

Everything runs with ``torch.set_default_dtype(torch.float64)``: mmaction2's
``TemporalInterlace.forward`` allocates its output with a dtype-less ``torch.zeros`` and
``TPNHead`` builds ``new_cls`` lazily, so under the float32 default both would silently be float32.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
import types
import warnings
from pathlib import Path
from typing import NamedTuple

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repository root: vidlib without installing it
from vidlib.golden import RULE, fill_state_dict, make_input  # noqa: E402

REFERENCE = "mmaction2 1.2.0 / mmengine 0.10.7 / mmcv-lite 2.1.0"
INPUT_SIZES = [(2, 64, 64), (1, 48, 80)]  # (clips B, H, W) of each input


# --------------------------------------------------------------------------- reference gaps
def reference_tin_shift(input: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """mmcv's ``tin_shift`` forward, transcribed loop by loop from its CUDA kernel.

    Args:
        input: ``[N, T, C, HW]`` features (``N`` videos, ``T`` segments).
        shift: ``[N, G]`` int32 integer shifts, one per group of ``C // G`` channels (the kernel
            reads ``shift.data_ptr<int>()``: no rounding happens inside the op; callers pass
            ``floor(offset).int()``).

    Returns ``out`` with ``out[n, i + shift[n, g], c, :] = input[n, i, c, :]`` for channel ``c`` in
    group ``g = c // (C // G)``, and zero where no ``i`` lands (the output starts as zeros).
    """
    if input.dim() != 4 or shift.dim() != 2:
        raise ValueError(
            f"tin_shift wants input [N, T, C, HW] and shift [N, G], got "
            f"{tuple(input.shape)} and {tuple(shift.shape)}"
        )
    if input.size(0) != shift.size(0):  # the checks of mmcv's TINShiftFunction.forward
        raise ValueError(f"batch of input ({input.size(0)}) and shift ({shift.size(0)}) differ")
    n_size, t_size, channels, _ = input.shape
    group_size = shift.size(1)
    if channels // group_size <= 0 or channels % group_size != 0:
        raise ValueError(f"C={channels} is not a multiple of num_segments={group_size}")
    if shift.dtype != torch.int32:
        raise TypeError(f"the CUDA kernel reads shift as int32, got {shift.dtype}")
    group_channel = channels // group_size
    shifts = shift.tolist()
    out = torch.zeros_like(input)
    for n_index in range(n_size):  # one CUDA thread per (n, channel j, hw); hw is vectorised here
        for j in range(channels):
            t_shift = shifts[n_index][j // group_channel]
            for i in range(t_size):
                now_t = i + t_shift
                if now_t < 0 or now_t >= t_size:
                    continue
                out[n_index, now_t, j, :] = input[n_index, i, j, :]
    return out


def _check_reference_tin_shift() -> None:
    """Hand-worked example: T=4, two groups shifted by +1 and -2."""
    x = torch.arange(1.0, 9.0, dtype=torch.float64).view(1, 4, 2, 1)  # [N=1, T=4, C=2, HW=1]
    out = reference_tin_shift(x, torch.tensor([[1, -2]], dtype=torch.int32))
    # channel 0 holds 1,3,5,7 over t; shifted by +1 -> 0,1,3,5. channel 1: 2,4,6,8 by -2 -> 6,8,0,0
    expected = torch.tensor([[0.0, 6.0], [1.0, 8.0], [3.0, 0.0], [5.0, 0.0]], dtype=torch.float64)
    if not torch.equal(out[0, :, :, 0], expected):
        raise AssertionError(f"reference_tin_shift self-check failed:\n{out[0, :, :, 0]}")


def install_reference_gaps() -> None:
    """Put the DRN stub and the pure-Python ``mmcv.ops.tin_shift`` into ``sys.modules``."""
    if "mmaction" in sys.modules:
        raise RuntimeError("install_reference_gaps() must run before mmaction is imported")

    class DRN:  # noqa: D401 - stub
        def __init__(self, *args, **kwargs):
            raise RuntimeError("DRN is missing from the mmaction2 1.2.0 wheel (mmaction2 issue 2714)")

    drn_pkg = types.ModuleType("mmaction.models.localizers.drn")
    drn_pkg.__path__ = []  # a package, so that ``.drn.drn`` resolves
    drn_mod = types.ModuleType("mmaction.models.localizers.drn.drn")
    drn_mod.DRN = DRN
    drn_pkg.drn = drn_mod
    sys.modules[drn_pkg.__name__] = drn_pkg
    sys.modules[drn_mod.__name__] = drn_mod

    ops = types.ModuleType("mmcv.ops")
    ops.__doc__ = "harness stand-in: only tin_shift (pure-Python reference of the CUDA kernel)"
    ops.tin_shift = reference_tin_shift
    sys.modules["mmcv.ops"] = ops
    _check_reference_tin_shift()


# --------------------------------------------------------------------------- cases
class Case(NamedTuple):
    stem: str  # the file is tests/golden/mmaction2_<stem>.json
    model: str  # vidlib registered name
    kwargs: dict  # vidlib.create_model kwargs
    config: str  # mmaction2 config, relative to the wheel's mmaction/.mim/
    overrides: dict  # Config.merge_from_dict overrides (besides model.backbone.pretrained=None)


_CFG = "configs/recognition/"
CASES = [
    Case(
        "tsn_r50_t8",
        "tsn_r50",
        dict(num_classes=400, num_frames=8),
        _CFG + "tsn/tsn_imagenet-pretrained-r50_8xb32-1x1x8-100e_kinetics400-rgb.py",
        {},
    ),
    Case(
        "tsm_r50_t8",
        "tsm_r50",
        dict(num_classes=400, num_frames=8),
        _CFG + "tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb.py",
        {},
    ),
    Case(
        "tsm_r50_t16",
        "tsm_r50",
        dict(num_classes=400, num_frames=16),
        _CFG + "tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x16-50e_kinetics400-rgb.py",
        {},
    ),
    Case(
        "tanet_r50_t8",
        "tanet_r50",
        dict(num_classes=400, num_frames=8),
        _CFG + "tanet/tanet_imagenet-pretrained-r50_8xb8-dense-1x1x8-100e_kinetics400-rgb.py",
        {},
    ),
    Case(
        "tanet_r50_t16",
        "tanet_r50",
        dict(num_classes=400, num_frames=16),
        _CFG + "tanet/tanet_imagenet-pretrained-r50_8xb8-dense-1x1x8-100e_kinetics400-rgb.py",
        {"model.backbone.num_segments": 16, "model.cls_head.num_segments": 16},
    ),
    Case(
        "tin_r50_t8",
        "tin_r50",
        dict(dataset="sthv1", num_frames=8),
        _CFG + "tin/tin_imagenet-pretrained-r50_8xb6-1x1x8-40e_sthv1-rgb.py",
        {},
    ),
    Case(
        "tin_r50_t16",
        "tin_r50",
        dict(dataset="sthv1", num_frames=16),
        _CFG + "tin/tin_imagenet-pretrained-r50_8xb6-1x1x8-40e_sthv1-rgb.py",
        {"model.backbone.num_segments": 16, "model.cls_head.num_segments": 16},
    ),
    Case(
        "tpn_slowonly_r50_t8",
        "tpn_slowonly_r50",
        dict(num_classes=400, num_frames=8),
        _CFG + "tpn/tpn-slowonly_imagenet-pretrained-r50_8xb8-8x8x1-150e_kinetics400-rgb.py",
        {},
    ),
    Case(
        "tpn_tsm_r50_t8",
        "tpn_tsm_r50",
        dict(dataset="sthv1", num_frames=8),
        _CFG + "tpn/tpn-tsm_imagenet-pretrained-r50_8xb8-1x1x8-150e_sthv1-rgb.py",
        {},
    ),
    Case(
        "ircsn_r152_t8",
        "ircsn_r152",
        dict(num_classes=400, num_frames=8),
        _CFG + "csn/ircsn_ig65m-pretrained-r152-bnfrozen_8xb12-32x2x1-58e_kinetics400-rgb.py",
        {},
    ),
    Case(
        "ipcsn_r152_t8",
        "ipcsn_r152",
        dict(num_classes=400, num_frames=8),
        _CFG + "csn/ipcsn_ig65m-pretrained-r152-bnfrozen_32x2x1-58e_kinetics400-rgb.py",
        {},
    ),
    Case(
        "ircsn_r50_t8",
        "ircsn_r50",
        dict(num_classes=400, num_frames=8),
        _CFG + "csn/ircsn_ig65m-pretrained-r50-bnfrozen_8xb12-32x2x1-58e_kinetics400-rgb.py",
        {},
    ),
]


def build_reference(config: str, overrides: dict):
    """The mmaction2 recognizer of ``config`` (shipped in the wheel) with ``pretrained=None``."""
    import mmaction
    from mmaction.registry import MODELS
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope

    init_default_scope("mmaction")
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # no per-parameter init log
    cfg = Config.fromfile(str(Path(mmaction.__file__).parent / ".mim" / config))
    overrides = {"model.backbone.pretrained": None, **overrides}
    cfg.merge_from_dict(overrides)
    model_cfg = cfg.model.to_dict()
    recognizer = MODELS.build(copy.deepcopy(model_cfg))
    return recognizer.double().eval(), model_cfg, overrides


def module_classes(recognizer) -> dict:
    """Class names of the recognizer and its parts, and of the block-level temporal modules."""
    names = {"recognizer": type(recognizer).__name__}
    for part in ("backbone", "neck", "cls_head"):
        if getattr(recognizer, part, None) is not None:
            names[part] = type(getattr(recognizer, part)).__name__
    extra = sorted(
        {type(m).__name__ for m in recognizer.modules()}
        & {
            "TemporalShift",
            "TAM",
            "TABlock",
            "TemporalInterlace",
            "CombineNet",
            "OffsetNet",
            "WeightNet",
            "CSNBottleneck3d",
            "Bottleneck3d",
            "AuxHead",
            "TemporalModulation",
            "SpatialModulation",
            "LevelFusion",
            "DownSample",
        }
    )
    names["modules"] = extra
    return names


def run_reference(recognizer, x: torch.Tensor):
    """Raw logits (and TPN aux logits) of mmaction2's test path for ``x`` [B, 3, T, H, W]."""
    captured = []
    hook = None
    if getattr(recognizer, "neck", None) is not None:
        hook = recognizer.neck.register_forward_pre_hook(lambda mod, args: captured.append(args[0]))
    logits, aux = [], []
    for clip in x:  # the configs' test dataloaders use batch size 1
        if type(recognizer).__name__ == "Recognizer2D":
            inputs = clip.permute(1, 0, 2, 3).unsqueeze(0)  # [1, T, 3, H, W] (format_shape NCHW)
        else:
            inputs = clip[None, None]  # [1, num_crops=1, 3, T, H, W] (format_shape NCTHW)
        feats, kwargs = recognizer.extract_feat(inputs, test_mode=True)
        kwargs.pop("loss_aux", None)
        logits.append(recognizer.cls_head(feats, **kwargs))
        if captured:  # TPN: the aux head on the neck's input x[-2] (res4), eval mode
            aux.append(recognizer.neck.aux_head(captured.pop()[-2]))
    if hook is not None:
        hook.remove()
    return torch.cat(logits), (torch.cat(aux) if aux else None)


def make_inputs(stem: str, t: int) -> list:
    """Two clip batches: B=2 square, and B=1 non-square (odd feature-map sizes, H != W)."""
    return [
        {"name": f"mmaction2_{stem}/{i}", "shape": [b, 3, t, h, w], "lo": -1.0, "hi": 1.0}
        for i, (b, h, w) in enumerate(INPUT_SIZES)
    ]


def make_case(stem, model, kwargs, config, overrides) -> dict:
    recognizer, model_cfg, overrides = build_reference(config, overrides)
    shapes = {k: list(v.shape) for k, v in recognizer.state_dict().items()}
    recognizer.load_state_dict(fill_state_dict(shapes), strict=True)
    inputs = make_inputs(stem, kwargs["num_frames"])
    logits, aux = [], []
    start = time.perf_counter()
    for inp in inputs:
        x = make_input(inp["name"], inp["shape"], inp["lo"], inp["hi"])
        with torch.no_grad():
            out, out_aux = run_reference(recognizer, x)
        logits.append(out.tolist())
        if out_aux is not None:
            aux.append(out_aux.tolist())
    seconds = time.perf_counter() - start
    shown = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
    data = {
        "reference": REFERENCE,
        "model": model,
        "kwargs": kwargs,
        "reference_config": f"mmaction2 {config} with {shown}; recognizer.extract_feat(test_mode=True)"
        f" -> cls_head (raw logits, no average_clip), one clip at a time",
        "reference_classes": module_classes(recognizer),
        "reference_model_cfg": model_cfg,
        "rule": RULE,
        "dtype": "float64",
        "state_dict_shapes": shapes,
        "inputs": inputs,
        "logits": logits,
    }
    if aux:
        data["aux_logits"] = aux
    peak = max(abs(v) for rows in logits for row in rows for v in row)
    info = f"max|logit|={peak:.4g}"
    if aux:
        info += f" max|aux|={max(abs(v) for rows in aux for row in rows for v in row):.4g}"
    print(f"{stem}: {len(shapes)} keys, {info}, reference forward {seconds:.1f} s", flush=True)
    return data


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help="file stems to (re)make, default all")
    parser.add_argument("--out-dir", type=Path, default=HERE)
    args = parser.parse_args(argv)
    stems = [c.stem for c in CASES]
    unknown = sorted(set(args.cases) - set(stems))
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {stems}")
    torch.set_default_dtype(torch.float64)
    install_reference_gaps()
    # mmcv-lite has no compiled ops: mmcv.cnn warns that MultiScaleDeformableAttention is missing
    warnings.filterwarnings("ignore", message=".*MultiScaleDeformableAttention.*")
    for case in CASES:
        if args.cases and case.stem not in args.cases:
            continue
        data = make_case(*case)
        path = args.out_dir / f"mmaction2_{case.stem}.json"
        path.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
