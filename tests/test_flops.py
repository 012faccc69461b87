"""Tests of vidlib/flops.py: hand-countable modules, the attention handle, the op filters, and the
published FLOPs of TANet and TIN (from ``results/published.yaml``).

Which count is compared with which figure, and why:

- the mmaction2 TIN metafile (32,962,097,536) and the mmaction2 0.x TANet metafile (43,065,983,104)
  were produced by mmcv's hook counter: conv/linear MACs + 2 x BN elements + ReLU elements + pooling
  input elements, blind to functional convolutions. ``style="mmcv"`` does exactly that and
  reproduces both integers;
- plain fvcore (the default, which counts TAM's functional aggregation conv and leaves out ReLU and
  max pooling) lands within 0.3% of every published figure, well inside the 1% tolerance.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import vidlib
from vidbook.results import published
from vidlib.flops import count_flops


class ConvBnReluPool(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=True)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.bn(self.conv(x)))).flatten(1))


def test_hand_counted_module():
    # conv: 4 out x 8x8 positions x (3 x 3 x 3) = 6912 MACs; fc: 64 x 5 = 320; BN (eval, affine): 2 x 256
    fc = count_flops(ConvBnReluPool(), (1, 3, 8, 8))
    assert fc.by_operator == pytest.approx({"conv": 6912e-9, "batch_norm": 512e-9, "linear": 320e-9})
    assert fc.gflops == pytest.approx((6912 + 512 + 320) * 1e-9)
    assert fc.params == sum(p.numel() for p in ConvBnReluPool().parameters())
    assert fc.unsupported.get("aten::max_pool2d") == 1  # visible, not silently dropped
    # mmcv style adds conv bias (256), ReLU (256) and max-pool input (256) elements
    mm = count_flops(ConvBnReluPool(), (1, 3, 8, 8), style="mmcv")
    assert mm.gflops * 1e9 == pytest.approx(6912 + 320 + 512 + 256 * 3)
    assert mm.by_module["bn"] * 1e9 == pytest.approx(512) and mm.by_module["pool"] * 1e9 == pytest.approx(256)


def test_ops_filter_keeps_only_linear_and_conv():
    fc = count_flops(ConvBnReluPool(), (1, 3, 8, 8), ops=("linear", "conv"))
    assert fc.gflops * 1e9 == pytest.approx(6912 + 320)
    with pytest.raises(ValueError, match="unknown op families"):
        count_flops(ConvBnReluPool(), (1, 3, 8, 8), ops=("softmax",))


class Attention(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_scaled_dot_product_attention_handle():
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 4)
    fc = count_flops(Attention(), (q, k, v))
    # QK^T: 2*3 x 5 x 7 x 8; AV: 2*3 x 5 x 7 x 4
    assert fc.by_operator["scaled_dot_product_attention"] * 1e9 == pytest.approx(6 * 35 * 12)
    assert not fc.unsupported
    assert count_flops(Attention(), (q, k, v), ops=("linear", "conv")).gflops == 0


class FunctionalConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(2, 1, 3, 1))

    def forward(self, x):
        return F.conv2d(x, self.w, padding=(1, 0), groups=2)


def test_functional_conv_counted_by_fvcore_not_by_mmcv_style():
    x = (1, 2, 6, 5)
    assert count_flops(FunctionalConv(), x).gflops * 1e9 == pytest.approx(2 * 6 * 5 * 3)
    assert count_flops(FunctionalConv(), x, style="mmcv").gflops == 0


def test_model_mode_is_restored_and_table_prints():
    model = vidlib.create_model("tsm_tiny").train()
    fc = count_flops(model, (1, 3, 8, 64, 64))
    assert model.training and fc.gflops > 0
    assert fc.table(max_depth=1).splitlines()[0].startswith("(total)")
    assert fc.by_module["backbone"] + fc.by_module["cls_head"] == pytest.approx(fc.gflops)


# --- published figures ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tanet_k400():
    return vidlib.create_model("tanet_r50", num_classes=400)


@pytest.fixture(scope="module")
def tin_sthv1():
    return vidlib.create_model("tin_r50", dataset="sthv1")


def _shape(key):
    return tuple(published(key)["flops"]["input_shape"])


def test_tanet_k400_flops(tanet_k400):
    entry = published("tanet_r50_k400")
    assert _shape("tanet_r50_k400") == (1, 3, 8, 256, 256)  # the 256x256 test view, not 224
    fv = count_flops(tanet_k400, _shape("tanet_r50_k400"), by_module=False)
    assert fv.gflops == pytest.approx(entry["flops"]["value"], rel=0.01)
    mm = count_flops(tanet_k400, _shape("tanet_r50_k400"), by_module=False, style="mmcv")
    assert round(mm.gflops * 1e9) == int(entry["other_versions"]["mmaction2_0x"]["flops_as_printed"])
    at_224 = count_flops(tanet_k400, (1, 3, 8, 224, 224), by_module=False)
    assert at_224.gflops == pytest.approx(entry["flops"]["at_224_g"], rel=0.01)


@pytest.mark.parametrize("key", ["tanet_r50_sthv1_8f", "tanet_r50_sthv1_16f"])
def test_tanet_sthv1_flops(key):
    entry = published(key)
    model = vidlib.create_model("tanet_r50", dataset="sthv1", num_frames=entry["num_frames"])
    assert count_flops(model, _shape(key), by_module=False).gflops == pytest.approx(
        entry["flops"]["value"], rel=0.01
    )


def test_tin_flops(tin_sthv1):
    entry = published("tin_r50_sthv1")
    fv = count_flops(tin_sthv1, _shape("tin_r50_sthv1"), by_module=False)
    assert fv.gflops == pytest.approx(entry["flops"]["value"], rel=0.01)
    mm = count_flops(tin_sthv1, _shape("tin_r50_sthv1"), by_module=False, style="mmcv")
    assert round(mm.gflops * 1e9) == int(entry["flops"]["as_printed"])


def test_tsm_flops_match_the_fvcore_style_1x_metafile():
    entry = published("tsm_r50_k400")
    fv = count_flops(vidlib.create_model("tsm_r50"), _shape("tsm_r50_k400"), by_module=False)
    assert round(fv.gflops, 2) == entry["flops"]["value"]  # 32.88: mmaction2 1.x counts with fvcore


def test_compute_rates_counts_macs_and_bytes_of_each_module():
    """MACs from count_flops, bytes = input + output + weights (float32), so a depthwise conv has about
    1/C of the dense conv's intensity at the same shape; timings are measured, not asserted."""
    from vidlib.flops import compute_rates
    from vidlib.models.csn import conv2_cost

    c, size = 8, (4, 8, 8)
    dense = nn.Conv3d(c, c, 3, padding=1, bias=False)
    depthwise = nn.Conv3d(c, c, 3, padding=1, groups=c, bias=False)
    rows = compute_rates(
        {"dense": (dense, (1, c, *size)), "dw": (depthwise, (1, c, *size))}, warmup=0, repeats=1
    )
    assert [r["name"] for r in rows] == ["dense", "dw"]
    n = c * 4 * 8 * 8  # elements of the input (and of the output)
    for row, mode in zip(rows, ("dense", "ir")):
        cost = conv2_cost(mode, c, size, size)
        assert row["gmacs"] * 1e9 == pytest.approx(cost["macs"])
        assert row["intensity"] == pytest.approx(cost["macs"] / (4 * (2 * n + cost["params"])))
        assert row["ms"] > 0 and row["gmacs_per_s"] == pytest.approx(row["gmacs"] / row["ms"] * 1e3)
    assert rows[0]["intensity"] / rows[1]["intensity"] > c / 2
    assert not dense.training  # run in eval mode
