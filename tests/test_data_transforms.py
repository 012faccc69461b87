"""Transforms: mmaction2 geometry by hand, flip relabelling, normalisation, view layout, averaging."""

import math

import pytest
import torch

from vidlib.data import (
    CenterCrop,
    Flip,
    MultiScaleCrop,
    ResizeShort,
    ThreeCrop,
    ToModelInput,
    average_views,
    build_transform,
    forward_views,
)
from vidlib.data.synthetic import CLASS_IDS, FLIP_LABEL_MAP
from vidlib.models._registry import IMAGENET_MEAN, IMAGENET_STD, make_cfg


def video(n=4, h=256, w=340):
    """Frame k, pixel (y, x): value k in channel 0, x % 256 in channel 1, y % 256 in channel 2."""
    k = torch.arange(n).view(n, 1, 1).expand(n, h, w)
    x = (torch.arange(w) % 256).view(1, 1, w).expand(n, h, w)
    y = (torch.arange(h) % 256).view(1, h, 1).expand(n, h, w)
    return torch.stack([k, x, y], dim=1).to(torch.uint8)  # [N, 3, H, W]


def test_resize_short_rounds_like_mmcv():
    out, _ = ResizeShort(256)(video(1, 240, 320), 0)
    assert out.shape[-2:] == (256, 341)  # 320 * 256 / 240 = 341.33 -> int(341.33 + 0.5)
    out, _ = ResizeShort(256)(video(1, 320, 240), 0)
    assert out.shape[-2:] == (341, 256)


def test_center_crop_floors_offsets():
    out, _ = CenterCrop(224)(video(1, 256, 341), 0)
    assert out[0, 1, 0, 0] == 58 and out[0, 2, 0, 0] == 16  # left (341-224)//2, top (256-224)//2


def test_three_crop_left_right_middle():
    out, _ = ThreeCrop(256)(video(2, 256, 340), 0)
    assert out.shape == (3, 2, 3, 256, 256)
    assert [int(out[c, 0, 1, 0, 0]) for c in range(3)] == [0, 84, 42]  # step (340-256)//2 = 42
    with pytest.raises(ValueError, match="short side"):
        ThreeCrop(224)(video(1, 256, 340), 0)


def test_multiscale_crop_boxes_are_mmaction2s():
    msc = MultiScaleCrop(224, num_fixed_crops=5)
    sides = [256, 224, 192, 168]  # int(256 * s) for s in (1, .875, .75, .66)
    allowed = set()
    for i, ch in enumerate(sides):
        for j, cw in enumerate(sides):
            if abs(i - j) <= 1:
                ws, hs = (340 - cw) // 4, (256 - ch) // 4
                allowed |= {(py * hs, px * ws, ch, cw) for px, py in [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2)]}
    g = torch.Generator().manual_seed(0)
    seen = {msc.crop_box(256, 340, g) for _ in range(3000)}
    assert seen == allowed  # every allowed box occurs, nothing else
    out, _ = msc(video(2), 0)
    assert out.shape == (2, 3, 224, 224)
    assert len(MultiScaleCrop(224, num_fixed_crops=13).positions) == 13


def test_flip_relabels_direction_classes():
    v = video(2, 8, 10)
    out, label = Flip(p=1.0, flip_label_map=FLIP_LABEL_MAP)(v, CLASS_IDS.index("left_to_right"))
    assert torch.equal(out, v.flip(-1)) and label == CLASS_IDS.index("right_to_left")
    assert Flip(p=1.0, flip_label_map=FLIP_LABEL_MAP)(v, CLASS_IDS.index("turn_ccw"))[1] == CLASS_IDS.index(
        "turn_cw"
    )
    assert Flip(p=1.0, flip_label_map=FLIP_LABEL_MAP)(v, CLASS_IDS.index("up"))[1] == CLASS_IDS.index("up")
    out, label = Flip(p=0.0, flip_label_map=FLIP_LABEL_MAP)(v, 0)
    assert torch.equal(out, v) and label == 0


def test_synthetic_flip_map_is_an_involution_on_mirror_classes():
    assert all(FLIP_LABEL_MAP[FLIP_LABEL_MAP[a]] == a for a in FLIP_LABEL_MAP)
    names = {CLASS_IDS[a]: CLASS_IDS[b] for a, b in FLIP_LABEL_MAP.items()}
    assert names == {
        "left_to_right": "right_to_left",
        "right_to_left": "left_to_right",
        "turn_cw": "turn_ccw",
        "turn_ccw": "turn_cw",
        "circle_cw": "circle_ccw",
        "circle_ccw": "circle_cw",
    }


def test_to_model_input_scales_and_normalises():
    v = torch.full((8, 3, 4, 4), 255, dtype=torch.uint8)
    x, _ = ToModelInput(8, IMAGENET_MEAN, IMAGENET_STD)(v, 0)
    assert x.shape == (1, 3, 8, 4, 4)
    assert torch.allclose(x[0, :, 0, 0, 0], (255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD))
    x, _ = ToModelInput(8, None, None, value_scale=1.0)(v, 0)  # STAM: [0, 1], no normalisation
    assert torch.all(x == 1.0)


def test_test_views_are_crop_major_then_clip():
    cfg = make_cfg(
        num_frames=4,
        resize_short=256,
        crop_size=224,
        test_crops=3,
        test_crop_size=256,
        sampling=dict(name="SampleFrames", clip_len=1, num_clips=4),
        mean=None,
        std=None,
    )
    x, _ = build_transform(cfg, "test", num_frames=4)(video(8, 256, 340), 0)  # 2 sampled views of 4 frames
    assert x.shape == (6, 3, 4, 256, 256)  # [V = 3 crops x 2 clips, 3, T, H, W]
    assert x[:, 0, 0, 0, 0].tolist() == [0, 4, 0, 4, 0, 4]  # frame number: clip 0 starts at 0, clip 1 at 4
    assert x[:, 1, 0, 0, 0].tolist() == [0, 0, 84, 84, 42, 42]  # crop left edge


def test_average_views_by_hand():
    s = torch.tensor([[[3.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])  # [B=1, V=3, C=2]
    p0 = (math.exp(3) / (math.exp(3) + 1) + 2 / (1 + math.e)) / 3  # = 0.496819
    assert torch.allclose(average_views(s, "prob"), torch.tensor([[p0, 1 - p0]]))
    assert torch.allclose(average_views(s, "score"), torch.tensor([[1.0, 2 / 3]]))
    # they can disagree
    assert average_views(s, "prob").argmax() == 1 and average_views(s, "score").argmax() == 0
    with pytest.raises(ValueError, match=r"\[B, V, C\]"):
        average_views(s[0])


def test_forward_views_bounded_batches():
    seen = []

    def model(x):
        seen.append(x.shape[0])
        return x.mean(dim=(1, 2, 3, 4)).unsqueeze(1).repeat(1, 5)  # [b, 5]

    clips = torch.randn(3, 10, 3, 2, 4, 4)  # [B, V, 3, T, H, W]
    out = forward_views(model, clips, max_views=4)
    assert out.shape == (3, 10, 5) and max(seen) == 4 and sum(seen) == 30
    assert torch.allclose(out[1, 7, 0], clips[1, 7].mean())


def test_ten_crop_corners_centre_and_mirrors():
    from vidlib.data import TenCrop

    out, _ = TenCrop(224)(video(1, 256, 340), 0)
    assert out.shape == (10, 1, 3, 224, 224)
    lefts = [int(out[c, 0, 1, 0, 0]) for c in range(0, 10, 2)]  # w_step = (340-224)//4 = 29
    assert lefts == [0, 116, 0, 116, 58]
    assert torch.equal(out[1], out[0].flip(-1)) and torch.equal(out[9], out[8].flip(-1))
