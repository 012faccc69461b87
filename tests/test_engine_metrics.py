"""Metrics and multi-view evaluation (prob vs score averaging) against hand-computed values."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import Dataset

from vidlib.engine import evaluate
from vidlib.engine.metrics import (
    classification_report,
    confusion_matrix,
    mean_class_accuracy,
    per_class_accuracy,
    topk_accuracy,
)

SCORES = np.array(
    [
        [0.1, 0.7, 0.2],  # pred 1, label 1  ok
        [0.6, 0.3, 0.1],  # pred 0, label 1  (label is 2nd best)
        [0.2, 0.3, 0.5],  # pred 2, label 2  ok
        [0.5, 0.1, 0.4],  # pred 0, label 0  ok
        [0.1, 0.2, 0.7],  # pred 2, label 1  (label is 2nd best)
    ]
)
LABELS = np.array([1, 1, 2, 0, 1])


def test_topk_accuracy_by_hand():
    acc = topk_accuracy(SCORES, LABELS, ks=(1, 2, 5))
    assert acc[1] == pytest.approx(3 / 5) and acc[2] == pytest.approx(5 / 5) and acc[5] == 1.0


def test_confusion_matrix_and_per_class_accuracy_by_hand():
    cm = confusion_matrix(SCORES.argmax(1), LABELS, 3)
    assert cm.tolist() == [[1, 0, 0], [1, 1, 1], [0, 0, 1]]  # rows = true class
    assert per_class_accuracy(cm).tolist() == pytest.approx([1.0, 1 / 3, 1.0])


def test_mean_class_accuracy_by_hand():
    # per class: 0 -> 1/1, 1 -> 1/3, 2 -> 1/1
    assert mean_class_accuracy(SCORES, LABELS) == pytest.approx((1 + 1 / 3 + 1) / 3)
    # overall top-1 weights classes by their support, mean-class does not
    assert topk_accuracy(SCORES, LABELS, (1,))[1] == pytest.approx(0.6)


def test_mean_class_accuracy_with_a_class_without_samples():
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.1, 0.7], [0.1, 0.8, 0.1]])
    labels = np.array([0, 1, 1])  # class 2 has no sample but is predicted once
    assert mean_class_accuracy(scores, labels) == pytest.approx((1.0 + 0.5) / 2)
    # mmaction2 averages over classes in labels OR predictions: class 2 counts as 0
    assert mean_class_accuracy(scores, labels, mmaction2_compat=True) == pytest.approx((1.0 + 0.5 + 0.0) / 3)


def test_classification_report_and_input_checks():
    rep = classification_report(SCORES, LABELS, ["a", "b", "c"])
    assert rep["top1"] == pytest.approx(0.6) and rep["num_samples"] == 5
    assert rep["per_class"][1] == {"class": 1, "name": "b", "support": 3, "accuracy": pytest.approx(1 / 3)}
    with pytest.raises(ValueError, match="labels must lie"):
        topk_accuracy(SCORES, np.array([0, 1, 2, 3, 0]))
    with pytest.raises(ValueError, match="expected scores"):
        topk_accuracy(SCORES[0], LABELS)


# --- multi-view averaging through evaluate() --------------------------------------------------------------
VIEW_LOGITS = [  # one video, three views, three classes
    [10.0, 0.0, 0.0],
    [0.0, 2.0, 0.0],
    [0.0, 2.0, 0.0],
]


class _ViewData(Dataset):
    """One video whose V = 3 views carry their logits in the first pixel row; label 1."""

    def __len__(self):
        return 1

    def __getitem__(self, i):
        clip = torch.zeros(3, 3, 1, 1, 3)  # [V, 3, T, H, W]
        clip[:, 0, 0, 0, :] = torch.tensor(VIEW_LOGITS)
        return clip, 1


class _ReadLogits(nn.Module):
    default_cfg = {"average_clips": "prob"}

    def forward(self, x):  # [B, 3, T, H, W] -> [B, 3]
        return x[:, 0, 0, 0, :]


def _softmax(row):
    e = [math.exp(v) for v in row]
    return [v / sum(e) for v in e]


def test_prob_and_score_averaging_against_hand_computed_values():
    probs = [_softmax(r) for r in VIEW_LOGITS]
    by_hand_prob = [sum(p[c] for p in probs) / 3 for c in range(3)]
    by_hand_score = [sum(r[c] for r in VIEW_LOGITS) / 3 for c in range(3)]
    prob = evaluate(_ReadLogits(), _ViewData(), average_clips="prob", device="cpu")
    score = evaluate(_ReadLogits(), _ViewData(), average_clips="score", device="cpu")
    assert prob["scores"][0].tolist() == pytest.approx(by_hand_prob, rel=1e-6)
    assert score["scores"][0].tolist() == pytest.approx(by_hand_score, rel=1e-6)
    # one confident view dominates the mean of logits, not the mean of probabilities
    assert score["preds"] == [0] and score["top1"] == 0.0
    assert prob["preds"] == [1] and prob["top1"] == 1.0
    assert prob["average_clips"] == "prob" and prob["loss"] is None  # no CE for multi-view data
    # the default comes from the model cfg
    assert evaluate(_ReadLogits(), _ViewData(), device="cpu")["average_clips"] == "prob"


def test_plots_return_figures():
    import matplotlib

    matplotlib.use("Agg")
    from vidbook.figures import plot_confusion, plot_curves

    history = [
        {"epoch": 1, "train_loss": 2.0, "train_top1": 0.2, "val_top1": 0.25},
        {"epoch": 2, "train_loss": 1.5, "train_top1": 0.4, "val_top1": None},
    ]
    fig = plot_curves({"a": {"history": history}, "b": history})
    assert len(fig.axes) == 3 and len(fig.axes[0].lines) == 2
    assert len(fig.axes[2].lines[0].get_xdata()) == 1  # epochs without validation are skipped
    cm = confusion_matrix(SCORES.argmax(1), LABELS, 3)
    fig = plot_confusion(cm, ["a", "b", "c"], title="cm")
    image = fig.axes[0].images[0].get_array()
    assert image[1].tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3])  # row-normalised


def test_pair_accuracy_asks_only_the_pair_question():
    from vidlib.engine.metrics import pair_accuracy, per_pair_accuracy

    pairs = [(0, 1), (2, 3)]
    labels = np.array([0, 1, 2, 3, 4])
    scores = np.array(
        [
            [0.9, 0.1, 0, 0, 0],  # pair 0/1: right
            [0.6, 0.4, 0, 0, 0],  # true 1 scores below its partner 0: wrong within the pair
            [0, 0, 0.2, 0.1, 0.7],  # top-1 wrong (class 4) but 2 > 3: right within the pair
            [0, 0, 0.3, 0.6, 0.1],  # right
            [0, 0, 0, 0, 1.0],  # class 4 has no partner: not a pair video
        ]
    )
    m = pair_accuracy(scores, labels, pairs)
    assert m == dict(top1=0.6, top1_pairs=0.5, pair_acc=0.75, n_pair_videos=4)
    assert per_pair_accuracy(scores, labels, pairs, names=list("abcde")) == {"a / b": 0.5, "c / d": 1.0}
    order_blind = np.ones((4, 5))  # equal scores for a class and its reversal: never "higher"
    assert pair_accuracy(order_blind, labels[:4], pairs)["pair_acc"] == 0.0


def test_chapter_figures_return_figures():
    import matplotlib

    matplotlib.use("Agg")
    import vidlib
    from vidbook import figures, probes

    fig = figures.tsm_shift(num_segments=4, channels=8, shift_div=4)
    assert len(fig.axes) == 2
    fig = figures.tin_mixing(offsets=(1.0, 0.5), num_segments=4)
    mix = fig.axes[1].images[0].get_array()  # offset 0.5: half of frame t, half of frame t-1
    assert np.allclose(np.asarray(mix)[2, 1:3], [0.5, 0.5])
    e = np.arange(3)
    offsets = {"layer1": np.zeros((3, 5, 2))}
    fig = figures.tin_learning(e, offsets, {"layer1": np.ones((3, 5, 4, 2))})
    assert len(fig.axes) == 3 and len(fig.axes[0].lines) == 2  # the layer + the initial offset
    shapes = {k: (1, 8, 1, 2, 2) for k in figures.TPN_NECK_KEYS}
    fig = figures.tpn_neck(dict(shapes, logits=(1, 5), aux=(1, 5)))
    assert any("8×1×2×2" in t.get_text() for t in fig.axes[0].texts)
    with pytest.raises(KeyError, match="aux"):
        figures.tpn_neck({k: v for k, v in shapes.items() if k != "aux"})
    fig = figures.speed_curves([0.5, 1, 2], {"a": np.ones((3, 3)), "b": np.zeros((1, 3))})
    assert len(fig.axes[0].lines) == 3  # two models + the marker at x1
    fig = figures.csn_channel_graph(channels=4)
    dense, ip, ir = fig.axes
    assert (len(dense.lines), len(ip.lines), len(ir.lines)) == (16, 16 + 4, 4)  # channel edges
    assert "432 weights" in dense.get_title() and "124" in ip.get_title() and "108" in ir.get_title()
    net = vidlib.create_model("ipcsn_tiny", num_classes=3)
    profiles = probes.temporal_profiles(net)
    fig = figures.csn_change_share(profiles, profiles)
    ax = fig.axes[0]
    assert len(ax.collections) == 2 * 4 and len(ax.lines) == 2 * 4 + 1  # dots, means, chance
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["res2\n(layer1)", "res3\n(layer2)"]
    with pytest.raises(ValueError, match="other convolutions"):
        figures.csn_change_share(profiles, dict(list(profiles.items())[:2]))


def test_stam_figures():
    import matplotlib

    matplotlib.use("Agg")
    import vidlib
    from vidbook import figures
    from vidbook.probes import temporal_attention

    fig = figures.stam_overview(num_frames=16)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "frame 16" in texts and "frame 6" not in texts and "T = 16" in fig.axes[0].get_title()
    torch.manual_seed(0)
    net = vidlib.create_model("stam_tiny", num_classes=3, num_frames=4).eval()
    clip = torch.rand(3, 4, 32, 32)
    attn = temporal_attention(net, torch.stack([clip, clip.flip(1)]))
    fig = figures.stam_attention(attn[:, 0], attn[:, 1], clip=clip)
    heat = [ax.images[0].get_array() for ax in fig.axes if ax.images and ax.images[0].get_array().ndim == 2]
    assert len(heat) == 2 and heat[0].shape == (2, 4)  # layers x frames, clip and reversed clip
    np.testing.assert_allclose(heat[0], attn[:, 0, :, 0, 1:].mean(1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(heat[1], attn[:, 1, :, 0, 1:].mean(1).numpy()[:, ::-1], rtol=1e-6)
