"""The training loop: ``vidlib.engine.train(...)`` and ``python -m vidlib train``.

One function, :func:`train`, reads a recipe (:mod:`vidlib.engine.recipes`), builds the model, the data
(:func:`vidlib.data.build_dataset`), the optimiser and the iteration-based schedule
(:mod:`vidlib.engine.optim`), then runs epochs of

    clips -> device (non_blocking) -> autocast forward (+ aux loss) -> finite-loss check
          -> (scaled) backward -> grad clipping -> optimizer step -> lr step -> EMA update

with validation every ``val_interval`` epochs, and writes

- ``<work_dir>/last.pth`` and ``best.pth`` (atomic; :mod:`vidlib.engine.checkpoint`),
- ``<work_dir>/metrics.jsonl`` (one JSON line per epoch) and ``<work_dir>/log.txt``,
- ``<results_dir>/<name>.json``: the run summary the chapters read.

Reproducibility: the data order of epoch ``e`` is drawn from ``seed + e`` and each sample's augmentation
from ``(seed, epoch, index)`` (:class:`SeededSamples`), so a run resumed from any checkpoint, even one
written mid-epoch, repeats the uninterrupted run exactly on CPU, whatever ``num_workers`` is.
Under ``torchrun`` the model is wrapped in ``DistributedDataParallel``; only rank 0 logs and saves.
"""
from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from .. import __version__
from ..data import FrameCache, build_dataset, read_label_map, shared_frame_cache
from ..models import create_model
from ..utils import get_device, num_params, seed_everything
from .checkpoint import CheckpointManager, get_rng_state, load_checkpoint_file, set_rng_state
from .distributed import DistInfo, TrainSampler, all_reduce_sum, cleanup, init_distributed
from .evaluation import autocast_context, evaluate
from .optim import build_optimizer, build_scheduler, scale_lr
from .recipes import DATA_CFG_KEYS, DATASET_KEYS, apply_overrides, get_recipe

__all__ = ["train", "RunSummary", "NonFiniteLossError", "SeededSamples", "resolve_recipe"]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or inf; the message names the iteration and the last good checkpoint."""


class RunSummary(dict):
    """The JSON-ready run summary (a ``dict``); ``.model`` is the trained model (EMA weights if any)."""

    model: nn.Module | None = None


class SeededSamples(Dataset):
    """Wrap a dataset so that sample ``index`` of epoch ``epoch`` is drawn with its own seed.

    Indexed by ``(index, epoch)`` (what :class:`~vidlib.engine.distributed.TrainSampler` yields). The
    random generators (torch, NumPy, ``random``) are seeded from ``(seed, epoch, index)`` for the call and
    restored afterwards, so augmentations depend on nothing else (not the worker, not the resume point).
    """

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        index, epoch = key
        s = int(np.random.SeedSequence([self.seed, epoch, index]).generate_state(1)[0])
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):  # the CPU generator only: the one the data pipeline uses
                torch.random.default_generator.manual_seed(s)  # (torch.manual_seed would also reseed CUDA's)
                random.seed(s)
                np.random.seed(s)
                return self.dataset[index]
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def resolve_recipe(recipe: str | dict, overrides: dict | None = None, **explicit) -> tuple[dict, list[str]]:
    """The recipe with ``overrides`` (dotted keys) and explicit arguments applied, and the override log.

    ``explicit`` maps ``epochs``, ``batch_size``, ``lr`` (-> ``optimizer.lr``) to values; ``None`` keeps
    the recipe's value.
    """
    rec = get_recipe(recipe) if isinstance(recipe, str) else json.loads(json.dumps(recipe))
    rec.setdefault("name", recipe if isinstance(recipe, str) else "custom")
    log = apply_overrides(rec, dict(overrides or {}))
    keymap = {"epochs": "epochs", "batch_size": "batch_size", "lr": "optimizer.lr"}
    log += apply_overrides(rec, {keymap[k]: v for k, v in explicit.items() if v is not None})
    if rec["epochs"] < 1 or rec["batch_size"] < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {rec['epochs']} and {rec['batch_size']}")
    return rec, log


class _Log:
    """Rank-0 logging to stdout (optional) and ``<work_dir>/log.txt``."""

    def __init__(self, work_dir: Path, info: DistInfo, verbose: bool):
        self.file = work_dir / "log.txt" if info.is_main else None
        self.verbose = verbose and info.is_main

    def __call__(self, msg: str) -> None:
        if self.file is None:
            return
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        with open(self.file, "a") as f:
            f.write(line + "\n")
        if self.verbose:
            print(line, flush=True)


def _read_classes(root: Path) -> list[str] | None:
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root} (expected train.txt, val.txt, label_map.txt)")
    label_map = root / "label_map.txt"
    return read_label_map(label_map) if label_map.is_file() else None


def _build_data(root: Path, cfg: dict, recipe: dict, backend: str, on_error: str, frame_cache=None):
    data = recipe.get("data", {})
    over = {k: v for k, v in data.items() if k in DATA_CFG_KEYS}
    files = {k: v for k, v in data.items() if k in DATASET_KEYS}  # rawframes lists (Something-Something)
    if frame_cache is True:
        frame_cache = shared_frame_cache()
    kw = dict(backend=backend, on_error=on_error, frame_cache=frame_cache if frame_cache is not False else None, **files, **over)
    return build_dataset(root, "train", cfg, "train", **kw), build_dataset(root, "val", cfg, "val", **kw), over


def _build_model(model, recipe: dict, model_kwargs: dict, num_classes: int | None) -> tuple[nn.Module, str, dict]:
    if isinstance(model, nn.Module):
        return model, type(model).__name__, dict(model_kwargs)
    name = model or recipe["model"]
    kwargs = {**recipe.get("model_kwargs", {}), **model_kwargs}
    if name != recipe["model"]:  # the recipe's kwargs were written for its own model
        kwargs = {k: v for k, v in kwargs.items() if k in ("num_classes", "num_frames", "dropout")} | model_kwargs
    if num_classes is not None:
        if "num_classes" in kwargs and kwargs["num_classes"] != num_classes:
            raise ValueError(f"num_classes={kwargs['num_classes']} (recipe/model kwargs) does not match the label "
                             f"map of the data, which has {num_classes} classes")
        kwargs["num_classes"] = num_classes
    return create_model(name, **kwargs), name, kwargs


def _check_classes(model: nn.Module, classes: list[str] | None, root: Path) -> None:
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    n_model = last[-1].out_features if last else None
    if classes is not None and n_model is not None and len(classes) != n_model:
        raise ValueError(f"the model has {n_model} output classes but {root / 'label_map.txt'} lists {len(classes)}")


def _loss(model: nn.Module, clips, y, aux_weight: float | None):
    if aux_weight is None:
        logits = model(clips)
        return F.cross_entropy(logits, y), logits
    logits, extra = model(clips, return_aux=True)
    return F.cross_entropy(logits, y) + aux_weight * F.cross_entropy(extra["aux"], y), logits


def _aux_weight(model: nn.Module, recipe: dict) -> float | None:
    w = getattr(model, "aux_loss_weight", None)
    want = (recipe.get("aux_loss") or {}).get("weight")
    if want is not None and w is not None and not math.isclose(want, w):
        raise ValueError(f"recipe aux_loss weight {want} differs from the model's aux_loss_weight {w}")
    return w


def _amp_mode(amp: str | None, device: torch.device) -> str | None:
    if amp in (None, "auto"):
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return None
    if amp not in ("off", "bf16", "fp16"):
        raise ValueError(f"amp must be 'auto', 'off', 'bf16' or 'fp16', got {amp!r}")
    return None if amp == "off" else amp


def _wants_channels_last(model: nn.Module, device: torch.device) -> bool:
    """channels_last helps 2D convs on GPUs (tensor cores); our 2D models reshape to [N*T, C, H, W] inside."""
    mods = list(model.modules())
    return device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in mods) \
        and not any(isinstance(m, nn.Conv3d) for m in mods)


class _Progress:
    def __init__(self, total: int, desc: str, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    def update(self, **postfix) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _write_text(path: Path, text: str) -> None:
    """Replace ``path`` atomically (readers never see a half-written file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_json(path: Path, obj) -> None:
    _write_text(path, json.dumps(obj, indent=1, default=_jsonable))


def _jsonable(o):
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    if isinstance(o, (np.ndarray, torch.Tensor)):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return repr(o)


def _val_entry(report: dict) -> dict:
    keys = ("top1", "top5", "mean_class_acc", "loss")
    return {f"val_{k}": report[k] for k in keys if k in report}


def _public_report(report: dict, max_scores: int = 200_000) -> dict:
    """The evaluation report without bulky scores (kept when N x C <= ``max_scores``)."""
    out = {k: v for k, v in report.items() if k != "scores"}
    if report["scores"].size <= max_scores:
        out["scores"] = np.round(report["scores"], 6).tolist()
    return out


def train(model: str | nn.Module | None = None, data: str | os.PathLike = "data/synthetic", *,
          recipe: str | dict = "synthetic_tiny", epochs: int | None = None, batch_size: int | None = None,
          lr: float | None = None, auto_scale_lr: bool = False, seed: int = 0,
          work_dir: str | os.PathLike | None = None,
          name: str | None = None, device: str | torch.device | None = None, amp: str | None = "auto",
          compile: bool = False, num_workers: int = 0, resume: bool | str = False, load_from: str | None = None,
          overrides: dict | None = None, test: bool = False, save_every_iters: int | None = None,
          deterministic: bool = True, tensorboard: bool = False, progress: bool | None = None, verbose: bool = True,
          results_dir: str | os.PathLike | None = "results/runs", backend: str = "decord", on_error: str = "raise",
          eval_batch_size: int | None = None, frame_cache: FrameCache | bool | None = None,
          **model_kwargs) -> RunSummary:
    """Train a model with a recipe and return the run summary.

    Args:
        model: a registered model name (default: the recipe's) or an ``nn.Module`` (trained in place).
        data: a dataset folder with ``train.txt``, ``val.txt`` (mmaction2 lists relative to it) and
            ``label_map.txt``, e.g. ``data/synthetic`` (``python -m vidlib.data.synthetic``).
        recipe: a name from :func:`vidlib.engine.recipes.list_recipes` or a recipe dict.
        epochs, batch_size (per process), lr: override the recipe (logged like ``overrides``).
        auto_scale_lr: scale ``lr`` by (batch_size x processes) / the recipe's ``base_batch_size``.
        seed: seeds the initialisation, the data order and the augmentations.
        work_dir: checkpoints and logs (default ``work_dirs/<name>``); name: default ``<model>_<recipe>_s<seed>``.
        device: default :func:`vidlib.get_device` (cuda when there is one).
        amp: ``"auto"`` (bf16, or fp16 with a grad scaler, on CUDA; off on CPU), ``"bf16"``, ``"fp16"``, ``"off"``.
        compile: ``torch.compile`` the model.
        resume: ``True`` resumes from ``<work_dir>/last.pth`` (if present), a path resumes from that file.
        load_from: initialise from an mmaction2 checkpoint (``vidlib.checkpoints.load_mmaction2``).
        overrides: dotted recipe keys, e.g. ``{"optimizer.weight_decay": 0.0}``.
        test: also evaluate the final model with the full test protocol (``summary["test"]``).
        save_every_iters: also checkpoint every N iterations inside an epoch.
        deterministic: deterministic torch kernels (:func:`vidlib.seed_everything`).
        progress: tqdm bars (default: when stderr is a terminal); verbose: print the log lines.
        results_dir: where ``<name>.json`` goes (``None``: do not write it).
        backend, on_error: passed to :func:`vidlib.data.build_dataset`.
        frame_cache: keep decoded videos in memory (:class:`vidlib.data.FrameCache`; ``True``: the process's
            :func:`~vidlib.data.shared_frame_cache`, which later runs on the same data reuse). For small data
            sets with ``num_workers=0``; the samples are the same as without it.
        **model_kwargs: passed to :func:`vidlib.create_model` (e.g. ``num_frames=8``, ``dropout=0.0``).

    Returns a :class:`RunSummary` (a dict, also written as JSON): ``history`` (per epoch: ``train_loss``,
    ``train_top1``, ``lr``, ``val_top1``, ``val_top5``, ``val_mean_class_acc``, ``val_loss``, ``time_s`` (training)
    and ``val_time_s``),
    ``val`` (the final validation report: ``per_class``, ``confusion_matrix``, ``preds``, ``labels``, ...),
    ``best``, ``minutes_per_epoch``, the resolved ``recipe`` and the ``overrides`` log; ``.model`` holds
    the trained model.
    """
    args = dict(locals())  # every argument, by name, for the helpers below
    rec, override_log = resolve_recipe(recipe, overrides, epochs=epochs, batch_size=batch_size, lr=lr)
    info, dev = init_distributed(torch.device(device) if device is not None else get_device())
    was_deterministic = torch.are_deterministic_algorithms_enabled()  # restored below: no leak into the caller
    try:
        return _run(rec, override_log, info, dev, args)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        cleanup()


def _run(rec: dict, override_log: list[str], info: DistInfo, dev: torch.device, args: dict) -> RunSummary:
    seed_everything(args["seed"], deterministic=args["deterministic"])
    label = args["model"] if isinstance(args["model"], str) else (rec["model"] if args["model"] is None else "model")
    name = args["name"] or f"{label}_{rec['name']}_s{args['seed']}"
    work_dir = Path(args["work_dir"] or Path("work_dirs") / name)
    _read_classes(Path(args["data"]))  # fail on a missing data folder before creating anything
    if info.is_main:
        work_dir.mkdir(parents=True, exist_ok=True)
    ctx = dict(rec=rec, info=info, dev=dev, a=args, work_dir=work_dir, amp=_amp_mode(args["amp"], dev),
               log=_Log(work_dir, info, args["verbose"]), ckpt=CheckpointManager(work_dir), name=name)
    _setup_model_and_data(ctx)
    _setup_optimisation(ctx, override_log)
    state = dict(epoch=0, iter_in_epoch=0, global_iter=0, history=[], best=None, accum=[0.0, 0.0, 0.0])
    resume_from = _resume_path(args["resume"], ctx["ckpt"], ctx["log"])
    if resume_from is not None:
        _restore(resume_from, ctx, state)
    t_start, final_val = time.time(), None
    while state["epoch"] < rec["epochs"]:
        final_val = _epoch(ctx, state) or final_val
    if final_val is None:  # resumed after the last epoch: evaluate again
        final_val = _validate(ctx, ctx["eval_model"])
    return _finish(ctx, state, final_val, override_log, time.time() - t_start)


def _setup_model_and_data(ctx: dict) -> None:
    """Model (num_classes from the label map), datasets (model cfg + recipe data keys), optional init."""
    a, rec, root = ctx["a"], ctx["rec"], Path(ctx["a"]["data"])
    classes = _read_classes(root)
    net, model_name, model_kwargs = _build_model(a["model"], rec, a["model_kwargs"], len(classes) if classes else None)
    _check_classes(net, classes, root)
    if not hasattr(net, "default_cfg"):
        raise ValueError(f"{model_name} has no default_cfg (see vidlib.models.make_cfg): the data pipeline needs it")
    train_set, val_set, data_over = _build_data(root, net.default_cfg, rec, a["backend"], a["on_error"],
                                                 a["frame_cache"])
    if a["load_from"]:
        from ..checkpoints import load_mmaction2

        load_mmaction2(net, a["load_from"])
    aux_weight = _aux_weight(net, rec)
    net.to(ctx["dev"])
    if _wants_channels_last(net, ctx["dev"]):
        net.to(memory_format=torch.channels_last)
    ctx.update(net=net, model_name=model_name, model_kwargs=model_kwargs, classes=classes, train_set=train_set,
               val_set=val_set, data_over=data_over, aux_weight=aux_weight,
               meta=dict(format="vidlib-train-1", model_name=model_name, model_kwargs=model_kwargs, recipe=rec,
                         seed=a["seed"], world_size=ctx["info"].world_size))


def _setup_optimisation(ctx: dict, override_log: list[str]) -> None:
    """Loader (seeded, resumable sampler), optimiser, schedule, grad scaler, EMA, DDP / compile wrappers."""
    a, rec, info, dev, net = ctx["a"], ctx["rec"], ctx["info"], ctx["dev"], ctx["net"]
    world_batch = rec["batch_size"] * info.world_size
    if a["auto_scale_lr"]:
        base_lr = rec["optimizer"]["lr"]
        rec["optimizer"]["lr"] = scale_lr(base_lr, world_batch, rec["base_batch_size"])
        override_log.append(f"optimizer.lr: {base_lr} -> {rec['optimizer']['lr']} (auto-scale-lr: total batch "
                            f"{world_batch} / base {rec['base_batch_size']})")
    for line in override_log:
        ctx["log"](f"override {line}")
    sampler = TrainSampler(ctx["train_set"], info, seed=a["seed"])
    loader = DataLoader(SeededSamples(ctx["train_set"], a["seed"]), batch_size=rec["batch_size"], sampler=sampler,
                        num_workers=a["num_workers"], drop_last=True, pin_memory=dev.type == "cuda",
                        generator=torch.Generator().manual_seed(a["seed"]))
    iters = sampler.num_samples // rec["batch_size"]
    if iters == 0:
        raise ValueError(f"batch size {rec['batch_size']} is larger than the {sampler.num_samples} training videos "
                         f"per process in {a['data']}")
    optimizer = build_optimizer(net, rec["optimizer"])
    ema = _make_ema(net, rec.get("ema"))
    fwd = torch.compile(net) if a["compile"] else net
    if info.distributed:
        fwd = nn.parallel.DistributedDataParallel(fwd, device_ids=[dev.index] if dev.type == "cuda" else None,
                                                  find_unused_parameters=rec.get("find_unused_parameters", False))
    ctx.update(sampler=sampler, loader=loader, iters_per_epoch=iters, optimizer=optimizer, ema=ema, fwd=fwd,
               scheduler=build_scheduler(optimizer, rec["schedule"], iters, rec["epochs"]),
               scaler=torch.amp.GradScaler(dev.type, enabled=ctx["amp"] == "fp16"),
               eval_model=ema.module if ema is not None else net, world_batch=world_batch)
    ctx["log"](f"{ctx['model_name']}: {num_params(net):,} params | recipe {rec['name']} | data {a['data']} "
               f"({len(ctx['train_set'])} train, {len(ctx['val_set'])} val, {len(ctx['classes'] or [])} classes) | "
               f"{info.world_size} x batch {rec['batch_size']} | {iters} it/epoch | device {dev} | amp {ctx['amp']} | "
               f"lr {rec['optimizer']['lr']}")


def _finish(ctx: dict, state: dict, final_val: dict, override_log: list[str], seconds: float) -> RunSummary:
    """The run summary (+ the optional full test), written to the work dir and ``results_dir`` on rank 0."""
    a, rec, info, ckpt, hist = ctx["a"], ctx["rec"], ctx["info"], ctx["ckpt"], state["history"]
    summary = RunSummary(
        name=ctx["name"], model=ctx["model_name"], model_kwargs=ctx["model_kwargs"], recipe=rec,
        overrides=override_log, seed=a["seed"], data=str(a["data"]), data_cfg_overrides=ctx["data_over"],
        num_train=len(ctx["train_set"]), num_val=len(ctx["val_set"]), classes=ctx["classes"],
        world_size=info.world_size, batch_size=rec["batch_size"], total_batch_size=ctx["world_batch"],
        device=str(ctx["dev"]), amp=ctx["amp"], num_params=num_params(ctx["net"]), epochs=rec["epochs"],
        history=hist, best=state["best"], val=_public_report(final_val),
        minutes_per_epoch=float(np.mean([h["time_s"] + h.get("val_time_s", 0.0) for h in hist]) / 60) if hist else None,
        wall_minutes=seconds / 60, work_dir=str(ctx["work_dir"]), checkpoint=str(ckpt.last),
        best_checkpoint=str(ckpt.best), vidlib=__version__, torch=torch.__version__,
        finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
    if a["test"]:
        test = evaluate(ctx["eval_model"], a["data"], split="val", mode="test", batch_size=a["eval_batch_size"] or 1,
                        num_workers=a["num_workers"], device=ctx["dev"], amp=ctx["amp"], info=info,
                        dataset_kw=dict(ctx["data_over"], backend=a["backend"], on_error=a["on_error"]))
        summary["test"] = _public_report(test)
        ctx["log"](f"test ({test['average_clips']} averaging, {test['mode']} protocol): top1 {test['top1']:.4f} "
                   f"top5 {test['top5']:.4f} mean-class {test['mean_class_acc']:.4f}")
    if info.is_main:
        _write_json(ctx["work_dir"] / "summary.json", summary)
        if a["results_dir"] is not None:
            Path(a["results_dir"]).mkdir(parents=True, exist_ok=True)
            _write_json(Path(a["results_dir"]) / f"{ctx['name']}.json", summary)
    summary.model = ctx["eval_model"]
    return summary


def _make_ema(net: nn.Module, decay: float | None):
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _resume_path(resume, ckpt: CheckpointManager, log) -> Path | None:
    if resume is True:
        if ckpt.latest() is None:
            log(f"resume: no checkpoint in {ckpt.work_dir} yet, starting from scratch")
        return ckpt.latest()
    return Path(resume) if resume else None


def _restore(path: Path, ctx: dict, state: dict) -> None:
    """Load model, optimiser, schedule, scaler, EMA, counters, history and RNG states from ``path``."""
    from ..checkpoints import load_state_dict_strict

    ck, meta, log = load_checkpoint_file(path), ctx["meta"], ctx["log"]
    if ck.get("format") != meta["format"]:
        raise RuntimeError(f"{path} is not a vidlib training checkpoint (format {ck.get('format')!r})")
    if ck["model_name"] != meta["model_name"]:
        log(f"WARNING: {path} was written for model {ck['model_name']!r}, resuming {meta['model_name']!r}")
    load_state_dict_strict(ctx["net"], ck["model"], source=str(path))
    for key in ("optimizer", "scheduler", "scaler"):
        ctx[key].load_state_dict(ck[key])
    if ctx["ema"] is not None and ck.get("ema") is not None:
        ctx["ema"].load_state_dict(ck["ema"])
    for k in ("epoch", "iter_in_epoch", "global_iter", "history", "best", "accum"):
        state[k] = ck[k]
    if ck["world_size"] != meta["world_size"] or ck["recipe"]["batch_size"] != meta["recipe"]["batch_size"]:
        log("WARNING: the number of processes or the batch size changed: the data order differs from the first run")
    set_rng_state(ck["rng"])
    log(f"resumed from {path}: epoch {state['epoch'] + 1}, iteration {state['iter_in_epoch']} of the epoch")


def _save(ctx: dict, state: dict, is_best: bool = False) -> None:
    if not ctx["info"].is_main:
        return
    ema = ctx["ema"]
    ckpt_state = dict(ctx["meta"], model=ctx["net"].state_dict(), optimizer=ctx["optimizer"].state_dict(),
                      scheduler=ctx["scheduler"].state_dict(), scaler=ctx["scaler"].state_dict(),
                      ema=ema.state_dict() if ema is not None else None, rng=get_rng_state(),
                      **{k: state[k] for k in ("epoch", "iter_in_epoch", "global_iter", "history", "best", "accum")})
    ctx["ckpt"].save(ckpt_state, is_best=is_best)


def _epoch(ctx: dict, state: dict) -> dict | None:
    """Train one epoch (from ``state["iter_in_epoch"]`` on), validate when due, checkpoint. Returns the val report."""
    rec, info, epoch, a = ctx["rec"], ctx["info"], state["epoch"], ctx["a"]
    ctx["sampler"].set_epoch(epoch, skip=state["iter_in_epoch"] * rec["batch_size"])
    ctx["fwd"].train()
    t0 = time.time()
    show = a["progress"] if a["progress"] is not None else sys.stderr.isatty()
    bar = _Progress(ctx["iters_per_epoch"] - state["iter_in_epoch"], f"epoch {epoch + 1}/{rec['epochs']}",
                    show and info.is_main)
    for clips, y in ctx["loader"]:
        loss_value, correct = _step(ctx, state, clips, y)
        acc = state["accum"]
        acc[0], acc[1], acc[2] = acc[0] + loss_value * len(y), acc[1] + correct, acc[2] + len(y)
        state["iter_in_epoch"] += 1
        state["global_iter"] += 1
        bar.update(loss=f"{loss_value:.3f}")
        if a["save_every_iters"] and state["global_iter"] % a["save_every_iters"] == 0:
            _save(ctx, state)
    bar.close()
    loss_sum, correct, seen = all_reduce_sum(state["accum"], ctx["dev"])
    group = ctx["optimizer"].param_groups[0]
    entry = dict(epoch=epoch + 1, iters=state["global_iter"], lr=group["lr"] / group["lr_mult"],
                 train_loss=loss_sum / max(seen, 1), train_top1=correct / max(seen, 1), time_s=time.time() - t0)
    report = None
    if (epoch + 1) % rec.get("val_interval", 1) == 0 or epoch + 1 == rec["epochs"]:
        t1 = time.time()
        report = _validate(ctx, ctx["eval_model"])
        entry.update(_val_entry(report), val_time_s=time.time() - t1)
    state["history"].append(entry)
    state.update(epoch=epoch + 1, iter_in_epoch=0, accum=[0.0, 0.0, 0.0])
    is_best = report is not None and (state["best"] is None or report["top1"] > state["best"]["top1"])
    if is_best:
        state["best"] = dict(epoch=epoch + 1, top1=report["top1"])
    _save(ctx, state, is_best)
    if info.is_main:
        _write_text(ctx["work_dir"] / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in state["history"]))
        ctx["log"](" | ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in entry.items()))
        _tensorboard(ctx, entry)
    return report


def _step(ctx: dict, state: dict, clips, y) -> tuple[float, int]:
    dev, optimizer, scaler = ctx["dev"], ctx["optimizer"], ctx["scaler"]
    clips, y = clips.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
    with autocast_context(dev, ctx["amp"]):
        loss, logits = _loss(ctx["fwd"], clips, y, ctx["aux_weight"])
    finite = all_reduce_sum([float(torch.isfinite(loss).item())], dev)[0] == ctx["info"].world_size
    if not finite:
        last = ctx["ckpt"].latest()
        raise NonFiniteLossError(
            f"non-finite loss ({loss.item()}) at epoch {state['epoch'] + 1}, iteration {state['iter_in_epoch'] + 1} "
            f"(global {state['global_iter'] + 1}); training stopped. The last good checkpoint is "
            f"{last if last else '(none written yet)'}; try a lower lr (optimizer.lr={ctx['rec']['optimizer']['lr']}), "
            "gradient clipping or amp='off'.")
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if ctx["rec"].get("clip_grad"):
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(ctx["net"].parameters(), ctx["rec"]["clip_grad"])
    scaler.step(optimizer)
    scaler.update()
    ctx["scheduler"].step()
    if ctx["ema"] is not None:
        ctx["ema"].update_parameters(ctx["net"])
    return loss.item(), int((logits.argmax(1) == y).sum().item())


def _validate(ctx: dict, model: nn.Module) -> dict:
    a = ctx["a"]
    report = evaluate(model, ctx["val_set"], batch_size=a["eval_batch_size"] or ctx["rec"]["batch_size"],
                      num_workers=a["num_workers"], device=ctx["dev"], amp=ctx["amp"], info=ctx["info"])
    return report


def _tensorboard(ctx: dict, entry: dict) -> None:
    if not ctx["a"]["tensorboard"]:
        return
    if "tb" not in ctx:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise ImportError("tensorboard=True needs the tensorboard package: pip install tensorboard") from e
        ctx["tb"] = SummaryWriter(ctx["work_dir"] / "tb")
    for k, v in entry.items():
        if isinstance(v, (int, float)) and k != "epoch" and v is not None:
            ctx["tb"].add_scalar(k, v, entry["epoch"])
    ctx["tb"].flush()
