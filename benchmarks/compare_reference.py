"""vidlib side by side with its reference implementations: same machine, same process, same weights.

For each pair the script builds the reference from its own code (mmaction2 1.2.0's recognizer from the
config shipped in its wheel; the official STAM at its pinned commit, imported unmodified), builds the
vidlib model, loads the same weights into both (the golden fill rule of ``vidlib/golden.py``; vidlib
through ``vidlib.weights.load_published``, strictly), and then

- checks on this device, in float32, that both give the same logits (``parity``: max|diff| over
  max(1, max|reference|), TF32 off);
- times inference and one training step (forward, cross-entropy, backward, SGD step) of both,
  interleaved (a, b, a, b, ...; best of ``--repeats``), and reports clips/s and the ratio vidlib / reference;
- measures peak memory: on a GPU ``torch.cuda.max_memory_allocated`` per phase; on the CPU the peak
  resident memory of a fresh process per implementation that runs one inference and one training step,
  minus its resident memory once the model is built (so the reference's larger imports do not count).

Runs only in the scratch environment of the golden generators (mmaction2 needs mmengine/mmcv-lite, which
the project venv does not have), reusing their harness (``tests/golden/make_mmaction2_golden.py``:
config paths, the DRN stub, the reference ``tin_shift``; ``tests/golden/make_stam_golden.py``: the
official STAM import). ``make bench`` (``tools/bench.sh``) creates the environment and runs it::

    .scratch/mm/venv/bin/python benchmarks/compare_reference.py --out results/bench_reference_cpu.json \
        [--stam .scratch/stam/STAM] [--models tsm_r50 ...] [--device cpu|cuda]

Inputs are ``[B, 3, T, 224, 224]`` at each model's paper T. CPU: batch 1, fp32 (inference and training).
GPU: inference at batch 1 fp32 and batch ``--batch`` bf16 (and channels_last for the 2D models, both
sides), training at batch ``--batch`` fp32 and bf16 (autocast). The training step leaves out TPN's
auxiliary head on both sides (mmaction2 computes it only when given labelled data samples), and
follows each config's BatchNorm setting on both sides (ir-CSN-152's config freezes it).
Without ``--stam`` (or when the checkout is missing) the STAM row records why it was not measured.

mmaction2's ``tin_shift`` is a compiled mmcv op (CUDA only); the golden harness's transcription of its
kernel loops in Python, far too slow to time. Here it is replaced by :func:`vectorised_tin_shift`
(a gather; checked equal to the transcription on random inputs before anything is timed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # vidlib from the checkout
sys.path.insert(0, str(ROOT / "tests" / "golden"))  # the golden harness
sys.path.insert(0, str(ROOT / "benchmarks"))
from machine import cpu_name, cuda_driver, model_bench  # noqa: E402  (model_bench: benchmarks/models.py)

from vidlib.utils import time_interleaved  # noqa: E402


@dataclass(frozen=True)
class Pair:
    """One vidlib model and its reference: ``golden`` names the harness case (mmaction2) or ``stam``."""

    model: str
    kwargs: dict
    golden: str  # make_mmaction2_golden.CASES stem, or "stam"
    frames: int
    kind: str  # "2d" (channels_last applies), "3d" or "vit"


PAIRS = [
    Pair("tsm_r50", dict(num_classes=400, num_frames=8), "tsm_r50_t8", 8, "2d"),
    Pair("tanet_r50", dict(num_classes=400, num_frames=8), "tanet_r50_t8", 8, "2d"),
    Pair("tin_r50", dict(dataset="sthv1", num_frames=8), "tin_r50_t8", 8, "2d"),
    Pair("tpn_tsm_r50", dict(dataset="sthv1", num_frames=8), "tpn_tsm_r50_t8", 8, "2d"),
    Pair("tpn_slowonly_r50", dict(num_classes=400, num_frames=8), "tpn_slowonly_r50_t8", 8, "3d"),
    # the config is the bn-frozen one: BatchNorm in eval mode and without gradients in training, both sides
    Pair(
        "ircsn_r152",
        dict(num_classes=400, num_frames=32, norm_eval=True, bn_frozen=True),
        "ircsn_r152_t8",
        32,
        "3d",
    ),
    Pair("stam_16", dict(num_classes=400), "stam", 16, "vit"),
]
SIZE = 224


# ----------------------------------------------------------------------------------- reference gaps
def vectorised_tin_shift(input: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """mmcv's ``tin_shift`` as one gather: ``out[n, t, c] = input[n, t - shift[n, c // (C/G)], c]``
    where ``0 <= t - shift < T``, else 0. ``input`` ``[N, T, C, HW]``, ``shift`` int32 ``[N, G]``."""
    n, t, c, hw = input.shape
    g = shift.shape[1]
    per_channel = shift.long().repeat_interleave(c // g, dim=1)  # [N, C]
    src = torch.arange(t, device=input.device)[None, :, None] - per_channel[:, None, :]  # [N, T, C]
    valid = (src >= 0) & (src < t)
    index = src.clamp(0, t - 1)[..., None].expand(n, t, c, hw)  # [N, T, C, HW]
    return torch.gather(input, 1, index) * valid[..., None].to(input.dtype)


def install_gaps() -> None:
    """The harness's DRN stub and ``mmcv.ops``, with the vectorised ``tin_shift`` checked against the
    kernel transcription first."""
    import make_mmaction2_golden as mm

    mm.install_reference_gaps()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 12, 5, generator=gen, dtype=torch.float64)
    s = torch.randint(-3, 4, (2, 3), generator=gen, dtype=torch.int32)
    if not torch.equal(vectorised_tin_shift(x, s), mm.reference_tin_shift(x, s)):
        raise AssertionError("vectorised_tin_shift differs from the harness's kernel transcription")
    sys.modules["mmcv.ops"].tin_shift = vectorised_tin_shift


# ----------------------------------------------------------------------------------- the two models
class Reference(torch.nn.Module):
    """The reference model behind vidlib's call signature: ``[B, 3, T, H, W]`` -> logits ``[B, C]``."""

    def __init__(self, net: torch.nn.Module, layout: str):
        super().__init__()
        self.net, self.layout = net, layout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t = x.shape[:3]
        if self.layout == "stam":
            return self.net(x.transpose(1, 2).reshape(b * t, *x.shape[1:2], *x.shape[3:]))
        # 2D: [B, T, 3, H, W] (mmaction2's NCHW format_shape); 3D: [B, 1 view, 3, T, H, W]
        inputs = x.transpose(1, 2) if self.layout == "2d" else x[:, None]
        feats, kwargs = self.net.extract_feat(inputs, test_mode=not self.training)
        kwargs.pop("loss_aux", None)
        return self.net.cls_head(feats, **kwargs)


def build_reference(pair: Pair, stam_dir: Path | None) -> Reference:
    """The reference model of ``pair`` from its own code (its own initialisation)."""
    if pair.golden == "stam":
        import make_stam_golden as sg

        create, stam_224 = sg.import_official(stam_dir)
        return Reference(sg.build_official(pair.frames, create, stam_224), "stam")
    import make_mmaction2_golden as mm

    case = next(c for c in mm.CASES if c.stem == pair.golden)
    net = mm.build_reference(case.config, case.overrides)[0].float()
    return Reference(net, "2d" if pair.kind == "2d" else "3d")


def build_pair(pair: Pair, stam_dir: Path | None) -> tuple[torch.nn.Module, Reference]:
    """(vidlib model, reference), float32, eval, loaded with the same filled weights."""
    import vidlib
    from vidlib.golden import fill_state_dict
    from vidlib.weights import load_published

    ours, ref = vidlib.create_model(pair.model, **pair.kwargs), build_reference(pair, stam_dir)
    shapes = {k: list(v.shape) for k, v in ref.net.state_dict().items()}
    filled = fill_state_dict(shapes)
    ref.net.load_state_dict(filled, strict=True)
    load_published(ours, filled)  # the loader of the model's default_cfg["layout"]
    return ours.float().eval(), ref.float().eval()


# ----------------------------------------------------------------------------------- measurements
@dataclass
class Setting:
    """One timed phase: ``train`` or ``infer``, batch, dtype (``fp32`` / ``bf16``), channels_last."""

    phase: str
    batch: int
    dtype: str = "fp32"
    channels_last: bool = False

    @property
    def name(self) -> str:
        return f"{self.phase}_b{self.batch}_{self.dtype}" + ("_cl" if self.channels_last else "")


def settings_for(device: str, kind: str, batch: int) -> list[Setting]:
    if device == "cpu":
        return [Setting("infer", 1), Setting("train", 1)]
    out = [Setting("infer", 1), Setting("infer", batch, "bf16"), Setting("train", batch)]
    out.append(Setting("train", batch, "bf16"))
    if kind == "2d":
        out.append(Setting("infer", batch, "bf16", channels_last=True))
    return out


def step_fn(model, setting: Setting, x: torch.Tensor, y: torch.Tensor, device: str):
    """A closure running one phase of ``setting`` on ``model`` (synchronised on a GPU)."""
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=setting.dtype == "bf16")
    if setting.phase == "infer":
        model.eval()

        def run():
            with torch.no_grad(), autocast:
                model(x)
            if device == "cuda":
                torch.cuda.synchronize()

        return run
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-9, momentum=0.9)

    def run():
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return run


def parity(ours, ref, pair: Pair, device: str) -> dict:
    """float32 logits of both on the same clip (batch 1, this device, TF32 off)."""
    from vidlib.golden import make_input

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    x = make_input(f"bench/{pair.model}", [1, 3, pair.frames, SIZE, SIZE], 0.0, 1.0).float().to(device)
    with torch.no_grad():
        a, b = ours.eval()(x), ref.eval()(x)
    err = ((a - b).abs().max() / b.abs().max().clamp(min=1)).item()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return dict(max_rel_err=err, max_abs_logit=b.abs().max().item(), dtype="float32", batch=1)


def measure_pair(pair: Pair, device: str, batch: int, warmup: int, repeats: int, stam_dir) -> dict:
    """Parity, then interleaved timings of every setting (one process, both models on ``device``)."""
    torch.backends.cudnn.benchmark = device == "cuda"  # as the engine runs on a GPU
    ours, ref = build_pair(pair, stam_dir)
    ours, ref = ours.to(device), ref.to(device)
    row = dict(model=pair.model, reference=pair.golden, frames=pair.frames, size=SIZE, kind=pair.kind)
    row["parity"] = parity(ours, ref, pair, device)
    gen = torch.Generator().manual_seed(0)
    classes = 174 if pair.kwargs.get("dataset") == "sthv1" else 400
    row["settings"] = {}
    for s in settings_for(device, pair.kind, batch):
        x = torch.rand(s.batch, 3, pair.frames, SIZE, SIZE, generator=gen).to(device)
        y = torch.randint(0, classes, (s.batch,), generator=gen).to(device)
        models = {"vidlib": ours, "reference": ref}
        if s.channels_last:  # as the engine does: convert the weights; the 2D models reshape inside
            models = {k: m.to(memory_format=torch.channels_last) for k, m in models.items()}
        fns = {k: step_fn(m, s, x, y, device) for k, m in models.items()}
        sec = time_interleaved(fns, warmup=warmup, repeats=repeats)
        entry = {k: dict(seconds=v, clips_per_s=s.batch / v) for k, v in sec.items()}
        if device == "cuda":
            for k, fn in fns.items():
                torch.cuda.reset_peak_memory_stats()
                fn()
                entry[k]["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
        entry["ratio"] = entry["vidlib"]["clips_per_s"] / entry["reference"]["clips_per_s"]
        row["settings"][s.name] = entry
        if s.channels_last:
            for m in models.values():
                m.to(memory_format=torch.contiguous_format)
        print(
            f"  {pair.model:<18} {s.name:<18} vidlib {entry['vidlib']['clips_per_s']:8.2f} clips/s"
            f"  reference {entry['reference']['clips_per_s']:8.2f}  ratio {entry['ratio']:.2f}",
            flush=True,
        )
    return row


def measure_cpu_memory(pair: Pair, which: str, stam_dir) -> dict:
    """In a fresh process that builds only this implementation (its own initialisation: the values do
    not change the memory): resident MiB once built, and the peak above it after one inference and after
    one training step (batch 1, fp32). ``ru_maxrss`` only grows, so the training peak includes inference."""
    import vidlib

    if which == "vidlib":  # only the measured model is ever built in this process
        model = vidlib.create_model(pair.model, **pair.kwargs)
    else:
        model = build_reference(pair, stam_dir)
    built = model_bench._rss_mib()
    x = torch.rand(1, 3, pair.frames, SIZE, SIZE)
    y = torch.zeros(1, dtype=torch.long)
    step_fn(model, Setting("infer", 1), x, y, "cpu")()
    infer = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    step_fn(model, Setting("train", 1), x, y, "cpu")()
    train = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(built_mib=built, infer_peak_mib=infer - built, train_peak_mib=train - built)


# ----------------------------------------------------------------------------------- driver
def _child(args: argparse.Namespace) -> None:
    """Run one measurement in this (fresh) process and print its JSON as the last line."""
    install_gaps()
    torch.set_num_threads(args.threads)
    pair = next(p for p in PAIRS if p.model == args.child_model)
    stam = Path(args.stam) if args.stam else None
    if args.child_what == "pair":
        out = measure_pair(pair, args.device, args.batch, args.warmup, args.repeats, stam)
    else:
        out = measure_cpu_memory(pair, args.child_what, stam)
    print(json.dumps(out))


def _run_child(args, model: str, what: str) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child-model",
        model,
        "--child-what",
        what,
        "--device",
        args.device,
        "--batch",
        str(args.batch),
        "--warmup",
        str(args.warmup),
        "--repeats",
        str(args.repeats),
        "--threads",
        str(args.threads),
    ] + (["--stam", args.stam] if args.stam else [])
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{model} ({what}) failed with exit status {proc.returncode}")
    lines = proc.stdout.strip().splitlines()
    for line in lines[:-1]:
        print(line, flush=True)
    return json.loads(lines[-1])


@dataclass
class Header:
    """What the numbers depend on (the staleness tests read ``code``)."""

    device: str
    device_name: str
    torch: str
    threads: int
    batch: int
    warmup: int
    repeats: int
    references: dict = field(default_factory=dict)
    code: dict = field(default_factory=dict)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=False, help="write the JSON here")
    p.add_argument("--models", nargs="+", default=[pp.model for pp in PAIRS])
    p.add_argument("--stam", default=None, help="checkout of Alibaba-MIIL/STAM at 6749baf")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=8, help="batch of the GPU's batched settings")
    p.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 16))
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--child-model", help=argparse.SUPPRESS)
    p.add_argument("--child-what", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    gpu = args.device.startswith("cuda")
    args.warmup = args.warmup if args.warmup is not None else (3 if gpu else 1)
    args.repeats = args.repeats if args.repeats is not None else (10 if gpu else 3)
    if args.child_model:
        return _child(args)
    if not args.out:
        p.error("--out is required")
    unknown = sorted(set(args.models) - {pp.model for pp in PAIRS})
    if unknown:
        p.error(f"unknown models {unknown}; known: {[pp.model for pp in PAIRS]}")
    import importlib.metadata as md

    import make_stam_golden as sg

    from vidbook.results import code_identity

    stam_ok = bool(args.stam) and (Path(args.stam) / "stam").is_dir()
    head = Header(
        device=args.device,
        device_name=torch.cuda.get_device_name(0) if gpu else cpu_name(),
        torch=torch.__version__,
        threads=args.threads,
        batch=1 if not gpu else args.batch,
        warmup=args.warmup,
        repeats=args.repeats,
        references={
            "mmaction2": md.version("mmaction2"),
            "mmengine": md.version("mmengine"),
            "mmcv-lite": md.version("mmcv-lite"),
            "stam": f"Alibaba-MIIL/STAM@{sg.COMMIT}" if stam_ok else None,
        },
        code=code_identity(),
    )
    if gpu:
        head.references["cuda_driver"] = cuda_driver()
    rows, start = [], time.perf_counter()
    for name in args.models:
        pair = next(pp for pp in PAIRS if pp.model == name)
        if pair.golden == "stam" and not stam_ok:
            rows.append(dict(model=name, reference="stam", skipped=f"no STAM checkout at {args.stam!r}"))
            print(f"  {name}: not measured: no checkout of the official STAM (--stam {args.stam})")
            continue
        t0 = time.perf_counter()
        row = _run_child(args, name, "pair")
        if not gpu:
            row["memory"] = {w: _run_child(args, name, w) for w in ("vidlib", "reference")}
        row["wall_s"] = time.perf_counter() - t0
        rows.append(row)
    out = dict(asdict(head), wall_s=time.perf_counter() - start, loadavg_after=os.getloadavg(), pairs=rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out).with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    tmp.replace(args.out)
    print(f"wrote {args.out} ({out['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
