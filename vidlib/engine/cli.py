"""``python -m vidlib {train,test,flops,benchmark,recipes} ...``

Examples::

    python -m vidlib train --model tsm_tiny --data data/synthetic --epochs 12
    python -m vidlib train --recipe tanet_r50_k400 --data data/kinetics400 --auto-scale-lr --amp bf16
    torchrun --nproc_per_node=8 -m vidlib train --recipe tanet_r50_k400 --data data/kinetics400
    python -m vidlib test --checkpoint work_dirs/run/best.pth --data data/synthetic --average prob
    python -m vidlib flops --model tanet_r50 --shape 1 3 8 256 256 --style mmcv
    python -m vidlib benchmark --model tsm_tiny --batch-size 8
    python -m vidlib recipes tin_r50_sthv1

Errors in the arguments or the data (unknown model, recipe or option, missing data or label map,
class-count mismatch, foreign or corrupt checkpoint, unreadable video, a file as ``--work-dir``: every
:class:`vidlib.errors.InputError`, and a missing file) print one clear message, naming the file, key or
value, and exit with status 2; ``VIDLIB_DEBUG=1`` shows the traceback instead. Any other exception is a
bug and keeps its traceback. Videos that were skipped (``--on-error skip``) or missing are counted in the
printed result and listed in the reports.

Ctrl-C stops ``train`` after the current iteration, writes a checkpoint, prints where it is and the
command that resumes the run (``--resume``), and exits with status 130.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from ..errors import BadConfigError, InputError
from .config import TrainConfig, add_config_arguments, config_from_args, parse_kv

__all__ = ["main", "build_parser"]


def _common_model(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", help="registered model name (python -c 'import vidlib; print(vidlib.list_models())')"
    )
    p.add_argument(
        "--model-kw",
        type=parse_kv,
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        dest="model_kwargs",
        help="model keyword arguments, one or more per flag, repeatable "
        "(e.g. --model-kw num_frames=16 dropout=0.5, or --model-kw num_frames=16 --model-kw dropout=0.5)",
    )
    p.add_argument("--device", help="cuda, cuda:1, cpu ... (default: cuda when available)")
    p.add_argument("--amp", default="auto", choices=["auto", "off", "bf16", "fp16"])


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m vidlib", description="vidlib: train, test and measure video models"
    )
    sub = ap.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model with a recipe")
    add_config_arguments(t)  # one option per TrainConfig field: named, typed and documented there

    e = sub.add_parser("test", help="evaluate with the multi-view test protocol")
    _common_model(e)
    e.add_argument(
        "--checkpoint", required=True, help="a vidlib training checkpoint or an mmaction2 checkpoint"
    )
    e.add_argument("--data", required=True)
    e.add_argument("--split", default="val")
    e.add_argument(
        "--mode", default="test", choices=["test", "val"], help="test: all views; val: centre crop"
    )
    e.add_argument("--recipe", help="take the data protocol (sampling, crops) from this recipe")
    e.add_argument("--average", choices=["prob", "score"], help="view averaging (default: the model cfg's)")
    e.add_argument("--batch-size", type=_positive, default=1)
    e.add_argument(
        "--num-workers",
        type=int,
        default=TrainConfig.num_workers,
        help="DataLoader worker processes (default: %(default)s, as for train)",
    )
    e.add_argument("--max-views", type=_positive, default=8, help="views per forward pass (memory bound)")
    e.add_argument(
        "--out",
        help="write the full report (per-class table, confusion matrix, unreadable and "
        "missing videos) as JSON",
    )
    e.add_argument("--backend", default="decord", choices=["decord", "pyav"])
    e.add_argument(
        "--on-error",
        default="raise",
        choices=["raise", "skip"],
        help="an unreadable video: raise, or skip it (excluded from the metrics, counted and listed)",
    )
    e.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="tqdm bar (default: when stderr is a terminal)",
    )

    f = sub.add_parser("flops", help="count MACs (fvcore) and parameters")
    _common_model(f)
    f.add_argument(
        "--shape", type=int, nargs="+", help="input shape B 3 T H W (default: 1 x the cfg's input_size)"
    )
    f.add_argument("--style", default="fvcore", choices=["fvcore", "mmcv"])
    f.add_argument(
        "--ops", nargs="+", help="only these op families, e.g. --ops linear conv (STAM's convention)"
    )
    f.add_argument("--num-classes", type=_positive, help="default: the model's")

    b = sub.add_parser("benchmark", help="clips/s of a model's forward (and backward) pass")
    _common_model(b)
    b.add_argument("--batch-size", type=_positive, default=8)
    b.add_argument(
        "--shape", type=int, nargs=4, metavar=("C", "T", "H", "W"), help="default: the cfg's input_size"
    )
    b.add_argument("--train", action="store_true", help="time forward + backward")
    b.add_argument("--iters", type=_positive, default=10)
    b.add_argument("--warmup", type=int, default=3)
    b.add_argument("--num-classes", type=_positive, help="default: the model's")
    b.add_argument("--channels-last", action="store_true")
    b.add_argument("--compile", action="store_true")

    r = sub.add_parser("recipes", help="list the recipes, or print one")
    r.add_argument("name", nargs="?")
    return ap


def _train(a) -> int:
    from .evaluation import data_problems
    from .training import train

    summary = train(config_from_args(a))
    if summary.get("best") is not None or summary["world_size"] == 1:
        v = summary["val"]
        print(
            f"done: val top1 {v['top1']:.4f} top5 {v['top5']:.4f} mean-class {v['mean_class_acc']:.4f} "
            f"| {summary['minutes_per_epoch']:.2f} min/epoch | {summary['work_dir']}"
        )
        problems = data_problems(summary)
        print(
            f"{summary['num_train']} train + {summary['num_val']} val videos"
            + (f", {problems}: see {summary['summary_file']}" if problems else "")
            + f"\nrun summary: {summary['summary_file']}"
        )
    return 0


_TRAIN_KEYS = ("model_name", "model_kwargs", "model")


def _load_for_test(a):
    from .. import create_model
    from ..weights import LAYOUTS, layout_of, load_published, load_state_dict_strict
    from .checkpoint import CHECKPOINT_FORMAT, load_checkpoint_file

    path = Path(a.checkpoint)
    ck = load_checkpoint_file(path)
    kw = dict(a.model_kwargs)
    if ck.get("format") in (CHECKPOINT_FORMAT, "vidlib-train-1"):
        lacking = [k for k in _TRAIN_KEYS if k not in ck]
        if lacking:
            raise BadConfigError(
                f"{path} is a vidlib training checkpoint ({ck['format']}) without the key(s) "
                f"{', '.join(map(repr, lacking))}; its top-level keys are: {', '.join(map(str, ck))}"
            )
        name = a.model or ck["model_name"]
        model = create_model(name, **{**ck["model_kwargs"], **kw})
        load_state_dict_strict(model, ck["model"], source=str(path))
        return model, ck.get("recipe"), "checkpoint"
    if not a.model:
        raise BadConfigError(
            f"{path} is not a vidlib training checkpoint (no 'format' key; top-level keys: "
            f"{', '.join(map(str, list(ck)[:8]))}): give --model to load it as an mmaction2 checkpoint "
            "(or as an official STAM checkpoint for a stam_* model; add --model-kw num_classes=... if it "
            "is not the model's default)"
        )
    model = create_model(a.model, **kw)
    load_published(model, ck)  # the loader of the model's default_cfg["layout"]
    return model, None, f"{LAYOUTS[layout_of(model)][1]} checkpoint"


def _test(a) -> int:
    from ..data import build_dataset
    from ..data.annotations import read_classes
    from ..utils import get_device
    from .evaluation import amp_mode, check_classes, data_problems, evaluate
    from .recipes import get_recipe, recipe_data

    classes = read_classes(a.data)  # before loading anything: the label map must exist
    model, ck_recipe, what = _load_for_test(a)
    check_classes(model, classes, Path(a.data), what=f"the {what} {a.checkpoint}")
    recipe = get_recipe(a.recipe) if a.recipe else ck_recipe
    over = recipe_data(recipe or {})[0]
    device = get_device(a.device)
    dataset = build_dataset(
        a.data, a.split, model.default_cfg, a.mode, backend=a.backend, on_error=a.on_error, **over
    )
    report = evaluate(
        model.to(device),
        dataset,
        mode=a.mode,
        batch_size=a.batch_size,
        num_workers=a.num_workers,
        device=device,
        average_clips=a.average,
        amp=amp_mode(a.amp, device),
        max_views=a.max_views,
        progress=a.progress,
    )
    problems = data_problems(report)
    n = len(dataset) + report["num_missing"]
    print(
        f"{n} videos"
        + (f", {problems}: see the report (--out)" if problems else "")
        + f"; {dataset.num_views} views each ({report['average_clips']} averaging): "
        f"top1 {report['top1']:.4f}  top5 {report['top5']:.4f}  mean-class {report['mean_class_acc']:.4f}"
    )
    worst = sorted(
        (r for r in report["per_class"] if r["accuracy"] is not None), key=lambda r: r["accuracy"]
    )[:10]
    print(
        "lowest per-class accuracy:\n"
        + "\n".join(f"  {r['accuracy']:.3f}  ({r['support']:4d})  {r['name']}" for r in worst)
    )
    if problems:
        for key in ("unreadable", "missing"):
            for path in report[key][:10]:
                print(f"  {key}: {path}")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps({k: v for k, v in report.items() if k != "scores"}, indent=1))
        print(f"report written to {a.out}")
    return 0


def _model_kwargs(a) -> dict:
    kw = dict(a.model_kwargs)
    if a.num_classes is not None:
        kw["num_classes"] = a.num_classes
    return kw


def _flops(a) -> int:
    from .. import create_model
    from ..flops import count_flops

    model = create_model(a.model, **_model_kwargs(a))
    shape = tuple(a.shape) if a.shape else (1, *model.default_cfg["input_size"])
    if len(shape) != 5:
        raise BadConfigError(f"--shape takes 5 numbers B 3 T H W, got {list(shape)}")
    res = count_flops(model, shape, style=a.style, ops=a.ops)
    print(
        f"{a.model} input {list(shape)}: {res.gflops:.3f} GFLOPs (= GMACs, {res.style} counting), "
        f"{res.params:,} params"
    )
    if res.unsupported:
        print(f"not counted: {res.unsupported}")
    print(res.table())
    return 0


def _benchmark(a) -> int:
    import torch

    from .. import create_model
    from ..utils import get_device, num_params, time_interleaved
    from .evaluation import amp_mode, autocast_context

    device = get_device(a.device)
    model = create_model(a.model, **_model_kwargs(a)).to(device)
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
    fwd = torch.compile(model) if a.compile else model
    shape = tuple(a.shape) if a.shape else tuple(model.default_cfg["input_size"])
    x = torch.randn(a.batch_size, *shape, device=device)
    amp = amp_mode(a.amp, device)

    model.train(a.train)

    def run():
        with torch.set_grad_enabled(a.train), autocast_context(device, amp):
            out = fwd(x)
        if a.train:
            out.float().sum().backward()

    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    # the median of --iters timed passes, after --warmup untimed ones
    dt = time_interleaved(
        {"run": run}, warmup=a.warmup, repeats=a.iters, statistic="median", synchronize=cuda
    )["run"]
    mem = f", peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if cuda else ""
    print(
        f"{a.model} ({num_params(model):,} params) {'train' if a.train else 'inference'} on {device}, "
        f"amp {amp or 'off'}, "
        f"batch {a.batch_size} x {list(shape)}: {a.batch_size / dt:.1f} clips/s "
        f"({dt * 1000:.1f} ms/batch{mem})"
    )
    return 0


def _recipes(a) -> int:
    from .recipes import RECIPES, format_recipe, get_recipe

    if a.name:
        print(format_recipe(get_recipe(a.name)))
    else:
        for name in sorted(RECIPES):
            print(f"{name:34s} {RECIPES[name]['description']}")
    return 0


#: Bad input: one line and exit status 2. A missing file counts (its message names the path); anything
#: else is a bug and keeps its traceback.
USER_ERRORS = (InputError, FileNotFoundError)

#: The exit status after Ctrl-C (128 + SIGINT, as a shell reports it).
INTERRUPTED = 130


def resume_command(argv: list[str]) -> str:
    """The command line that resumes the ``train`` run of ``argv``: the same options and ``--resume`` (which
    continues from ``<work_dir>/last.pth``), without any ``--resume PATH`` given before."""
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--resume":
            skip = i + 1 < len(argv) and not argv[i + 1].startswith("-")
            continue
        if not arg.startswith("--resume="):
            out.append(arg)
    return shlex.join(["python", "-m", "vidlib", *out, "--resume"])


def _interrupted(e: KeyboardInterrupt, argv: list[str]) -> str:
    checkpoint = getattr(e, "checkpoint", None)  # a TrainingInterrupted from the training loop
    if checkpoint is None:
        return "interrupted before the first checkpoint; nothing to resume"
    return f"interrupted: the last checkpoint is {checkpoint}; resume with: {resume_command(argv)}"


def main(argv=None) -> int:
    """Entry point of ``python -m vidlib``; returns the exit status."""
    from .runlog import error_message

    argv = list(sys.argv[1:] if argv is None else argv)
    a = build_parser().parse_args(argv)
    handler = {"train": _train, "test": _test, "flops": _flops, "benchmark": _benchmark, "recipes": _recipes}[
        a.command
    ]
    try:
        return handler(a)
    except KeyboardInterrupt as e:
        if os.environ.get("VIDLIB_DEBUG"):
            raise
        print(_interrupted(e, argv) if a.command == "train" else "interrupted", file=sys.stderr)
        return INTERRUPTED
    except USER_ERRORS as e:
        if os.environ.get("VIDLIB_DEBUG"):
            raise
        print(f"error: {error_message(e)}", file=sys.stderr)
        return 2
