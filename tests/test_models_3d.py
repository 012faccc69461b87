"""Tests of the 3D models: SlowOnly / R3D (resnet3d.py), TPN (tpn.py) and CSN (csn.py).

Exact parameter counts and FLOPs are compared with ``results/published.yaml`` (mmaction2 metafiles);
the per-clip logits against mmaction2 itself are in ``test_golden_mmaction2.py`` and the checks every model
shares (output shape, gradients, input errors, cfg keys) in ``test_model_contract.py``. Everything else runs
on the tiny variants and small inputs. The FLOPs of the two 152-layer CSNs at their published shape
(32x256^2) take 35-75 s each on 2 CPU cores and are marked ``slow``; ir-CSN-50 stands for them in
the default run.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

import vidlib
from vidbook.results import published
from vidlib import create_model, num_params
from vidlib.flops import count_flops
from vidlib.models._registry import IMAGENET_MEAN, IMAGENET_STD
from vidlib.models.csn import CSNBottleneck3d
from vidlib.models.resnet3d import inflate_from_2d
from vidlib.weights import CheckpointError, load_mmaction2

TINY_3D = ["slowonly_tiny", "r3d_tiny", "ircsn_tiny", "ipcsn_tiny", "tpn_slowonly_tiny", "tpn_tsm_tiny"]
NAMES_3D = TINY_3D + [
    "slowonly_r50",
    "r3d_r50",
    "tpn_slowonly_r50",
    "tpn_tsm_r50",
    "ircsn_r50",
    "ircsn_r152",
    "ipcsn_r152",
]


def _bns(model):
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


# ------------------------------------------------------------------------------ registry and cfgs
def test_all_3d_models_registered():
    assert set(NAMES_3D) <= set(vidlib.list_models())


@pytest.mark.parametrize("name", ["tpn_slowonly_r50", "tpn_tsm_r50", "ircsn_r152", "ipcsn_r152", "ircsn_r50"])
def test_default_cfg_points_at_a_published_entry(name):
    model = create_model(name)  # each entrypoint's default dataset: tpn_tsm_r50 is sthv1 (174 classes)
    cfg, entry = model.default_cfg, published(model.default_cfg["published"])
    assert model.cls_head.fc_cls.out_features == entry["num_classes"]
    assert cfg["url"] == entry["checkpoint"]
    assert cfg["num_frames"] == entry["num_frames"]
    views = entry["test_protocol"]["as_configured"]
    assert cfg["test_crops"] == views["crops"] and cfg["test_crop_size"] == views["crop_size"]
    test = cfg["test_sampling"]  # 2D models: num_clips segments form one view; twice_sample doubles it
    clips = (2 if test.get("twice_sample") else 1) if test["clip_len"] == 1 else test["num_clips"]
    assert clips * cfg["test_crops"] == views["views"]


# ------------------------------------------------------------------------------ exact parameters
@pytest.mark.parametrize(
    "name, num_classes, key",
    [
        ("tpn_slowonly_r50", 400, "tpn_slowonly_r50_k400"),
        ("tpn_tsm_r50", 174, "tpn_tsm_r50_sthv1"),
        ("ircsn_r152", 400, "ircsn_r152_ig65m_bnfrozen_k400"),
        ("ipcsn_r152", 400, "ipcsn_r152_ig65m_bnfrozen_k400"),
        ("ircsn_r50", 400, "ircsn_r50_ig65m_bnfrozen_k400"),
    ],
)
def test_params_equal_mmaction2(name, num_classes, key):
    model = create_model(name, num_classes=num_classes)
    params = published(key)["params"]
    assert num_params(model) == params["recount"]  # metafile 91498336 / 82445724; README 29.70M ...
    assert round(num_params(model) / 1e6, 2) == round(params["value"], 2)
    if "inference_only" in params:  # TPN: the 0.5-weighted auxiliary head is training-only
        assert model.num_params_inference() == params["inference_only"]
        assert num_params(model.neck.aux_head) == params["recount"] - params["inference_only"]


@pytest.mark.parametrize(
    "name, key", [("ircsn_r152", "ircsn_r152_ig65m_k400"), ("ipcsn_r152", "ipcsn_r152_k400")]
)
def test_vmz_params_exclude_the_batchnorm_affine_parameters(name, key):
    """VMZ's model zoo prints 29.6M / 32.8M: the same nets counted without BN scale and shift."""
    model = create_model(name)
    bn_affine = sum(p.numel() for bn in _bns(model) for p in bn.parameters())
    vmz = published(key)["other_versions"]["vmz"]["params_as_printed"]
    assert f"{(num_params(model) - bn_affine) / 1e6:.1f}M" == vmz


def test_tpn_slowonly_inference_params_are_71_80m():
    model = create_model("tpn_slowonly_r50")
    assert num_params(model.neck.aux_head) == 19_698_064
    assert f"{model.num_params_inference() / 1e6:.2f}M" == "71.80M"


def test_slowonly_r50_params_match_its_metafile():
    assert f"{num_params(create_model('slowonly_r50')) / 1e6:.2f}M" == "32.45M"  # mmaction2 slowonly metafile


# ------------------------------------------------------------------------------ FLOPs
def _flops_case(name, key, style, num_classes=400):
    """Our count of ``name`` at the published single-view shape, within 1% of the published figure."""
    entry = published(key)["flops"]
    model = create_model(name, num_classes=num_classes)
    torch.manual_seed(0)
    result = count_flops(model, tuple(entry["input_shape"]), style=style, by_module=False)
    assert math.isclose(result.gflops, entry["value"], rel_tol=0.01), (
        name,
        style,
        result.gflops,
        entry["value"],
    )
    return result


@pytest.mark.parametrize(
    "name, key, num_classes",
    [
        ("tpn_slowonly_r50", "tpn_slowonly_r50_k400", 400),
        ("tpn_tsm_r50", "tpn_tsm_r50_sthv1", 174),
    ],
)
def test_tpn_flops_mmcv_style(name, key, num_classes):
    """mmaction2's metafile counted mmcv-style (conv/linear MACs + 2 x BN + ReLU + pool elements) with the
    auxiliary head not run; ``style="mmcv"`` reproduces it to 1e-5 (66.0146 G and 54.2029 G)."""
    result = _flops_case(name, key, "mmcv", num_classes)
    assert math.isclose(result.gflops, published(key)["flops"]["value"], rel_tol=1e-4)


def _csn_flops(name, key):
    """mmaction2's CSN counter (conv + fc MACs + 1 x BN + ReLU + pool elements) is not mmcv's; fvcore's
    count (conv + fc MACs + 2 x BN elements) lands within 0.02% of it. Its conv + fc part alone is VMZ's
    "GFLOPs" (96.7 / 108.8 at 32x256^2, although VMZ's table says 224)."""
    result = _flops_case(name, key, "fvcore")
    vmz = published(key).get("other_versions", {}).get("vmz", {})
    if vmz.get("gflops_as_printed"):
        conv_fc = result.by_operator["conv"] + result.by_operator["linear"]
        assert round(conv_fc, 1) == float(vmz["gflops_as_printed"])


def test_ircsn_r50_flops():
    _csn_flops("ircsn_r50", "ircsn_r50_ig65m_bnfrozen_k400")


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, key", [("ircsn_r152", "ircsn_r152_ig65m_k400"), ("ipcsn_r152", "ipcsn_r152_k400")]
)
def test_csn152_flops(name, key):
    _csn_flops(name, key)


def test_tpn_flops_do_not_include_the_aux_head():
    model = create_model("tpn_slowonly_tiny")
    result = count_flops(model, (1, 3, 8, 64, 64))
    assert result.by_module.get("neck.aux_head", 0.0) == 0.0 and result.by_module["neck"] > 0


# ------------------------------------------------------------------------------ shapes
def _ceil_halvings(n: int, times: int) -> int:
    for _ in range(times):
        n = -(-n // 2)
    return n


@pytest.mark.parametrize("t", [4, 8, 16])
@pytest.mark.parametrize("size", [40, 64])
@pytest.mark.parametrize("name", TINY_3D)
def test_shape_sweep(name, t, size):
    model = create_model(name, num_classes=7, num_frames=t).eval()
    x = torch.randn(2, 3, t, size, size)
    with torch.no_grad():
        assert model(x).shape == (2, 7)
        if name.startswith("tpn"):
            neck = model.neck(model.extract_feat(x))
            assert neck.shape == (2, 512, math.ceil(t / 8), _ceil_halvings(size, 5), _ceil_halvings(size, 5))
        else:  # R3D / CSN halve T in res3..res5 (temporal strides 1,2,2,2); SlowOnly keeps T
            res5 = model.backbone(x)[-1]
            t5 = t if name.startswith("slowonly") else _ceil_halvings(t, 3)
            assert res5.shape == (2, 512, t5, _ceil_halvings(size, 5), _ceil_halvings(size, 5))


def test_full_size_forward_small_input():
    """One forward of each full-size architecture on a small clip (shapes only)."""
    x = torch.randn(1, 3, 8, 32, 32)
    for name in ["slowonly_r50", "r3d_r50", "ircsn_r50"]:
        with torch.no_grad():
            assert create_model(name, num_classes=5).eval()(x).shape == (1, 5)


def test_tpn_tsm_rejects_other_clip_lengths():
    model = create_model("tpn_tsm_tiny", num_frames=8).eval()
    with pytest.raises(ValueError, match=r"\[B, 3, 8, H, W\].*\(1, 3, 16, 64, 64\)"):
        model(torch.randn(1, 3, 16, 64, 64))


# ------------------------------------------------------------------------------ TPN specifics
def test_tpn_aux_logits_in_training_and_not_computed_in_eval():
    model = create_model("tpn_slowonly_tiny", num_classes=6)
    calls = []
    model.neck.aux_head.register_forward_hook(lambda *a: calls.append(1))
    x = torch.randn(2, 3, 8, 64, 64)
    model.train()
    logits, extra = model(x, return_aux=True)
    assert logits.shape == extra["aux"].shape == (2, 6) and len(calls) == 1
    assert model.aux_loss_weight == 0.5
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 6)
    assert len(calls) == 1, "eval forward ran the auxiliary head"


def test_tpn_head_equals_the_fully_convolutional_test_path():
    """mmaction2's fcn test: pool, then fc_cls applied as a 1x1x1 conv (``new_cls``) == pool + fc."""
    model = create_model("tpn_slowonly_tiny", num_classes=6).double().eval()
    x = torch.randn(2, 3, 8, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        feat = model.neck(model.extract_feat(x))
        fc = model.cls_head.fc_cls
        fcn = F.conv3d(F.adaptive_avg_pool3d(feat, 1), fc.weight[..., None, None, None], fc.bias).flatten(1)
        torch.testing.assert_close(model(x), fcn, rtol=0, atol=1e-12)


def test_tpn_checkpoint_new_cls_is_dropped_and_reported():
    model = create_model("tpn_slowonly_tiny", num_classes=6).eval()
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    fc = sd["cls_head.fc_cls.weight"]
    sd["cls_head.new_cls.weight"] = fc[..., None, None, None].clone()
    sd["cls_head.new_cls.bias"] = sd["cls_head.fc_cls.bias"].clone()
    other = create_model("tpn_slowonly_tiny", num_classes=6).eval()
    with pytest.warns(UserWarning, match="dropped checkpoint key") as record:
        dropped = load_mmaction2(other, {"state_dict": sd, "meta": {}})
    assert dropped == ["cls_head.new_cls.weight", "cls_head.new_cls.bias"]
    # one warning per key
    assert ["cls_head.new_cls.weight" in str(w.message) for w in record] == [True, False]
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(other(x), model(x))


def test_tpn_structure_follows_the_configs():
    neck = create_model("tpn_slowonly_r50").neck
    for op in neck.temporal_modulation_ops:  # 3x1x1, groups 32, no BN / ReLU, max pool 8 (ceil)
        assert op.conv.conv.groups == 32 and op.conv.conv.kernel_size == (3, 1, 1)
        assert op.conv.bn is None and op.conv.act is None
        assert op.pool.kernel_size == (8, 1, 1) and op.pool.ceil_mode
    assert isinstance(neck.spatial_modulation.spatial_modulation[1], nn.Identity)
    assert neck.spatial_modulation.spatial_modulation[0][0].conv.stride == (1, 2, 2)
    assert neck.downsample_ops[0].conv.bn is None and neck.flow == "cascade"


# ------------------------------------------------------------------------------ CSN specifics
def test_csn_block_structure():
    ir, ip = create_model("ircsn_r50"), create_model("ipcsn_tiny")
    assert ir.backbone.conv1.conv.kernel_size == (3, 7, 7)
    assert [getattr(ir.backbone, f"layer{i}")[0].conv2[0].conv.stride[0] for i in range(1, 5)] == [1, 2, 2, 2]
    assert all(bn.eps == 1e-3 for bn in _bns(ir.backbone))
    block = ir.backbone.layer2[1]
    assert isinstance(block, CSNBottleneck3d) and len(block.conv2) == 1
    assert block.conv2[0].conv.groups == block.conv2[0].conv.in_channels  # depthwise 3x3x3
    assert block.conv2[0].conv.kernel_size == (3, 3, 3) and block.conv2[0].act is not None
    ip_block = ip.backbone.layer2[0]
    first, dw = ip_block.conv2
    assert first.conv.kernel_size == (1, 1, 1) and first.conv.groups == 1 and first.bn is not None
    assert first.act is None  # ip: 1x1x1 + BN, no ReLU, then the depthwise conv
    assert dw.conv.groups == dw.conv.in_channels and dw.act is not None


def test_bn_frozen_really_freezes_statistics_and_affine_parameters():
    torch.manual_seed(0)
    model = create_model("ircsn_tiny", num_classes=4, norm_eval=True, bn_frozen=True)
    model.train()
    assert all(not bn.training for bn in _bns(model))
    assert all(not p.requires_grad for bn in _bns(model) for p in bn.parameters())
    before = copy.deepcopy(model.state_dict())
    # an optimizer over *all* parameters, with weight decay and momentum: frozen ones must not move
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    for _ in range(2):
        opt.zero_grad()
        F.cross_entropy(model(torch.randn(2, 3, 8, 64, 64)), torch.tensor([0, 3])).backward()
        opt.step()
    after = model.state_dict()
    bn_keys = [k for k in before if ".bn." in k]
    assert bn_keys and all(torch.equal(before[k], after[k]) for k in bn_keys)
    assert not torch.equal(before["backbone.conv1.conv.weight"], after["backbone.conv1.conv.weight"])
    model.eval().train()  # toggling modes keeps BN frozen
    assert all(not bn.training for bn in _bns(model))


def test_bn_trains_without_bn_frozen():
    model = create_model("ircsn_tiny", num_classes=4).train()
    before = model.backbone.conv1.bn.running_mean.clone()
    model(torch.randn(2, 3, 8, 64, 64))
    assert not torch.equal(before, model.backbone.conv1.bn.running_mean)


def test_norm_eval_alone_freezes_statistics_but_trains_affine():
    model = create_model("ircsn_tiny", num_classes=4, norm_eval=True, bn_frozen=False).train()
    before = model.backbone.conv1.bn.running_mean.clone()
    model(torch.randn(2, 3, 8, 64, 64)).sum().backward()
    assert torch.equal(before, model.backbone.conv1.bn.running_mean)
    assert model.backbone.conv1.bn.weight.grad is not None


def test_bn_frozen_requires_norm_eval():
    with pytest.raises(ValueError, match="bn_frozen=True requires norm_eval=True"):
        create_model("ircsn_tiny", bn_frozen=True, norm_eval=False)


def test_csn_152_defaults_are_bn_frozen_as_in_every_mmaction2_config():
    model = create_model("ircsn_r50")
    assert model.backbone.norm_eval and model.backbone.bn_frozen


# ------------------------------------------------------------------------------ 2D -> 3D inflation
@pytest.fixture(scope="module")
def resnet50_2d():
    torch.manual_seed(0)
    net = torchvision.models.resnet50()
    for bn in _bns(net):  # non-trivial statistics and affine parameters
        for t in (bn.weight, bn.bias, bn.running_mean):
            t.data.uniform_(-0.5, 0.5)
        bn.running_var.data.uniform_(0.5, 1.5)
    return net.eval()


def test_inflation_kernel_values(resnet50_2d):
    sd2d = resnet50_2d.state_dict()
    model = create_model("slowonly_r50")
    used = inflate_from_2d(model, sd2d)
    assert sorted(used) == sorted(k for k in sd2d if not k.startswith("fc."))
    bb = model.backbone
    w3 = bb.layer3[0].conv1.conv.weight  # 3x1x1 in res4: W2 / 3 repeated over T
    assert w3.shape == (256, 512, 3, 1, 1)
    for t in range(3):
        torch.testing.assert_close(w3[:, :, t], sd2d["layer3.0.conv1.weight"] / 3, rtol=0, atol=0)
    torch.testing.assert_close(
        bb.layer3[0].conv2.conv.weight[:, :, 0], sd2d["layer3.0.conv2.weight"], rtol=0, atol=0
    )
    torch.testing.assert_close(bb.conv1.conv.weight[:, :, 0], sd2d["conv1.weight"], rtol=0, atol=0)
    for name in ("weight", "bias", "running_mean", "running_var"):
        assert torch.equal(getattr(bb.layer1[0].downsample.bn, name), sd2d[f"layer1.0.downsample.1.{name}"])
        assert torch.equal(getattr(bb.layer4[2].conv3.bn, name), sd2d[f"layer4.2.bn3.{name}"])


def test_inflated_net_reproduces_2d_features_on_a_static_clip(resnet50_2d):
    """Far from the clip ends (>= 9 frames: res4+res5 hold nine 3x1x1 convs) a static clip gives the 2D
    activations at every inflated layer."""
    net2d = copy.deepcopy(resnet50_2d).double()  # inflate in float64: W / 3 in float32 would round
    model = create_model("slowonly_r50").double().eval()
    inflate_from_2d(model, net2d.state_dict())
    frame = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        f2 = nn.Sequential(*list(net2d.children())[:-2])(frame)
        # [1, 2048, 19, 1, 1]
        f3 = model.backbone(frame[:, :, None].expand(1, 3, 19, 32, 32).contiguous())[-1]
    torch.testing.assert_close(f3[:, :, 9], f2, rtol=1e-12, atol=1e-12)
    assert (f3[:, :, 0] - f2).abs().max() > 1e-3  # the clip ends see the zero padding


def test_inflation_errors_name_every_key(resnet50_2d):
    sd = dict(resnet50_2d.state_dict())
    del sd["layer1.0.bn1.weight"]
    sd["layer9.0.conv1.weight"] = torch.zeros(1)
    sd["conv1.weight"] = torch.zeros(64, 3, 5, 5)
    with pytest.raises(CheckpointError) as err:
        inflate_from_2d(create_model("slowonly_r50"), sd)
    msg = str(err.value)
    for text in [
        "layer1.0.bn1.weight",
        "layer9.0.conv1.weight",
        "conv1.weight",
        "(64, 3, 5, 5)",
        "(64, 3, 7, 7)",
    ]:
        assert text in msg


def test_inflation_refuses_csn_blocks(resnet50_2d):
    with pytest.raises(ValueError, match="no torchvision ResNet counterpart"):
        inflate_from_2d(create_model("ircsn_r50"), resnet50_2d.state_dict())


@pytest.fixture(scope="module")
def resnet50_file(tmp_path_factory, resnet50_2d):
    path = tmp_path_factory.mktemp("weights") / "resnet50.pth"
    torch.save(resnet50_2d.state_dict(), path)
    return path


def test_inflate_from_argument_inflates_into_tpn_slowonly(resnet50_file, resnet50_2d):
    model = create_model("tpn_slowonly_r50", inflate_from=str(resnet50_file))
    torch.testing.assert_close(
        model.backbone.layer4[0].conv1.conv.weight[:, :, 1],
        resnet50_2d.state_dict()["layer4.0.conv1.weight"] / 3,
        rtol=0,
        atol=0,
    )


def test_imagenet_init_argument_initialises_tpn_tsm(resnet50_file, resnet50_2d):
    model = create_model("tpn_tsm_r50", imagenet_init=str(resnet50_file))
    sd2d = resnet50_2d.state_dict()
    assert torch.equal(model.backbone.layer2[1].conv1.conv.net.weight, sd2d["layer2.1.conv1.weight"])
    assert torch.equal(model.backbone.layer4[2].conv3.bn.running_var, sd2d["layer4.2.bn3.running_var"])


# ------------------------------------------------------------------------------ checkpoint errors
def test_load_mmaction2_names_missing_unexpected_and_misshaped_keys():
    model = create_model("ircsn_tiny", num_classes=4)
    sd = dict(model.state_dict())
    del sd["backbone.layer2.0.conv2.0.conv.weight"]
    sd["backbone.layer2.0.conv2.1.conv.weight"] = torch.zeros(32, 1, 3, 3, 3)  # an ip key in an ir model
    sd["cls_head.fc_cls.weight"] = torch.zeros(400, 512)
    with pytest.raises(CheckpointError) as err:
        load_mmaction2(model, sd)
    msg = str(err.value)
    assert "backbone.layer2.0.conv2.0.conv.weight" in msg and "backbone.layer2.0.conv2.1.conv.weight" in msg
    assert "cls_head.fc_cls.weight" in msg and "(400, 512)" in msg and "(4, 512)" in msg


def test_ir_and_ip_checkpoints_are_not_interchangeable():
    ip_sd = create_model("ipcsn_tiny").state_dict()
    with pytest.raises(CheckpointError, match="conv2.1.bn.weight"):
        load_mmaction2(create_model("ircsn_tiny"), ip_sd)


def test_aux_classifier_is_the_aux_head_of_the_same_modules():
    from vidlib.models.tpn import AuxClassifier

    model = create_model("tpn_slowonly_tiny", num_classes=5).eval()
    aux = AuxClassifier(model)
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.equal(aux(x), model(x, return_aux=True)[1]["aux"])
    assert aux.default_cfg is model.default_cfg
    assert all(p is q for p, q in zip(aux.parameters(), model.parameters()))  # shared, not copied


@pytest.mark.parametrize("name, mode", [("r3d_tiny", "dense"), ("ipcsn_tiny", "ip"), ("ircsn_tiny", "ir")])
def test_conv2_cost_formulas_match_the_counted_blocks(name, mode):
    """csn.conv2_cost (the formulas the CSN chapter shows) against fvcore on the blocks of the tiny models:
    every block's conv2, strided (temporal and spatial) or not."""
    from vidlib.models.csn import conv2_cost

    model = create_model(name, num_classes=5, num_frames=8).eval()
    sizes = {}

    def hook(mod, inputs, output, key):
        sizes[key] = (tuple(inputs[0].shape[2:]), tuple(output.shape[2:]), inputs[0].shape[1])

    handles = [
        m.register_forward_hook(lambda mod, i, o, key=n: hook(mod, i, o, key))
        for n, m in model.named_modules()
        if n.endswith(".conv2")
    ]
    with torch.no_grad():
        model(torch.randn(1, 3, 8, 32, 32))  # the sizes, from a plain forward
    for h in handles:
        h.remove()
    fc = count_flops(model, (1, 3, 8, 32, 32), ops=("conv",))  # BN is not in the formulas
    assert len(sizes) == 4  # one block per stage
    for key, (t_in, t_out, c) in sizes.items():
        cost = conv2_cost(mode, c, t_in, t_out)
        assert fc.by_module[key] * 1e9 == pytest.approx(cost["macs"], rel=1e-9), key
        module = model.get_submodule(key)
        convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv3d)]
        assert sum(m.weight.numel() for m in convs) == cost["params"], key
    with pytest.raises(ValueError, match="mode"):
        conv2_cost("full", 8, (1, 1, 1), (1, 1, 1))


def test_csn_pretrain_picks_the_published_checkpoint_and_its_normalisation():
    """Every (entrypoint, pretrain) names a results/published.yaml entry: its url and config, and the VMZ
    mean/std exactly where the entry says the weights expect them (Sports1M and scratch ports)."""
    from vidlib.models.csn import CHECKPOINTS, VMZ_MEAN, VMZ_STD

    csn_keys = {k for k, v in published().items() if v.get("paper") == "csn" and k != "ircsn_r152_ig65m_k400"}
    assert {v[0] for v in CHECKPOINTS.values()} == csn_keys  # every checkpoint, each once
    for (name, pretrain), (key, config, url, norm) in CHECKPOINTS.items():
        entry, cfg = published(key), create_model(name, pretrain=pretrain).default_cfg
        assert (cfg["published"], cfg["config"], cfg["url"]) == (key, config, url) and config == entry[
            "config"
        ]
        assert url == entry["checkpoint"]
        origin = entry.get("weights_origin", "mmaction2-trained, ImageNet mean/std")
        vmz = "ImageNet mean/std" not in origin  # "VMZ mean/std", "mean/std from VMZ"
        assert (norm == "vmz") == vmz and (cfg["mean"], cfg["std"]) == (
            (VMZ_MEAN, VMZ_STD) if vmz else (IMAGENET_MEAN, IMAGENET_STD)
        )
        assert entry["pretrain"].lower().replace("none", "scratch") == pretrain
    assert tuple(round(m / 255, 6) for m in VMZ_MEAN) == (0.43216, 0.394666, 0.37645)
    with pytest.raises(ValueError, match="unknown pretrain 'sports1m'; accepted: 'ig65m'"):
        create_model("ircsn_r50", pretrain="sports1m")


def test_temporal_profiles_and_change_share():
    """Profiles: one per depthwise conv (ir: 4 in the tiny net), weights summed over space; change share 0
    for a temporal average, 1 for a zero-sum (difference) filter, (kt-1)/kt on average for random taps."""
    from vidbook.probes import change_share, temporal_profiles

    net = create_model("ircsn_tiny", num_classes=3)
    profiles = temporal_profiles(net)
    assert list(profiles) == [f"backbone.layer{i}.0.conv2.0.conv" for i in range(1, 5)]
    w = net.backbone.layer2[0].conv2[0].conv.weight  # [32, 1, 3, 3, 3]
    assert torch.equal(profiles["backbone.layer2.0.conv2.0.conv"], w.detach().sum(dim=(1, 3, 4)))
    assert set(temporal_profiles(create_model("r3d_tiny", num_classes=3))) == set()  # no depthwise conv
    taps = torch.tensor([[1.0, 1.0, 1.0], [-1.0, 0.0, 1.0], [1.0, -2.0, 1.0], [0.0, 2.0, 0.0]])
    assert change_share(taps).tolist() == pytest.approx([0.0, 1.0, 1.0, 2 / 3])
    g = torch.Generator().manual_seed(0)
    assert change_share(torch.randn(20000, 3, generator=g)).mean().item() == pytest.approx(2 / 3, abs=0.01)
