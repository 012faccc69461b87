"""The model registry: a plain dict from name to a keyword-only entrypoint function (as
in timm).

Every entrypoint has the signature
``fn(*, num_classes=..., num_frames=..., **kw) -> nn.Module`` and returns its model
through :func:`with_cfg`, which attaches ``model.default_cfg`` (built by
:func:`make_cfg`) after checking it has every key of the contract (:data:`CFG_KEYS`).
Entrypoints with several published protocols (TANet, TIN, TPN-TSM) choose one with
``dataset=`` (see :func:`dataset_protocol`); ``num_classes`` only sizes the classifier.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from collections.abc import Callable

import torch.nn as nn

from ..errors import UnknownModelError, UnknownOptionError

__all__ = [
    "create_model",
    "list_models",
    "register_model",
    "make_cfg",
    "with_cfg",
    "dataset_protocol",
    "CFG_KEYS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

_MODELS: dict[str, Callable[..., nn.Module]] = {}

#: ImageNet statistics on the 0-255 scale, as mmaction2's ``ActionDataPreprocessor``
#: uses them.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

#: Keys every ``model.default_cfg`` has (the model contract in CONTRIBUTING.md).
CFG_KEYS = (
    "num_frames",
    "input_size",
    "crop_size",
    "resize_short",
    "sampling",
    "test_sampling",
    "test_crops",
    "test_crop_size",
    "mean",
    "std",
    "value_scale",
    "average_clips",
)


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: register ``fn`` under its function name."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"model {fn.__name__!r} is registered twice")
    _MODELS[fn.__name__] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered models matching a shell-style ``pattern``."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def create_model(
    name: str, *, num_classes: int | None = None, num_frames: int | None = None, **kw
) -> nn.Module:
    """Build a registered model.

    Args:
        name: a name from :func:`list_models`.
        num_classes: size of the classifier output; ``None`` takes the entrypoint's
            default (400 for Kinetics-400 models, 174 for ``dataset="sthv1"``, see the
            entrypoint's docstring).
        num_frames: T, the frames per clip; ``None`` takes the model's default (8 for
            the 2D models, 32 for CSN, 16 for ``stam_16`` ...).
        **kw: passed to the entrypoint (e.g. ``dataset``, ``dropout``, ``shift_div``,
            ``imagenet_init``).

    Every model takes ``[B, 3, T, H, W]`` and returns logits ``[B, num_classes]``.
    """
    if name not in _MODELS:
        close = [n for n in _MODELS if name.split("_")[0] in n]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}{hint}; "
            f"available models: {', '.join(list_models())}"
        )
    if num_classes is not None:
        kw["num_classes"] = num_classes
    if num_frames is not None:
        kw["num_frames"] = num_frames
    _check_keywords(name, _MODELS[name], kw)
    model = _MODELS[name](**kw)
    if not isinstance(getattr(model, "default_cfg", None), dict):
        raise TypeError(
            f"entrypoint {name!r} returned a {type(model).__name__} "
            "without a default_cfg dict; "
            "return the model through vidlib.models.with_cfg(model, make_cfg(...))"
        )
    return model


def _check_keywords(name: str, fn: Callable[..., nn.Module], kw: dict) -> None:
    """``TypeError`` naming the entrypoint's keywords when ``kw`` has one it does not
    take (entrypoints with ``**kw`` pass the rest on to their model class, which reports
    unknown ones itself)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = [k for k in kw if k not in params]
    if unknown:
        close = {k: difflib.get_close_matches(k, params, n=1) for k in unknown}
        hints = "".join(
            f" ({k!r}: did you mean {c[0]!r}?)" for k, c in close.items() if c
        )
        raise UnknownOptionError(
            f"{name}() got unexpected keyword arguments {unknown}{hints}; "
            f"{name} takes: {', '.join(params)}"
        )


def with_cfg(model: nn.Module, cfg: dict) -> nn.Module:
    """Attach ``cfg`` as ``model.default_cfg`` and return ``model`` (the one way
    entrypoints do it).

    Raises ``ValueError`` naming the missing keys when ``cfg`` lacks a key of
    :data:`CFG_KEYS`.
    """
    missing = [k for k in CFG_KEYS if k not in cfg]
    if missing:
        raise ValueError(
            f"{type(model).__name__}: default_cfg lacks the contract keys {missing} "
            "(build it with make_cfg)"
        )
    model.default_cfg = cfg
    return model


def dataset_protocol(model: str, dataset: str, protocols: dict, kind: str = "dataset"):
    """``protocols[dataset]`` (e.g. ``{"num_classes": 174, "dropout": 0.6, ...}``), or a
    ``ValueError`` listing the datasets (or other ``kind`` of choice, e.g. CSN's
    ``pretrain``) ``model`` accepts. The protocol is chosen by name only, never by the
    number of classes."""
    if dataset not in protocols:
        raise ValueError(
            f"{model}: unknown {kind} {dataset!r}; "
            f"accepted: {', '.join(map(repr, protocols))}"
        )
    return protocols[dataset]


def make_cfg(
    *,
    num_frames: int,
    crop_size: int = 224,
    resize_short: int = 256,
    sampling: dict,
    test_sampling: dict | None = None,
    test_crops: int = 1,
    test_crop_size: int | None = None,
    mean: tuple[float, float, float] | None = IMAGENET_MEAN,
    std: tuple[float, float, float] | None = IMAGENET_STD,
    value_scale: float = 255.0,
    average_clips: str = "prob",
    layout: str = "mmaction2",
    **extra,
) -> dict:
    """A model's default data cfg (a plain dict).

    Args:
        num_frames: T, frames per clip the model consumes.
        crop_size: training/validation crop (the model's input H = W).
        resize_short: short-side resize before cropping.
        sampling: training sampler, e.g.
            ``dict(name="SampleFrames", clip_len=1, frame_interval=1, num_clips=8)``.
        test_sampling: test-mode sampler (defaults to ``sampling``).
        test_crops: 1 (CenterCrop) or 3 (ThreeCrop) at test time.
        test_crop_size: crop size at test time (256 for ThreeCrop protocols).
        mean, std: per-channel statistics on the ``value_scale`` scale, or ``None`` for
            no normalisation.
        value_scale: 255 for mmaction2 models (pixels in 0-255), 1 for STAM ([0, 1], no
            normalisation).
        average_clips: ``"prob"`` or ``"score"`` test-view averaging.
        layout: the key layout of the published checkpoint, which picks its loader in
            :func:`vidlib.weights.load_published` (``"mmaction2"``,
            ``"stam_official"``).
        **extra: e.g. ``url`` (published checkpoint), ``paper`` (arXiv id),
            ``flip_label_map``.
    """
    cfg = dict(
        num_frames=num_frames,
        input_size=(3, num_frames, crop_size, crop_size),
        crop_size=crop_size,
        resize_short=resize_short,
        sampling=dict(sampling),
        test_sampling=dict(test_sampling or sampling),
        test_crops=test_crops,
        test_crop_size=test_crop_size or crop_size,
        mean=mean,
        std=std,
        value_scale=value_scale,
        average_clips=average_clips,
        layout=layout,
    )
    cfg.update(extra)
    return cfg
