"""Optimisers, parameter groups and learning-rate schedules, as the mmaction2 recipes define them.

- :func:`param_groups` builds the parameter groups. ``"tsm"`` / ``"tsm_fc_lr5"`` follow mmaction2's
  ``TSMOptimWrapperConstructor`` (used by the TSM, TANet and TIN configs); ``"default"`` is one group
  with weight decay on every parameter (mmaction2's default constructor, used by TPN and CSN);
  ``"no_decay_1d"`` exempts biases, norms and embeddings from weight decay (a common ViT practice).
- :func:`build_optimizer` builds SGD or AdamW from a recipe's ``optimizer`` dict.
- :func:`lr_factor` / :func:`build_scheduler`: iteration-based schedules composed of mmengine-style
  phases (linear warm-up, cosine, multistep), multiplied together as mmengine chains its schedulers.
- :func:`scale_lr`: the linear scaling rule (``--auto-scale-lr``).

The TSM-style groups (``[MM]mmaction/engine/optimizers/tsm_optim_wrapper_constructor.py``):

==========================  ======  =============
group                       lr      weight decay
==========================  ======  =============
first conv weight           x1      wd
first conv bias             x2      0
other conv/Linear weights   x1      wd
other biases                x2      0
BN / GN / LayerNorm         x1      0
last fc weight (fc_lr5)     x5      wd
last fc bias (fc_lr5)       x10     0
==========================  ======  =============

"Last fc" is the last ``nn.Linear`` in ``model.modules()`` order (the classifier of every vidlib model).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

__all__ = [
    "param_groups",
    "build_optimizer",
    "lr_factor",
    "build_scheduler",
    "scale_lr",
    "PARAM_GROUP_POLICIES",
]

PARAM_GROUP_POLICIES = ("default", "tsm", "tsm_fc_lr5", "no_decay_1d")
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)
_CONVS = (nn.modules.conv._ConvNd,)


def _group(name: str, params: list, lr_mult: float, wd_mult: float) -> dict:
    params = [p for p in params if p.requires_grad]
    return {"name": name, "params": params, "lr_mult": lr_mult, "wd_mult": wd_mult}


def _tsm_groups(model: nn.Module, fc_lr5: bool) -> list[dict]:
    first_w, first_b, weights, biases, norms = [], [], [], [], []
    last_fc: nn.Linear | None = None
    n_conv = 0
    for m in model.modules():
        own = [p for p in m.parameters(recurse=False) if p.requires_grad]
        if isinstance(m, _CONVS):
            n_conv += 1
            (first_w if n_conv == 1 else weights).append(m.weight)
            if m.bias is not None:
                (first_b if n_conv == 1 else biases).append(m.bias)
        elif isinstance(m, nn.Linear):
            weights.append(m.weight)
            if m.bias is not None:
                biases.append(m.bias)
            last_fc = m
        elif isinstance(m, _NORMS):
            norms.extend(own)
        elif own:
            names = [n for n, _ in m.named_parameters(recurse=False)]
            raise ValueError(
                f"param_groups('tsm'): module {type(m).__name__} has parameters {names} "
                "with no learning policy "
                "(the TSM policy knows convs, Linear and norm layers); use param_groups='default'"
            )
    if last_fc is None:
        raise ValueError("param_groups('tsm'): the model has no nn.Linear classifier")
    head_w = [last_fc.weight]
    head_b = [last_fc.bias] if last_fc.bias is not None else []
    weights = [p for p in weights if p is not last_fc.weight]
    biases = [p for p in biases if p is not last_fc.bias]
    if not fc_lr5:
        weights, biases, head_w, head_b = weights + head_w, biases + head_b, [], []
    groups = [
        _group("first_conv_weight", first_w, 1, 1),
        _group("first_conv_bias", first_b, 2, 0),
        _group("normal_weight", weights, 1, 1),
        _group("normal_bias", biases, 2, 0),
        _group("norm", norms, 1, 0),
        _group("last_fc_weight", head_w, 5, 1),
        _group("last_fc_bias", head_b, 10, 0),
    ]
    return [g for g in groups if g["params"]]


def _no_decay_1d_groups(model: nn.Module) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            is_embedding = "pos_embed" in name or "cls_token" in name
            (no_decay if p.ndim <= 1 or is_embedding else decay).append(p)
    return [g for g in (_group("decay", decay, 1, 1), _group("no_decay", no_decay, 1, 0)) if g["params"]]


def param_groups(model: nn.Module, policy: str = "default", *, lr: float, weight_decay: float) -> list[dict]:
    """Parameter groups with absolute ``lr`` / ``weight_decay`` and their ``lr_mult`` / ``wd_mult``.

    Args:
        policy: ``"default"`` (one group, wd everywhere), ``"tsm"`` (TSM groups without fc_lr5),
            ``"tsm_fc_lr5"`` (with the x5 / x10 classifier), ``"no_decay_1d"``.
        lr, weight_decay: the base values; each group gets ``lr * lr_mult`` and ``weight_decay * wd_mult``.

    Only parameters with ``requires_grad`` are included (frozen BN of CSN stays out); every trainable
    parameter lands in exactly one group (checked).
    """
    if policy == "default":
        groups = [_group("all", [p for p in model.parameters() if p.requires_grad], 1, 1)]
    elif policy in ("tsm", "tsm_fc_lr5"):
        groups = _tsm_groups(model, fc_lr5=policy == "tsm_fc_lr5")
    elif policy == "no_decay_1d":
        groups = _no_decay_1d_groups(model)
    else:
        raise ValueError(f"unknown param_groups policy {policy!r}; choose from {PARAM_GROUP_POLICIES}")
    seen = [id(p) for g in groups for p in g["params"]]
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    if len(seen) != len(set(seen)) or set(seen) != trainable:
        raise RuntimeError(
            f"param_groups({policy!r}): {len(trainable)} trainable parameters but {len(seen)} "
            f"grouped ({len(set(seen))} distinct)"
        )
    for g in groups:
        g["lr"], g["weight_decay"] = lr * g["lr_mult"], weight_decay * g["wd_mult"]
    return groups


def build_optimizer(model: nn.Module, cfg: dict) -> torch.optim.Optimizer:
    """An optimiser from a recipe's ``optimizer`` dict.

    ``cfg``: ``name`` (``"sgd"`` or ``"adamw"``), ``lr``, ``weight_decay``, ``param_groups`` (policy,
    default ``"default"``), and ``momentum`` / ``nesterov`` (SGD) or ``betas`` / ``eps`` (AdamW).
    """
    cfg = dict(cfg)
    name, lr, wd = cfg.pop("name").lower(), cfg.pop("lr"), cfg.pop("weight_decay", 0.0)
    groups = param_groups(model, cfg.pop("param_groups", "default"), lr=lr, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(
            groups,
            lr=lr,
            momentum=cfg.pop("momentum", 0.9),
            nesterov=cfg.pop("nesterov", False),
            weight_decay=wd,
            **cfg,
        )
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=wd, **cfg)
    raise ValueError(f"unknown optimizer {name!r}; choose 'sgd' or 'adamw'")


def scale_lr(lr: float, batch_size: int, base_batch_size: int) -> float:
    """The linear scaling rule: ``lr * batch_size / base_batch_size`` (total batch over all GPUs)."""
    if batch_size <= 0 or base_batch_size <= 0:
        raise ValueError(f"batch sizes must be positive, got {batch_size} and {base_batch_size}")
    return lr * batch_size / base_batch_size


def _phase_factor(phase: dict, it: int, iters_per_epoch: int, epochs: int | None = None) -> float:
    """One mmengine-style scheduler phase; ``begin``/``end``/``T_max``/``milestones`` are in epochs.

    A phase without ``end`` lasts until the end of training (``epochs``).
    """
    by_iter = phase.get("by", "epoch") == "iter"  # mmengine's convert_to_iter_based=True
    unit = iters_per_epoch if by_iter else 1
    step = it if by_iter else it // iters_per_epoch
    begin, end = phase.get("begin", 0) * unit, phase.get("end", epochs or math.inf) * unit
    if step < begin or end <= begin:  # not started yet, or an empty phase
        return 1.0
    s = min(step, end - 1) - begin  # a phase keeps its last value after ``end``
    kind = phase["name"]
    if kind == "linear":  # mmengine LinearLR: start -> end factor over end - begin - 1 steps
        start, stop = phase.get("start_factor", 1 / 3), phase.get("end_factor", 1.0)
        total = max(end - begin - 1, 1)
        return start + (stop - start) * min(s, total) / total
    if kind == "cosine":  # mmengine CosineAnnealingLR with eta_min = eta_min_factor * lr
        t_max = phase.get("T_max", (end - begin) / unit) * unit
        floor = phase.get("eta_min_factor", 0.0)
        return floor + (1 - floor) * (1 + math.cos(math.pi * s / t_max)) / 2
    if kind == "multistep":
        return phase.get("gamma", 0.1) ** sum(s >= m * unit for m in phase["milestones"])
    raise ValueError(f"unknown schedule phase {kind!r}; choose 'linear', 'cosine' or 'multistep'")


def lr_factor(schedule: list[dict], it: int, iters_per_epoch: int, epochs: int | None = None) -> float:
    """The lr multiplier for (0-based) iteration ``it``: the product of every phase's factor.

    Each phase is a dict like mmengine's ``param_scheduler`` entries, e.g.
    ``dict(name="linear", start_factor=0.1, begin=0, end=1, by="iter")``,
    ``dict(name="cosine", begin=1, end=40, T_max=39, by="iter")``,
    ``dict(name="multistep", milestones=[20, 40], gamma=0.1)`` (``by="epoch"`` is the default: the
    factor changes at epoch boundaries). ``epochs`` ends the phases that give no ``end``.
    """
    if iters_per_epoch <= 0:
        raise ValueError(f"iters_per_epoch must be positive, got {iters_per_epoch}")
    return math.prod(_phase_factor(p, it, iters_per_epoch, epochs) for p in schedule)


def build_scheduler(
    optimizer: torch.optim.Optimizer, schedule: list[dict], iters_per_epoch: int, epochs: int | None = None
):
    """A ``LambdaLR`` stepped once per iteration; group ``g`` gets ``g["initial_lr"] * lr_factor(...)``."""
    for p in schedule:  # validate eagerly so a typo fails before training starts
        _phase_factor(p, 0, iters_per_epoch, epochs)
        if p["name"] == "cosine" and "end" not in p and not epochs:
            raise ValueError("a cosine phase without 'end' needs the number of epochs")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda it: lr_factor(schedule, it, iters_per_epoch, epochs)
    )
