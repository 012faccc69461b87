"""The training loop: :class:`Trainer`, ``vidlib.engine.train(...)`` and ``python -m vidlib train``.

A :class:`~vidlib.engine.config.TrainConfig` says what to train; :class:`Trainer` does it::

    trainer = Trainer(TrainConfig(model="tsm_tiny", data="data/synthetic", epochs=6))
    summary = trainer.fit()            # = vidlib.engine.train("tsm_tiny", "data/synthetic", epochs=6)

:meth:`Trainer.build` reads the recipe (:mod:`vidlib.engine.recipes`), builds the model, the data
(:func:`vidlib.data.build_dataset`), the optimiser and the iteration-based schedule
(:mod:`vidlib.engine.optim`); :meth:`Trainer.fit` then runs epochs of

    clips -> device (non_blocking) -> autocast forward (+ aux loss) -> finite-loss check
          -> (scaled) backward -> grad clipping -> optimizer step -> lr step -> EMA update

with validation every ``val_interval`` epochs, and writes

- ``<work_dir>/last.pth`` and ``best.pth`` (atomic; :mod:`vidlib.engine.checkpoint`),
- ``<work_dir>/metrics.jsonl`` (one JSON line per epoch) and ``<work_dir>/log.txt``,
- with ``keep_epoch_weights``: ``<work_dir>/epoch_<e>.pth``, the weights before training (e = 0) and after
  every epoch,
- ``<work_dir>/summary.json``: the run summary (also ``<results_dir>/<name>.json`` when ``results_dir`` is
  set).

Reproducibility: the data order of epoch ``e`` is drawn from ``seed + e`` and each sample's augmentation from
``(seed, epoch, index)`` (:func:`vidlib.data.make_loader`), so a run resumed from any checkpoint, even one
written mid-epoch, repeats the uninterrupted run exactly on CPU, whatever ``num_workers`` is.
Under ``torchrun`` the model is wrapped in ``DistributedDataParallel``; only rank 0 logs and saves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import __version__
from ..data import EpochSampler, FrameCache, build_dataset, make_loader, shared_frame_cache
from ..data.annotations import read_classes
from ..errors import BadConfigError, BadFileError, ExistingPathError, InputError
from ..models import create_model
from ..utils import get_device, num_params, seed_everything
from ..weights import load_mmaction2, load_state_dict_strict
from .checkpoint import (
    CHECKPOINT_FORMAT,
    TRAIN_FORMATS,
    CheckpointManager,
    atomic_save,
    get_rng_state,
    load_checkpoint_file,
    set_rng_state,
)
from .config import TrainConfig, TrainState, check_option_names
from .distributed import all_gather_lists, all_reduce_sum, cleanup, init_distributed
from .evaluation import amp_mode, autocast_context, check_classes, evaluate
from .optim import build_optimizer, build_scheduler, scale_lr
from .recipes import apply_overrides, get_recipe, recipe_data
from .runlog import Progress, RunLog, error_message, write_json, write_text

__all__ = [
    "train",
    "Trainer",
    "plan_epochs",
    "RunSummary",
    "NonFiniteLossError",
    "TrainingInterrupted",
    "resolve_recipe",
    "build_datasets",
]

#: The recipe's model keyword arguments that still apply when another model is trained with the recipe.
PORTABLE_MODEL_KWARGS = ("num_classes", "num_frames", "dropout")


class NonFiniteLossError(InputError, FloatingPointError):
    """The loss became NaN or inf; the message names the iteration and the last good checkpoint, and what to
    change (the learning rate, clipping, amp): the command line reports it as bad input (exit status 2)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run; ``checkpoint`` (or None) is where ``resume=True`` continues it from."""

    def __init__(self, checkpoint: Path | None, epoch: int, iteration: int):
        super().__init__(f"training interrupted at epoch {epoch + 1}, iteration {iteration}")
        self.checkpoint, self.epoch, self.iteration = checkpoint, epoch, iteration


@contextlib.contextmanager
def _sigint_deferred():
    """Hold back SIGINT (Ctrl-C) until the block is done, then raise ``KeyboardInterrupt``: a training step
    and its bookkeeping are never cut in half. Only in the main thread (signal handlers live there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


class RunSummary(dict):
    """The JSON-ready run summary (a ``dict``); ``.model`` is the trained model (EMA weights if any)."""

    model: nn.Module | None = None


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
    for key in ("epochs", "batch_size"):
        if not isinstance(rec[key], int) or isinstance(rec[key], bool) or rec[key] < 1:
            raise BadConfigError(f"{key} must be an integer >= 1, got {rec[key]!r}")
    return rec, log


def build_datasets(
    root, model_cfg: dict, recipe: dict, *, backend: str = "decord", on_error: str = "raise", frame_cache=None
):
    """The training and validation sets of a dataset folder, as ``recipe`` prepares them for a model cfg."""
    over, files = recipe_data(recipe)
    kw = dict(backend=backend, on_error=on_error, frame_cache=frame_cache, **files, **over)
    return build_dataset(root, "train", model_cfg, "train", **kw), build_dataset(
        root, "val", model_cfg, "val", **kw
    )


def model_kwargs_for(name: str, recipe: dict, model_kwargs: dict) -> tuple[dict, list[str]]:
    """The keyword arguments to build model ``name`` with ``recipe``, and the recipe's that were dropped.

    The recipe's ``model_kwargs`` were written for its own model: for another model only those of
    :data:`PORTABLE_MODEL_KWARGS` are kept; ``model_kwargs`` (the caller's) always apply.
    """
    recipe_kw = recipe.get("model_kwargs", {})
    if name == recipe["model"]:
        return {**recipe_kw, **model_kwargs}, []
    dropped = sorted(k for k in recipe_kw if k not in PORTABLE_MODEL_KWARGS and k not in model_kwargs)
    kept = {k: v for k, v in recipe_kw.items() if k in PORTABLE_MODEL_KWARGS}
    return {**kept, **model_kwargs}, dropped


def _build_model(name: str, kwargs: dict, num_classes: int | None) -> tuple[nn.Module, dict]:
    kwargs = dict(kwargs)
    if num_classes is not None:
        if "num_classes" in kwargs and kwargs["num_classes"] != num_classes:
            raise BadConfigError(
                f"num_classes={kwargs['num_classes']} (recipe/model kwargs) does not match the label "
                f"map of the data, which has {num_classes} classes"
            )
        kwargs["num_classes"] = num_classes
    return create_model(name, **kwargs), kwargs


def _loss(model: nn.Module, clips, y, aux_weight: float | None):
    if aux_weight is None:
        logits = model(clips)
        return F.cross_entropy(logits, y), logits
    logits, extra = model(clips, return_aux=True)
    return F.cross_entropy(logits, y) + aux_weight * F.cross_entropy(extra["aux"], y), logits


def _aux_weight(model: nn.Module, recipe: dict) -> float | None:
    w = getattr(model, "aux_loss_weight", None)
    want = (recipe.get("aux_loss") or {}).get("weight")
    if want is not None and w is None and hasattr(model, "aux_loss_weight"):
        raise BadConfigError(
            f"the recipe trains with an auxiliary loss (weight {want}) but the model's is switched off "
            "(aux_loss_weight=None); use a recipe without aux_loss for the ablation"
        )
    if want is not None and w is not None and not math.isclose(want, w):
        raise BadConfigError(f"recipe aux_loss weight {want} differs from the model's aux_loss_weight {w}")
    return w


def _wants_channels_last(model: nn.Module, device: torch.device) -> bool:
    """channels_last helps 2D convs on GPUs (tensor cores); our 2D models reshape to [N*T, C, H, W] inside."""
    mods = list(model.modules())
    return (
        device.type == "cuda"
        and any(isinstance(m, nn.Conv2d) for m in mods)
        and not any(isinstance(m, nn.Conv3d) for m in mods)
    )


def _val_entry(report: dict) -> dict:
    keys = ("top1", "top5", "mean_class_acc", "loss")
    return {f"val_{k}": report[k] for k in keys if k in report}


def _public_report(report: dict, max_scores: int = 200_000) -> dict:
    """The evaluation report without bulky scores (kept when N x C <= ``max_scores``)."""
    out = {k: v for k, v in report.items() if k != "scores"}
    if report["scores"].size <= max_scores:
        out["scores"] = np.round(report["scores"], 6).tolist()
    return out


def _make_ema(net: nn.Module, decay: float | None):
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


class Trainer:
    """One training run of a :class:`~vidlib.engine.config.TrainConfig`.

    Args:
        cfg: the options.
        model: an ``nn.Module`` to train in place instead of building ``cfg.model`` (it needs a
            ``default_cfg`` for the data pipeline).
        frame_cache: a :class:`~vidlib.data.FrameCache` to keep the decoded videos in (default: the
            process's :func:`~vidlib.data.shared_frame_cache` when ``cfg.frame_cache``, else none).

    The recipe (overrides, ``auto_scale_lr``) and the model name are settled here, once.

    :meth:`fit` = :meth:`build`, :meth:`restore` when resuming, then per epoch :meth:`train_epoch`,
    :meth:`validate` when due and :meth:`save`. Everything the steps share is a typed attribute.
    """

    def __init__(
        self, cfg: TrainConfig, model: nn.Module | None = None, *, frame_cache: FrameCache | None = None
    ):
        self.cfg, self._module = cfg, model
        if frame_cache is None and cfg.frame_cache:
            frame_cache = shared_frame_cache()
        self.frame_cache = frame_cache
        self.recipe, self.override_log = resolve_recipe(
            cfg.recipe, cfg.overrides, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr
        )
        self.info, self.device = init_distributed(
            torch.device(cfg.device) if cfg.device is not None else get_device()
        )
        rec = self.recipe
        self.world_batch = rec["batch_size"] * self.info.world_size
        if cfg.auto_scale_lr:
            base_lr = rec["optimizer"]["lr"]
            rec["optimizer"]["lr"] = scale_lr(base_lr, self.world_batch, rec["base_batch_size"])
            self.override_log.append(
                f"optimizer.lr: {base_lr} -> {rec['optimizer']['lr']} (auto-scale-lr: total "
                f"batch {self.world_batch} / base {rec['base_batch_size']})"
            )
        self.amp = amp_mode(cfg.amp, self.device)
        if model is not None:
            self.model_name, self.model_kwargs = type(model).__name__, dict(cfg.model_kwargs)
            self.dropped_kwargs: list[str] = []
        else:
            self.model_name = cfg.model or rec["model"]
            self.model_kwargs, self.dropped_kwargs = model_kwargs_for(self.model_name, rec, cfg.model_kwargs)
        label = "model" if model is not None else self.model_name
        self.name = cfg.name or f"{label}_{rec['name']}_s{cfg.seed}"
        self.work_dir = Path(cfg.work_dir or Path("work_dirs") / self.name)
        taken = next((p for p in (self.work_dir, *self.work_dir.parents) if p.exists()), None)
        if taken is not None and not taken.is_dir():
            raise ExistingPathError(
                f"the work dir {self.work_dir} cannot be created: {taken} exists and is not a folder"
            )
        self.data_root = Path(cfg.data)
        self.state = TrainState()
        self.log = RunLog(self.work_dir, self.info.is_main, cfg.verbose)
        self.ckpt = CheckpointManager(self.work_dir)
        self.tb = None

    # ------------------------------------------------------------------------------------------ build
    def build(self) -> None:
        """Seed, then build the model, the data, the loader, the optimiser, the schedule and the wrappers."""
        cfg = self.cfg
        seed_everything(cfg.seed, deterministic=cfg.deterministic)
        read_classes(self.data_root)  # fail on a missing data folder or label map before creating anything
        if self.info.is_main:
            self.work_dir.mkdir(parents=True, exist_ok=True)
        self._build_model_and_data()
        self._build_optimisation()

    def _build_model_and_data(self) -> None:
        cfg, rec, root = self.cfg, self.recipe, self.data_root
        self.classes = read_classes(root)
        if self._module is not None:
            net = self._module
        else:
            if self.dropped_kwargs:
                self.log(
                    f"WARNING: model {self.model_name} is not the recipe's ({rec['model']}): the recipe's "
                    f"model_kwargs {', '.join(self.dropped_kwargs)} are not used (only "
                    f"{', '.join(PORTABLE_MODEL_KWARGS)} carry over to another model)"
                )
            net, self.model_kwargs = _build_model(self.model_name, self.model_kwargs, len(self.classes))
        check_classes(net, self.classes, root)
        if not hasattr(net, "default_cfg"):
            raise BadConfigError(
                f"{self.model_name} has no default_cfg (see vidlib.models.make_cfg): the data pipeline "
                "needs it"
            )
        self.data_overrides = recipe_data(rec)[0]
        self.train_set, self.val_set = build_datasets(
            root,
            net.default_cfg,
            rec,
            backend=cfg.backend,
            on_error=cfg.on_error,
            frame_cache=self.frame_cache,
        )
        for split, ds in (("train", self.train_set), ("val", self.val_set)):
            if ds.missing:
                self.log(
                    f"WARNING: {len(ds.missing)} videos of {split}.txt are missing and skipped "
                    f"(listed in the summary): {ds.missing[:3]}"
                )
        if cfg.load_from:
            load_mmaction2(net, cfg.load_from)
        self.aux_weight = _aux_weight(net, rec)
        net.to(self.device)
        if _wants_channels_last(net, self.device):
            net.to(memory_format=torch.channels_last)
        self.model = net

    def _build_optimisation(self) -> None:
        cfg, rec, info = self.cfg, self.recipe, self.info
        for line in self.override_log:
            self.log(f"override {line}")
        self.sampler = EpochSampler(
            self.train_set, seed=cfg.seed, num_replicas=info.world_size, rank=info.rank
        )
        self.loader = make_loader(
            self.train_set,
            rec["batch_size"],
            sampler=self.sampler,
            seed=cfg.seed,
            num_workers=cfg.num_workers,
            drop_last=True,
            pin_memory=self.device.type == "cuda",
        )
        self.iters_per_epoch = self.sampler.num_samples // rec["batch_size"]
        if self.iters_per_epoch == 0:
            raise BadConfigError(
                f"batch size {rec['batch_size']} is larger than the {self.sampler.num_samples} training "
                f"videos per process in {cfg.data}"
            )
        self.optimizer = build_optimizer(self.model, rec["optimizer"])
        self.ema = _make_ema(self.model, rec.get("ema"))
        fwd = torch.compile(self.model) if cfg.compile else self.model
        if info.distributed:
            fwd = nn.parallel.DistributedDataParallel(
                fwd,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=rec.get("find_unused_parameters", False),
            )
        self.forward_model = fwd
        self.scheduler = build_scheduler(self.optimizer, rec["schedule"], self.iters_per_epoch, rec["epochs"])
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == "fp16")
        self.eval_model = self.ema.module if self.ema is not None else self.model
        self.log(
            f"{self.model_name}: {num_params(self.model):,} params | recipe {rec['name']} | data {cfg.data} "
            f"({len(self.train_set)} train, {len(self.val_set)} val, {len(self.classes or [])} classes) | "
            f"{info.world_size} x batch {rec['batch_size']} | {self.iters_per_epoch} it/epoch | device "
            f"{self.device} | amp {self.amp or 'off'} | lr {rec['optimizer']['lr']}"
        )

    # ------------------------------------------------------------------------------------------ steps
    def _step(self, clips, y) -> tuple[float, int]:
        dev, optimizer, scaler, st = self.device, self.optimizer, self.scaler, self.state
        clips, y = clips.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        with autocast_context(dev, self.amp):
            loss, logits = _loss(self.forward_model, clips, y, self.aux_weight)
        finite = all_reduce_sum([float(torch.isfinite(loss).item())], dev)[0] == self.info.world_size
        if not finite:
            last = self.ckpt.latest()
            raise NonFiniteLossError(
                f"non-finite loss ({loss.item()}) at epoch {st.epoch + 1}, iteration {st.iter_in_epoch + 1} "
                f"(global {st.global_iter + 1}); training stopped. The last good checkpoint is "
                f"{last if last else '(none written yet)'}; try a lower lr "
                f"(optimizer.lr={self.recipe['optimizer']['lr']}), gradient clipping or amp='off'."
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if self.recipe.get("clip_grad"):
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe["clip_grad"])
        scaler.step(optimizer)
        scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return loss.item(), int((logits.argmax(1) == y).sum().item())

    def _lr(self) -> float:
        group = self.optimizer.param_groups[0]
        return group["lr"] / group["lr_mult"]

    def train_epoch(self) -> dict:
        """Train the current epoch from ``state.iter_in_epoch`` on; returns its history entry (no
        validation)."""
        rec, st, cfg = self.recipe, self.state, self.cfg
        self.sampler.set_epoch(st.epoch, skip=st.iter_in_epoch * rec["batch_size"])
        self.forward_model.train()
        t0 = time.time()
        bar = Progress(
            self.iters_per_epoch - st.iter_in_epoch,
            f"epoch {st.epoch + 1}/{rec['epochs']}",
            self.log,
            bar=cfg.progress,
            interval=cfg.log_interval,
            enabled=self.info.is_main,
        )
        for clips, y in self.loader:
            with _sigint_deferred():  # a Ctrl-C lands between iterations, with the state whole
                loss_value, correct = self._step(clips, y)
                st.add_batch(loss_value, correct, len(y))
            bar.update(f"loss {loss_value:.4f} | lr {self._lr():.4g}", loss=f"{loss_value:.3f}")
            if cfg.save_every_iters and st.global_iter % cfg.save_every_iters == 0:
                self.save()
        bar.close()
        loss_sum, correct, seen = all_reduce_sum([st.loss_sum, st.correct, st.seen], self.device)
        return dict(
            epoch=st.epoch + 1,
            iters=st.global_iter,
            lr=self._lr(),
            train_loss=loss_sum / max(seen, 1),
            train_top1=correct / max(seen, 1),
            time_s=time.time() - t0,
        )

    def validate(self) -> dict:
        """Evaluate :attr:`eval_model` (the EMA model if any) on the validation set (one view per video)."""
        return evaluate(
            self.eval_model,
            self.val_set,
            batch_size=self.cfg.eval_batch_size or self.recipe["batch_size"],
            num_workers=self.cfg.num_workers,
            device=self.device,
            amp=self.amp,
            info=self.info,
            progress=self.cfg.progress if self.info.is_main else False,
        )

    # ------------------------------------------------------------------------------------ checkpoints
    def _meta(self) -> dict:
        return dict(
            format=CHECKPOINT_FORMAT,
            model_name=self.model_name,
            model_kwargs=self.model_kwargs,
            recipe=self.recipe,
            seed=self.cfg.seed,
            world_size=self.info.world_size,
        )

    def save(self, is_best: bool = False) -> None:
        """Write ``last.pth`` (and ``best.pth``) atomically, on rank 0."""
        if not self.info.is_main:
            return
        ema = self.ema
        self.ckpt.save(
            dict(
                self._meta(),
                model=self.model.state_dict(),
                optimizer=self.optimizer.state_dict(),
                scheduler=self.scheduler.state_dict(),
                scaler=self.scaler.state_dict(),
                ema=ema.state_dict() if ema is not None else None,
                rng=get_rng_state(),
                state=self.state.state_dict(),
            ),
            is_best=is_best,
        )

    def keep_weights(self) -> Path | None:
        """With ``cfg.keep_epoch_weights``: the model's weights after ``state.epoch`` epochs, written
        atomically to ``<work_dir>/epoch_<e>.pth`` (``{"model": state_dict, "epoch": e, ...}``)."""
        if not (self.cfg.keep_epoch_weights and self.info.is_main):
            return None
        path = self.work_dir / f"epoch_{self.state.epoch}.pth"
        return atomic_save(dict(self._meta(), epoch=self.state.epoch, model=self.model.state_dict()), path)

    def restore(self, path: str | os.PathLike) -> None:
        """Load model, optimiser, schedule, scaler, EMA, state and RNG states from a training checkpoint."""
        path = Path(path)
        ck, meta = load_checkpoint_file(path), self._meta()
        fmt = ck.get("format")
        if fmt not in TRAIN_FORMATS:
            raise BadFileError(f"{path} is not a vidlib training checkpoint (format {fmt!r})")
        if ck["model_name"] != meta["model_name"]:
            self.log(
                f"WARNING: {path} was written for model {ck['model_name']!r}, resuming {meta['model_name']!r}"
            )
        load_state_dict_strict(self.model, ck["model"], source=str(path))
        for key in ("optimizer", "scheduler", "scaler"):
            getattr(self, key).load_state_dict(ck[key])
        if self.ema is not None and ck.get("ema") is not None:
            self.ema.load_state_dict(ck["ema"])
        if fmt == "vidlib-train-1":  # flat counters and an "accum" list
            self.state = TrainState.from_v1(ck)
        else:
            self.state.load_state_dict(ck["state"])
        if (
            ck["world_size"] != meta["world_size"]
            or ck["recipe"]["batch_size"] != meta["recipe"]["batch_size"]
        ):
            self.log(
                "WARNING: the number of processes or the batch size changed: the data order differs from the "
                "first run"
            )
        set_rng_state(ck["rng"])
        self.log(
            f"resumed from {path}: epoch {self.state.epoch + 1}, iteration {self.state.iter_in_epoch} of the "
            "epoch"
        )

    def _resume_path(self) -> Path | None:
        resume = self.cfg.resume
        if resume is True:
            if self.ckpt.latest() is None:
                self.log(f"resume: no checkpoint in {self.work_dir} yet, starting from scratch")
            return self.ckpt.latest()
        return Path(resume) if resume else None

    # ------------------------------------------------------------------------------------------ fit
    def fit(self) -> RunSummary:
        """Build, resume if asked, train every remaining epoch; returns the :class:`RunSummary`.

        A failure while building removes the work dir if this run created it (nothing half-made is left
        behind); a later failure is also written to ``<work_dir>/log.txt``.
        """
        # restored below: no leak into the caller
        was_deterministic = torch.are_deterministic_algorithms_enabled()
        created = self.info.is_main and not self.work_dir.exists()
        try:
            try:
                self.build()
            except BaseException:
                if created:
                    shutil.rmtree(self.work_dir, ignore_errors=True)
                raise
            try:
                return self._fit()
            except KeyboardInterrupt:
                raise self._interrupted() from None
        except BaseException as e:
            if self.work_dir.is_dir() and not isinstance(e, TrainingInterrupted):
                self.log(f"ERROR ({type(e).__name__}): {error_message(e)}", echo=False)
            raise
        finally:
            torch.use_deterministic_algorithms(was_deterministic)
            cleanup()

    def _interrupted(self) -> TrainingInterrupted:
        """Ctrl-C after the build: checkpoint where the run stands (one process; the steps are shielded
        from SIGINT, so the state is whole), log it, and say where the checkpoint is."""
        if self.info.world_size == 1 and self.info.is_main:
            self.save()
        last = self.ckpt.latest()
        self.log(
            f"interrupted at epoch {self.state.epoch + 1}, iteration {self.state.iter_in_epoch}; "
            f"last checkpoint: {last or '(none)'}"
        )
        return TrainingInterrupted(last, self.state.epoch, self.state.iter_in_epoch)

    def _fit(self) -> RunSummary:
        resume_from = self._resume_path()
        if resume_from is not None:
            self.restore(resume_from)
        if self.state.epoch == 0 and self.state.iter_in_epoch == 0:
            self.keep_weights()  # epoch_0.pth: the initial weights
        t_start, final_val = time.time(), None
        while self.state.epoch < self.recipe["epochs"]:
            final_val = self._epoch() or final_val
        if final_val is None:  # resumed after the last epoch: evaluate again
            final_val = self.validate()
        return self._finish(final_val, time.time() - t_start)

    def _epoch(self) -> dict | None:
        """One epoch: train, validate when due, record, checkpoint. Returns the validation report
        (or None)."""
        rec, st = self.recipe, self.state
        entry = self.train_epoch()
        report = None
        if (st.epoch + 1) % rec.get("val_interval", 1) == 0 or st.epoch + 1 == rec["epochs"]:
            t1 = time.time()
            report = self.validate()
            entry.update(_val_entry(report), val_time_s=time.time() - t1)
        st.end_epoch(entry)
        is_best = report is not None and (st.best is None or report["top1"] > st.best["top1"])
        if is_best:
            st.best = dict(epoch=entry["epoch"], top1=report["top1"])
        self.save(is_best)
        self.keep_weights()
        if self.info.is_main:
            write_text(self.work_dir / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in st.history))
            self.log(
                " | ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in entry.items())
            )
            self._tensorboard(entry)
        return report

    def _finish(self, final_val: dict, seconds: float) -> RunSummary:
        """The run summary (+ the optional full test), written to the work dir and ``results_dir``
        on rank 0."""
        cfg, rec, info, hist = self.cfg, self.recipe, self.info, self.state.history
        summary = RunSummary(
            name=self.name,
            model=self.model_name,
            model_kwargs=self.model_kwargs,
            recipe=rec,
            overrides=self.override_log,
            seed=cfg.seed,
            data=str(cfg.data),
            data_cfg_overrides=self.data_overrides,
            num_train=len(self.train_set),
            num_val=len(self.val_set),
            classes=self.classes,
            world_size=info.world_size,
            batch_size=rec["batch_size"],
            total_batch_size=self.world_batch,
            device=str(self.device),
            amp=self.amp or "off",
            num_params=num_params(self.model),
            epochs=rec["epochs"],
            history=hist,
            best=self.state.best,
            val=_public_report(final_val),
            minutes_per_epoch=float(np.mean([h["time_s"] + h.get("val_time_s", 0.0) for h in hist]) / 60)
            if hist
            else None,
            wall_minutes=seconds / 60,
            work_dir=str(self.work_dir),
            checkpoint=str(self.ckpt.last),
            best_checkpoint=str(self.ckpt.best),
            vidlib=__version__,
            torch=torch.__version__,
            finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
            **self._data_problems(final_val),
        )
        if cfg.test:
            test = evaluate(
                self.eval_model,
                cfg.data,
                split="val",
                mode="test",
                batch_size=cfg.eval_batch_size or 1,
                num_workers=cfg.num_workers,
                device=self.device,
                amp=self.amp,
                info=info,
                dataset_kw=dict(self.data_overrides, backend=cfg.backend, on_error=cfg.on_error),
            )
            summary["test"] = _public_report(test)
            self.log(
                f"test ({test['average_clips']} averaging, {test['mode']} protocol): top1 {test['top1']:.4f} "
                f"top5 {test['top5']:.4f} mean-class {test['mean_class_acc']:.4f}"
            )
        if info.is_main:
            results = Path(cfg.results_dir) / f"{self.name}.json" if cfg.results_dir is not None else None
            summary["summary_file"] = str(results or self.work_dir / "summary.json")
            write_json(self.work_dir / "summary.json", summary)
            if results is not None:
                results.parent.mkdir(parents=True, exist_ok=True)
                write_json(results, summary)
            self.log(f"run summary written to {summary['summary_file']}")
        summary.model = self.eval_model
        return summary

    def _data_problems(self, final_val: dict) -> dict:
        """Videos listed but missing, and videos skipped as unreadable, per split (all processes together)."""
        missing = dict(train=self.train_set.missing, val=self.val_set.missing)
        unreadable = dict(
            train=all_gather_lists(self.train_set.unreadable),
            val=sorted(set(final_val.get("unreadable", [])) | set(self.val_set.unreadable)),
        )
        return dict(
            missing=missing,
            unreadable=unreadable,
            num_missing=sum(map(len, missing.values())),
            num_unreadable=sum(map(len, unreadable.values())),
        )

    def _tensorboard(self, entry: dict) -> None:
        if not self.cfg.tensorboard:
            return
        if self.tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise ImportError(
                    "tensorboard=True needs the tensorboard package: pip install tensorboard"
                ) from e
            self.tb = SummaryWriter(self.work_dir / "tb")
        for k, v in entry.items():
            if isinstance(v, (int, float)) and k != "epoch" and v is not None:
                self.tb.add_scalar(k, v, entry["epoch"])
        self.tb.flush()


def plan_epochs(cfg: TrainConfig, minutes: float, probe_iters: int = 8) -> dict:
    """How many epochs of ``cfg`` fit in ``minutes`` here: time ``probe_iters`` training steps, then divide.

    Returns ``{"epochs", "s_per_iter", "iters_per_epoch", "minutes_per_epoch"}``; ``epochs`` is at least 1 and
    at most the recipe's. For a GPU mode whose speed is not known in advance (the probe builds a throw-away
    model; its data, decoded into a shared frame cache, is reused by the real run).
    """
    probe = Trainer(
        dataclasses.replace(
            cfg,
            results_dir=None,
            verbose=False,
            progress=False,
            work_dir=Path(cfg.work_dir or "work_dirs/probe").with_name(".probe"),
        )
    )
    try:
        probe.build()
        probe.sampler.set_epoch(0)
        probe.forward_model.train()
        it, t0 = iter(probe.loader), None
        for i in range(probe_iters + 1):
            clips, y = next(it)
            probe._step(clips, y)
            if i == 0:  # the first step pays for warm-up (kernel selection, allocations)
                if probe.device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
        if probe.device.type == "cuda":
            torch.cuda.synchronize()
        per_iter = (time.perf_counter() - t0) / probe_iters
    finally:
        cleanup()
        shutil.rmtree(probe.work_dir, ignore_errors=True)
    per_epoch = per_iter * probe.iters_per_epoch * 1.15  # + about 15% for validation
    epochs = int(max(1, min(probe.recipe["epochs"], minutes * 60 // per_epoch)))
    return dict(
        epochs=epochs,
        s_per_iter=per_iter,
        iters_per_epoch=probe.iters_per_epoch,
        minutes_per_epoch=per_epoch / 60,
    )


def train(
    model: str | nn.Module | TrainConfig | None = None,
    data: str | os.PathLike = "data/synthetic",
    *,
    frame_cache: bool | FrameCache = False,
    **options,
) -> RunSummary:
    """Train a model with a recipe and return the run summary: ``Trainer(TrainConfig(...)).fit()``.

    Args:
        model: a registered model name (default: the recipe's), an ``nn.Module`` (trained in place), or a
            whole :class:`~vidlib.engine.config.TrainConfig` (then ``data`` and ``options`` must be left out).
        data: a dataset folder with ``train.txt``, ``val.txt`` (mmaction2 lists relative to it) and
            ``label_map.txt``, e.g. ``data/synthetic`` (``python -m vidlib.data.synthetic``).
        frame_cache: keep the decoded videos in memory: True (the process's shared frame cache) or a
            :class:`~vidlib.data.FrameCache`.
        **options: :class:`~vidlib.engine.config.TrainConfig` fields (``recipe``, ``epochs``, ``seed``,
            ``work_dir``, ``model_kwargs=dict(num_frames=8)``, ...); a misspelt one raises ``TypeError``
            listing them all.

    Returns a :class:`RunSummary` (a dict, also written as JSON): ``history`` (per epoch: ``train_loss``,
    ``train_top1``, ``lr``, ``val_top1``, ``val_top5``, ``val_mean_class_acc``, ``val_loss``, ``time_s``
    (training) and ``val_time_s``), ``val`` (the final validation report: ``per_class``, ``confusion_matrix``,
    ``preds``, ``labels``, ...), ``best``, ``minutes_per_epoch``, the resolved ``recipe`` and the
    ``overrides`` log; ``.model`` holds the trained model.
    """
    cache = frame_cache if isinstance(frame_cache, FrameCache) else None
    if isinstance(model, TrainConfig):
        if options or frame_cache is True:
            raise TypeError(
                "train(TrainConfig): give every option in the config (dataclasses.replace(cfg, ...))"
            )
        return Trainer(model, frame_cache=cache).fit()
    check_option_names(options)
    options["frame_cache"] = frame_cache is True
    if isinstance(model, nn.Module):
        return Trainer(TrainConfig(data=data, **options), model=model, frame_cache=cache).fit()
    return Trainer(TrainConfig(model=model, data=data, **options), frame_cache=cache).fit()
