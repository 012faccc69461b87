"""STAM (arXiv 2103.13915): golden logits vs the official code, params, FLOPs, loaders, shapes.

The checks every model shares (output shape, gradients, input errors, cfg keys, FLOPs) are in
``test_model_contract.py``.
"""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import vidlib
from vidbook.probes import temporal_attention
from vidlib.flops import count_flops, count_frame_model
from vidlib.golden import check_golden
from vidlib.models.stam import STAM, MeanAggregate, TemporalAggregate, load_stam
from vidlib.models.vit import ConvStem, init_spatial_from_vit
from vidlib.weights import CheckpointError

GOLDEN = Path(__file__).resolve().parent / "golden"
RTOL = 1e-8  # max|diff| <= RTOL * max(1, max|logit|): check_golden's default for the STAM files
PARAMS = {8: 119_199_376, 16: 119_205_520, 32: 119_217_808, 64: 119_242_384}
# Linear/Conv MACs only (published.yaml stam_{T}_k400.flops)
README_GFLOPS = {8: 135, 16: 270, 32: 540, 64: 1080}
WITH_ATTENTION_GFLOPS = {8: 140.8, 16: 281.6, 32: 563.1, 64: 1126.2}  # + QK^T and AV matmuls


#: A patch-stem ViT of timm's layout at 112 px (the tiny models' defaults are a conv stem at 32 px): the
#: tests of the spatial ViT, the loaders and timm initialisation build the tiny models with it.
VIT_112 = dict(img_size=112, patch_size=16, stem="patch", embed_dim=192, depth=4, num_heads=3, init_std=0.02)


def _tiny(name: str = "stam_tiny", **kw) -> STAM:
    return vidlib.create_model(name, **{**VIT_112, **kw})


def _structure(name: str, **kw) -> STAM:
    """A model on the meta device: shapes, keys and cfg without the cost of allocating 119M weights."""
    with torch.device("meta"):
        return vidlib.create_model(name, **kw)


def _golden(T: int) -> dict:
    data = json.loads((GOLDEN / f"stam_t{T}.json").read_text())
    assert data["reference"] == "Alibaba-MIIL/STAM@6749baf" and data["model"] == f"stam_{T}"
    return data


# ------------------------------------------------------------------------------------ golden vs official
@pytest.mark.parametrize("T", [8, 16])
def test_golden_stam(T):
    """The official weights layout, loaded through ``load_stam``, gives the official logits (float64)."""
    result = check_golden(GOLDEN / f"stam_t{T}.json")
    assert result.reference == "Alibaba-MIIL/STAM@6749baf" and result.tol == RTOL
    assert result.num_keys == len(_golden(T)["state_dict_shapes"]) and result.max_rel_err <= RTOL


def test_golden_keys_are_the_official_layout():
    """vidlib's state dict has exactly the official keys and shapes, so load_stam is the identity."""
    for T in (8, 16):
        model = _structure(f"stam_{T}")
        own = {k: list(v.shape) for k, v in model.state_dict().items()}
        assert own == _golden(T)["state_dict_shapes"]


def test_layernorm_eps_1e6_is_caught_only_by_the_tight_tolerance():
    """timm's eps 1e-6 instead of STAM's 1e-5 changes the logits by ~1e-6: a 1e-4 test would pass it."""
    wrong = check_golden(GOLDEN / "stam_t8.json", tol=1e-4, norm_eps=1e-6)
    assert RTOL < wrong.max_rel_err < 1e-4, wrong.max_rel_err


# ------------------------------------------------------------------------------------ architecture facts
@pytest.mark.parametrize("T", sorted(PARAMS))
def test_param_count(T):
    assert vidlib.num_params(_structure(f"stam_{T}")) == PARAMS[T]


def test_architecture_facts():
    m = _structure("stam_16")
    assert m.patch_embed.proj.kernel_size == (16, 16) and m.pos_embed.shape == (1, 197, 768)
    assert len(m.blocks) == 12 and m.blocks[0].attn.num_heads == 12
    assert m.blocks[0].mlp.fc1.out_features == 3072 and m.blocks[0].mlp.act.approximate == "none"
    assert all(b.attn.qkv.bias is not None for b in m.blocks)
    assert {mod.eps for mod in m.modules() if isinstance(mod, nn.LayerNorm)} == {1e-5}
    agg = m.aggregate
    assert isinstance(agg, TemporalAggregate) and agg.pos_embed.shape == (1, 17, 768)
    layers = agg.transformer_enc.layers
    assert len(layers) == 6 and all(not layer.norm_first for layer in layers)  # post-norm
    assert all(layer.self_attn.num_heads == 8 and layer.linear1.out_features == 2048 for layer in layers)
    assert all(layer.activation_relu_or_gelu == 1 and layer.dropout.p == 0.1 for layer in layers)  # ReLU
    assert isinstance(agg.transformer_enc.norm, nn.LayerNorm) and m.head.in_features == 768


def test_default_cfg_is_the_stam_protocol():
    from vidlib.data import STAMSampleFrames, build_sampler

    for T in (8, 16):
        cfg = _structure(f"stam_{T}").default_cfg
        assert cfg["mean"] is None and cfg["std"] is None and cfg["value_scale"] == 1.0  # [0, 1], no norm
        assert cfg["input_size"] == (3, T, 224, 224) and cfg["resize_short"] == 256 and cfg["test_crops"] == 1
        assert cfg["published"] == f"stam_{T}_k400" and cfg["url"].endswith(f"/v2/stam_{T}.pth")
        sampler = build_sampler(cfg["test_sampling"])
        assert isinstance(sampler, STAMSampleFrames) and sampler.num_frames == T
    published = (Path(vidlib.__file__).resolve().parents[1] / "results" / "published.yaml").read_text()
    assert all(f"stam_{T}_k400:" in published for T in PARAMS)


# ------------------------------------------------------------------------------------ FLOPs
LIN_CONV, WITH_ATTN = ("linear", "conv"), ("linear", "conv", "attention")


@pytest.fixture(scope="module")
def stam8_flops():
    model = vidlib.create_model("stam_8")
    full = count_flops(model, (1, 3, 8, 224, 224), by_module=False)
    split = {ops: count_frame_model(model, ops=ops) for ops in (LIN_CONV, WITH_ATTN)}
    return model, full, split


def test_flops_stam_8_both_counts(stam8_flops):
    """The README's 135 G counts Linear/Conv MACs; counting QK^T and AV (SDPA) adds ~4.2%."""
    model, full, split = stam8_flops
    lin_conv = full.by_operator["linear"] + full.by_operator["conv"]
    attention = full.by_operator["scaled_dot_product_attention"]
    assert abs(lin_conv / README_GFLOPS[8] - 1) < 0.01
    assert abs((lin_conv + attention) / WITH_ATTENTION_GFLOPS[8] - 1) < 0.001
    assert 0.035 < attention / lin_conv < 0.05
    # count_frame_model (T x one frame + the temporal part) reproduces the full count exactly
    assert abs(split[LIN_CONV]["total"] - lin_conv) < 1e-9
    assert abs(split[WITH_ATTN]["total"] - lin_conv - attention) < 1e-9
    assert split[LIN_CONV]["frames"] == 8


@pytest.mark.parametrize("T", [16, 32, 64])
def test_flops_longer_clips(stam8_flops, T):
    """Every frame goes through the same ViT, so MACs = T x one frame + the temporal part and head."""
    _, _, split = stam8_flops
    model = vidlib.create_model(f"stam_{T}")
    lin_conv, with_attention = (count_frame_model(model, ops=ops) for ops in (LIN_CONV, WITH_ATTN))
    assert lin_conv["frame"] == split[LIN_CONV]["frame"]  # the same ViT-B/16 per frame
    assert abs(lin_conv["total"] / README_GFLOPS[T] - 1) < 0.01
    assert abs(with_attention["total"] / WITH_ATTENTION_GFLOPS[T] - 1) < 0.001


# ------------------------------------------------------------------------------------ tiny models, shapes
@pytest.mark.parametrize("name", ["stam_tiny", "stam_mean_tiny"])
@pytest.mark.parametrize("T", [4, 8, 16])
@pytest.mark.parametrize("size", [64, 112])
def test_tiny_shapes(name, T, size):
    model = vidlib.create_model(name, num_classes=7, num_frames=T, img_size=size).eval()
    assert model.default_cfg["input_size"] == (3, T, size, size)
    assert model(torch.rand(2, 3, T, size, size)).shape == (2, 7)


def test_mean_baseline_is_the_mean_of_frame_embeddings():
    model = _tiny("stam_mean_tiny", num_classes=5, num_frames=4).eval()
    assert isinstance(model.aggregate, MeanAggregate)
    x = torch.rand(2, 3, 4, 112, 112)
    frames = x.transpose(1, 2).reshape(8, 3, 112, 112)  # [B*T, 3, H, W]
    expected = model.head(model.forward_frames(frames).view(2, 4, -1).mean(1))  # [B, C]
    torch.testing.assert_close(model(x), expected)


def test_frames_are_processed_independently_and_in_video_major_order():
    model = _tiny(num_classes=5, num_frames=4).eval()
    x = torch.rand(2, 3, 4, 112, 112)
    with torch.no_grad():
        single = torch.cat([model(x[i : i + 1]) for i in range(2)])
        torch.testing.assert_close(model(x), single)


@pytest.mark.parametrize(
    "bad", [(2, 3, 8, 112, 112), (2, 3, 4, 96, 96), (2, 1, 4, 112, 112), (3, 4, 112, 112)]
)
def test_wrong_input_shape_names_expected_and_actual(bad):
    """STAM's position embedding fixes T and H = W as well (the generic checks are in
    test_model_contract.py)."""
    model = _tiny(num_frames=4)
    with pytest.raises(ValueError, match=r"\[B, 3, 4, 112, 112\], got " + re.escape(str(bad))):
        model(torch.rand(bad))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="num_frames=16, got 8"):
        vidlib.create_model("stam_16", num_frames=8)
    with pytest.raises(ValueError, match="aggregate"):
        STAM(4, aggregate="max")
    with pytest.raises(ValueError, match="multiple of patch_size"):
        STAM(4, img_size=100)


def test_temporal_dropout_is_active_in_training_only():
    model = _tiny(num_classes=5, num_frames=4)
    x = torch.rand(1, 3, 4, 112, 112)
    torch.manual_seed(0)
    train_a, train_b = model.train()(x), model(x)
    assert not torch.allclose(train_a, train_b)
    model.eval()
    torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)


# ------------------------------------------------------------------------------------ loaders
def _tiny_and_sd(**kw):
    model = _tiny(num_classes=5, num_frames=4, **kw).eval()
    return model, {k: v.clone() for k, v in model.state_dict().items()}


def test_load_stam_accepts_path_wrapped_and_bare(tmp_path):
    source, sd = _tiny_and_sd()
    path = tmp_path / "stam_tiny.pth"
    torch.save({"model": sd, "epoch": 3}, path)
    x = torch.rand(1, 3, 4, 112, 112)
    for ckpt in (path, str(path), {"model": sd}, sd, {f"module.{k}": v for k, v in sd.items()}):
        target, _ = _tiny_and_sd()
        assert load_stam(target, ckpt) == []
        torch.testing.assert_close(target(x), source(x), rtol=0, atol=0)


def test_load_stam_lists_every_problem_key():
    model, sd = _tiny_and_sd()
    del sd["blocks.1.mlp.fc1.weight"], sd["aggregate.pos_embed"]
    sd["blocks.9.attn.proj.weight"] = torch.zeros(3)
    sd["head.weight"] = torch.zeros(400, 192)
    with pytest.raises(CheckpointError) as err:
        load_stam(model, sd)
    msg = str(err.value)
    for key in ("blocks.1.mlp.fc1.weight", "aggregate.pos_embed", "blocks.9.attn.proj.weight", "head.weight"):
        assert key in msg
    assert "(400, 192)" in msg and "zero_missing_qkv_bias" not in msg


def test_load_stam_pre_fix_checkpoint_needs_the_explicit_option():
    source, sd = _tiny_and_sd()
    bias_keys = [f"blocks.{i}.attn.qkv.bias" for i in range(4)]
    old = {k: v for k, v in sd.items() if k not in bias_keys}  # as saved before "fix qkv bias"
    target, _ = _tiny_and_sd()
    with pytest.raises(CheckpointError, match="zero_missing_qkv_bias=True") as err:
        load_stam(target, old)
    assert err.value.missing == bias_keys
    with pytest.warns(UserWarning, match="set 4 qkv biases to zero"):
        assert load_stam(target, old, zero_missing_qkv_bias=True) == bias_keys
    assert all(target.state_dict()[k].abs().sum() == 0 for k in bias_keys)
    for k in bias_keys:  # equivalent to the old bias-free model
        source.state_dict()[k].zero_()
    x = torch.rand(1, 3, 4, 112, 112)
    torch.testing.assert_close(target(x), source(x), rtol=0, atol=0)


def _timm_vit(img_size=112, embed_dim=192, depth=4, num_heads=3, eps=1e-5):
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(
        img_size=img_size,
        patch_size=16,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        num_classes=10,
        norm_layer=partial(nn.LayerNorm, eps=eps),
    ).eval()


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_init_spatial_from_timm_vit_matches_timm_features(tmp_path, fmt):
    """Loading a timm ViT into STAM's spatial part gives exactly timm's final-LN CLS features."""
    from safetensors.torch import save_file

    vit = _timm_vit()
    path = tmp_path / f"vit.{fmt}"
    (torch.save if fmt == "pth" else save_file)(vit.state_dict(), path)
    model, before = _tiny_and_sd()
    report = init_spatial_from_vit(model, path)
    assert report.ignored == ["head.bias", "head.weight"]
    assert all(k.startswith(("aggregate.", "head.")) for k in report.not_initialised)
    assert set(report.loaded) | set(report.not_initialised) == set(before)
    after = model.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in report.not_initialised)
    frames = torch.rand(3, 3, 112, 112)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_frames(frames), vit.forward_features(frames)[:, 0])


def test_vit_init_argument_initialises_the_spatial_vit(tmp_path):
    """``create_model(..., vit_init=path)`` is :func:`init_spatial_from_vit` on the new model."""
    vit = _timm_vit()
    torch.save(vit.state_dict(), tmp_path / "vit.pth")
    model = _tiny(num_classes=5, num_frames=4, vit_init=tmp_path / "vit.pth").eval()
    frames = torch.rand(2, 3, 112, 112)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_frames(frames), vit.forward_features(frames)[:, 0])


def test_init_spatial_from_timm_vit_b16_layout():
    """All 150 spatial keys of a timm ``vit_base_patch16_224`` state dict map onto stam_16."""
    import timm

    with torch.device("meta"):
        sd = timm.create_model("vit_base_patch16_224", pretrained=False).state_dict()
    report = init_spatial_from_vit(_structure("stam_16"), {"model": sd})
    assert len(report.loaded) == 150 and report.ignored == ["head.bias", "head.weight"]


def test_init_spatial_from_vit_is_strict():
    model, _ = _tiny_and_sd()
    sd = _timm_vit().state_dict()
    sd["dist_token"] = torch.zeros(1, 1, 192)
    del sd["blocks.3.norm2.bias"]
    with pytest.raises(CheckpointError) as err:
        init_spatial_from_vit(model, sd)
    assert "dist_token" in str(err.value)
    del sd["dist_token"]
    with pytest.raises(CheckpointError, match="blocks.3.norm2.bias"):
        init_spatial_from_vit(model, sd)
    with pytest.raises(CheckpointError, match="pos_embed"):  # a 224-px ViT into a 112-px model: shape error
        init_spatial_from_vit(model, _timm_vit(img_size=224).state_dict())
    with pytest.raises(CheckpointError, match="convert it with timm"):
        init_spatial_from_vit(model, "ViT-B_16.npz")


# ------------------------------------------------------------------------------------ the book's tiny STAM
def test_tiny_defaults_are_the_calibrated_model():
    model = vidlib.create_model("stam_tiny", num_classes=24)
    assert model.img_size == 32 and isinstance(model.patch_embed, ConvStem)
    assert model.patch_embed.num_patches == 16 and model.head.in_features == 64 and len(model.blocks) == 2
    assert model.default_cfg["input_size"] == (3, 8, 32, 32) and model.default_cfg["mean"] is None
    from vidlib.engine import get_recipe

    assert get_recipe("synthetic_stam_tiny")["model"] == "stam_tiny"


def test_conv_stem_token_grid_and_errors():
    stem = ConvStem(32, 8, 64)  # three 3x3 stride-2 convs (16, 32, 64 channels), then 1x1
    convs = [m for m in stem.stem if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64] and all(c.stride == (2, 2) for c in convs)
    assert stem(torch.rand(5, 3, 32, 32)).shape == (5, 16, 64)
    for bad in (dict(patch_size=6), dict(patch_size=1), dict(img_size=36)):
        with pytest.raises(ValueError, match="power-of-two patch_size"):
            ConvStem(**{**dict(img_size=32, patch_size=8, embed_dim=64), **bad})
    with pytest.raises(ValueError, match="embed_dim 66"):
        ConvStem(32, 8, 66)
    with pytest.raises(ValueError, match="stem must be"):
        STAM(4, stem="hybrid")


@pytest.mark.parametrize("std", [0.02, 0.1])
def test_init_std_scales_tokens_and_linear_weights(std):
    torch.manual_seed(0)
    model = STAM(8, 10, img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2, init_std=std)
    w = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, nn.Linear)])
    assert 0.83 < w.std().item() / std < 0.9  # N(0, 1) folded into (-2, 2) by fmod: std 0.87
    assert model.aggregate.pos_embed.abs().max() <= 2 * std


def test_freeze_spatial_trains_only_the_aggregation_and_head():
    torch.manual_seed(0)
    model = vidlib.create_model("stam_tiny", num_classes=5, num_frames=4, freeze_spatial=True)
    spatial = {id(p) for p in model.spatial_parameters()}
    assert all(not p.requires_grad for p in model.spatial_parameters())
    assert all(p.requires_grad for p in model.parameters() if id(p) not in spatial)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    assert not model.patch_embed.training and model.aggregate.training  # the stem's BN stays in eval
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    nn.functional.cross_entropy(model(torch.rand(2, 3, 4, 32, 32)), torch.tensor([0, 3])).backward()
    opt.step()
    moved = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert moved and all(k.startswith(("aggregate.", "head.")) for k in moved)  # BN stats did not move


def test_temporal_attention_rows_order_and_mean_model():
    torch.manual_seed(0)
    model = vidlib.create_model("stam_tiny", num_classes=5, num_frames=4).train()
    x = torch.rand(2, 3, 4, 32, 32)
    attn = temporal_attention(model, x)
    assert attn.shape == (2, 2, 4, 5, 5) and model.training  # [layers, B, heads, T+1, T+1]; mode kept
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 2, 4, 5))
    model.aggregate.pos_embed.data.zero_()  # no position: reversing the frames permutes the weights
    perm = torch.tensor([0, 4, 3, 2, 1])  # the video token stays first
    a, b = temporal_attention(model, x), temporal_attention(model, x.flip(2))
    torch.testing.assert_close(b[0], a[0][..., perm, :][..., perm], atol=1e-5, rtol=1e-5)
    with pytest.raises(TypeError, match="MeanAggregate"):
        temporal_attention(vidlib.create_model("stam_mean_tiny", num_frames=4), x)


def test_mean_aggregation_is_blind_to_order_and_the_transformer_is_not():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 4, 32, 32)
    with torch.no_grad():
        mean = vidlib.create_model("stam_mean_tiny", num_classes=5, num_frames=4).eval()
        torch.testing.assert_close(mean(x), mean(x.flip(2)), atol=1e-6, rtol=1e-6)
        stam = vidlib.create_model("stam_tiny", num_classes=5, num_frames=4).eval()
        assert (stam(x) - stam(x.flip(2))).abs().max() > 1e-4
        stam.aggregate.pos_embed.zero_()  # without the temporal position embedding: blind too
        torch.testing.assert_close(stam(x), stam(x.flip(2)), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------ frame pre-training
def test_render_clip_states_leave_the_frames_unchanged_and_follow_reversal():
    from vidlib.data import synthetic as syn

    a, b = syn.REVERSAL_PAIRS[0]  # b is a played backwards, from the same rng draws
    plain = syn.render_clip(a, np.random.default_rng([3, a]), 32)
    fwd, s_fwd = syn.render_clip(a, np.random.default_rng([3, a]), 32, return_states=True)
    bwd, s_bwd = syn.render_clip(b, np.random.default_rng([3, a]), 32, return_states=True)
    assert np.array_equal(plain, fwd) and np.array_equal(bwd, fwd[::-1])
    assert s_fwd.shape == (len(fwd), len(syn.STATE_NAMES)) and np.array_equal(s_bwd, s_fwd[::-1])
    x = s_fwd[:, syn.STATE_NAMES.index("x")]
    assert x[-1] - x[0] > 0.3  # left to right: the object crosses a good part of the frame


def test_render_frames_is_deterministic_and_not_the_benchmark():
    from vidlib.data import synthetic as syn

    f1, s1, l1 = syn.render_frames(5, seed=0, size=32, frames_per_clip=3)
    f2, s2, l2 = syn.render_frames(5, seed=0, size=32, frames_per_clip=3)
    assert f1.shape == (15, 32, 32, 3) and f1.dtype == np.uint8 and s1.shape == (15, 7)
    assert (
        np.array_equal(f1, f2)
        and np.array_equal(s1, s2)
        and l1.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3 + [4] * 3
    )
    other = syn.render_clip(0, np.random.default_rng([0, 0, 0, 0]), 32)  # train video 0 of class 0
    assert not np.array_equal(f1[0], other[0])


def test_pretrain_frame_encoder_learns_and_returns_the_spatial_keys(tmp_path):
    from vidbook.experiments import FramePretrainConfig, pretrain_to_file

    cfg = FramePretrainConfig(num_clips=48, frames_per_clip=4, epochs=6, batch_size=32)
    path = tmp_path / "enc.pth"
    pre = pretrain_to_file(path, "stam_tiny", cfg)
    assert path.is_file() and not (tmp_path / "enc.pth.tmp").exists()
    losses = [h["loss"] for h in pre.history]
    assert len(pre.history) == 6 and losses[-1] < 0.8 * losses[0]  # it learns
    assert set(pre.history[-1]["r2"]) == set(vidlib.data.synthetic.STATE_NAMES)
    assert all(k.startswith(("patch_embed.", "cls_token", "pos_embed", "blocks.", "norm."))
               for k in pre.state_dict)  # fmt: skip
    again = pretrain_to_file(tmp_path / "again.pth", "stam_tiny", cfg)  # same config, same weights
    assert all(torch.equal(v, again.state_dict[k]) for k, v in pre.state_dict.items())
    model = vidlib.create_model("stam_tiny", num_classes=5, num_frames=4, vit_init=path)
    assert torch.equal(
        model.state_dict()["blocks.0.attn.qkv.weight"], pre.state_dict["blocks.0.attn.qkv.weight"]
    )
    assert pre.config["num_clips"] == 48 and pre.config["model"] == "stam_tiny"
