"""Typed training configuration and state: :class:`TrainConfig`, :class:`TrainState`.

:class:`TrainConfig` holds every option of a training run, each field with its help text. The command
line is built from those fields (:func:`add_config_arguments`, :func:`config_from_args`), so an option is
named, typed and documented in one place. Configurations are frozen: make variants with
``dataclasses.replace(cfg, seed=1)``.

:class:`TrainState` is what changes while a run trains (counters, history, the running sums of the
current epoch); it goes into every checkpoint through :meth:`TrainState.state_dict`.
"""

from __future__ import annotations

import argparse
import difflib
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import BadConfigError, UnknownOptionError

__all__ = [
    "TrainConfig",
    "TrainState",
    "config_fields",
    "check_option_names",
    "add_config_arguments",
    "config_from_args",
    "parse_kv",
]

AMP_CHOICES = ("auto", "off", "bf16", "fp16")
BACKENDS = ("decord", "pyav")
ON_ERROR = ("raise", "skip")


def _opt(default: Any = None, help: str = "", *, cli: dict | None = None, factory=None):
    """A :class:`TrainConfig` field with its help text; ``cli`` holds its argparse settings (None: not on the
    CLI)."""
    meta = {"help": help, "cli": cli}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def parse_kv(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` from the command line; the value is parsed as JSON/Python literal when it can be."""
    from .recipes import parse_value

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), parse_value(value)


#: ``--model-kw`` / ``--set``: one or more KEY=VALUE per flag, and the flag repeatable.
_KV = dict(type=parse_kv, action="extend", nargs="+", default=[], metavar="KEY=VALUE")


@dataclass(frozen=True)
class TrainConfig:
    """Every option of :func:`vidlib.engine.train` (see each field's ``help``: ``config_fields()``)."""

    model: str | None = _opt(None, "registered model name (default: the recipe's model)", cli={})
    data: str | os.PathLike = _opt(
        "data/synthetic",
        "dataset folder with train.txt, val.txt (mmaction2 lists) and label_map.txt",
        cli=dict(required=True),
    )
    recipe: str | dict = _opt(
        "synthetic_tiny", "recipe name (python -m vidlib recipes) or a recipe dict", cli={}
    )
    model_kwargs: dict = _opt(
        help="keyword arguments of vidlib.create_model, e.g. --model-kw num_frames=16 dropout=0.5 "
        "(Python: model_kwargs=dict(num_frames=16, dropout=0.5))",
        cli=dict(flags=["--model-kw"], **_KV),
        factory=dict,
    )
    epochs: int | None = _opt(None, "override the recipe's epochs", cli=dict(type=int))
    batch_size: int | None = _opt(None, "override the recipe's batch size (per process)", cli=dict(type=int))
    lr: float | None = _opt(None, "override the recipe's optimizer.lr", cli=dict(type=float))
    overrides: dict = _opt(
        help="recipe values by dotted key, e.g. --set optimizer.weight_decay=5e-4 epochs=3 "
        "(Python: overrides={'optimizer.weight_decay': 5e-4})",
        cli=dict(flags=["--set"], **_KV),
        factory=dict,
    )
    auto_scale_lr: bool = _opt(
        False,
        "scale lr by (batch size x processes) / the recipe's base_batch_size",
        cli=dict(action="store_true"),
    )
    seed: int = _opt(0, "seeds the initialisation, the data order and the augmentations", cli=dict(type=int))
    work_dir: str | os.PathLike | None = _opt(None, "checkpoints and logs (default work_dirs/<name>)", cli={})
    name: str | None = _opt(None, "run name (default <model>_<recipe>_s<seed>)", cli={})
    device: str | None = _opt(None, "cuda, cuda:1, cpu ... (default: cuda when available)", cli={})
    amp: str = _opt(
        "auto",
        "mixed precision: auto (bf16/fp16 on CUDA, off on CPU), off, bf16, fp16",
        cli=dict(choices=AMP_CHOICES),
    )
    compile: bool = _opt(False, "torch.compile the model", cli=dict(action="store_true"))
    num_workers: int = _opt(
        0, "DataLoader worker processes (0: load in the training process)", cli=dict(type=int)
    )
    resume: bool | str = _opt(
        False,
        "True: resume from <work_dir>/last.pth if present; a path: from that file",
        cli=dict(nargs="?", const=True, metavar="PATH"),
    )
    load_from: str | None = _opt(
        None, "initialise from an mmaction2 checkpoint (vidlib.weights.load_mmaction2)", cli={}
    )
    test: bool = _opt(
        False, "also evaluate the final model with the full test protocol", cli=dict(action="store_true")
    )
    save_every_iters: int | None = _opt(
        None, "also checkpoint every N iterations inside an epoch", cli=dict(type=int)
    )
    keep_epoch_weights: bool = _opt(
        False,
        "also keep the model weights before training and after every epoch (<work_dir>/epoch_<e>.pth, "
        "weights only): how the model changed over training",
        cli=dict(action="store_true"),
    )
    deterministic: bool = _opt(
        True,
        "deterministic torch kernels (vidlib.seed_everything)",
        cli=dict(action=argparse.BooleanOptionalAction),
    )
    tensorboard: bool = _opt(
        False, "write TensorBoard scalars to <work_dir>/tb", cli=dict(action="store_true")
    )
    progress: bool | None = _opt(
        None,
        "tqdm bars (default: when stderr is a terminal)",
        cli=dict(action=argparse.BooleanOptionalAction),
    )
    verbose: bool = _opt(True, "print the log lines (they always go to <work_dir>/log.txt)")
    results_dir: str | os.PathLike | None = _opt(
        None, "also write the run summary to <results_dir>/<name>.json (it is always in <work_dir>)", cli={}
    )
    backend: str = _opt("decord", "video reader", cli=dict(choices=BACKENDS))
    on_error: str = _opt(
        "raise",
        "an unreadable video: raise, or skip it and count it in the report",
        cli=dict(choices=ON_ERROR),
    )
    eval_batch_size: int | None = _opt(
        None, "validation batch size (default: the training batch size)", cli=dict(type=int)
    )
    log_interval: int = _opt(
        20,
        "without a terminal, a log line every N iterations (loss, lr, s/it, ETA); 0: none",
        cli=dict(type=int),
    )
    frame_cache: bool = _opt(
        False,
        "keep the decoded videos in the process's shared frame cache (vidlib.data.shared_frame_cache); "
        "pass another FrameCache to Trainer(cfg, frame_cache=...)",
    )

    def __post_init__(self):
        if not isinstance(self.frame_cache, bool):
            raise BadConfigError(
                f"TrainConfig.frame_cache is True or False, got {type(self.frame_cache).__name__}: pass a "
                "FrameCache object to Trainer(cfg, frame_cache=...) or train(..., frame_cache=...)"
            )
        for name, value, choices in (
            ("amp", self.amp, AMP_CHOICES),
            ("backend", self.backend, BACKENDS),
            ("on_error", self.on_error, ON_ERROR),
        ):
            if value not in choices:
                raise BadConfigError(f"TrainConfig.{name} must be one of {', '.join(choices)}; got {value!r}")
        for name in ("epochs", "batch_size", "save_every_iters", "eval_batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BadConfigError(f"TrainConfig.{name} must be >= 1, got {value}")
        if self.log_interval < 0:
            raise BadConfigError(f"TrainConfig.log_interval must be >= 0, got {self.log_interval}")
        if self.num_workers < 0:
            raise BadConfigError(f"TrainConfig.num_workers must be >= 0, got {self.num_workers}")

    def to_dict(self) -> dict:
        """The options as plain data (paths as strings), e.g. for a run summary."""
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, os.PathLike):
                out[k] = os.fspath(v)
        return out


def config_fields() -> dict[str, str]:
    """``{option: help}`` for every :class:`TrainConfig` field, in order."""
    return {f.name: f.metadata["help"] for f in fields(TrainConfig)}


def check_option_names(names, where: str = "train") -> None:
    """Raise ``TypeError`` for names that are not :class:`TrainConfig` fields, suggesting the closest ones."""
    known = [f.name for f in fields(TrainConfig)]
    bad = [n for n in names if n not in known]
    if bad:
        hints = [
            f"{n!r} (did you mean {', '.join(repr(c) for c in difflib.get_close_matches(n, known, 3))}?)"
            if difflib.get_close_matches(n, known, 1)
            else repr(n)
            for n in bad
        ]
        raise UnknownOptionError(
            f"{where}: unknown option {', '.join(hints)}; the options are: {', '.join(known)}. "
            "Model arguments go into model_kwargs=dict(...)."
        )


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one command-line option per :class:`TrainConfig` field that has CLI settings."""
    for f in fields(TrainConfig):
        cli = f.metadata["cli"]
        if cli is None:
            continue
        kw = dict(cli)
        flags = kw.pop("flags", ["--" + f.name.replace("_", "-")])
        kw.setdefault("default", [] if kw.get("action") in ("append", "extend") else f.default)
        parser.add_argument(*flags, dest=f.name, help=f.metadata["help"], **kw)


def config_from_args(args: argparse.Namespace, **extra) -> TrainConfig:
    """The :class:`TrainConfig` of parsed arguments (``KEY=VALUE`` lists become dicts)."""
    values = {}
    for f in fields(TrainConfig):
        if f.metadata["cli"] is None or not hasattr(args, f.name):
            continue
        value = getattr(args, f.name)
        values[f.name] = dict(value) if f.metadata["cli"].get("action") in ("append", "extend") else value
    return TrainConfig(**values, **extra)


@dataclass
class TrainState:
    """What a run has done so far; restored exactly on resume (also mid-epoch)."""

    epoch: int = 0  # completed epochs
    iter_in_epoch: int = 0  # iterations done in the current epoch
    global_iter: int = 0
    history: list[dict] = field(default_factory=list)  # one entry per completed epoch
    best: dict | None = None  # {"epoch", "top1"} of the best validation so far
    loss_sum: float = 0.0  # running sums of the current epoch: sum of loss x batch, correct, samples
    correct: int = 0
    seen: int = 0

    def add_batch(self, loss: float, correct: int, n: int) -> None:
        self.loss_sum += loss * n
        self.correct += correct
        self.seen += n
        self.iter_in_epoch += 1
        self.global_iter += 1

    def end_epoch(self, entry: dict) -> None:
        self.history.append(entry)
        self.epoch += 1
        self.iter_in_epoch, self.loss_sum, self.correct, self.seen = 0, 0.0, 0, 0

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        names = {f.name for f in fields(self)}
        missing, unexpected = names - set(state), set(state) - names
        if missing or unexpected:
            raise KeyError(f"training state: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
        for f in fields(self):
            setattr(self, f.name, state[f.name])

    @classmethod
    def from_v1(cls, ck: dict) -> TrainState:
        """The state of a ``vidlib-train-1`` checkpoint (flat keys, running sums in ``accum``)."""
        loss_sum, correct, seen = ck["accum"]
        return cls(
            epoch=ck["epoch"],
            iter_in_epoch=ck["iter_in_epoch"],
            global_iter=ck["global_iter"],
            history=list(ck["history"]),
            best=ck["best"],
            loss_sum=float(loss_sum),
            correct=int(correct),
            seen=int(seen),
        )
