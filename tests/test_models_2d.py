"""Tests of the 2D temporal models: TSN, TSM, TANet (TAM), TIN (vidlib/models/{resnet2d,tsm,tam,tin}.py).

Equivalence with mmaction2 on the full models lives in ``test_golden_mmaction2.py`` and the checks every
model shares (output shape, gradients, input dtype and shape errors, cfg keys, FLOPs) in
``test_model_contract.py``; here: exact parameter counts (against ``results/published.yaml``), the
dataset protocols, shapes and the temporal operators on hand-worked tensors.
"""

from __future__ import annotations

import pytest
import torch

import vidlib
from vidbook.results import published
from vidlib.models.resnet2d import TINY
from vidlib.models.tam import TAM
from vidlib.models.tin import TemporalInterlace, linear_sampler, tin_shift
from vidlib.models.tsm import resnet_tsm, temporal_shift

TINY_MODELS = ["tsn_tiny", "tsm_tiny", "tanet_tiny", "tin_tiny"]
R50_MODELS = ["tsn_r50", "tsm_r50", "tanet_r50", "tin_r50"]


def test_all_registered():
    assert set(TINY_MODELS + R50_MODELS) <= set(vidlib.list_models())


# --- exact parameter counts (published.yaml <key>.params.recount) --------------------------------
@pytest.mark.parametrize(
    "name, kwargs, key",
    [
        ("tsn_r50", dict(num_classes=400), "tsn_r50_k400"),
        ("tsm_r50", dict(num_classes=400), "tsm_r50_k400"),
        ("tanet_r50", dict(dataset="k400"), "tanet_r50_k400"),
        ("tanet_r50", dict(dataset="sthv1", num_frames=8), "tanet_r50_sthv1_8f"),
        ("tanet_r50", dict(dataset="sthv1", num_frames=16), "tanet_r50_sthv1_16f"),
        ("tin_r50", dict(dataset="sthv1"), "tin_r50_sthv1"),
        ("tin_r50", dict(dataset="sthv2"), "tin_r50_sthv2"),
        ("tin_r50", dict(dataset="k400"), "tin_r50_k400"),
    ],
)
def test_param_count_is_exact(name, kwargs, key):
    model = vidlib.create_model(name, **kwargs)
    assert vidlib.num_params(model) == published(key)["params"]["recount"]


@pytest.mark.parametrize("name", R50_MODELS)
def test_default_cfg_points_to_published_entry(name):
    cfg = vidlib.create_model(name).default_cfg
    entry = published(cfg["published"])
    assert cfg["url"] == entry["checkpoint"]
    assert cfg["num_frames"] == entry["num_frames"] == 8
    assert cfg["test_crops"] == entry["test_protocol"]["as_configured"]["crops"]
    assert cfg["test_crop_size"] == entry["test_protocol"]["as_configured"]["crop_size"]


@pytest.mark.parametrize("name", TINY_MODELS + R50_MODELS)
def test_default_cfg_samplers_build(name):
    from vidlib.data import build_sampler

    cfg = vidlib.create_model(name).default_cfg
    for key in ("sampling", "test_sampling"):
        assert len(build_sampler(cfg[key])(300, test_mode=key == "test_sampling")) >= cfg["num_frames"]


@pytest.mark.parametrize(
    "name, dataset, key, dropout",
    [
        ("tanet_r50", "k400", "tanet_r50_k400", 0.5),
        ("tanet_r50", "sthv1", "tanet_r50_sthv1_8f", 0.6),
        ("tin_r50", "k400", "tin_r50_k400", 0.5),
        ("tin_r50", "sthv1", "tin_r50_sthv1", 0.8),
        ("tin_r50", "sthv2", "tin_r50_sthv2", 0.8),
    ],
)
def test_dataset_selects_the_protocol(name, dataset, key, dropout):
    model = vidlib.create_model(name, dataset=dataset)
    entry = published(key)
    assert model.default_cfg["published"] == key and model.default_cfg["url"] == entry["checkpoint"]
    assert model.num_classes == entry["num_classes"] and model.cls_head.dropout.p == dropout


def test_num_classes_only_sizes_the_head():
    """An explicit ``num_classes`` never switches the protocol: 174 classes on K400 stays K400."""
    for name in ("tanet_r50", "tin_r50"):
        model = vidlib.create_model(name, num_classes=174)
        assert model.default_cfg["published"] == f"{name}_k400" and model.cls_head.fc_cls.out_features == 174
        assert model.cls_head.dropout.p == 0.5
    sth = vidlib.create_model("tanet_r50", dataset="sthv1", num_classes=10, num_frames=16)
    # test = val
    assert sth.default_cfg["published"] == "tanet_r50_sthv1_16f" and sth.default_cfg["test_crops"] == 1
    assert sth.cls_head.fc_cls.out_features == 10 and sth.default_cfg["flip_label_map"][2] == 4
    assert vidlib.create_model("tanet_r50").default_cfg["sampling"]["name"] == "DenseSampleFrames"


@pytest.mark.parametrize("name", ["tanet_r50", "tin_r50", "tpn_tsm_r50"])
def test_unknown_dataset_lists_the_accepted_ones(name):
    with pytest.raises(ValueError, match=rf"{name}: unknown dataset 'kinetics400'; accepted: .*'sthv1'"):
        vidlib.create_model(name, dataset="kinetics400")


# --- shapes -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TINY_MODELS)
@pytest.mark.parametrize("t", [4, 8, 16])
def test_tiny_shape_sweep(name, t):
    model = vidlib.create_model(name, num_classes=7, num_frames=t).eval()
    with torch.no_grad():
        for size in (64, 112, 224):
            assert model(torch.randn(2, 3, t, size, size)).shape == (2, 7)


@pytest.mark.parametrize("name", R50_MODELS)
def test_r50_forward_small(name):
    model = vidlib.create_model(name, num_classes=5).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 8, 64, 64)).shape == (1, 5)


def test_eval_logits_are_the_mean_of_frame_logits():
    model = vidlib.create_model("tsn_tiny", num_classes=6).eval()
    x = torch.randn(2, 3, 5, 64, 64)
    with torch.no_grad():
        per_frame = [model(x[:, :, i : i + 1]) for i in range(5)]  # TSN: every frame alone
        assert torch.allclose(model(x), torch.stack(per_frame).mean(0), atol=1e-6)


def test_resnet_tsm_public_constructor():
    backbone = resnet_tsm(num_segments=8, shift_div=8, out_indices=(2, 3), **TINY)
    outs = backbone(torch.randn(16, 3, 64, 64))
    assert isinstance(outs, tuple) and [o.shape[1] for o in outs] == [256, 512]
    assert [tuple(o.shape[2:]) for o in outs] == [(4, 4), (2, 2)]
    assert "layer1.0.conv1.conv.net.weight" in backbone.state_dict()
    r50 = resnet_tsm(depth=50, out_indices=(2, 3))
    assert r50.stage_channels[2:] == (1024, 2048) and "layer4.2.conv1.conv.net.weight" in r50.state_dict()


# --- clip length ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tsm_tiny", "tanet_tiny", "tin_tiny"])
def test_temporal_models_reject_other_clip_lengths(name):
    """Temporal modules mix exactly T frames (wrong ranks and channels: test_model_contract.py)."""
    model = vidlib.create_model(name, num_frames=8)
    with pytest.raises(ValueError, match=r"\[B, 3, 8, H, W\], got \(1, 3, 6, 64, 64\)"):
        model(torch.randn(1, 3, 6, 64, 64))


def test_tsn_accepts_any_number_of_frames():
    model = vidlib.create_model("tsn_tiny", num_frames=8).eval()
    assert model(torch.randn(1, 3, 25, 64, 64)).shape == (1, 400)


# --- TSM shift on a hand-worked tensor ----------------------------------------------------------
def test_temporal_shift_hand_worked():
    # x[t, c] = 10 t + c for one video of T = 4 frames and C = 8 channels: fold = 8 // 8 = 1
    x = (10 * torch.arange(4.0)[:, None] + torch.arange(8.0)[None, :]).view(4, 8, 1, 1)
    out = temporal_shift(x, num_segments=4, shift_div=8).view(4, 8)
    assert out[:, 0].tolist() == [10, 20, 30, 0]  # channel 0 takes the next frame
    assert out[:, 1].tolist() == [0, 1, 11, 21]  # channel 1 takes the previous frame
    assert torch.equal(out[:, 2:], x.view(4, 8)[:, 2:])
    with pytest.raises(ValueError, match="not a multiple of T = 3"):
        temporal_shift(x, num_segments=3)


# --- TIN shift ----------------------------------------------------------------------------------
def test_tin_shift_hand_worked():
    # x: N=1, T=4, C=2 (G=2 groups of 1 channel), HW=1; x[t, c] = 10 t + c + 1
    x = (10 * torch.arange(4.0)[:, None] + torch.arange(2.0)[None, :] + 1).view(1, 4, 2, 1)
    out = tin_shift(x, torch.tensor([[1, -2]])).view(4, 2)
    assert out[:, 0].tolist() == [0, 1, 11, 21]  # out[t] = x[t - 1]
    assert out[:, 1].tolist() == [22, 32, 0, 0]  # out[t] = x[t + 2]
    assert not tin_shift(x, torch.tensor([[4, -4]])).any()  # shifted out entirely


def test_tin_integer_offsets_equal_plain_shifts():
    x = torch.randn(2, 8, 16, 3, 3, dtype=torch.float64)
    offset = torch.tensor([[1.0, -1.0, 0.0, 2.0], [-2.0, 1.0, -1.0, 0.0]], dtype=torch.float64)
    got = linear_sampler(x, offset)
    assert torch.equal(got.view(2, 8, 16, 9), tin_shift(x.view(2, 8, 16, 9), offset.long()))
    # offset -1 on every channel is TSM's "take the next frame"
    nt = x.view(16, 16, 3, 3)
    tsm = temporal_shift(nt, 8, shift_div=1).view(2, 8, 16, 3, 3)
    assert torch.equal(linear_sampler(x, -torch.ones(2, 4, dtype=torch.float64)), tsm)


def test_tin_fractional_offset_interpolates():
    x = torch.randn(1, 6, 4, 2, 2, dtype=torch.float64)
    half = linear_sampler(x, torch.full((1, 2), 0.25, dtype=torch.float64))
    s0, s1 = (linear_sampler(x, torch.full((1, 2), v, dtype=torch.float64)) for v in (0.0, 1.0))
    assert torch.allclose(half, 0.75 * s0 + 0.25 * s1)


def test_tin_gradcheck_offsets():
    x = torch.randn(2, 5, 4, 2, 3, dtype=torch.float64, requires_grad=True)
    offset = torch.tensor([[0.3, -1.6], [1.2, -0.45]], dtype=torch.float64, requires_grad=True)
    scale = torch.rand(2, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(linear_sampler, (x, offset))
    assert torch.autograd.gradcheck(linear_sampler, (x, offset, scale))
    with torch.no_grad():
        assert torch.allclose(
            linear_sampler(x, offset, scale), linear_sampler(x, offset) * scale[..., None, None]
        )


def test_tin_initialisation():
    tin = TemporalInterlace(64, num_segments=8, shift_div=4)
    assert torch.allclose(tin.offset_net.fc2.bias, torch.full((2,), 0.5108))
    assert 4 * (torch.sigmoid(torch.tensor(0.5108)) - 0.5) == pytest.approx(0.5, abs=1e-4)
    assert not tin.weight_net.conv.bias.any()  # 2 sigmoid(0) = 1
    x = torch.randn(16, 64, 5, 5)
    assert torch.equal(tin(x)[:, 16:], x[:, 16:])  # only C / shift_div channels move


def test_tin_from_a_tsm_checkpoint_fills_all_but_the_interlace_subnets():
    from vidlib.models.tin import init_from_tsm
    from vidlib.weights import CheckpointError, load_mmaction2

    tsm, tin = vidlib.create_model("tsm_tiny"), vidlib.create_model("tin_tiny")
    sd = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in tsm.state_dict().items()}
    init = {k: v.clone() for k, v in tin.state_dict().items()}
    kept = init_from_tsm(tin, sd)
    own = tin.state_dict()
    assert len(kept) == 4 * 8 and all(".net1." in k for k in kept)  # 4 modules x 8 tensors
    assert all(torch.equal(own[k], init[k]) for k in kept)
    conv = "backbone.layer1.0.conv1.conv"
    assert torch.equal(own[conv + ".net2.weight"], sd[conv + ".net.weight"])  # net -> net2
    assert len(sd) + len(kept) == len(own)
    # mmaction2's loader is strict: the TSM file does not fit TIN, and the error names the convs
    with pytest.raises(CheckpointError, match=r"layer1\.0\.conv1\.conv\.net2\.weight"):
        load_mmaction2(vidlib.create_model("tin_tiny"), sd)
    # a key the TIN lacks is reported, not skipped
    with pytest.raises(CheckpointError, match="extra.weight"):
        init_from_tsm(tin, {**sd, "extra.weight": torch.zeros(1)})
    del sd[conv + ".net.weight"]
    with pytest.raises(CheckpointError, match=r"conv1\.conv\.net2\.weight"):
        init_from_tsm(tin, sd)


def test_temporal_conv_starts_as_the_identity_and_mixes_frames():
    from vidlib.models.tsm import TemporalConv

    conv = torch.nn.Conv2d(8, 4, 1)
    tc = TemporalConv(conv, num_segments=4)
    x = torch.randn(8, 8, 3, 3)  # N=2 videos x T=4
    assert torch.allclose(tc(x), conv(x), atol=1e-6)
    with torch.no_grad():
        tc.conv.weight.zero_()
        tc.conv.weight[:, :, 0, 0, 0] = torch.eye(8)  # tap 0: the previous frame
    got = tc(x).view(2, 4, 4, 3, 3)  # out[t] = conv(x[t - 1]), zero at t = 0
    prev = x.view(2, 4, 8, 3, 3)[:, :-1].reshape(6, 8, 3, 3)
    assert torch.allclose(got[:, 1:], conv(prev).view(2, 3, 4, 3, 3), atol=1e-6)
    assert torch.allclose(got[:, 0], conv.bias.view(1, 4, 1, 1).expand(2, 4, 3, 3), atol=1e-6)


# --- TAM ----------------------------------------------------------------------------------------
def _tam_naive(tam: TAM, x: torch.Tensor) -> torch.Tensor:
    """TAM with loops over videos and channels and an explicit zero-padded temporal sum."""
    t = tam.num_segments
    n = x.shape[0] // t
    out = torch.empty_like(x)
    for v in range(n):
        clip = x[v * t : (v + 1) * t]  # [T, C, H, W]
        z = clip.mean(dim=(2, 3)).t()  # [C, T]
        kernels = tam.G(z)  # [C, K]
        s = tam.L(z[None])[0]  # [C, T]
        xs = clip * s.t()[:, :, None, None]
        for c in range(x.shape[1]):
            for i in range(t):
                acc = torch.zeros_like(clip[0, 0])
                for k in range(tam.kernel_size):
                    j = i + k - tam.padding
                    if 0 <= j < t:
                        acc = acc + kernels[c, k] * xs[j, c]
                out[v * t + i, c] = acc
    return out


def test_tam_grouped_conv_equals_naive_loops():
    torch.manual_seed(0)
    tam = TAM(8, num_segments=5).double().eval()
    x = torch.randn(10, 8, 3, 4, dtype=torch.float64)
    assert torch.allclose(tam(x), _tam_naive(tam, x), atol=1e-12)
    kernels = tam.G(torch.randn(4, 5, dtype=torch.float64))
    assert torch.allclose(kernels.sum(-1), torch.ones(4, dtype=torch.float64))  # softmax: weights sum to 1


def test_tam_rejects_bad_shapes():
    tam = TAM(8, num_segments=4)
    with pytest.raises(ValueError, match=r"expected \[N\*4, 8, H, W\]"):
        tam(torch.randn(6, 8, 2, 2))
    with pytest.raises(ValueError, match="num_segments >= 3"):
        TAM(8, num_segments=2)


def test_tanet_keeps_tam_modules_out_of_the_resnet_keys():
    sd = vidlib.create_model("tanet_tiny").state_dict()
    assert "backbone.layer1.0.block.conv1.conv.weight" in sd and "backbone.layer1.0.tam.G.0.weight" in sd
    assert "backbone.layer4.0.block.downsample.conv.weight" in sd


def test_interlace_outputs_lists_every_module_in_order():
    from vidbook.probes import interlace_outputs

    model = vidlib.create_model("tin_tiny", num_classes=5).eval()
    out = interlace_outputs(model, torch.randn(3, 3, 8, 32, 32))
    assert list(out) == [f"layer{i}.0.conv1.conv.net1" for i in range(1, 5)]
    for offsets, weights in out.values():
        assert offsets.shape == (3, 2) and weights.shape == (3, 8, 2)
        assert offsets.abs().max() < 2 and weights.min() > 0 and weights.max() < 2
