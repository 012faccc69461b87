"""Write tests/golden/stam_t{8,16}.json: logits of the OFFICIAL STAM code, run unmodified.

Reference: Alibaba-MIIL/STAM at commit 6749baf (https://github.com/Alibaba-MIIL/STAM). Its code is never
copied into vidlib; this script imports it from a scratch checkout. Setup (from the repo root):

    python3 -m venv .scratch/stam/venv
    # reuse the main venv's torch/torchvision behind the scratch venv's own packages:
    SITE=.scratch/stam/venv/lib/python3.11/site-packages
    echo "$PWD/.venv/lib/python3.11/site-packages" > $SITE/zz_main_venv.pth
    git clone https://github.com/Alibaba-MIIL/STAM .scratch/stam/STAM
    git -C .scratch/stam/STAM checkout 6749baf
    .scratch/stam/venv/bin/python tests/golden/make_stam_golden.py --stam .scratch/stam/STAM

The official model needs only torch (no timm). Its one snag on current torchvision: ``stam/utils/utils.py``
(imported by the model for ``trunc_normal_``) does ``from torchvision.datasets import Kinetics400``, a class
torchvision removed; only its data loader uses it. We put a placeholder attribute on
``torchvision.datasets`` before importing, instead of editing their files.

Procedure, per T: build the official model (T=16 through the official factory ``create_model``; T=8 through
``STAM_224`` directly, because the factory rejects ``stam_8``), fill EVERY state-dict key with
the fill rule of ``vidlib/golden.py`` and load strictly, convert to float64, eval mode, and feed
``make_input(name, [2, 3, T, 224, 224], lo=0, hi=1)`` permuted to the official video-major layout
``[B*T, 3, 224, 224]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repository root: vidlib's fill rule (no vidlib model is built)
from vidlib.golden import RULE, fill_state_dict, make_input  # noqa: E402

COMMIT = "6749baf"
BATCH = 2


def import_official(stam_dir: Path):
    """Import the official model code unmodified (see the module docstring for the Kinetics400
    placeholder)."""
    import torchvision.datasets

    if not hasattr(torchvision.datasets, "Kinetics400"):
        torchvision.datasets.Kinetics400 = None  # only the official data loader uses it; never called here
    sys.path.insert(0, str(stam_dir))
    from stam.models import create_model
    from stam.models.transformer_model import STAM_224

    return create_model, STAM_224


def build_official(T: int, create_model, STAM_224) -> torch.nn.Module:
    # the CLI defaults of the official infer.py
    args = SimpleNamespace(
        model_name=f"stam_{T}", num_classes=400, input_size=224, frames_per_clip=16, frame_rate=1.6
    )
    if T == 8:  # the official factory exits with "model not found" for stam_8
        args.frames_per_clip = 8
        return STAM_224({"args": args, "num_classes": 400})
    model = create_model(args)
    assert args.frames_per_clip == T, (T, args.frames_per_clip)
    return model


def golden(T: int, model: torch.nn.Module) -> dict:
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    model.double().eval()  # float64 BEFORE loading, so the filled values are not rounded to float32
    model.load_state_dict(fill_state_dict(shapes), strict=True)
    name = f"stam_t{T}"
    x = make_input(name, [BATCH, 3, T, 224, 224], lo=0.0, hi=1.0)  # [B, 3, T, H, W]
    frames = x.transpose(1, 2).reshape(BATCH * T, 3, 224, 224)  # [B*T, 3, H, W], video-major
    with torch.no_grad():
        logits = model(frames)  # [B, 400]
    ctor = (
        "STAM_224({'args': Namespace(input_size=224, frames_per_clip=8), 'num_classes': 400})"
        if T == 8
        else f"stam.models.create_model(Namespace(model_name='stam_{T}', num_classes=400, input_size=224))"
    )
    return {
        "reference": f"Alibaba-MIIL/STAM@{COMMIT}",
        "model": f"stam_{T}",
        "kwargs": {"num_classes": 400},
        "reference_config": f"{ctor}; torch {torch.__version__}; input permuted to [B*T, 3, 224, 224]",
        "rule": RULE,
        "dtype": "float64",
        "state_dict_shapes": shapes,
        "inputs": [{"name": name, "shape": [BATCH, 3, T, 224, 224], "lo": 0.0, "hi": 1.0}],
        "logits": [logits.tolist()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stam", type=Path, required=True, help="checkout of Alibaba-MIIL/STAM at 6749baf")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--frames", type=int, nargs="+", default=[8, 16])
    args = parser.parse_args()
    head = subprocess.run(
        ["git", "-C", str(args.stam), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if not head.startswith(COMMIT):
        raise SystemExit(f"{args.stam} is at {head}, expected {COMMIT}")
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    create_model, STAM_224 = import_official(args.stam)
    for T in args.frames:
        out = args.out / f"stam_t{T}.json"
        out.write_text(json.dumps(golden(T, build_official(T, create_model, STAM_224)), indent=1) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
