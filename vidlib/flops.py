"""Counting FLOPs the way papers do, with fvcore, and saying exactly what is counted.

Every figure is **multiply-accumulates (MACs) for one forward pass of the given input**, in units of
1e9 ("GFLOPs" in the papers and in mmaction2 mean GMACs: every entry of ``results/published.yaml`` has
``flops.counted_as: "MACs per view"``, established by exact recount in ``flops.recount_g``).

``style="fvcore"`` (default) is fvcore's ``FlopCountAnalysis`` unchanged, plus one handle:

- convolutions (modules *and* functional ``F.conv*``, any ``groups``): MACs; ``Linear``/``matmul``/
  ``bmm``/``einsum``: MACs; ``batch_norm`` in eval: 2 per element (1 without affine);
  ``adaptive_avg_pool2d``: 1 per input element; norm layers and upsampling as fvcore defines them;
- ``aten::scaled_dot_product_attention`` (not handled by fvcore; added here): the two matmuls,
  QK^T (L*S*E) and AV (L*S*Ev) MACs per batch*head; softmax and scaling are not counted;
- not counted: ReLU/sigmoid/softmax, max pooling, element-wise ``mul``/``add`` (residual adds,
  TAM's excitation, TIN's interpolation), indexing. They appear in ``unsupported`` with their counts
  so nothing is silently skipped.

``style="mmcv"`` reproduces the counter behind the mmaction2 metafile figures (mmcv's
``get_model_complexity_info``, module hooks): matrix-product MACs as above, plus for every module
*called* in the forward pass 2 per element for affine BatchNorm/GroupNorm/LayerNorm/InstanceNorm
(1 without affine), 1 per output element for ReLU-family activations, 1 per input element for
every pooling module (max/avg/adaptive), 1 per output element for a conv bias. Like mmcv, it
only sees ``Conv``/``Linear`` modules: matrix products made by functional calls (TAM's aggregation
``F.conv2d``, +0.06 G = 0.14% of TANet) are left out. This reproduces the mmaction2 metafile figures
of TIN (32,962,097,536) and TANet (43,065,983,104) to within 1e-5.

``ops=("linear", "conv")`` keeps only those operator families (STAM's README counts only Linear
and Conv MACs). Families: ``conv``, ``linear`` (``linear``/``addmm``), ``matmul`` (``matmul``/``mm``/
``bmm``/``einsum``), ``attention`` (scaled_dot_product_attention), ``norm``, ``pool``, ``act``.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass, field

import torch
import torch.nn as nn

__all__ = ["FlopCount", "count_flops", "count_frame_model", "compute_rates", "sdpa_flop_jit"]

_FAMILIES = {
    "conv": {"conv"},
    "linear": {"linear", "addmm"},
    "matmul": {"matmul", "mm", "bmm", "einsum"},
    "attention": {"scaled_dot_product_attention"},
    "norm": {"batch_norm", "group_norm", "layer_norm", "instance_norm"},
    "pool": {"adaptive_avg_pool2d"},
    "upsample": {"upsample_nearest2d", "upsample_bilinear2d", "grid_sampler"},
    "act": set(),
}
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)
_ACTS = (nn.ReLU, nn.ReLU6, nn.PReLU, nn.ELU, nn.LeakyReLU)
_POOLS = (
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
)


def sdpa_flop_jit(inputs, outputs) -> int:
    """fvcore handle for ``aten::scaled_dot_product_attention``: MACs of QK^T plus AV.

    q ``[..., L, E]``, k ``[..., S, E]``, v ``[..., S, Ev]`` -> ``prod(...) * L * S * (E + Ev)``.
    """
    from fvcore.nn.jit_handles import get_shape

    q, k, v = (get_shape(t) for t in inputs[:3])
    batch = math.prod(q[:-2])
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


@dataclass
class FlopCount:
    """The result of :func:`count_flops` (all FLOP figures are GMACs for the whole input batch)."""

    gflops: float
    params: int
    style: str
    input_shapes: list
    by_operator: dict = field(default_factory=dict)  # op name -> GMACs
    by_module: dict = field(default_factory=dict)  # module name ("" = model) -> GMACs
    unsupported: dict = field(default_factory=dict)  # op name -> number of calls not counted

    def table(self, max_depth: int = 2, min_share: float = 0.0) -> str:
        """A plain-text per-module table down to ``max_depth`` dots (modules under ``min_share`` hidden)."""
        rows = [
            (k or "(total)", v)
            for k, v in self.by_module.items()
            if (k.count(".") < max_depth or not k) and v >= min_share * self.gflops
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v:10.4f} G" for k, v in rows)


def _as_inputs(model: nn.Module, inputs) -> tuple:
    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if isinstance(inputs, (tuple, list)) and inputs and all(isinstance(d, int) for d in inputs):
        p = next(model.parameters(), None)
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(tuple(inputs), generator=gen, dtype=p.dtype if p is not None else torch.float32)
        return (x.to(p.device) if p is not None else x,)
    if isinstance(inputs, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in inputs):
        return tuple(inputs)
    raise TypeError(
        f"count_flops: expected a shape tuple, a tensor or a tuple of tensors, got {type(inputs).__name__}"
    )


def _mmcv_elementwise(model: nn.Module, inputs: tuple) -> Counter:
    """One forward pass with mmcv-style hooks: element counts of norms, activations, pools, conv biases."""
    counts: Counter = Counter()

    def hook(name):
        def fn(m, inp, out):
            x = inp[0]
            if isinstance(m, _NORMS):
                affine = getattr(m, "affine", False) or getattr(m, "elementwise_affine", False)
                counts[(name, "norm")] += x.numel() * (2 if affine else 1)
            elif isinstance(m, _ACTS):
                counts[(name, "act")] += out.numel()
            elif isinstance(m, _POOLS):
                counts[(name, "pool")] += x.numel()
            elif isinstance(m, nn.modules.conv._ConvNd) and m.bias is not None:
                counts[(name, "conv")] += out.numel()

        return fn

    handles = [
        m.register_forward_hook(hook(n))
        for n, m in model.named_modules()
        if isinstance(m, _NORMS + _ACTS + _POOLS + (nn.modules.conv._ConvNd,))
    ]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return counts


def _functional_products(model: nn.Module, per: dict) -> Counter:
    """``{(module, op): MACs}`` of matrix products made by functional calls (e.g. TAM's ``F.conv2d``).

    fvcore attributes an op to every module that owns it; an op's *own* module is the innermost one.
    mmcv's counter only sees ``Conv``/``Linear`` modules, so the products whose own module is
    anything else are removed, from that module and from all its ancestors.
    """
    products = set().union(
        _FAMILIES["conv"], _FAMILIES["linear"], _FAMILIES["matmul"], _FAMILIES["attention"]
    )
    modules = dict(model.named_modules())
    out: Counter = Counter()
    for name, cnt in per.items():
        if name not in modules or isinstance(modules[name], (nn.modules.conv._ConvNd, nn.Linear)):
            continue
        children = [f"{name}.{c}" if name else c for c, _ in modules[name].named_children()]
        for op in products & set(cnt):
            own = cnt[op] - sum(per.get(ch, Counter())[op] for ch in children)
            if own:
                for a in _ancestors(name):
                    out[(a, op)] += own
    return out


def _analyse(model: nn.Module, inputs: tuple, by_module: bool, mmcv: bool):
    """Run fvcore (and the mmcv hooks): per-module op counts, hook counts, unsupported ops."""
    with warnings.catch_warnings():  # importing fvcore.nn calls torch.jit.script, deprecated in torch 2.x
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated", category=FutureWarning)
        from fvcore.nn import FlopCountAnalysis

        fa = FlopCountAnalysis(model, inputs).set_op_handle(
            "aten::scaled_dot_product_attention", sdpa_flop_jit
        )
        fa.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        per = fa.by_module_and_operator() if by_module else {"": fa.by_operator()}
        unsupported = dict(fa.unsupported_ops())
    extra = _mmcv_elementwise(model, inputs) if mmcv else Counter()
    return per, extra, unsupported


def _ancestors(name: str) -> list[str]:
    parts = name.split(".") if name else []
    return [""] + [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def count_flops(
    model: nn.Module, inputs, *, by_module: bool = True, ops=None, style: str = "fvcore"
) -> FlopCount:
    """Count the MACs of ``model(*inputs)`` with fvcore (see the module docstring for what is counted).

    Args:
        model: any module; it is run in eval mode (its train/eval mode is restored afterwards).
        inputs: an input shape such as ``(1, 3, 8, 224, 224)`` (a seeded random tensor of the
            model's dtype), a tensor, or a tuple of tensors.
        by_module: fill ``by_module`` (per-module GMACs; set False to skip the bookkeeping).
        ops: operator families to keep, e.g. ``("linear", "conv")``; ``None`` keeps all.
        style: ``"fvcore"`` or ``"mmcv"`` (adds the elementwise terms mmcv's counter uses).
    """
    if style not in ("fvcore", "mmcv"):
        raise ValueError(f"count_flops: style must be 'fvcore' or 'mmcv', got {style!r}")
    unknown = set(ops or ()) - set(_FAMILIES)
    if unknown:
        raise ValueError(f"count_flops: unknown op families {sorted(unknown)}; known: {sorted(_FAMILIES)}")
    keep = None if ops is None else set().union(*(_FAMILIES[o] for o in ops))
    elementwise = set().union(_FAMILIES["norm"], _FAMILIES["pool"])
    inputs = _as_inputs(model, inputs)
    was_training = model.training
    model.eval()
    try:
        per, extra, unsupported = _analyse(model, inputs, by_module or style == "mmcv", style == "mmcv")
    finally:
        model.train(was_training)
    table: dict[str, Counter] = {k: Counter() for k in per}

    def fam_ok(op: str, family: str | None = None) -> bool:
        if keep is None:
            return True
        return op in keep if family is None else family in (ops or ())

    functional = _functional_products(model, per) if style == "mmcv" else {}
    for mod, cnt in per.items():
        for op, n in cnt.items():
            if style == "mmcv" and op in elementwise:
                continue  # replaced by the hook counts below
            if fam_ok(op):
                table[mod][op] += n - functional.get((mod, op), 0)
    for (name, family), n in extra.items():
        if fam_ok("", family):
            for a in _ancestors(name) if by_module else [""]:
                table.setdefault(a, Counter())[f"{family} (mmcv)"] += n
    total = table[""]
    params = sum(p.numel() for p in model.parameters())
    gmacs = {k: sum(c.values()) / 1e9 for k, c in (table.items() if by_module else [("", total)])}
    return FlopCount(
        gflops=gmacs[""],
        params=params,
        style=style,
        input_shapes=[tuple(t.shape) for t in inputs],
        by_operator={k: v / 1e9 for k, v in total.most_common()},
        by_module=gmacs,
        unsupported=unsupported,
    )


def compute_rates(
    modules: dict[str, tuple[nn.Module, tuple]], *, warmup: int = 2, repeats: int = 5
) -> list[dict]:
    """How fast each module turns its multiply-adds into results on this machine.

    ``modules`` maps a name to ``(module, input shape)``. Each module runs in eval
    mode under ``torch.no_grad`` on a seeded random input of its parameters' dtype,
    all of them timed interleaved (:func:`vidlib.utils.time_interleaved`: best of
    ``repeats``). One row per module: ``gmacs`` (:func:`count_flops`, fvcore style),
    ``ms`` (best wall time), ``gmacs_per_s`` and the ``intensity``: multiply-adds per
    byte that must at least cross the memory bus (input, output and weights, once
    each). A dense 3x3x3 convolution with C input channels does 27 C multiply-adds
    per input value; a depthwise one does 27, so it moves about C times as many bytes
    per multiply-add.
    """
    from .utils import time_interleaved

    rows, calls = [], {}
    for name, (module, shape) in modules.items():
        module.eval()
        (x,) = _as_inputs(module, tuple(shape))
        with torch.no_grad():
            out = module(x)
        outs = out if isinstance(out, (tuple, list)) else (out,)  # a backbone's maps
        weights = sum(p.numel() * p.element_size() for p in module.parameters())
        moved = sum(t.numel() * t.element_size() for t in (x, *outs)) + weights
        macs = count_flops(module, (x,), by_module=False).gflops * 1e9
        rows.append(dict(name=name, gmacs=macs / 1e9, intensity=macs / moved))

        def call(m=module, x=x):
            with torch.no_grad():
                m(x)

        calls[name] = call
    best = time_interleaved(calls, warmup=warmup, repeats=repeats)
    for row in rows:
        row["ms"] = 1e3 * best[row["name"]]
        row["gmacs_per_s"] = row["gmacs"] / best[row["name"]]
    return rows


class _Frames(nn.Module):
    """One frame through a frame-wise model's spatial network: ``forward_frames``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_frames(x)


def count_frame_model(model: nn.Module, *, ops=None, embed_dim=None) -> dict:
    """The MACs of a model that encodes every frame on its own (STAM:
    ``forward_frames``), then aggregates the frame embeddings (``aggregate``) and
    classifies (``head``), as ``T x one frame + the aggregation and head``, in GMACs.

    The per-frame network runs once, on one ``[1, 3, img_size, img_size]`` frame, so
    a 64-frame model costs no more to count than an 8-frame one; the sum equals
    :func:`count_flops` of the whole model on one ``[1, 3, T, H, W]`` view (tested).
    ``ops``: as :func:`count_flops`. Returns ``dict(frames=T, frame=..., temporal=...,
    total=...)``.
    """
    size, t = model.img_size, model.num_frames
    dim = embed_dim or model.head.in_features
    frame = count_flops(_Frames(model), (1, 3, size, size), ops=ops, by_module=False)
    rest = nn.Sequential(model.aggregate, model.head)  # [1, T, D] -> logits
    temporal = count_flops(rest, (1, t, dim), ops=ops, by_module=False)
    return dict(
        frames=t,
        frame=frame.gflops,
        temporal=temporal.gflops,
        total=t * frame.gflops + temporal.gflops,
    )
