"""``python -m vidlib {train,test,flops,benchmark,recipes} ...``

Examples::

    python -m vidlib train --model tsm_tiny --data data/synthetic --epochs 12
    python -m vidlib train --recipe tanet_r50_k400 --data data/kinetics400 --auto-scale-lr --amp bf16
    torchrun --nproc_per_node=8 -m vidlib train --recipe tanet_r50_k400 --data data/kinetics400
    python -m vidlib test --checkpoint work_dirs/run/best.pth --data data/synthetic --average prob
    python -m vidlib flops --model tanet_r50 --shape 1 3 8 256 256 --style mmcv
    python -m vidlib benchmark --model tsm_tiny --batch-size 8
    python -m vidlib recipes tin_r50_sthv1

Errors in the arguments or the data (unknown model or recipe, missing data, class-count mismatch,
foreign checkpoint) print one clear message and exit with status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

__all__ = ["main", "build_parser"]


def _kv(text: str) -> tuple[str, object]:
    from .recipes import parse_value

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), parse_value(value)


def _common_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="registered model name (python -c 'import vidlib; print(vidlib.list_models())')")
    p.add_argument("--model-kw", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="model keyword argument, repeatable (e.g. --model-kw num_frames=16 --model-kw dropout=0.5)")
    p.add_argument("--device", help="cuda, cuda:1, cpu ... (default: cuda when available)")
    p.add_argument("--amp", default="auto", choices=["auto", "off", "bf16", "fp16"])


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m vidlib", description="vidlib: train, test and measure video models")
    sub = ap.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model with a recipe")
    _common_model(t)
    t.add_argument("--recipe", default="synthetic_tiny", help="recipe name (python -m vidlib recipes)")
    t.add_argument("--data", required=True, help="dataset folder with train.txt, val.txt, label_map.txt")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int, help="per process (GPU)")
    t.add_argument("--lr", type=float)
    t.add_argument("--auto-scale-lr", action="store_true", help="linear scaling rule against the recipe's base batch")
    t.add_argument("--set", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="override any recipe value by its dotted key, e.g. --set optimizer.weight_decay=5e-4")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--work-dir")
    t.add_argument("--name", help="run name (work dir and results/runs/<name>.json)")
    t.add_argument("--resume", nargs="?", const=True, default=False, help="resume from <work-dir>/last.pth or PATH")
    t.add_argument("--load-from", help="initialise from an mmaction2 checkpoint")
    t.add_argument("--num-workers", type=int, default=2)
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    t.add_argument("--test", action="store_true", help="evaluate the final model with the full test protocol")
    t.add_argument("--save-every-iters", type=int)
    t.add_argument("--tensorboard", action="store_true")
    t.add_argument("--no-deterministic", action="store_true", help="allow non-deterministic (faster) kernels")
    t.add_argument("--results-dir", default="results/runs")
    t.add_argument("--backend", default="decord", choices=["decord", "pyav"])
    t.add_argument("--on-error", default="raise", choices=["raise", "skip"])
    t.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)

    e = sub.add_parser("test", help="evaluate with the multi-view test protocol")
    _common_model(e)
    e.add_argument("--checkpoint", required=True, help="a vidlib training checkpoint or an mmaction2 checkpoint")
    e.add_argument("--data", required=True)
    e.add_argument("--split", default="val")
    e.add_argument("--mode", default="test", choices=["test", "val"], help="test: all views; val: centre crop")
    e.add_argument("--recipe", help="take the data protocol (sampling, crops) from this recipe")
    e.add_argument("--average", choices=["prob", "score"], help="view averaging (default: the model cfg's)")
    e.add_argument("--batch-size", type=int, default=1)
    e.add_argument("--num-workers", type=int, default=2)
    e.add_argument("--max-views", type=int, default=8, help="views per forward pass (memory bound)")
    e.add_argument("--out", help="write the full report (per-class table, confusion matrix) as JSON")
    e.add_argument("--backend", default="decord", choices=["decord", "pyav"])

    f = sub.add_parser("flops", help="count MACs (fvcore) and parameters")
    _common_model(f)
    f.add_argument("--shape", type=int, nargs="+", help="input shape B 3 T H W (default: 1 x the cfg's input_size)")
    f.add_argument("--style", default="fvcore", choices=["fvcore", "mmcv"])
    f.add_argument("--ops", nargs="+", help="only these op families, e.g. --ops linear conv (STAM's convention)")
    f.add_argument("--num-classes", type=int, default=400)

    b = sub.add_parser("benchmark", help="clips/s of a model's forward (and backward) pass")
    _common_model(b)
    b.add_argument("--batch-size", type=int, default=8)
    b.add_argument("--shape", type=int, nargs=4, metavar=("C", "T", "H", "W"), help="default: the cfg's input_size")
    b.add_argument("--train", action="store_true", help="time forward + backward")
    b.add_argument("--iters", type=int, default=10)
    b.add_argument("--warmup", type=int, default=3)
    b.add_argument("--num-classes", type=int, default=400)
    b.add_argument("--channels-last", action="store_true")
    b.add_argument("--compile", action="store_true")

    r = sub.add_parser("recipes", help="list the recipes, or print one")
    r.add_argument("name", nargs="?")
    return ap


def _train(a) -> int:
    from .training import train

    summary = train(a.model, a.data, recipe=a.recipe, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                    auto_scale_lr=a.auto_scale_lr, seed=a.seed, work_dir=a.work_dir, name=a.name, device=a.device,
                    amp=a.amp, compile=a.compile, num_workers=a.num_workers, resume=a.resume, load_from=a.load_from,
                    overrides=dict(a.set), test=a.test, save_every_iters=a.save_every_iters,
                    deterministic=not a.no_deterministic, tensorboard=a.tensorboard, progress=a.progress,
                    results_dir=a.results_dir, backend=a.backend, on_error=a.on_error, **dict(a.model_kw))
    if summary.get("best") is not None or summary["world_size"] == 1:
        v = summary["val"]
        print(f"done: val top1 {v['top1']:.4f} top5 {v['top5']:.4f} mean-class {v['mean_class_acc']:.4f} "
              f"| {summary['minutes_per_epoch']:.2f} min/epoch | {summary['work_dir']}")
    return 0


def _load_for_test(a):
    from .. import create_model
    from ..checkpoints import load_mmaction2, load_state_dict_strict
    from .checkpoint import load_checkpoint_file

    path = Path(a.checkpoint)
    ck = load_checkpoint_file(path)
    kw = dict(a.model_kw)
    if ck.get("format") == "vidlib-train-1":
        name = a.model or ck["model_name"]
        model = create_model(name, **{**ck["model_kwargs"], **kw})
        load_state_dict_strict(model, ck["model"], source=str(path))
        return model, ck.get("recipe")
    if not a.model:
        raise ValueError(f"{path} is not a vidlib training checkpoint: give --model (and --model-kw num_classes=...)")
    model = create_model(a.model, **kw)
    load_mmaction2(model, ck)
    return model, None


def _test(a) -> int:
    from ..data import build_dataset
    from ..utils import get_device
    from .evaluation import evaluate
    from .recipes import DATA_CFG_KEYS, get_recipe
    from .training import _amp_mode

    model, ck_recipe = _load_for_test(a)
    recipe = get_recipe(a.recipe) if a.recipe else ck_recipe
    over = {k: v for k, v in (recipe or {}).get("data", {}).items() if k in DATA_CFG_KEYS}
    device = get_device(a.device)
    dataset = build_dataset(a.data, a.split, model.default_cfg, a.mode, backend=a.backend, **over)
    report = evaluate(model.to(device), dataset, mode=a.mode, batch_size=a.batch_size, num_workers=a.num_workers,
                      device=device, average_clips=a.average, amp=_amp_mode(a.amp, device), max_views=a.max_views)
    print(f"{len(dataset)} videos x {dataset.num_views} views ({report['average_clips']} averaging): "
          f"top1 {report['top1']:.4f}  top5 {report['top5']:.4f}  mean-class {report['mean_class_acc']:.4f}")
    worst = sorted((r for r in report["per_class"] if r["accuracy"] is not None), key=lambda r: r["accuracy"])[:10]
    print("lowest per-class accuracy:\n" + "\n".join(f"  {r['accuracy']:.3f}  ({r['support']:4d})  {r['name']}"
                                                     for r in worst))
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps({k: v for k, v in report.items() if k != "scores"}, indent=1))
        print(f"report written to {a.out}")
    return 0


def _flops(a) -> int:
    from .. import create_model
    from ..flops import count_flops

    model = create_model(a.model, **{"num_classes": a.num_classes, **dict(a.model_kw)})
    shape = tuple(a.shape) if a.shape else (1, *model.default_cfg["input_size"])
    res = count_flops(model, shape, style=a.style, ops=a.ops)
    print(f"{a.model} input {list(shape)}: {res.gflops:.3f} GFLOPs (= GMACs, {res.style} counting), "
          f"{res.params:,} params")
    if res.unsupported:
        print(f"not counted: {res.unsupported}")
    print(res.table())
    return 0


def _benchmark(a) -> int:
    import torch

    from .. import create_model
    from ..utils import get_device, num_params
    from .evaluation import autocast_context
    from .training import _amp_mode

    device = get_device(a.device)
    model = create_model(a.model, **{"num_classes": a.num_classes, **dict(a.model_kw)}).to(device)
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
    fwd = torch.compile(model) if a.compile else model
    shape = tuple(a.shape) if a.shape else tuple(model.default_cfg["input_size"])
    x = torch.randn(a.batch_size, *shape, device=device)
    amp = _amp_mode(a.amp, device)

    model.train(a.train)

    def run():
        with torch.set_grad_enabled(a.train), autocast_context(device, amp):
            out = fwd(x)
        if a.train:
            out.float().sum().backward()

    for _ in range(a.warmup):
        run()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(a.iters):
        run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / a.iters
    mem = f", peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if device.type == "cuda" else ""
    print(f"{a.model} ({num_params(model):,} params) {'train' if a.train else 'inference'} on {device}, amp {amp}, "
          f"batch {a.batch_size} x {list(shape)}: {a.batch_size / dt:.1f} clips/s ({dt * 1000:.1f} ms/batch{mem})")
    return 0


def _recipes(a) -> int:
    from .recipes import RECIPES, format_recipe, get_recipe

    if a.name:
        print(format_recipe(get_recipe(a.name)))
    else:
        for name in sorted(RECIPES):
            print(f"{name:34s} {RECIPES[name]['description']}")
    return 0


def main(argv=None) -> int:
    """Entry point of ``python -m vidlib``; returns the exit status."""
    a = build_parser().parse_args(argv)
    handler = {"train": _train, "test": _test, "flops": _flops, "benchmark": _benchmark, "recipes": _recipes}[a.command]
    try:
        return handler(a)
    except (KeyError, ValueError, FileNotFoundError, RuntimeError, FloatingPointError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"error: {msg}", file=sys.stderr)
        return 2
