"""Published weights: strict, model-agnostic checkpoint reading and loading.

Every missing, unexpected or mis-shaped key is reported, all at once. (Training state - optimizer,
scheduler, RNG, resumable runs - is another matter and lives in ``vidlib/engine/checkpoint.py``.)

- :func:`load_state_dict_strict`: the one strict loader everything else goes through.
- :func:`read_checkpoint`: a path, ``{'state_dict': sd}``, ``{'model': sd}`` or a bare state dict.
- :func:`rename_keys`, :func:`load_renamed`: key maps (``None`` drops a key), for other repositories' layouts.
- :func:`load_mmaction2`: mmaction2 1.x checkpoints (keys are nearly vidlib's; a model may carry
  ``model.mmaction2_key_map(key) -> key | None``, where ``None`` drops the key and reports it).
- :func:`torchvision_to_mmaction2`, :func:`init_from_torchvision`: ImageNet initialisation of a 2D
  ResNet backbone from a torchvision file.
- :func:`load_backbone`: a backbone-only checkpoint in mmaction2's layout (CSN's IG-65M pre-training).
- :func:`source_name`: how a checkpoint is named in error messages.
- :func:`read_checkpoint_file`: the one safe reader of checkpoint files (also of training checkpoints).
- :func:`load_published`: a model's published checkpoint, through the loader of the layout its
  ``default_cfg["layout"]`` names (:func:`register_layout`, :data:`LAYOUTS`).

This module knows no model: paper-specific loaders sit next to their model (``load_tam_original`` in
``vidlib/models/tam.py``, ``load_tin_original`` in ``tin.py``, ``inflate_from_2d`` in ``resnet3d.py``,
``load_stam`` and ``init_spatial_from_vit`` in ``stam.py``) and are built from the functions here.
There is no ``strict=False`` anywhere: a checkpoint either fits the model exactly or the error says why.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
import torch.nn as nn

from .errors import BadFileError, InputError
from .utils import describe_file

__all__ = [
    "CheckpointError",
    "source_name",
    "load_state_dict_strict",
    "load_backbone",
    "read_checkpoint",
    "read_checkpoint_file",
    "register_layout",
    "load_published",
    "layout_of",
    "LAYOUTS",
    "rename_keys",
    "load_renamed",
    "load_mmaction2",
    "torchvision_to_mmaction2",
    "unwrap_key",
    "init_from_torchvision",
    "find_torchvision_file",
]


class CheckpointError(InputError, RuntimeError):
    """A checkpoint does not fit a model. ``missing``, ``unexpected`` and ``mismatched`` list the keys."""

    def __init__(self, source: str, missing=(), unexpected=(), mismatched=(), note: str = ""):
        self.source, self.missing, self.unexpected = source, list(missing), list(unexpected)
        self.mismatched = list(mismatched)  # (key, checkpoint shape, model shape)
        fits = self.missing or self.unexpected or self.mismatched
        lines = [
            f"checkpoint {source} does not fit the model:" if fits or not note else f"checkpoint {source}:"
        ]
        lines += [f"  missing key (in the model, not in the checkpoint): {k}" for k in self.missing]
        lines += [f"  unexpected key (in the checkpoint, not in the model): {k}" for k in self.unexpected]
        lines += [
            f"  wrong shape: {k}: checkpoint {tuple(a)} vs model {tuple(b)}" for k, a, b in self.mismatched
        ]
        if note:
            lines.append(note)
        super().__init__("\n".join(lines))


def source_name(checkpoint) -> str:
    """How error messages name a checkpoint: ``'path/to/file.pth'`` for a path, ``<dict>`` (the type)
    otherwise."""
    if isinstance(checkpoint, (str, os.PathLike)):
        return f"'{os.fspath(checkpoint)}'"
    return f"<{type(checkpoint).__name__}>"


def load_state_dict_strict(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str = "<state dict>"
) -> nn.Module:
    """Load ``state_dict`` into ``model`` if keys and shapes match exactly; else raise
    :class:`CheckpointError`.

    All problems are collected first and reported together, naming ``source`` (a file or a description).
    Values are cast to the model's dtypes (``load_state_dict`` copies in place). Returns ``model``.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        (k, tuple(v.shape), tuple(own[k].shape))
        for k, v in state_dict.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        raise CheckpointError(source, missing, unexpected, mismatched)
    model.load_state_dict(dict(state_dict), strict=True)
    return model


def read_checkpoint_file(path: str | os.PathLike) -> dict:
    """Read a checkpoint file safely: ``torch.load(..., weights_only=True)`` onto the CPU (tensors and
    plain Python only), and check that it holds a dict.

    The one reader of checkpoint files: :func:`read_checkpoint` (published weights) and
    ``vidlib.engine.checkpoint.load_checkpoint_file`` (training checkpoints) go through it.
    A missing file raises ``FileNotFoundError``; a file that is not a checkpoint raises
    :class:`~vidlib.errors.BadFileError` saying what the file is (text, a video, truncated ...).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    kind = describe_file(path)
    if kind not in ("a ZIP archive (the PyTorch format)", "a pickle"):
        raise BadFileError(f"{path} is not a PyTorch checkpoint (it is {kind})")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt, truncated, or pickled Python objects
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise BadFileError(
                f"{path} holds Python objects that torch.load(weights_only=True) refuses ({first[:160]}); "
                "if you trust the file, load it with torch.load(path, weights_only=False) "
                "and pass the resulting dict"
            ) from e
        raise BadFileError(
            f"{path} is not a readable PyTorch checkpoint ({kind}, torch.load: {first[:160]})"
        ) from e
    if not isinstance(ck, dict):
        raise BadFileError(f"{path} holds a {type(ck).__name__}, not a checkpoint dict")
    return ck


def read_checkpoint(path_or_dict, *keys: str) -> dict[str, torch.Tensor]:
    """The state dict inside a checkpoint.

    Args:
        path_or_dict: a file (read by :func:`read_checkpoint_file`), a dict wrapping the state dict,
            or a bare state dict.
        keys: wrapper keys to look for, in order (default ``'state_dict'``, ``'model'``).
    """
    source = source_name(path_or_dict)
    obj = path_or_dict
    if isinstance(obj, (str, os.PathLike)):
        try:
            obj = read_checkpoint_file(obj)
        except BadFileError as e:
            raise CheckpointError(source, note=f"  {e}") from e
    if not isinstance(obj, Mapping):
        raise CheckpointError(source, note=f"  expected a dict, got {type(obj).__name__}")
    for k in keys or ("state_dict", "model"):
        if isinstance(obj.get(k), Mapping):
            obj = obj[k]
            break
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            source,
            note=f"  not a state dict: non-tensor entries {bad[:10]} (top-level keys: {list(obj)[:10]})",
        )
    return dict(obj)


def rename_keys(
    state_dict: Mapping[str, torch.Tensor], key_map: Callable[[str], str | None], *, source: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
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


#: The loaders of published checkpoints, by layout: ``{layout: (loader, description)}``. A model's
#: ``default_cfg["layout"]`` names the layout of its published checkpoint (``default_cfg["url"]``);
#: :func:`load_published` looks the loader up here. This module registers ``"mmaction2"``; a model
#: module registers its own layout next to its loader (``vidlib/models/stam.py``: ``"stam_official"``),
#: so that this module imports no model.
LAYOUTS: dict[str, tuple[Callable[..., list[str]], str]] = {}


def register_layout(layout: str, description: str):
    """Decorator: register ``loader(model, checkpoint, **kw) -> list[str]`` for ``layout``
    (``description`` names the layout in messages, e.g. ``"official STAM"``)."""

    def register(loader: Callable[..., list[str]]) -> Callable[..., list[str]]:
        if layout in LAYOUTS:
            raise ValueError(f"checkpoint layout {layout!r} is registered twice")
        LAYOUTS[layout] = (loader, description)
        return loader

    return register


def layout_of(model: nn.Module) -> str:
    """The layout of ``model``'s published checkpoint: ``model.default_cfg["layout"]``
    (``"mmaction2"`` for a model without a ``default_cfg``)."""
    layout = getattr(model, "default_cfg", {}).get("layout", "mmaction2")
    if layout not in LAYOUTS:
        raise ValueError(
            f"{type(model).__name__}: no loader for the checkpoint layout {layout!r} "
            f"(registered: {', '.join(LAYOUTS)})"
        )
    return layout


def load_published(model: nn.Module, checkpoint, **kw) -> list[str]:
    """Load a published checkpoint of ``model`` strictly, with the loader of its layout
    (:func:`layout_of`: :func:`load_mmaction2` for ``"mmaction2"``, ``load_stam`` for
    ``"stam_official"`` ...). ``kw`` go to the loader. Returns the keys the loader reports (dropped
    or zero-filled), as the loader does."""
    loader, _ = LAYOUTS[layout_of(model)]
    return loader(model, checkpoint, **kw)


def _warn_dropped(dropped: list[str], source: str) -> None:
    for k in dropped:
        warnings.warn(f"{source}: dropped checkpoint key {k!r} (the model has no counterpart)", stacklevel=3)


@register_layout("mmaction2", "mmaction2")
def load_mmaction2(model: nn.Module, checkpoint) -> list[str]:
    """Load an mmaction2 1.x checkpoint (path, ``{'state_dict': ...}`` or bare state dict) strictly.

    Keys go through ``model.mmaction2_key_map`` when the model defines one (see CONTRIBUTING.md);
    keys it maps to ``None`` are dropped with a warning naming each. Returns the dropped keys.
    """
    source = source_name(checkpoint)
    sd = read_checkpoint(checkpoint, "state_dict")
    key_map = getattr(model, "mmaction2_key_map", None)
    dropped: list[str] = []
    if key_map is not None:
        sd, dropped = rename_keys(sd, key_map, source=source)
        _warn_dropped(dropped, source)
    load_state_dict_strict(model, sd, source=source)
    return dropped


def load_backbone(model: nn.Module, checkpoint, prefix: str = "backbone.") -> nn.Module:
    """Load a backbone-only checkpoint into ``model.backbone``, strictly.

    The keys are the backbone's own (``conv1.conv.weight``, ``layer1.0.conv2.0.conv.weight`` ...), as
    mmaction2 writes a backbone's ``pretrained`` file; a leading ``prefix`` (a whole model's
    ``backbone.``) is removed where present. Every backbone key must be filled and every key must be
    one: a classifier or any other extra key raises :class:`CheckpointError` naming it. (mmaction2's
    backbone loads these files non-strictly, so such keys would be skipped there without a word; this
    loader is strict, like every loader here.)
    """
    source = source_name(checkpoint)
    sd = read_checkpoint(checkpoint, "state_dict", "model")
    sd = {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in sd.items()}
    load_state_dict_strict(model.backbone, sd, source=source)
    return model


# ------------------------------------------------------------------------------------- torchvision
#: A plain 2D ResNet key in mmaction2 naming (what :func:`init_from_torchvision` fills).
_RESNET_KEY = re.compile(
    r"^(conv1|layer\d+\.\d+\.(conv\d|downsample))\.(conv|bn)\."
    r"(weight|bias|running_mean|running_var|num_batches_tracked)$"
)


def torchvision_to_mmaction2(key: str) -> str | None:
    """Map a torchvision ResNet key to mmaction2's ``ResNet`` naming; ``fc.*`` -> None.

    The mapping of mmaction2's ``ResNet._load_torchvision_checkpoint`` (open-mmlab/mmaction2 @ 4d6c9347,
    ``mmaction/models/backbones/resnet.py``): ``conv1`` + ``bn1`` -> ``conv1.{conv,bn}``, ``layerX.Y.convN`` +
    ``bnN`` -> ``layerX.Y.convN.{conv,bn}``, ``downsample.{0,1}`` -> ``downsample.{conv,bn}``.
    """
    if key.startswith("fc."):
        return None
    key = re.sub(r"^conv1\.", "conv1.conv.", key)
    key = re.sub(r"^bn1\.", "conv1.bn.", key)
    key = re.sub(r"^(layer\d+\.\d+)\.conv(\d)\.", r"\1.conv\2.conv.", key)
    key = re.sub(r"^(layer\d+\.\d+)\.bn(\d)\.", r"\1.conv\2.bn.", key)
    key = re.sub(r"^(layer\d+\.\d+)\.downsample\.0\.", r"\1.downsample.conv.", key)
    return re.sub(r"^(layer\d+\.\d+)\.downsample\.1\.", r"\1.downsample.bn.", key)


def unwrap_key(key: str, wrap_prefixes) -> str:
    """Remove the module-path segments temporal wrappers insert (``".net"`` for TSM, ``".net2"`` for TIN,
    ``".block"`` for TANet; a backbone lists its own in ``backbone.wrap_prefixes``)."""
    for p in wrap_prefixes:
        key = key.replace(p + ".", ".")
    return key


def find_torchvision_file(arch: str = "resnet50") -> str | None:
    """The torchvision ImageNet checkpoint of ``arch`` if it is on this machine (torch hub's cache),
    else None.

    vidlib never downloads: ``torchvision.models.resnet50(weights="IMAGENET1K_V1")`` fills that cache.
    """
    folder = os.path.join(torch.hub.get_dir(), "checkpoints")
    found = sorted(
        f
        for f in (os.listdir(folder) if os.path.isdir(folder) else [])
        if re.fullmatch(rf"{re.escape(arch)}-[0-9a-f]+\.pth", f)
    )
    return os.path.join(folder, found[0]) if found else None


def init_from_torchvision(model: nn.Module, path_or_state_dict) -> list[str]:
    """Initialise the 2D ResNet backbone of ``model`` from a torchvision ResNet checkpoint, strictly.

    Every torchvision key except ``fc.*`` must land on a backbone key of the same shape, and every
    plain ResNet key of the backbone must be filled (``num_batches_tracked`` may be absent in old
    torchvision files). Temporal modules (TAM, TIN's sub-networks) are not ResNet keys: they keep the
    init they received when they were built. Weights are copied by key *after* the temporal modules
    exist and nothing re-initialises the model afterwards. This avoids the TANet init-order pitfall:
    a global re-init after inserting the TAMs would clobber the ImageNet weights, which is why
    mmaction2's ``TANet.__init__`` loads the ImageNet weights before ``make_tam_modeling()`` and makes
    ``init_weights`` a no-op (open-mmlab/mmaction2 @ 4d6c9347, ``mmaction/models/backbones/tanet.py``).

    Returns the backbone keys that were left at their init (the temporal modules' keys).
    """
    source = source_name(path_or_state_dict)
    tv = read_checkpoint(path_or_state_dict, "state_dict", "model")
    backbone = getattr(model, "backbone", model)
    own = backbone.state_dict()
    wraps = getattr(backbone, "wrap_prefixes", ())
    canon = {unwrap_key(k, wraps): k for k in own}
    sd, unexpected = {}, []
    for k, v in tv.items():
        mm = torchvision_to_mmaction2(k)
        if mm is None:
            continue
        if mm in canon:
            sd[canon[mm]] = v
        else:
            unexpected.append(k)
    missing = [
        k
        for c, k in canon.items()
        if _RESNET_KEY.match(c) and k not in sd and not c.endswith("num_batches_tracked")
    ]
    mismatched = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in sd.items() if v.shape != own[k].shape]
    if missing or unexpected or mismatched:
        raise CheckpointError(
            source, missing, unexpected, mismatched, note="  (torchvision ResNet -> backbone)"
        )
    kept = [k for c, k in canon.items() if not _RESNET_KEY.match(c)]
    with torch.no_grad():
        for k, v in sd.items():
            own[k].copy_(v)
    return kept


# ------------------------------------------------------------------------ other repositories' layouts
def load_renamed(model: nn.Module, checkpoint, rename: Callable[[str], str], what: str) -> nn.Module:
    """Load a checkpoint whose keys ``rename`` maps to vidlib's *unwrapped* naming, strictly.

    ``rename`` maps a foreign key to the model's key without the backbone's ``wrap_prefixes``
    (unknown keys are returned unchanged and then reported); this function puts the wrappers back
    and loads with :func:`load_state_dict_strict`. ``what`` names the layout in errors
    (e.g. ``"official TAM layout"``). Returns ``model``.
    """
    source = f"{source_name(checkpoint)} ({what})"
    sd = read_checkpoint(checkpoint, "state_dict")
    wraps = getattr(getattr(model, "backbone", model), "wrap_prefixes", ())

    def canonical(key: str) -> str:
        return (
            "backbone." + unwrap_key(key[len("backbone.") :], wraps) if key.startswith("backbone.") else key
        )

    actual = {canonical(k): k for k in model.state_dict()}
    renamed, _ = rename_keys(sd, lambda k: actual.get(rename(k), rename(k)), source=source)
    return load_state_dict_strict(model, renamed, source=source)
