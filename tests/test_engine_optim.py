"""Parameter groups, schedules and the linear scaling rule against their sources.

Sources: open-mmlab/mmaction2 @ 4d6c9347 (1.2.0):
``mmaction/engine/optimizers/tsm_optim_wrapper_constructor.py`` (the TSM parameter groups), the configs each
recipe names in ``source`` and mmengine's ``LinearLR`` / ``CosineAnnealingLR`` / ``MultiStepLR`` (the
schedules), and the ``recipe`` fields of ``results/published.yaml``.
"""

import math

import pytest
import torch
import torch.nn as nn

import vidlib
from vidlib.engine import get_recipe, list_recipes
from vidlib.engine.optim import build_optimizer, build_scheduler, lr_factor, param_groups, scale_lr


class _Net(nn.Module):
    """conv(bias) -> BN -> conv -> GN -> Linear -> LayerNorm -> Linear (the classifier)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, bias=True)
        self.bn = nn.BatchNorm2d(4)
        self.conv = nn.Conv2d(4, 4, 1, bias=False)
        self.gn = nn.GroupNorm(2, 4)
        self.mid = nn.Linear(4, 4)
        self.ln = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 3)


def _by_name(groups):
    return {g["name"]: g for g in groups}


def test_tsm_groups_match_mmaction2s_constructor():
    net = _Net()
    g = _by_name(param_groups(net, "tsm_fc_lr5", lr=0.01, weight_decay=1e-4))
    expect = {  # name: (params, lr, wd) -- mmaction2's TSMOptimWrapperConstructor
        "first_conv_weight": ([net.stem.weight], 0.01, 1e-4),
        "first_conv_bias": ([net.stem.bias], 0.02, 0.0),
        "normal_weight": ([net.conv.weight, net.mid.weight], 0.01, 1e-4),
        "normal_bias": ([net.mid.bias], 0.02, 0.0),
        "norm": (
            [net.bn.weight, net.bn.bias, net.gn.weight, net.gn.bias, net.ln.weight, net.ln.bias],
            0.01,
            0.0,
        ),
        "last_fc_weight": ([net.fc.weight], 0.05, 1e-4),
        "last_fc_bias": ([net.fc.bias], 0.1, 0.0),
    }
    assert set(g) == set(expect)
    for name, (params, lr, wd) in expect.items():
        assert [id(p) for p in g[name]["params"]] == [id(p) for p in params], name
        assert g[name]["lr"] == pytest.approx(lr) and g[name]["weight_decay"] == pytest.approx(wd), name


def test_tsm_without_fc_lr5_puts_the_classifier_in_the_normal_groups():
    net = _Net()
    g = _by_name(param_groups(net, "tsm", lr=0.01, weight_decay=1e-4))
    assert "last_fc_weight" not in g and "last_fc_bias" not in g
    assert any(p is net.fc.weight for p in g["normal_weight"]["params"])
    assert any(p is net.fc.bias for p in g["normal_bias"]["params"])


def test_tsm_groups_on_tsm_tiny_cover_every_parameter_once():
    model = vidlib.create_model("tsm_tiny", num_classes=5)
    groups = _by_name(param_groups(model, "tsm_fc_lr5", lr=1.0, weight_decay=1.0))
    fc = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    assert groups["last_fc_weight"]["params"] == [fc.weight] and groups["last_fc_bias"]["params"] == [fc.bias]
    assert fc.out_features == 5
    n = sum(len(g["params"]) for g in groups.values())
    assert n == len(list(model.parameters()))
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert groups["first_conv_weight"]["params"] == [first_conv.weight]


def test_frozen_parameters_are_left_out():
    net = _Net()
    for p in net.bn.parameters():
        p.requires_grad_(False)
    groups = param_groups(net, "tsm_fc_lr5", lr=0.1, weight_decay=0.0)
    grouped = {id(p) for g in groups for p in g["params"]}
    assert id(net.bn.weight) not in grouped and id(net.gn.weight) in grouped


def test_tsm_policy_rejects_modules_without_a_policy():
    net = _Net()
    net.extra = nn.MultiheadAttention(4, 2)  # owns in_proj_weight directly
    with pytest.raises(ValueError, match="MultiheadAttention"):
        param_groups(net, "tsm", lr=0.1, weight_decay=0.0)


def test_no_decay_1d_and_default_policies():
    net = _Net()
    g = _by_name(param_groups(net, "no_decay_1d", lr=1e-3, weight_decay=0.05))
    assert all(p.ndim > 1 for p in g["decay"]["params"]) and g["decay"]["weight_decay"] == 0.05
    assert all(p.ndim == 1 for p in g["no_decay"]["params"]) and g["no_decay"]["weight_decay"] == 0.0
    (only,) = param_groups(net, "default", lr=1e-3, weight_decay=0.05)
    assert len(only["params"]) == len(list(net.parameters())) and only["weight_decay"] == 0.05
    with pytest.raises(ValueError, match="unknown param_groups"):
        param_groups(net, "fancy", lr=1.0, weight_decay=0.0)


def test_build_optimizer_sgd_and_adamw():
    net = _Net()
    opt = build_optimizer(net, get_recipe("tpn_slowonly_r50_k400")["optimizer"])
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9
    assert opt.param_groups[0]["weight_decay"] == 1e-4 and opt.param_groups[0]["lr"] == 0.01
    opt = build_optimizer(net, get_recipe("stam_16_k400")["optimizer"])
    assert isinstance(opt, torch.optim.AdamW)
    assert {g["name"] for g in opt.param_groups} == {"decay", "no_decay"}


def test_linear_scaling_rule():
    assert scale_lr(0.01, 16, 64) == pytest.approx(0.0025)  # TANet K400 recipe on 2 GPUs x 8
    assert scale_lr(5e-4, 192, 96) == pytest.approx(1e-3)
    r = get_recipe("tanet_r50_sthv1_16f")
    assert r["base_batch_size"] == r["batch_size"] * r["gpus"] == 48
    with pytest.raises(ValueError):
        scale_lr(0.1, 0, 64)


def _lrs(schedule, iters, ipe):
    net = nn.Linear(2, 2)
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    sched = build_scheduler(opt, schedule, ipe)
    out = []
    for _ in range(iters):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_tin_schedule_linear_warmup_then_cosine_per_iteration():
    """TIN sthv1: LinearLR 0.1 over epoch 0 (iter-based), then cosine T_max 39 epochs (iter-based)."""
    sched, ipe = get_recipe("tin_r50_sthv1")["schedule"], 10
    lrs = _lrs(sched, 40 * ipe, ipe)
    # warm-up: mmengine LinearLR reaches the end factor at step end - begin - 1 = 9
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[5] == pytest.approx(0.1 + 0.9 * 5 / 9)
    assert lrs[9] == pytest.approx(1.0)
    # cosine from iteration 10 on: 0.5 * (1 + cos(pi * s / 390))
    for it in (10, 11, 205, 399):
        s = it - 10
        assert lrs[it] == pytest.approx(0.5 * (1 + math.cos(math.pi * s / 390))), it
    assert lrs[10] == pytest.approx(1.0) and lrs[205] == pytest.approx(0.5)


def test_csn_schedule_epoch_warmup_times_multistep():
    """CSN: LinearLR 0.1 over 16 epochs (epoch-wise) multiplied by MultiStep [32, 48] (mmengine chains
    them)."""
    sched, ipe = get_recipe("ircsn_r152_ig65m_k400")["schedule"], 3
    f = [lr_factor(sched, e * ipe + 1, ipe) for e in range(58)]
    assert f[0] == pytest.approx(0.1)
    assert f[1] == pytest.approx(0.1 + 0.9 / 15)
    assert f[15] == pytest.approx(1.0) and f[16] == pytest.approx(1.0)
    assert f[31] == pytest.approx(1.0) and f[32] == pytest.approx(0.1) and f[48] == pytest.approx(0.01)
    assert lr_factor(sched, 0, ipe) == lr_factor(sched, ipe - 1, ipe)  # constant within an epoch


def test_tanet_multistep_schedule():
    sched, ipe = get_recipe("tanet_r50_k400")["schedule"], 7
    expect = {0: 1.0, 49: 1.0, 50: 0.1, 74: 0.1, 75: 0.01, 90: 0.001, 99: 0.001}
    for epoch, factor in expect.items():
        assert lr_factor(sched, epoch * ipe + 3, ipe) == pytest.approx(factor), epoch


def test_schedule_applies_to_every_group_multiplier():
    net = _Net()
    opt = build_optimizer(net, dict(name="sgd", lr=0.01, weight_decay=1e-4, param_groups="tsm_fc_lr5"))
    sched = build_scheduler(opt, [dict(name="multistep", milestones=[1], gamma=0.1)], iters_per_epoch=2)
    for _ in range(2):
        opt.step()
        sched.step()
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs["last_fc_weight"] == pytest.approx(0.005) and lrs["normal_bias"] == pytest.approx(0.002)


def test_open_ended_phase_lasts_until_the_last_epoch():
    sched = get_recipe("synthetic_tiny")["schedule"]  # warm-up 1 epoch, then cosine with no "end"
    assert lr_factor(sched, 10, 10, epochs=5) == pytest.approx(1.0)
    assert lr_factor(sched, 30, 10, epochs=5) == pytest.approx(0.5)  # half-way through epochs 1..5
    assert lr_factor(sched, 30, 10, epochs=9) == pytest.approx(0.5 * (1 + math.cos(math.pi * 20 / 80)))
    # a 1-epoch run: warm-up only
    assert lr_factor(sched, 5, 10, epochs=1) == pytest.approx(0.1 + 0.9 * 5 / 9)
    opt = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=1.0)
    with pytest.raises(ValueError, match="needs the number of epochs"):
        build_scheduler(opt, sched, 10)


def test_unknown_schedule_phase_fails_early():
    opt = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=1.0)
    with pytest.raises(ValueError, match="unknown schedule phase"):
        build_scheduler(opt, [dict(name="poly")], 5)


@pytest.mark.parametrize("name", list_recipes())
def test_every_recipe_is_complete(name):
    r = get_recipe(name)
    for key in (
        "model",
        "model_kwargs",
        "data",
        "batch_size",
        "gpus",
        "base_batch_size",
        "epochs",
        "optimizer",
        "schedule",
        "clip_grad",
        "source",
        "description",
    ):
        assert key in r, f"{name}: no {key!r}"
    assert r["model"] in vidlib.list_models(), f"{name}: model {r['model']} is not registered"
    net = _Net()
    build_scheduler(torch.optim.SGD(net.parameters(), lr=1.0), r["schedule"], 4, r["epochs"])
    if name.startswith(("tanet", "tin")):
        assert r["optimizer"]["param_groups"] == "tsm_fc_lr5"


def test_recipe_values_from_the_configs():
    """The values of the mmaction2 configs (and published.yaml ``recipe``) that the recipes transcribe."""
    t = get_recipe("tanet_r50_k400")
    assert (t["optimizer"]["lr"], t["optimizer"]["weight_decay"], t["clip_grad"], t["epochs"]) == (
        0.01,
        1e-4,
        20,
        100,
    )
    assert t["data"]["sampling"]["name"] == "DenseSampleFrames" and t["data"]["test_crops"] == 3
    s = get_recipe("tin_r50_sthv1")
    opt = s["optimizer"]
    assert (opt["lr"], opt["weight_decay"], s["clip_grad"], s["batch_size"]) == (0.01, 5e-4, 20, 6)
    assert s["data"]["flip"] == 0 and get_recipe("tin_r50_sthv2")["clip_grad"] == 40
    p = get_recipe("tpn_tsm_r50_sthv1")
    assert (
        p["optimizer"]["nesterov"]
        and p["optimizer"]["weight_decay"] == 5e-4
        and p["aux_loss"]["weight"] == 0.5
    )
    c = get_recipe("ipcsn_r152_ig65m_k400")
    assert c["model_kwargs"]["bn_frozen"] and c["optimizer"]["lr"] == 5e-4 and c["base_batch_size"] == 96
    assert get_recipe("tanet_r50_sthv1_16f")["data"]["test_crops"] == 1  # test_pipeline = val_pipeline
    for name in ("tanet_r50_sthv1_8f", "tanet_r50_sthv1_16f", "tin_r50_sthv1", "tpn_tsm_r50_sthv1"):
        # the protocol is named, not implied
        assert get_recipe(name)["model_kwargs"]["dataset"] == "sthv1", name
