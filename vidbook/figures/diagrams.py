"""The book's figures: block diagrams of the papers' modules and plots of what a trained module computes.

Chapters call these in hidden cells, so a page shows the figure and the library keeps the drawing code
(one place to fix, tested like the rest). Every function returns the matplotlib ``Figure``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = [
    "block_diagram",
    "tam_branches",
    "tam_maps",
    "tsm_shift",
    "tin_mixing",
    "tin_learning",
    "tpn_neck",
    "TPN_NECK_KEYS",
    "speed_curves",
    "csn_channel_graph",
    "csn_change_share",
    "stam_overview",
    "stam_attention",
    "peak_share",
]


def block_diagram(boxes: dict, arrows: list, *, size=(10, 4.2), limits=(10.4, 4.6), labels=()):
    """Boxes and arrows on a blank canvas.

    Args:
        boxes: ``{name: (x, y, w, h, text, colour)}``.
        arrows: ``[(from_xy, to_xy)]`` or ``[(from_xy, to_xy, style_dict)]``.
        labels: ``[(x, y, text, colour)]`` free text.
    """
    fig, ax = plt.subplots(figsize=size)
    ax.set_xlim(0, limits[0]), ax.set_ylim(0, limits[1]), ax.axis("off")
    for x, y, w, h, text, colour in boxes.values():
        ax.add_patch(plt.Rectangle((x, y), w, h, facecolor=colour, edgecolor="black", lw=1))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8.5)
    for a, b, *style in arrows:
        ax.annotate(
            "", xy=b, xytext=a, arrowprops={"arrowstyle": "->", "lw": 1.2, **(style[0] if style else {})}
        )
    for x, y, text, colour in labels:
        ax.text(x, y, text, ha="center", color=colour)
    return fig


def tam_branches():
    """TAM's two branches (Liu et al., arXiv 2005.06803, Fig. 2): local importance map and global kernel."""
    boxes = {
        "x": (0.1, 2.0, 1.3, 0.7, "X\n[C, T, H, W]", "#eeeeee"),
        "pool": (1.9, 2.0, 1.3, 0.7, "spatial avg\n$\\hat X$: [C, T]", "#dddddd"),
        "l1": (3.7, 3.4, 1.7, 0.7, "Conv1D k=3\nC → C/β, BN, ReLU", "#cfe2f3"),
        "l2": (5.8, 3.4, 1.5, 0.7, "Conv1D k=1\nC/β → C, σ", "#cfe2f3"),
        "s": (7.7, 3.4, 1.1, 0.7, "s: [C, T]", "#9fc5e8"),
        "g1": (3.7, 0.6, 1.7, 0.7, "FC T → αT\nBN, ReLU", "#fce5cd"),
        "g2": (5.8, 0.6, 1.5, 0.7, "FC αT → K\nsoftmax", "#fce5cd"),
        "w": (7.7, 0.6, 1.1, 0.7, "w: [C, K]", "#f9cb9c"),
        "xs": (7.7, 2.0, 1.1, 0.7, "X ⊙ s", "#d9ead3"),
        "y": (9.1, 2.0, 1.2, 0.7, "K-tap temporal\nconv with w\n→ Y", "#b6d7a8"),
    }
    arrows = [
        ((1.4, 2.35), (1.9, 2.35)),
        ((3.2, 2.5), (3.7, 3.6)),
        ((3.2, 2.2), (3.7, 1.0)),
        ((5.4, 3.75), (5.8, 3.75)),
        ((7.3, 3.75), (7.7, 3.75)),
        ((5.4, 0.95), (5.8, 0.95)),
        ((7.3, 0.95), (7.7, 0.95)),
        ((8.25, 3.4), (8.25, 2.7)),
        ((8.8, 2.35), (9.1, 2.35)),
        ((8.8, 0.95), (9.6, 2.0)),
        ((0.75, 2.0), (7.7, 2.2), dict(lw=1, ls="--", connectionstyle="arc3,rad=0.25", color="gray")),
    ]
    labels = [
        (4.6, 4.35, "local branch L: location-sensitive importance map", "#0b5394"),
        (
            4.6,
            0.2,
            "global branch G: location-invariant adaptive kernel (one per video and channel)",
            "#b45f06",
        ),
    ]
    return block_diagram(boxes, arrows, labels=labels)


def tam_maps(clip, s_fwd, s_rev, w_fwd, w_rev, name: str = "TAM"):
    """A clip's frames, one TAM's importance map ``s`` and kernels ``w``, for the clip and its reversal.

    Args:
        clip: ``[3, T, H, W]`` (any normalisation; shown min-max scaled).
        s_fwd, s_rev: ``[C, T]`` importance maps of the clip and of the reversed clip.
        w_fwd, w_rev: ``[C, K]`` kernels (tap 0 weighs the previous frame, tap K-1 the next one).
    """
    frames = np.asarray(clip).transpose(1, 2, 3, 0)  # [3, T, H, W] -> [T, H, W, 3]
    frames = (frames - frames.min()) / max(float(frames.max() - frames.min()), 1e-8)
    s_fwd, s_rev, w_fwd, w_rev = (np.asarray(a) for a in (s_fwd, s_rev, w_fwd, w_rev))
    t = len(frames)
    fig = plt.figure(figsize=(11, 6.5))
    for i in range(t):
        ax = fig.add_subplot(4, t, i + 1)
        ax.imshow(frames[i]), ax.axis("off"), ax.set_title(f"t={i}", fontsize=8)
    ax = fig.add_subplot(4, 2, 3)
    ax.imshow(s_fwd, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set(title=f"importance map s ({name}), forward", xlabel="t", ylabel="channel")
    ax = fig.add_subplot(4, 2, 4)
    ax.plot(s_fwd.mean(0), "o-", label="forward clip")
    ax.plot(s_rev.mean(0)[::-1], "s--", label="reversed clip (re-reversed in time)")
    ax.set(title="mean importance over channels", xlabel="t", ylim=(0, 1)), ax.legend(fontsize=8)
    ax = fig.add_subplot(2, 2, 3)
    ax.imshow(w_fwd[w_fwd[:, 0].argsort()].T, aspect="auto", cmap="magma", vmin=0, vmax=1)
    ax.set(title="adaptive kernels w (channels sorted by tap 0), forward", xlabel="channel", ylabel="tap k")
    ax = fig.add_subplot(2, 2, 4)
    ks = np.arange(w_fwd.shape[1])
    ax.bar(ks - 0.2, w_fwd.mean(0), 0.4, label="forward clip")
    ax.bar(ks + 0.2, w_rev.mean(0), 0.4, label="reversed clip")
    ax.set(title="mean kernel over channels", xlabel="tap k (0 = past, K-1 = future)", ylim=(0, 1))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _frame_grid(ax, values, title, zero_label="0"):
    """Channels x frames grid, each cell labelled with the frame its value came from (0: zero padding)."""
    c, t = values.shape
    cmap = plt.get_cmap("tab10")
    for ci in range(c):
        for ti in range(t):
            v = values[ci, ti]
            colour = "white" if v == 0 else cmap((int(v) - 1) % 10)
            ax.add_patch(plt.Rectangle((ti, c - 1 - ci), 1, 1, facecolor=colour, edgecolor="black", lw=0.6))
            ax.text(
                ti + 0.5,
                c - 0.5 - ci,
                zero_label if v == 0 else f"{int(v) - 1}",
                ha="center",
                va="center",
                fontsize=7,
            )
    ax.set_xlim(0, t), ax.set_ylim(0, c), ax.set_aspect("equal")
    ax.set_xticks(np.arange(t) + 0.5, [str(i) for i in range(t)]), ax.set_yticks([])
    ax.set(title=title, xlabel="frame t")


def tsm_shift(num_segments: int = 6, channels: int = 8, shift_div: int = 4):
    """TSM's shift (Lin et al., arXiv 1811.08383, Fig. 1) computed by ``vidlib.models.tsm.temporal_shift``.

    Every cell of a frame is labelled with its frame number; after the shift a cell shows the frame its
    value now comes from: the first fold from the next frame, the second from the previous one, zero
    (white) where a fold leaves the clip.
    """
    import torch

    from vidlib.models.tsm import temporal_shift

    t, c = num_segments, channels
    x = torch.arange(1, t + 1, dtype=torch.float32).view(t, 1, 1, 1).expand(t, c, 1, 1)  # [T, C, 1, 1]
    out = temporal_shift(x.contiguous(), t, shift_div)  # [T, C, 1, 1]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    _frame_grid(axes[0], x[:, :, 0, 0].T.numpy(), "input: channel x frame")
    _frame_grid(axes[1], out[:, :, 0, 0].T.numpy(), f"after the shift (shift_div={shift_div})")
    fold = c // shift_div
    for y0, text in ((c - fold, "from t+1"), (c - 2 * fold, "from t-1"), (0, "unchanged")):
        axes[1].text(
            t + 0.15, y0 + (fold if text != "unchanged" else c - 2 * fold) / 2, text, va="center", fontsize=8
        )
    axes[0].set_ylabel("channel")
    fig.tight_layout()
    return fig


def tin_mixing(offsets=(1.0, 0.5, -1.3), num_segments: int = 8):
    """How a (fractional) temporal offset mixes frames: the weight of input frame s in output frame t,
    computed by TIN's ``vidlib.models.tin.linear_sampler`` on one-hot frames.

    An integer offset is a pure shift (TSM's, for offset 1); a fractional one blends the two
    neighbouring integer shifts with weights 1 - f and f.
    """
    import torch

    from vidlib.models.tin import linear_sampler

    t = num_segments
    x = torch.eye(t).view(t, t, 1, 1, 1)  # video s is one-hot at frame s: [N=T, T, C=1, 1, 1]
    fig, axes = plt.subplots(1, len(offsets), figsize=(3.6 * len(offsets), 3.6))
    for ax, o in zip(np.atleast_1d(axes), offsets):
        out = linear_sampler(x, torch.full((t, 1), float(o)))  # [N=T, T, 1, 1, 1]
        mix = out[:, :, 0, 0, 0].T.numpy()  # [output t, input s]
        ax.imshow(mix, cmap="Blues", vmin=0, vmax=1)
        for (ti, si), v in np.ndenumerate(mix):
            if v > 0.005:
                ax.text(
                    si,
                    ti,
                    f"{v:.1f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if v > 0.6 else "black",
                )
        ax.set(title=f"offset {o:+.1f}", xlabel="input frame s", ylabel="output frame t")
    fig.tight_layout()
    return fig


def tin_learning(epochs, offsets: dict, weights: dict, init_offset: float = 0.5):
    """What TIN's sub-nets predict over training, per interlace module (layer).

    Args:
        epochs: ``[E]`` the epochs (0 = before training).
        offsets: ``{layer: array [E, V, 2]}``: (o1, o2) for V validation videos after each epoch.
        weights: ``{layer: array [E, V, T, 2]}``: the WeightNet's per-frame factors.
        init_offset: the designed initial offset (fc2.bias = logit(0.625): +0.5), drawn for reference.
    """
    epochs = np.asarray(epochs)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    cmap = plt.get_cmap("viridis")
    n = len(offsets)
    for i, (layer, o) in enumerate(offsets.items()):
        o, colour = np.asarray(o), cmap(i / max(n - 1, 1))
        for g, style in ((0, "-"), (1, "--")):
            mean, std = o[:, :, g].mean(1), o[:, :, g].std(1)
            axes[g].plot(epochs, mean, style, color=colour, label=layer)
            axes[g].fill_between(epochs, mean - std, mean + std, color=colour, alpha=0.15)
        w = np.asarray(weights[layer])
        axes[2].plot(epochs, w.mean((1, 2, 3)), "-", color=colour, label=layer)
        axes[2].fill_between(
            epochs,
            w.mean((1, 2, 3)) - w.std((1, 2, 3)),
            w.mean((1, 2, 3)) + w.std((1, 2, 3)),
            color=colour,
            alpha=0.15,
        )
    for g, ax in enumerate(axes[:2]):
        ax.axhline(init_offset, color="grey", lw=0.8, ls=":")
        ax.set_title(f"offset o{g + 1} (groups {g + 1}, {g + 3}: +o{g + 1}, -o{g + 1})", fontsize=10)
        ax.set(xlabel="epoch", ylabel="frames", ylim=(-2, 2))
    axes[2].axhline(1.0, color="grey", lw=0.8, ls=":")
    axes[2].set_title("WeightNet factor (mean ± std)", fontsize=10)
    axes[2].set(xlabel="epoch", ylim=(0, 2))
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _dims(shape) -> str:
    """``[N, C, T, H, W]`` (or ``[N, K]``) without the batch, as ``C×T×H×W``."""
    return "×".join(str(d) for d in tuple(shape)[1:])


TPN_NECK_KEYS = ("res4", "res5", "sm4", "tm4", "tm5", "lf1", "lf2", "pf", "logits", "aux")


def tpn_neck(shapes: dict):
    """The TPN neck (Yang et al., arXiv 2004.03548, Fig. 2) as mmaction2 and vidlib build it, labelled
    with measured tensor shapes.

    Args:
        shapes: ``{key: shape}`` with batch-first shapes for the keys of :data:`TPN_NECK_KEYS`: the
            backbone levels (``res4``, ``res5``), the spatially modulated res4 (``sm4``), the temporally
            modulated levels (``tm4``, ``tm5``; also the shapes of the top-down and bottom-up sums), the
            two level fusions (``lf1``, ``lf2``), the pyramid fusion (``pf``) and the logits of the head
            and of the auxiliary head.
    """
    missing = [k for k in TPN_NECK_KEYS if k not in shapes]
    if missing:
        raise KeyError(f"tpn_neck: shapes lacks {missing}")
    d = {k: _dims(v) for k, v in shapes.items()}
    grey, blue, orange, green, red = "#eeeeee", "#cfe2f3", "#fce5cd", "#d9ead3", "#f4cccc"
    boxes = {
        "res5": (0.1, 3.6, 1.5, 0.8, f"res5\n{d['res5']}", grey),
        "res4": (0.1, 1.6, 1.5, 0.8, f"res4\n{d['res4']}", grey),
        "sm5": (2.0, 3.6, 1.6, 0.8, "identity", blue),
        "sm4": (2.0, 1.6, 1.6, 0.8, f"1×3×3 s2 conv\n→ {d['sm4']}", blue),
        "tm5": (4.0, 3.6, 1.7, 0.8, f"3×1×1 conv g32,\nmax pool T/8\n→ {d['tm5']}", orange),
        "tm4": (4.0, 1.6, 1.7, 0.8, f"3×1×1 conv g32,\nmax pool T/8\n→ {d['tm4']}", orange),
        "td": (6.2, 1.6, 1.4, 0.8, "top-down\nM4 + M5", green),
        "bu": (6.2, 3.6, 1.4, 0.8, "bottom-up\nM5 + conv(M4)", green),
        "lf1": (8.0, 1.6, 1.5, 0.8, f"level fusion 1\n→ {d['lf1']}", green),
        "lf2": (8.0, 3.6, 1.5, 0.8, f"level fusion 2\n→ {d['lf2']}", green),
        "pf": (9.9, 2.5, 1.6, 1.0, f"concat,\npyramid fusion\n→ {d['pf']}", green),
        "head": (9.9, 0.9, 1.5, 0.7, f"pool, fc\n→ logits {d['logits']}", grey),
        "aux": (
            2.0,
            0.1,
            3.7,
            0.8,
            f"auxiliary head (training only, loss × 0.5):\n1×3×3 s2 conv, pool, fc → {d['aux']}",
            red,
        ),
    }
    arrows = [
        ((1.6, 4.0), (2.0, 4.0)),
        ((1.6, 2.0), (2.0, 2.0)),
        ((3.6, 4.0), (4.0, 4.0)),
        ((3.6, 2.0), (4.0, 2.0)),
        ((5.7, 4.0), (6.2, 4.0)),  # M5 into the bottom-up sum
        ((5.7, 2.0), (6.2, 2.0)),  # M4 into the top-down sum
        ((5.7, 3.8), (6.2, 2.3)),  # M5 flows down
        ((6.9, 2.4), (6.9, 3.6)),  # cascade: the top-down M4 flows up
        ((7.6, 2.0), (8.0, 2.0)),
        ((7.6, 4.0), (8.0, 4.0)),
        ((9.5, 2.0), (9.9, 2.7)),
        ((9.5, 4.0), (9.9, 3.3)),
        ((10.7, 2.5), (10.7, 1.6)),
        ((0.85, 1.6), (2.0, 0.45), dict(ls="--", color="#990000")),
    ]
    labels = [
        (2.8, 4.75, "spatial modulation", "#0b5394"),
        (4.85, 4.75, "temporal modulation", "#b45f06"),
        (7.75, 4.75, "information flow, level fusion", "#38761d"),
    ]
    return block_diagram(boxes, arrows, labels=labels, size=(12, 5.0), limits=(11.6, 5.0))


def speed_curves(speeds, curves: dict, *, ylabel: str = "top-1 (%)", title: str | None = None, ax=None):
    """Accuracy against playback speed, one line per model with a band of ± one std over seeds.

    Args:
        speeds: ``[K]`` playback factors (1 = as trained; 2 = twice as fast).
        curves: ``{label: array [S, K]}``: the metric per seed and speed.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.6, 3.8))
    else:
        fig = ax.figure
    speeds = np.asarray(speeds, dtype=float)
    for label, values in curves.items():
        v = np.asarray(values, dtype=float).reshape(-1, len(speeds))
        mean, std = v.mean(0), v.std(0)
        ax.plot(speeds, mean, "o-", label=label)
        ax.fill_between(speeds, mean - std, mean + std, alpha=0.15)
    ax.axvline(1.0, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log", base=2)
    ax.set_xticks(speeds, [f"×{s:g}" for s in speeds])
    ax.minorticks_off()
    ax.set(xlabel="playback speed (sampling interval ÷ the trained one)", ylabel=ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def csn_channel_graph(channels: int = 4):
    """Which channels interact in a bottleneck's conv2 (Tran et al., arXiv 1904.02811, Fig. 2):
    a dense 3x3x3 conv connects every input channel to every output channel; ip-CSN keeps
    those interactions in a 1x1x1 conv and does the spatio-temporal filtering per channel
    (depthwise 3x3x3); ir-CSN keeps only the depthwise conv. Each panel is titled with its
    weight count from :func:`vidlib.models.csn.conv2_cost` at C = ``channels``.
    """
    from vidlib.models.csn import conv2_cost

    c = channels
    ys = np.arange(c)[::-1]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    layers = {  # columns of channel nodes; edges between consecutive columns: "all" or "one"
        "dense": [("3x3x3", "all")],
        "ip": [("1x1x1", "all"), ("3x3x3 depthwise", "one")],
        "ir": [("3x3x3 depthwise", "one")],
    }
    names = {"dense": "dense 3D conv (R3D)", "ip": "ip-CSN", "ir": "ir-CSN"}
    for ax, (mode, steps) in zip(axes, layers.items()):
        for j, (label, kind) in enumerate(steps):
            x0, x1 = 2 * j, 2 * j + 2
            for a in range(c):
                for b in range(c):
                    if kind == "all" or a == b:
                        ax.plot([x0, x1], [ys[a], ys[b]], color="#3d85c6", lw=0.8, zorder=1)
            ax.text((x0 + x1) / 2, c - 0.2, label, ha="center", fontsize=8.5)
        for j in range(len(steps) + 1):
            ax.scatter(np.full(c, 2 * j), ys, s=120, color="#f6b26b", edgecolor="black", zorder=2)
        params = conv2_cost(mode, c, (1, 1, 1), (1, 1, 1))["params"]
        ax.set_title(f"{names[mode]}: {params} weights at C = {c}", fontsize=10)
        ax.set_xlim(-0.5, 4.5), ax.set_ylim(-0.7, c + 0.2), ax.axis("off")
    fig.tight_layout()
    return fig


def _stage_label(name: str) -> str:
    """``"backbone.layer2.0.conv2.0.conv"`` -> ``"res3 (layer2)"``: paper stage name, then the code's."""
    parts = name.split(".")
    layer = next((p for p in parts if p.startswith("layer") and p[5:].isdigit()), None)
    return f"res{int(layer[5:]) + 1}\n({layer})" if layer else name


def csn_change_share(before: dict, after: dict, *, labels=("at initialisation", "trained")):
    """What the depthwise filters of a CSN do in time: each filter's
    :func:`~vidbook.probes.change_share` (0: it averages neighbouring frames; 1: it responds
    only to change), one column of dots per depthwise convolution, before and after training.
    ``before`` and ``after`` map module names to ``[C, kt]`` profiles
    (:func:`~vidbook.probes.temporal_profiles`), with the same names.
    """
    from ..probes import change_share

    if list(before) != list(after):
        raise ValueError(
            f"csn_change_share: other convolutions before {list(before)} and after {list(after)}"
        )
    rng = np.random.default_rng(0)  # horizontal jitter only
    fig, ax = plt.subplots(figsize=(max(5.5, 1.6 * len(after)), 3.6))
    for profiles, label, color, dx in (
        (before, labels[0], "#999999", -0.18),
        (after, labels[1], "#3d85c6", 0.18),
    ):
        for i, p in enumerate(profiles.values()):
            share = change_share(p).numpy()
            ax.scatter(i + dx + rng.uniform(-0.08, 0.08, len(share)), share, s=9, color=color, alpha=0.6,
                       label=label if i == 0 else None)  # fmt: skip
            ax.plot([i + dx - 0.14, i + dx + 0.14], [share.mean()] * 2, color="black", lw=2)
    kt = next(iter(after.values())).shape[1]
    ax.axhline((kt - 1) / kt, color="#999999", lw=0.8, ls=":")
    ax.set_xticks(range(len(after)), [_stage_label(n) for n in after])
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("change share of a filter")
    ax.set_title("depthwise filters in time: 0 = average frames, 1 = respond to change", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def stam_overview(num_frames: int = 8):
    """STAM's two stages: a ViT on every frame (its CLS token after the final LayerNorm), then a temporal
    transformer over the T frame tokens and a video CLS token, which the head classifies."""
    fig, ax = plt.subplots(figsize=(10, 3.6))
    t_show = min(num_frames, 6)
    xs = np.linspace(0.6, 6.4, t_show)
    for i, x in enumerate(xs):
        last = i == t_show - 1 and t_show < num_frames
        label = f"frame {num_frames}" if last else f"frame {i + 1}"
        ax.add_patch(plt.Rectangle((x - 0.4, 0.2), 0.8, 0.6, facecolor="#dde6f0", edgecolor="black", lw=0.8))
        ax.text(x, 0.5, label, ha="center", va="center", fontsize=7)
        ax.add_patch(plt.Rectangle((x - 0.4, 1.15), 0.8, 0.7, facecolor="#f6d7b0", edgecolor="black", lw=0.8))
        ax.text(x, 1.5, "ViT\n(shared)", ha="center", va="center", fontsize=7)
        ax.annotate("", (x, 1.15), (x, 0.8), arrowprops=dict(arrowstyle="->", lw=0.8))
        ax.add_patch(
            plt.Rectangle((x - 0.25, 2.25), 0.5, 0.35, facecolor="#c9e4c5", edgecolor="black", lw=0.8)
        )
        ax.text(x, 2.42, f"$z_{{{num_frames if last else i + 1}}}$", ha="center", va="center", fontsize=8)
        ax.annotate("", (x, 2.25), (x, 1.85), arrowprops=dict(arrowstyle="->", lw=0.8))
    if t_show < num_frames:
        ax.text((xs[-2] + xs[-1]) / 2, 0.5, "...", ha="center", va="center", fontsize=12)
    ax.add_patch(plt.Rectangle((-0.35, 2.25), 0.5, 0.35, facecolor="#f4cccc", edgecolor="black", lw=0.8))
    ax.text(-0.1, 2.42, "$c$", ha="center", va="center", fontsize=8)
    ax.add_patch(plt.Rectangle((-0.5, 2.95), 7.4, 0.75, facecolor="#e8e0f0", edgecolor="black", lw=0.8))
    ax.text(
        3.2,
        3.32,
        "+ temporal position embedding;  temporal transformer: global attention over "
        "the T+1 tokens (post-norm layers)",
        ha="center",
        va="center",
        fontsize=8,
    )
    for x in [-0.1, *xs]:
        ax.annotate("", (x, 2.95), (x, 2.6), arrowprops=dict(arrowstyle="->", lw=0.8))
    ax.add_patch(plt.Rectangle((7.5, 2.95), 1.3, 0.75, facecolor="#fff2cc", edgecolor="black", lw=0.8))
    ax.text(8.15, 3.32, "LayerNorm,\nhead", ha="center", va="center", fontsize=8)
    ax.annotate("", (7.5, 3.32), (6.9, 3.32), arrowprops=dict(arrowstyle="->", lw=0.8))
    ax.text(8.15, 2.55, "video CLS\n-> logits", ha="center", va="center", fontsize=7)
    ax.text(-0.1, 1.9, "video\nCLS", ha="center", va="center", fontsize=7)
    ax.set_xlim(-0.8, 9.0), ax.set_ylim(0, 3.9), ax.axis("off")
    ax.set_title(f"STAM on a clip of T = {num_frames} frames (one view)", fontsize=10)
    fig.tight_layout()
    return fig


def stam_attention(attn_fwd, attn_rev, *, clip=None, title: str = "temporal attention of the video CLS"):
    """What STAM's video CLS token attends to in every temporal layer, for a clip and for the same clip
    played backwards.

    Args:
        attn_fwd, attn_rev: ``[layers, heads, T+1, T+1]`` weights of one clip and of its reversal
            (:func:`~vidbook.probes.temporal_attention` for one video); row 0 / column 0 is the CLS.
        clip: optional ``[3, T, H, W]`` frames of the forward clip, shown above (min-max scaled).
    The reversed clip's weights are drawn in the forward clip's frame order (column t is the same
    frame in both panels), so a model blind to order draws the same picture twice.
    """
    fwd = np.asarray(attn_fwd)[:, :, 0, 1:].mean(1)  # [layers, T]: CLS row, mean over heads
    rev = np.asarray(attn_rev)[:, :, 0, 1:].mean(1)[:, ::-1]
    layers, t = fwd.shape
    rows = 3 if clip is not None else 2
    fig = plt.figure(figsize=(max(6.5, 0.75 * t + 2), 1.3 * rows + 1.6 + 0.25 * layers))
    grid = fig.add_gridspec(rows, t, height_ratios=([0.8] if clip is not None else []) + [1, 1])
    if clip is not None:
        frames = np.asarray(clip).transpose(1, 2, 3, 0)  # [T, H, W, 3]
        frames = (frames - frames.min()) / max(float(frames.max() - frames.min()), 1e-8)
        for i in range(t):
            ax = fig.add_subplot(grid[0, i])
            ax.imshow(frames[i]), ax.axis("off"), ax.set_title(f"t={i + 1}", fontsize=8)
    vmax = float(max(fwd.max(), rev.max()))
    for r, (data, label) in enumerate(
        ((fwd, "clip"), (rev, "reversed clip, drawn in the clip's frame order"))
    ):
        ax = fig.add_subplot(grid[rows - 2 + r, :])
        im = ax.imshow(data, aspect="auto", cmap="viridis", vmin=0, vmax=vmax)
        ax.set_xticks(range(t), [str(i + 1) for i in range(t)])
        ax.set_yticks(range(layers), [f"layer {i + 1}" for i in range(layers)])
        ax.set(title=label, xlabel="frame t of the clip" if r == 1 else None)
        fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
    fig.suptitle(title + " (mean over heads; the rest goes to the CLS itself)", fontsize=10)
    fig.tight_layout()
    return fig


def peak_share(rows, *, peak: float, title: str | None = None):
    """Each model's arithmetic rate as a share of the machine's matmul peak (a horizontal bar each).

    Args:
        rows: mappings with ``model``, ``input`` (a label), ``gmac_per_s`` (GMAC/s of the model's forward),
            as :func:`vidbook.performance.machine_rows` returns them.
        peak: the measured matmul peak in GMAC/s (the dashed line at 100%).
    """
    labels = [f"{r['model']}  {r['input']}" for r in rows]
    share = np.array([100 * r["gmac_per_s"] / peak for r in rows])
    fig, ax = plt.subplots(figsize=(7.2, 0.28 * len(rows) + 1.0))
    y = np.arange(len(rows))[::-1]
    ax.barh(y, share, color=["C0" if "tiny" not in lab else "C1" for lab in labels])
    ax.set_yticks(y, labels, fontsize=8)
    ax.axvline(100, color="grey", ls="--", lw=0.8)
    for yi, v in zip(y, share):
        ax.text(v + 1, yi, f"{v:.0f}%", va="center", fontsize=7)
    ax.set(xlabel=f"share of the fp32 matmul peak ({peak:.0f} GMAC/s)", xlim=(0, max(110, share.max() + 12)))
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
