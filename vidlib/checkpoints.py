"""Strict checkpoint loaders: every missing, unexpected or mis-shaped key is reported, all at once.

- :func:`load_state_dict_strict`: the one strict loader everything else goes through.
- :func:`read_checkpoint`: a path, ``{'state_dict': sd}``, ``{'model': sd}`` or a bare state dict.
- :func:`load_mmaction2`: mmaction2 1.x checkpoints (keys are nearly vidlib's; a model may carry
  ``model.mmaction2_key_map(key) -> key | None``, where ``None`` drops the key and reports it).
- :func:`init_from_torchvision`: ImageNet initialisation of the 2D ResNet from a torchvision file.
- :func:`load_tam_original`, :func:`load_tin_original`: the official TAM and TIN repositories' layouts.
- ``inflate_from_2d`` (``vidlib.models.resnet3d``) and ``load_stam`` (``vidlib.models.stam``) are
  re-exported lazily, so importing this module never imports ``vidlib.models``.

There is no ``strict=False`` anywhere: a checkpoint either fits the model exactly or the error says why.
"""
from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Mapping

from typing import TYPE_CHECKING

import torch
import torch.nn as nn

if TYPE_CHECKING:  # re-exported lazily by __getattr__ below
    from .models.resnet3d import inflate_from_2d  # noqa: F401
    from .models.stam import load_stam  # noqa: F401

__all__ = [
    "CheckpointError", "load_state_dict_strict", "read_checkpoint", "load_mmaction2", "init_from_torchvision",
    "load_tam_original", "load_tin_original", "rename_keys", "torchvision_to_mmaction2", "tam_original_key",
    "tin_original_key", "inflate_from_2d", "load_stam",
]

_LAZY = {"inflate_from_2d": "vidlib.models.resnet3d", "load_stam": "vidlib.models.stam"}


def __getattr__(name: str):  # lazy re-exports (PEP 562): no import of vidlib.models at import time
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class CheckpointError(RuntimeError):
    """A checkpoint does not fit a model. ``missing``, ``unexpected`` and ``mismatched`` list the keys."""

    def __init__(self, source: str, missing=(), unexpected=(), mismatched=(), note: str = ""):
        self.source, self.missing, self.unexpected = source, list(missing), list(unexpected)
        self.mismatched = list(mismatched)  # (key, checkpoint shape, model shape)
        lines = [f"checkpoint {source} does not fit the model:"]
        lines += [f"  missing key (in the model, not in the checkpoint): {k}" for k in self.missing]
        lines += [f"  unexpected key (in the checkpoint, not in the model): {k}" for k in self.unexpected]
        lines += [f"  wrong shape: {k}: checkpoint {tuple(a)} vs model {tuple(b)}" for k, a, b in self.mismatched]
        if note:
            lines.append(note)
        super().__init__("\n".join(lines))


def _source_name(obj) -> str:
    return f"'{os.fspath(obj)}'" if isinstance(obj, (str, os.PathLike)) else f"<{type(obj).__name__}>"


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *,
                           source: str = "<state dict>") -> nn.Module:
    """Load ``state_dict`` into ``model`` if keys and shapes match exactly; else raise :class:`CheckpointError`.

    All problems are collected first and reported together, naming ``source`` (a file or a description).
    Values are cast to the model's dtypes (``load_state_dict`` copies in place). Returns ``model``.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in state_dict.items()
                  if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if missing or unexpected or mismatched:
        raise CheckpointError(source, missing, unexpected, mismatched)
    model.load_state_dict(dict(state_dict), strict=True)
    return model


def read_checkpoint(path_or_dict, *keys: str) -> dict[str, torch.Tensor]:
    """The state dict inside a checkpoint.

    Args:
        path_or_dict: a file (read with ``torch.load(..., weights_only=True)`` onto the CPU), a dict
            wrapping the state dict, or a bare state dict.
        keys: wrapper keys to look for, in order (default ``'state_dict'``, ``'model'``).
    """
    source = _source_name(path_or_dict)
    obj = path_or_dict
    if isinstance(obj, (str, os.PathLike)):
        if not os.path.isfile(obj):
            raise FileNotFoundError(f"checkpoint file {source} does not exist")
        try:
            obj = torch.load(obj, map_location="cpu", weights_only=True)
        except Exception as e:  # pickle of arbitrary objects: refuse, say why
            raise CheckpointError(source, note=(
                f"  torch.load(weights_only=True) refused it ({type(e).__name__}: {str(e).splitlines()[0]}). "
                "If you trust the file, load it yourself with torch.load(path, weights_only=False) "
                "and pass the resulting dict.")) from e
    if not isinstance(obj, Mapping):
        raise CheckpointError(source, note=f"  expected a dict, got {type(obj).__name__}")
    for k in keys or ("state_dict", "model"):
        if isinstance(obj.get(k), Mapping):
            obj = obj[k]
            break
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(source, note=f"  not a state dict: non-tensor entries {bad[:10]} "
                                           f"(top-level keys: {list(obj)[:10]})")
    return dict(obj)


def rename_keys(state_dict: Mapping[str, torch.Tensor], key_map: Callable[[str], str | None], *,
                source: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Apply ``key_map`` to every key; ``None`` drops a key. Returns ``(renamed, dropped)``.

    Two keys mapped onto the same name raise :class:`CheckpointError`.
    """
    out: dict[str, torch.Tensor] = {}
    dropped, clashes = [], []
    for k, v in state_dict.items():
        new = key_map(k)
        if new is None:
            dropped.append(k)
        elif new in out:
            clashes.append(f"{k} -> {new}")
        else:
            out[new] = v
    if clashes:
        raise CheckpointError(source, note="  several keys map to the same name: " + "; ".join(clashes))
    return out, dropped


def _warn_dropped(dropped: list[str], source: str) -> None:
    for k in dropped:
        warnings.warn(f"{source}: dropped checkpoint key {k!r} (the model has no counterpart)", stacklevel=3)


def load_mmaction2(model: nn.Module, checkpoint) -> list[str]:
    """Load an mmaction2 1.x checkpoint (path, ``{'state_dict': ...}`` or bare state dict) strictly.

    Keys go through ``model.mmaction2_key_map`` when the model defines one (see CONTRIBUTING.md);
    keys it maps to ``None`` are dropped with a warning naming each. Returns the dropped keys.
    """
    source = _source_name(checkpoint)
    sd = read_checkpoint(checkpoint, "state_dict")
    key_map = getattr(model, "mmaction2_key_map", None)
    dropped: list[str] = []
    if key_map is not None:
        sd, dropped = rename_keys(sd, key_map, source=source)
        _warn_dropped(dropped, source)
    load_state_dict_strict(model, sd, source=source)
    return dropped


# ------------------------------------------------------------------------------------- torchvision
#: A plain 2D ResNet key in mmaction2 naming (what :func:`init_from_torchvision` fills).
_RESNET_KEY = re.compile(r"^(conv1|layer\d+\.\d+\.(conv\d|downsample))\.(conv|bn)\."
                         r"(weight|bias|running_mean|running_var|num_batches_tracked)$")


def torchvision_to_mmaction2(key: str) -> str | None:
    """Map a torchvision ResNet key to mmaction2's ``ResNet`` naming (fact sheet §0.1); ``fc.*`` -> None."""
    if key.startswith("fc."):
        return None
    key = re.sub(r"^conv1\.", "conv1.conv.", key)
    key = re.sub(r"^bn1\.", "conv1.bn.", key)
    key = re.sub(r"^(layer\d+\.\d+)\.conv(\d)\.", r"\1.conv\2.conv.", key)
    key = re.sub(r"^(layer\d+\.\d+)\.bn(\d)\.", r"\1.conv\2.bn.", key)
    key = re.sub(r"^(layer\d+\.\d+)\.downsample\.0\.", r"\1.downsample.conv.", key)
    return re.sub(r"^(layer\d+\.\d+)\.downsample\.1\.", r"\1.downsample.bn.", key)


def _unwrap(key: str, wrap_prefixes) -> str:
    for p in wrap_prefixes:  # e.g. ".net" (TSM), ".net2" (TIN), ".block" (TANet)
        key = key.replace(p + ".", ".")
    return key


def init_from_torchvision(model: nn.Module, path_or_state_dict) -> list[str]:
    """Initialise the 2D ResNet backbone of ``model`` from a torchvision ResNet checkpoint, strictly.

    Every torchvision key except ``fc.*`` must land on a backbone key of the same shape, and every
    plain ResNet key of the backbone must be filled (``num_batches_tracked`` may be absent in old
    torchvision files). Temporal modules (TAM, TIN's sub-networks) are not ResNet keys: they keep the
    init they received when they were built. Weights are copied by key *after* the temporal modules
    exist and nothing re-initialises the model afterwards, which avoids the TANet init-order pitfall
    (fact sheet §1.9: a global re-init after inserting TAMs would clobber the ImageNet weights).

    Returns the backbone keys that were left at their init (the temporal modules' keys).
    """
    source = _source_name(path_or_state_dict)
    tv = read_checkpoint(path_or_state_dict, "state_dict", "model")
    backbone = getattr(model, "backbone", model)
    own = backbone.state_dict()
    wraps = getattr(backbone, "wrap_prefixes", ())
    canon = {_unwrap(k, wraps): k for k in own}
    sd, unexpected = {}, []
    for k, v in tv.items():
        mm = torchvision_to_mmaction2(k)
        if mm is None:
            continue
        if mm in canon:
            sd[canon[mm]] = v
        else:
            unexpected.append(k)
    missing = [k for c, k in canon.items() if _RESNET_KEY.match(c) and k not in sd
               and not c.endswith("num_batches_tracked")]
    mismatched = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in sd.items() if v.shape != own[k].shape]
    if missing or unexpected or mismatched:
        raise CheckpointError(source, missing, unexpected, mismatched, note="  (torchvision ResNet -> backbone)")
    kept = [k for c, k in canon.items() if not _RESNET_KEY.match(c)]
    with torch.no_grad():
        for k, v in sd.items():
            own[k].copy_(v)
    return kept


# ------------------------------------------------------------------------ original TAM / TIN repos
def _canonical(key: str, wraps) -> str:
    return "backbone." + _unwrap(key[len("backbone."):], wraps) if key.startswith("backbone.") else key


def _load_renamed(model: nn.Module, checkpoint, rename: Callable[[str], str], what: str) -> nn.Module:
    """Rename every key to vidlib's *unwrapped* naming, put the model's wrappers back, load strictly."""
    source = f"{_source_name(checkpoint)} ({what})"
    sd = read_checkpoint(checkpoint, "state_dict")
    wraps = getattr(getattr(model, "backbone", model), "wrap_prefixes", ())
    actual = {_canonical(k, wraps): k for k in model.state_dict()}
    renamed, _ = rename_keys(sd, lambda k: actual.get(rename(k), rename(k)), source=source)
    return load_state_dict_strict(model, renamed, source=source)


def _original_backbone_key(key: str) -> str | None:
    """``conv1.weight`` / ``layerX.Y.convN.weight`` ... (torchvision names) -> ``backbone.`` + mmaction2 name."""
    mm = torchvision_to_mmaction2(key)
    return None if mm is None else "backbone." + mm


def tam_original_key(key: str) -> str:
    """Map a key of the official TAM repository (fact sheet §1.8) to vidlib's unwrapped TANet naming.

    ``module.base_model.layerX.Y.net.bn1.weight`` -> ``backbone.layerX.Y.conv1.bn.weight`` (the loader
    then adds the ``.block`` wrapper); ``...tam.{G,L}`` (older: ``self_conv.conv_{f,g}``) stay TAM keys;
    ``module.new_fc`` -> ``cls_head.fc_cls``. Unknown keys are returned unchanged (and then reported).
    """
    k = key.removeprefix("module.").replace("self_conv.conv_f", "tam.G").replace("self_conv.conv_g", "tam.L")
    if k.startswith("new_fc."):
        return "cls_head.fc_cls." + k[len("new_fc."):]
    if not k.startswith("base_model."):
        return key
    k = re.sub(r"^(layer\d+\.\d+)\.net\.", r"\1.", k[len("base_model."):])  # drop TemporalBottleneck.net
    if re.match(r"^layer\d+\.\d+\.tam\.", k):
        return "backbone." + k
    return _original_backbone_key(k) or key


_TIN_SUBNETS = {"biasnet.net.conv": "offset_net.conv", "biasnet.net.fc": "offset_net.fc1",
                "biasnet.net.lastlayer": "offset_net.fc2", "weightnet.net.lastlayer": "weight_net.conv"}


def tin_original_key(key: str) -> str:
    """Map a key of the official TIN repository (fact sheet §3.6) to vidlib's unwrapped TIN naming.

    ``...layerX.Y.conv1.net1.biasnet.net.{conv,fc,lastlayer}`` -> ``...conv1.conv.net1.offset_net.{conv,fc1,fc2}``,
    ``...net1.weightnet.net.lastlayer`` -> ``...weight_net.conv``, ``...conv1.net2.weight`` -> the block's
    1x1 conv, ``bnN`` -> ``convN.bn``, ``module.new_fc`` -> ``cls_head.fc_cls``. Unknown keys are unchanged.
    """
    k = key.removeprefix("module.")
    if k.startswith("new_fc."):
        return "cls_head.fc_cls." + k[len("new_fc."):]
    if not k.startswith("base_model."):
        return key
    k = k[len("base_model."):]
    m = re.match(r"^(layer\d+\.\d+)\.conv1\.net1\.(\w+\.net\.\w+)\.(weight|bias)$", k)
    if m and m.group(2) in _TIN_SUBNETS:
        return f"backbone.{m.group(1)}.conv1.conv.net1.{_TIN_SUBNETS[m.group(2)]}.{m.group(3)}"
    k = re.sub(r"^(layer\d+\.\d+)\.conv1\.net2\.", r"\1.conv1.", k)  # CombinNet's wrapped conv
    return _original_backbone_key(k) or key


def load_tam_original(model: nn.Module, checkpoint) -> nn.Module:
    """Load a checkpoint of the official TAM code (liu-zhy/temporal-adaptive-module) into a vidlib TANet."""
    return _load_renamed(model, checkpoint, tam_original_key, "official TAM layout")


def load_tin_original(model: nn.Module, checkpoint) -> nn.Module:
    """Load a checkpoint of the official TIN code (deepcs233/TIN) into a vidlib TIN."""
    return _load_renamed(model, checkpoint, tin_original_key, "official TIN layout")
