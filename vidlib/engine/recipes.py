"""Training and test recipes: the papers' mmaction2 (or authors') settings, as plain Python data.

One entry per published configuration (the ``recipe`` field of its ``results/published.yaml`` entry, checked
against the config file named in ``source``), plus small ``synthetic_*`` recipes for the tiny models
of the chapters. ``python -m vidlib train --recipe tanet_r50_k400 --data ...`` reproduces a paper; any
value can be overridden (``--set optimizer.lr=0.005``; :func:`apply_overrides`), and overrides are logged.

Keys of a recipe (all plain data):

- ``model``, ``model_kwargs``: what :func:`vidlib.create_model` builds (``dataset`` for the models with
  several protocols, ``num_classes``, ``dropout``, ...).
- ``pretrained``: the initialisation the paper used (documentation; nothing is downloaded). Pass the file with
  the model keyword for its kind: ``--model-kw imagenet_init=PATH`` (a torchvision 2D ResNet into a 2D model),
  ``--model-kw inflate_from=PATH`` (a torchvision 2D ResNet inflated into a 3D model),
  ``--model-kw vit_init=PATH`` (an image ViT into STAM's spatial ViT), or ``--load-from PATH`` (a whole
  model).
- ``data``: overrides of the model's ``default_cfg`` passed to :func:`vidlib.data.build_dataset`
  (:data:`DATA_CFG_KEYS`: ``sampling``, ``test_sampling``, ``test_crops``, ``test_crop_size``, ``train_crop``,
  ``num_fixed_crops``, ``flip``, ``color_jitter``, ``flip_label_map`` ...), plus documentation: ``dataset``,
  ``train_aug`` (the train pipeline transcribed in mmaction2's terms), ``val`` and ``test`` (the protocols).
  A published recipe states only what differs from its model's ``default_cfg``: :func:`get_recipe` fills
  in the model's :data:`PROTOCOL_KEYS` (sampling and test views) that the recipe does not state.
- ``batch_size`` (per GPU), ``gpus``, ``base_batch_size`` (what ``lr`` is for; ``--auto-scale-lr``).
- ``epochs``, ``val_interval``, ``optimizer`` (see :func:`vidlib.engine.optim.build_optimizer`),
  ``clip_grad`` (max L2 norm or ``None``), ``schedule`` (phases, see :func:`vidlib.engine.optim.lr_factor`),
  ``ema`` (model EMA decay or ``None``), ``aux_loss`` (models with an auxiliary head, see CONTRIBUTING.md),
  ``find_unused_parameters`` (DDP).
- ``published``: key in ``results/published.yaml``; ``source``: the config it transcribes;
  ``notes``: deviations, upstream quirks and unverified items.

Sources: ``[MM]`` = open-mmlab/mmaction2 @ 4d6c9347 (1.2.0), paths under ``configs/``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from ..data.annotations import STHV1_FLIP_LABEL_MAP
from ..errors import BadConfigError, UnknownNameError

__all__ = [
    "RECIPES",
    "DATA_CFG_KEYS",
    "DATASET_KEYS",
    "PROTOCOL_KEYS",
    "model_cfg",
    "get_recipe",
    "list_recipes",
    "recipe_data",
    "apply_overrides",
    "parse_value",
    "format_recipe",
]

#: Keys of a recipe's ``data`` that override the model cfg given to ``vidlib.data.build_dataset``.
DATA_CFG_KEYS = (
    "sampling",
    "test_sampling",
    "crop_size",
    "resize_short",
    "test_crops",
    "test_crop_size",
    "train_crop",
    "num_fixed_crops",
    "flip",
    "color_jitter",
    "flip_label_map",
    "mean",
    "std",
    "value_scale",
    "average_clips",
)
#: Keys of a published recipe's ``data`` that its model's ``default_cfg`` states: the recipe states them
#: only where it differs from the model, and :func:`get_recipe` fills in the model's values
#: (tests/test_recipes_vs_models.py checks every recipe against its model).
PROTOCOL_KEYS = ("sampling", "test_sampling", "test_crops", "test_crop_size")
#: Keys of a recipe's ``data`` that describe the files (passed to ``vidlib.data.build_dataset`` as arguments).
DATASET_KEYS = ("format", "filename_tmpl", "start_index")
#: Something-Something V1 as mmaction2 reads it: RawframeDataset, ``{:05}.jpg`` frames numbered from 1.
STHV1_FRAMES = dict(format="rawframes", filename_tmpl="{:05}.jpg", start_index=1)

# --- shared pieces (mmaction2 transform names and arguments) ------------------------------------------
IMAGENET_R50 = (
    "torchvision://resnet50 (ImageNet; vidlib: model kwarg imagenet_init=<torchvision resnet50 .pth>)"
)
IMAGENET_R50_3D = (
    "torchvision://resnet50 (ImageNet), inflated to 3D (vidlib: model kwarg "
    "inflate_from=<torchvision resnet50 .pth>)"
)


def _seg(n: int, **kw) -> dict:
    return dict(name="SampleFrames", clip_len=1, frame_interval=1, num_clips=n, **kw)


def _multiscale(num_fixed_crops: int, flip: float | None, flip_label_map: dict | None = None) -> dict:
    """mmaction2's MultiScaleCrop train pipeline: the transcript and the ``build_dataset`` cfg keys."""
    aug = [
        dict(name="Resize", scale=(-1, 256)),
        dict(
            name="MultiScaleCrop",
            input_size=224,
            scales=(1, 0.875, 0.75, 0.66),
            random_crop=False,
            max_wh_scale_gap=1,
            num_fixed_crops=num_fixed_crops,
        ),
        dict(name="Resize", scale=(224, 224), keep_ratio=False),
    ]
    if flip:
        aug.append(dict(name="Flip", flip_ratio=flip, flip_label_map=flip_label_map))
    return dict(
        train_aug=aug,
        train_crop="multiscale",
        num_fixed_crops=num_fixed_crops,
        flip=flip or 0,
        color_jitter=False,
        flip_label_map=flip_label_map,
    )


def _rrc(resize_first: bool, flip_label_map: dict | None = None, color_jitter: bool = False) -> dict:
    """RandomResizedCrop (area 0.08-1, ratio 3/4-4/3) + flip 0.5 (+ ColorJitter) train pipeline."""
    aug = [dict(name="Resize", scale=(-1, 256))] if resize_first else []
    aug += [
        dict(name="RandomResizedCrop", area_range=(0.08, 1.0), aspect_ratio_range=(3 / 4, 4 / 3)),
        dict(name="Resize", scale=(224, 224), keep_ratio=False),
        dict(name="Flip", flip_ratio=0.5, flip_label_map=flip_label_map),
    ]
    if color_jitter:
        aug.append(dict(name="ColorJitter", brightness=0.5, contrast=0.5, saturation=0.5, hue=0.1))
    return dict(
        train_aug=aug,
        train_crop="random_resized",
        flip=0.5,
        color_jitter=color_jitter,
        flip_label_map=flip_label_map,
    )


CENTER_224 = dict(views="1 clip x CenterCrop 224", clips=1, crops=1, crop_size=224, resize_short=256)


def _threecrop_256(views: str, clips: int) -> dict:
    """The test protocol ``clips`` x ThreeCrop(256), prob averaging (its description; the model's
    ``default_cfg`` has the ``test_crops`` and ``test_crop_size`` it names)."""
    return dict(views=views, clips=clips, crops=3, crop_size=256, resize_short=256, average_clips="prob")


def _published_data(dataset: str, train: dict, test: dict, **kw) -> dict:
    """The ``data`` of a published recipe: the files (``dataset`` names them; ``kw``: e.g. the rawframe
    keys), the train pipeline (:func:`_multiscale` or :func:`_rrc`), 1 clip x CenterCrop 224 validation
    and the ``test`` protocol's description. Sampling and test views are the model's ``default_cfg``'s
    (:data:`PROTOCOL_KEYS`, filled in by :func:`get_recipe`)."""
    return dict(dataset=dataset, **kw, **train, val=CENTER_224, test=test)


K400_VIDEOS = "Kinetics-400 videos (Decord)"
STHV1_RAWFRAMES = "Something-Something V1 rawframes {:05}.jpg"


def _sgd(lr: float, wd: float, groups: str = "default", nesterov: bool = False) -> dict:
    return dict(name="sgd", lr=lr, momentum=0.9, weight_decay=wd, nesterov=nesterov, param_groups=groups)


def _multistep(milestones: list[int], epochs: int) -> list[dict]:
    return [dict(name="multistep", milestones=milestones, gamma=0.1, begin=0, end=epochs)]


# --- the recipes ----------------------------------------------------------------------------------------
RECIPES: dict[str, dict[str, Any]] = {}

RECIPES["tanet_r50_k400"] = dict(
    description="TANet-R50, Kinetics-400, dense 1x1x8, 100 epochs",
    source="[MM] recognition/tanet/tanet_imagenet-pretrained-r50_8xb8-dense-1x1x8-100e_kinetics400-rgb.py "
    "(+ _base_/models/tanet_r50.py, _base_/schedules/sgd_tsm_100e.py)",
    published="tanet_r50_k400",
    model="tanet_r50",
    model_kwargs=dict(dataset="k400", num_classes=400, num_frames=8, dropout=0.5),
    pretrained=IMAGENET_R50,
    data=dict(
        _published_data(
            K400_VIDEOS,
            _multiscale(13, flip=0.5),
            _threecrop_256("10 dense clips x ThreeCrop 256 = 30 views", 10),
        ),
        val=dict(views="10 dense clips x CenterCrop 224", clips=10, crops=1, crop_size=224, resize_short=256),
    ),
    batch_size=8,
    gpus=8,
    base_batch_size=64,
    epochs=100,
    val_interval=5,
    optimizer=_sgd(0.01, 1e-4, "tsm_fc_lr5"),
    clip_grad=20,
    schedule=_multistep([50, 75, 90], 100),
    notes="README says '8 clips x 3 crop'; the test pipeline is 10 dense clips x 3 crops. "
    "The base model config has the mean typo 103.5 (vidlib uses 103.53 everywhere).",
)

RECIPES["tanet_r50_sthv1_8f"] = dict(
    description="TANet-R50, Something-Something V1, 1x1x8, 50 epochs",
    source="[MM] recognition/tanet/tanet_imagenet-pretrained-r50_8xb8-1x1x8-50e_sthv1-rgb.py "
    "(+ _base_/schedules/sgd_tsm_50e.py)",
    published="tanet_r50_sthv1_8f",
    model="tanet_r50",
    model_kwargs=dict(dataset="sthv1", num_classes=174, num_frames=8, dropout=0.6),
    pretrained=IMAGENET_R50,
    data=_published_data(
        STHV1_RAWFRAMES,
        _multiscale(13, 0.5, STHV1_FLIP_LABEL_MAP),
        _threecrop_256("twice_sample (2 clips) x ThreeCrop 256 = 6 views", 2),
        **STHV1_FRAMES,
    ),
    batch_size=8,
    gpus=8,
    base_batch_size=64,
    epochs=50,
    val_interval=1,
    optimizer=_sgd(0.01, 1e-3, "tsm_fc_lr5"),
    clip_grad=20,
    schedule=_multistep([30, 40, 45], 50),
    notes="README says '16 clips x 3 crop'; the test pipeline is twice_sample x ThreeCrop = 6 views.",
)

RECIPES["tanet_r50_sthv1_16f"] = dict(
    copy.deepcopy(RECIPES["tanet_r50_sthv1_8f"]),
    description="TANet-R50, Something-Something V1, 1x1x16, 50 epochs",
    source="[MM] recognition/tanet/tanet_imagenet-pretrained-r50_8xb6-1x1x16-50e_sthv1-rgb.py",
    published="tanet_r50_sthv1_16f",
    model_kwargs=dict(dataset="sthv1", num_classes=174, num_frames=16, dropout=0.6),
    data=_published_data(
        STHV1_RAWFRAMES,
        _multiscale(13, 0.5, STHV1_FLIP_LABEL_MAP),
        dict(
            CENTER_224, views="1 clip x CenterCrop 224 (test_pipeline = val_pipeline)", average_clips="prob"
        ),
        **STHV1_FRAMES,
    ),
    batch_size=6,
    base_batch_size=48,
    optimizer=_sgd(0.0075, 1e-3, "tsm_fc_lr5"),
    notes="The config defines a 16-clip twice_sample x ThreeCrop test pipeline, then overrides it with "
    "`test_pipeline = val_pipeline`: the test protocol is 1 view (README claims '16 clips x 3 crop').",
)

_TIN_STHV1 = dict(
    description="TIN-R50, Something-Something V1, 1x1x8, 40 epochs",
    source="[MM] recognition/tin/tin_imagenet-pretrained-r50_8xb6-1x1x8-40e_sthv1-rgb.py "
    "(+ _base_/models/tin_r50.py)",
    published="tin_r50_sthv1",
    model="tin_r50",
    model_kwargs=dict(dataset="sthv1", num_classes=174, num_frames=8, dropout=0.8),
    pretrained=IMAGENET_R50,
    data=_published_data(
        STHV1_RAWFRAMES, _multiscale(5, flip=None), dict(CENTER_224, average_clips="prob"), **STHV1_FRAMES
    ),
    batch_size=6,
    gpus=8,
    base_batch_size=48,
    epochs=40,
    val_interval=1,
    optimizer=_sgd(0.01, 5e-4, "tsm_fc_lr5"),
    clip_grad=20,
    schedule=[
        dict(name="linear", start_factor=0.1, begin=0, end=1, by="iter"),
        dict(name="cosine", T_max=39, eta_min_factor=0.0, begin=1, end=40, by="iter"),
    ],
    notes="No flip (direction classes). The README checkpoints were trained on 8x4 GPUs; the config (and "
    "base_batch_size) is 8 GPUs x 6. The 0.x config used lr 0.02 and a cosine floor of 0.5*lr "
    "(sthv1 top-1 44.25 there vs 39.68 in 1.x). The original TIN optimiser gives its 32 offset/weight "
    "Linear layers separate groups; mmaction2 (and this recipe) does not.",
)
RECIPES["tin_r50_sthv1"] = _TIN_STHV1

RECIPES["tin_r50_sthv2"] = dict(
    copy.deepcopy(_TIN_STHV1),
    description="TIN-R50, Something-Something V2, 1x1x8, 40 epochs",
    source="[MM] recognition/tin/tin_imagenet-pretrained-r50_8xb6-1x1x8-40e_sthv2-rgb.py",
    published="tin_r50_sthv2",
    clip_grad=40,
    val_interval=2,
    model_kwargs=dict(dataset="sthv2", num_classes=174, num_frames=8, dropout=0.8),
    data=dict(
        copy.deepcopy(_TIN_STHV1["data"]),
        dataset="Something-Something V2 rawframes img_{:05}.jpg",
        filename_tmpl="img_{:05}.jpg",  # the sthv2 config keeps RawframeDataset's default template
    ),
)

RECIPES["tin_r50_k400"] = dict(
    description="TIN-R50, Kinetics-400, 1x1x8, 50 epochs, fine-tuned from TSM-R50 K400",
    source="[MM] recognition/tin/tin_kinetics400-pretrained-tsm-r50_1x1x8-50e_kinetics400-rgb.py "
    "(+ _base_/schedules/sgd_50e.py)",
    published="tin_r50_k400",
    model="tin_r50",
    model_kwargs=dict(dataset="k400", num_classes=400, num_frames=8, dropout=0.5),
    pretrained="load_from https://download.openmmlab.com/mmaction/recognition/tsm/tsm_r50_1x1x8_50e_kinetics400_rgb/"
    "tsm_r50_1x1x8_50e_kinetics400_rgb_20200607-af7fb746.pth (0.x TSM-R50 K400; in vidlib --model-kw "
    "tsm_init=PATH, which maps TSM's conv1.conv.net to TIN's conv1.conv.net2: --load-from is strict and "
    "refuses the TSM file)",
    data=_published_data(K400_VIDEOS, _multiscale(5, flip=0.5), dict(CENTER_224, average_clips="prob")),
    batch_size=6,
    gpus=8,
    base_batch_size=48,
    epochs=50,
    val_interval=5,
    optimizer=_sgd(0.01, 1e-4, "tsm_fc_lr5"),
    clip_grad=40,
    schedule=_multistep([20, 40], 50),
    notes="The TSM head runs with is_shift=True (no effect at inference). load_from is a 0.x TSM checkpoint, "
    "whose block convs are conv1.conv.net where TIN has conv1.conv.net2; mmaction2 loads it non-strictly, "
    "so those 16 convs would keep their ImageNet init (inferred from the key names, not run). vidlib's "
    "tsm_init= maps them and loads the rest strictly.",
)

_TPN_K400 = dict(
    description="TPN on SlowOnly-R50 8x8, Kinetics-400, 150 epochs (ImageNet-inflated init)",
    source="[MM] recognition/tpn/tpn-slowonly_imagenet-pretrained-r50_8xb8-8x8x1-150e_kinetics400-rgb.py",
    published="tpn_slowonly_r50_k400",
    model="tpn_slowonly_r50",
    model_kwargs=dict(num_classes=400, num_frames=8),
    pretrained=IMAGENET_R50_3D,
    data=_published_data(
        K400_VIDEOS,
        _rrc(resize_first=False, color_jitter=True),
        _threecrop_256("10 clips x ThreeCrop 256 = 30 views", 10),
    ),
    batch_size=8,
    gpus=8,
    base_batch_size=64,
    epochs=150,
    val_interval=10,
    optimizer=_sgd(0.01, 1e-4, nesterov=True),
    clip_grad=40,
    schedule=_multistep([75, 125], 150),
    aux_loss=dict(weight=0.5),
    notes="mmaction2 applies RandomResizedCrop to the raw frame; vidlib's train pipeline resizes the short "
    "side to 256 first (RandomResizedCrop's area and aspect ranges are relative, so only the resampling "
    "differs). mmaction2's val pipeline has a random ColorJitter; vidlib validates without it "
    "(deterministic).",
)
RECIPES["tpn_slowonly_r50_k400"] = _TPN_K400

RECIPES["tpn_slowonly_r50_scratch_k400"] = dict(
    copy.deepcopy(_TPN_K400),
    description="TPN on SlowOnly-R50 8x8, Kinetics-400, 150 epochs, from scratch",
    source="[MM] recognition/tpn/tpn-slowonly_r50_8xb8-8x8x1-150e_kinetics400-rgb.py",
    published="tpn_slowonly_r50_scratch_k400",
    pretrained=None,
    notes=_TPN_K400["notes"] + " The metafile marks this scratch row as ImageNet-pretrained; the config has "
    "pretrained=None. The README lists 8x2 GPUs.",
)

RECIPES["tpn_tsm_r50_sthv1"] = dict(
    description="TPN on TSM-R50, Something-Something V1, 1x1x8, 150 epochs",
    source="[MM] recognition/tpn/tpn-tsm_imagenet-pretrained-r50_8xb8-1x1x8-150e_sthv1-rgb.py",
    published="tpn_tsm_r50_sthv1",
    model="tpn_tsm_r50",
    model_kwargs=dict(dataset="sthv1", num_classes=174, num_frames=8),
    pretrained=IMAGENET_R50,
    data=_published_data(
        STHV1_RAWFRAMES,
        _rrc(False, STHV1_FLIP_LABEL_MAP, color_jitter=True),
        _threecrop_256("twice_sample (2 clips) x ThreeCrop 256 = 6 views", 2),
        **STHV1_FRAMES,
    ),
    batch_size=8,
    gpus=8,
    base_batch_size=64,
    epochs=150,
    val_interval=5,
    optimizer=_sgd(0.01, 5e-4, nesterov=True),
    clip_grad=20,
    schedule=_multistep([75, 125], 150),
    aux_loss=dict(weight=0.5),
    notes="The README calls the init 'TSM'; the config loads torchvision ImageNet R50. "
    "README: '8 clips x 3 crop'; the pipeline is twice_sample x ThreeCrop = 6 views. "
    "The README lists 8x6 GPUs.",
)

_CSN_URL = "https://download.openmmlab.com/mmaction/recognition/csn/"
_CSN_INIT = " (the backbone; vidlib: model kwarg backbone_init=<file>)"
_CSN = dict(
    description="ir-CSN-152, IG-65M pretrained, Kinetics-400 fine-tuning, 32x2x1, 58 epochs",
    source="[MM] recognition/csn/ircsn_ig65m-pretrained-r152_8xb12-32x2x1-58e_kinetics400-rgb.py "
    "(base: ircsn_ig65m-pretrained-r152-bnfrozen_8xb12-32x2x1-58e_kinetics400-rgb.py)",
    published="ircsn_r152_ig65m_k400",
    model="ircsn_r152",
    model_kwargs=dict(num_classes=400, num_frames=32, dropout=0.5, norm_eval=True, bn_frozen=True),
    pretrained=_CSN_URL + "ircsn_from_scratch_r152_ig65m_20200807-771c4135.pth" + _CSN_INIT,
    data=_published_data(
        K400_VIDEOS, _rrc(resize_first=True), _threecrop_256("10 clips x ThreeCrop 256 = 30 views", 10)
    ),
    batch_size=12,
    gpus=8,
    base_batch_size=96,
    epochs=58,
    val_interval=3,
    optimizer=_sgd(5e-4, 1e-4),
    clip_grad=40,
    schedule=[
        dict(name="linear", start_factor=0.1, begin=0, end=16, by="epoch"),
        dict(name="multistep", milestones=[32, 48], gamma=0.1, begin=0, end=58),
    ],
    find_unused_parameters=True,
    notes="The 'non-bnfrozen' config only overrides `pretrained`, so BN is frozen (norm_eval + bn_frozen) by "
    "inheritance. Warm-up is epoch-wise (16 epochs).",
)
RECIPES["ircsn_r152_ig65m_k400"] = _CSN
RECIPES["ircsn_r152_ig65m_bnfrozen_k400"] = dict(
    copy.deepcopy(_CSN),
    published="ircsn_r152_ig65m_bnfrozen_k400",
    source="[MM] recognition/csn/ircsn_ig65m-pretrained-r152-bnfrozen_8xb12-32x2x1-58e_kinetics400-rgb.py",
)
RECIPES["ircsn_r50_ig65m_k400"] = dict(
    copy.deepcopy(_CSN),
    description="ir-CSN-50, IG-65M pretrained, Kinetics-400 fine-tuning, 32x2x1, 58 epochs",
    source="[MM] recognition/csn/ircsn_ig65m-pretrained-r50-bnfrozen_8xb12-32x2x1-58e_kinetics400-rgb.py",
    published="ircsn_r50_ig65m_bnfrozen_k400",
    model="ircsn_r50",
    pretrained=_CSN_URL + "ircsn_from_scratch_r50_ig65m_20210617-ce545a37.pth" + _CSN_INIT,
)
RECIPES["ipcsn_r152_ig65m_k400"] = dict(
    copy.deepcopy(_CSN),
    description="ip-CSN-152, IG-65M pretrained, Kinetics-400 fine-tuning, 32x2x1, 58 epochs",
    source="[MM] recognition/csn/ipcsn_ig65m-pretrained-r152-bnfrozen_32x2x1-58e_kinetics400-rgb.py",
    published="ipcsn_r152_ig65m_bnfrozen_k400",
    model="ipcsn_r152",
    pretrained=_CSN_URL + "ipcsn_from_scratch_r152_ig65m_20210617-c4b99d38.pth" + _CSN_INIT,
)

_STAM_NOTES = (
    "No training code was released. Facts from the authors (Alibaba-MIIL/STAM issues #2, #6, #9): "
    "AdamW, weight decay 1e-3, 100 epochs, cosine schedule with a 10-epoch warm-up, model EMA; "
    "stam_16: batch 64, lr 1e-5; stam_64: batch 16, lr 2.5e-6, one 8xV100 machine (issue #9; an "
    "earlier answer, #2, says batch 8, lr 1e-3, wd 1e-4). Training clips: frames_per_clip=T, "
    "frame_rate=T/10, step_between_clips=100 (many clips per video; #6). v2 weights also used "
    "knowledge distillation (README), which is not reproduced. Assumed here (unpublished): the warm-up "
    "start factor 0.001, EMA decay 0.9997, no weight decay on biases/norms/embeddings, and the train "
    "augmentation (RandomResizedCrop + flip)."
)


def _stam(T: int, batch_total: int, lr: float, verified: bool) -> dict:
    return dict(
        description=f"STAM-{T} (ViT-B/16 + temporal transformer), Kinetics-400, 100 epochs",
        source="Alibaba-MIIL/STAM@6749baf (infer.py; training details from the authors' issue answers)",
        published=f"stam_{T}_k400",
        model=f"stam_{T}",
        model_kwargs=dict(num_classes=400),
        pretrained="ImageNet-21k ViT-B/16 @224 (vidlib: model kwarg vit_init=<timm ViT-B/16 file>, "
        "see vidlib.models.vit.init_spatial_from_vit)",
        data=dict(
            _published_data(
                "Kinetics-400 videos",
                _rrc(resize_first=True),
                dict(
                    CENTER_224,
                    views="1 clip (first 10 s at T/10 fps) x CenterCrop 224, inputs in [0, 1]",
                    average_clips="prob",
                ),
            ),
            val=dict(CENTER_224, views="1 clip (first 10 s at T/10 fps) x CenterCrop 224"),
        ),
        batch_size=batch_total // 8,
        gpus=8,
        base_batch_size=batch_total,
        epochs=100,
        val_interval=5,
        optimizer=dict(name="adamw", lr=lr, weight_decay=1e-3, param_groups="no_decay_1d"),
        clip_grad=None,
        schedule=[
            dict(name="linear", start_factor=0.001, begin=0, end=10, by="iter"),
            dict(name="cosine", T_max=90, begin=10, end=100, by="iter"),
        ],
        ema=0.9997,
        verified=verified,
        notes=_STAM_NOTES
        + (
            ""
            if verified
            else f" STAM-{T}: batch and lr are not published; this recipe uses "
            "the linear scaling rule between the stam_16 and stam_64 settings."
        ),
    )


RECIPES["stam_8_k400"] = _stam(8, 64, 1e-5, verified=False)
RECIPES["stam_16_k400"] = _stam(16, 64, 1e-5, verified=True)
RECIPES["stam_32_k400"] = _stam(32, 32, 5e-6, verified=False)
RECIPES["stam_64_k400"] = _stam(64, 16, 2.5e-6, verified=True)

# --- synthetic recipes for the tiny CPU models of the chapters -------------------------------------------
_SYNTH_DATA = dict(
    dataset="Something-Synthetic, 64x64 px (python -m vidlib.data.synthetic)",
    resize_short=64,
    crop_size=64,
    test_crop_size=64,
    test_crops=1,
    train_crop="multiscale",
    num_fixed_crops=5,
    flip=0.5,
    color_jitter=False,
    val=dict(views="1 clip x CenterCrop 64", clips=1, crops=1, crop_size=64, resize_short=64),
    test=dict(views="the model's test sampling x CenterCrop 64", crops=1, average_clips="prob"),
)
_SYNTH_SGD = dict(
    source="vidlib (this recipe is ours; tuned for 2 CPU cores)",
    published=None,
    model_kwargs=dict(),
    pretrained=None,
    data=copy.deepcopy(_SYNTH_DATA),
    batch_size=16,
    gpus=1,
    base_batch_size=16,
    epochs=12,
    val_interval=1,
    optimizer=dict(name="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4, nesterov=False, param_groups="tsm"),
    clip_grad=20,
    schedule=[
        dict(name="linear", start_factor=0.1, begin=0, end=1, by="iter"),
        dict(name="cosine", begin=1, by="iter"),  # no end: until the last epoch
    ],
)
_SYNTH_32 = dict(
    _SYNTH_DATA,
    dataset="Something-Synthetic, frames resized 64 -> 32 px (python -m vidlib.data.synthetic)",
    resize_short=32,
    crop_size=32,
    test_crop_size=32,
    val=dict(views="1 clip x CenterCrop 32", clips=1, crops=1, crop_size=32, resize_short=32),
    test=dict(views="the model's test sampling x CenterCrop 32", crops=1, average_clips="prob"),
)
RECIPES["synthetic_tiny"] = dict(
    copy.deepcopy(_SYNTH_SGD),
    description="Tiny 2D models (tsn/tsm/tanet/tin _tiny) on Something-Synthetic at 32 px, CPU minutes",
    model="tsm_tiny",
    model_kwargs=dict(dropout=0.0),
    data=copy.deepcopy(_SYNTH_32),
    epochs=8,
    optimizer=dict(name="adamw", lr=2e-3, weight_decay=1e-4, param_groups="tsm"),
    notes="A from-scratch schedule for the tiny models: AdamW with TSM-style groups (no fc_lr5), 1-epoch "
    "warm-up, cosine to 0 at the last epoch (also when --epochs changes). Frames are resized from the "
    "benchmark's 64 px to 32 px, which makes a step 3x cheaper, so that 3 seeds x 3 models fit in about "
    "10 minutes on 2 CPU cores. AdamW rather than SGD: measured on TANet-tiny (8 epochs, seed 0, pair "
    "accuracy), SGD lr 0.05 gives 0.56 and AdamW 2e-3 gives 0.82; TSM-tiny learns the order with both. "
    "No dropout (the models' defaults are 0.4-0.5): in a 6-epoch run it slows TANet-tiny down (pair "
    "accuracy 0.66 with dropout 0.5, 0.76 without, seed 0). "
    "The horizontal flip relabels the direction classes with the dataset's meta.json flip_label_map.",
)
_SYNTH_112 = dict(
    _SYNTH_DATA,
    dataset="Something-Synthetic, frames resized 64 -> 112 px (python -m vidlib.data.synthetic)",
    resize_short=112,
    crop_size=112,
    test_crop_size=112,
    sampling=_seg(8),
    test_sampling=_seg(8),
    val=dict(views="1 clip x CenterCrop 112", clips=1, crops=1, crop_size=112, resize_short=112),
    test=dict(views="8 segments x CenterCrop 112", crops=1, average_clips="prob"),
)
RECIPES["synthetic_r50"] = dict(
    copy.deepcopy(_SYNTH_SGD),
    description="Full-size 2D models (tanet_r50, tsm_r50 ...) on Something-Synthetic at 112 px, GPU minutes",
    model="tanet_r50",
    model_kwargs=dict(dropout=0.5),
    data=copy.deepcopy(_SYNTH_112),
    batch_size=32,
    base_batch_size=32,
    epochs=30,
    pretrained=IMAGENET_R50,
    optimizer=dict(name="adamw", lr=1e-3, weight_decay=0.05, param_groups="tsm"),
    notes="Ours, for the chapters' GPU mode: the paper's ResNet-50 model on the synthetic benchmark, frames "
    "upsampled from 64 to 112 px, TSN segment sampling (1x1x8) instead of the Kinetics dense sampling, AdamW "
    "with a 1-epoch warm-up and cosine. Initialised from ImageNet when the torchvision ResNet-50 file is "
    "on the machine (imagenet_init=), from scratch otherwise; the chapter says which.",
)
RECIPES["synthetic_tiny_3d"] = dict(
    copy.deepcopy(_SYNTH_SGD),
    description="Tiny 3D models (slowonly/r3d/ircsn/ipcsn/tpn _tiny), Something-Synthetic, 32 px, CPU",
    model="slowonly_tiny",
    model_kwargs=dict(dropout=0.0),
    data=dict(copy.deepcopy(_SYNTH_32), sampling=_seg(8), test_sampling=_seg(8)),
    batch_size=32,
    base_batch_size=32,
    epochs=4,
    optimizer=dict(name="adamw", lr=4e-3, weight_decay=1e-4, param_groups="default"),
    notes="Retuned for the TPN chapter (2 CPU cores, seed 0, validation top-1 after the last epoch): "
    "SGD lr 0.05 at 64 px was too slow for the grid. With AdamW at 32 px: dense 8x2 or 8x4 clips learn "
    "slowly on this benchmark, whose events span the whole video (TSM-tiny 13% / 21% after 4 of 6 epochs, "
    "SlowOnly-tiny 10%); TSN segments (1x1x8) over the whole video work: batch 16, lr 2e-3, 6 epochs gave "
    "SlowOnly-tiny 26% and TPN-SlowOnly-tiny 74% in 4.1 and 6.1 min; batch 32, lr 4e-3 (the lr scaled "
    "with the batch), 4 epochs gave 13% and 57% (53% without the auxiliary loss) in 2.7 and 3.5 min "
    "(3 processes), which fits 3 models x 3 seeds in the chapter's budget. Training steps at 32 px, "
    "batch 16, one thread: SlowOnly-tiny 111 ms, TPN-SlowOnly-tiny 157 ms, TSM-tiny 123 ms, "
    "TPN-TSM-tiny 224 ms, so the SlowOnly pair fits. One parameter group, 1-epoch warm-up, cosine to 0, "
    "no dropout. The CSN chapter uses it unchanged; its calibration (seed 0, validation / training-set "
    "top-1, the training videos seen as the validation ones): R3D / ip-CSN / ir-CSN-tiny after 4 epochs "
    "52 / 60 / 42% and 59 / 65 / 49%, after 8 epochs 80 / 83 / 72% and 83 / 89 / 78% (every model still "
    "underfits); with 25 training videos per class and 16 epochs 46 / 36 / 34% and 73 / 74 / 73% (the "
    "dense model generalises best); 4 epochs keep 3 models x 3 seeds within the budget.",
)
RECIPES["synthetic_stam_tiny"] = dict(
    copy.deepcopy(_SYNTH_SGD),
    description="Tiny STAM (stam_tiny, stam_mean_tiny) on Something-Synthetic at 32 px: a frame encoder "
    "pre-trained on rendered frames and frozen, the temporal part trained; CPU minutes",
    model="stam_tiny",
    model_kwargs=dict(num_frames=4, freeze_spatial=True),
    pretrained="a frame encoder pre-trained on single rendered frames (vidlib.engine.pretrain_frame_encoder "
    "on vidlib.data.synthetic.render_frames; the STAM chapter's; model kwarg vit_init=<file>)",
    data=dict(copy.deepcopy(_SYNTH_32), sampling=_seg(4), test_sampling=_seg(4)),
    epochs=12,
    optimizer=dict(name="adamw", lr=2e-3, weight_decay=0.05, param_groups="no_decay_1d"),
    clip_grad=1.0,
    notes="Calibrated for the STAM chapter (2 CPU cores, seed 0, validation top-1 / reversal-pair accuracy; "
    "chance 4% / 50%). From scratch nothing worked within the budget: a patch-16 ViT at 64 px and a patch-8 "
    "ViT at 32 px (D 96, depth 4, the official init std 0.02) stayed at chance for 6 epochs; a conv stem "
    "(Xiao et al. 2021) made them learn appearance (mean aggregation 9% after 4 epochs; the temporal "
    "transformer collapsed at lr 2e-3 and reached 11% / 52% at 1e-3 and 19% / 50% at 5e-4 after 6 epochs, "
    "T = 8); patch 4 (64 tokens) cost 70 s an epoch; D 64, depth 2, T = 4, lr 5e-4, 12 epochs: 22% / 53% "
    "(mean: 19% / 52%); the init std scaled to the width (0.069): 23% / 50% after 6 epochs. A frame encoder "
    "pre-trained to regress the object's state in single rendered frames (x, y, radius, opacity: held-out "
    "R^2 0.8-0.87) carries the order: a linear probe on the 4 concatenated frame embeddings separates "
    "left/right, down/up, approach/recede and appear/disappear at 99.5% (their mean: 43%). Fine-tuned end "
    "to end it still learned no order in 6-12 epochs (25-30% / 50-54%, lr 5e-4 or 2e-3). Frozen, with the "
    "temporal part trained at lr 2e-3: 33% / 49% after 4 epochs with the official init std 0.02, which "
    "keeps a D-64 temporal transformer nearly silent (on fixed frame embeddings: 50% pair accuracy after "
    "6 epochs, 98% with PyTorch's default init); with the width-scaled std: 53% / 74% after 12 epochs and "
    "60% / 85% after 20 (T = 4). 12 epochs keep 2 models x 3 seeds and the frames sweep in the budget. "
    "Frames resized 64 -> 32 px, TSN segments (the videos are 2-8 s, shorter than STAM's 10-s window).",
)


#: Optional keys every recipe has (so that ``--set ema=0.999`` works everywhere).
_OPTIONAL = dict(ema=None, aux_loss=None, find_unused_parameters=False, val_interval=1, notes="")
for _recipe in RECIPES.values():
    for _key, _value in _OPTIONAL.items():
        _recipe.setdefault(_key, _value)


# --- access and overrides ---------------------------------------------------------------------------------
def list_recipes(pattern: str = "*") -> list[str]:
    """Sorted recipe names matching a shell-style pattern."""
    import fnmatch

    return sorted(n for n in RECIPES if fnmatch.fnmatch(n, pattern))


_MODEL_CFGS: dict[str, dict] = {}


def model_cfg(recipe: dict) -> dict:
    """The ``default_cfg`` of the model ``recipe`` builds (``model`` with ``model_kwargs``).

    The model is built on the meta device (no weights are allocated) with the random generators' state
    kept, so that reading a recipe never changes what a seeded run draws; the cfg is cached.
    """
    import torch

    from ..models import create_model

    kwargs = recipe.get("model_kwargs") or {}
    key = json.dumps([recipe["model"], kwargs], sort_keys=True, default=repr)
    if key not in _MODEL_CFGS:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            _MODEL_CFGS[key] = create_model(recipe["model"], **kwargs).default_cfg
    return copy.deepcopy(_MODEL_CFGS[key])


def get_recipe(name: str) -> dict:
    """A deep copy of recipe ``name`` (so callers may modify it), resolved: a published recipe's ``data``
    gets the :data:`PROTOCOL_KEYS` it does not state from its model's ``default_cfg``
    (:func:`model_cfg`). Unknown names list the choices."""
    if name not in RECIPES:
        raise UnknownNameError(f"unknown recipe {name!r}; available recipes: {', '.join(list_recipes())}")
    recipe = copy.deepcopy(RECIPES[name])
    if recipe.get("published"):
        cfg, data = model_cfg(recipe), recipe["data"]
        data.update({k: cfg[k] for k in PROTOCOL_KEYS if k not in data})
    return recipe


def recipe_data(recipe: dict) -> tuple[dict, dict]:
    """A recipe's ``data`` split into model-cfg overrides (:data:`DATA_CFG_KEYS`: sampling, crops ...) and the
    arguments that describe the files (:data:`DATASET_KEYS`: rawframe ``format``, ``filename_tmpl`` ...)."""
    data = recipe.get("data", {})
    return (
        {k: v for k, v in data.items() if k in DATA_CFG_KEYS},
        {k: v for k, v in data.items() if k in DATASET_KEYS},
    )


def parse_value(text: str):
    """``"0.1"`` -> 0.1, ``"[30,40]"`` -> [30, 40], ``"true"``/``"none"`` -> True/None, else the string."""
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        return json.loads(text)
    except ValueError:
        return text


def _check_type(dotted: str, old, value) -> None:
    """An override keeps the kind of value it replaces (a number stays a number ...); ``None`` takes
    anything."""
    if old is None or value is None:
        return
    kinds = [
        (bool, "true or false"),
        ((int, float), "a number"),
        (str, "a string"),
        ((list, tuple), "a list"),
        (dict, "a mapping"),
    ]
    for types, name in kinds:
        if isinstance(old, types):
            ok = isinstance(value, types) and (types is bool or not isinstance(value, bool))
            if not ok:
                raise BadConfigError(
                    f"override {dotted!r}: expected {name} like the recipe's {old!r}, got {value!r}"
                )
            return


def apply_overrides(recipe: dict, overrides: dict[str, Any]) -> list[str]:
    """Set dotted keys (``"optimizer.lr"``, ``"schedule.0.end"``) in ``recipe`` in place.

    Returns one log line per override (``"optimizer.lr: 0.01 -> 0.005"``). An unknown key raises
    ``KeyError`` listing the keys available at that level.
    """
    log = []
    for dotted, value in overrides.items():
        node, parts = recipe, dotted.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise UnknownNameError(
                        f"override {dotted!r}: {part!r} is not an index of a list of {len(node)}"
                    )
                part = int(part)
            elif not isinstance(node, dict) or (
                part not in node and not (last and parts[0] == "data" and part in DATA_CFG_KEYS)
            ):
                choices = ", ".join(map(str, node)) if isinstance(node, dict) else type(node).__name__
                raise UnknownNameError(f"override {dotted!r}: no key {part!r} (choices: {choices})")
            if last:
                _check_type(dotted, node.get(part) if isinstance(node, dict) else node[part], value)
                old = node.get(part, "<model default>") if isinstance(node, dict) else node[part]
                log.append(f"{dotted}: {old!r} -> {value!r}")
                node[part] = value
            else:
                node = node[part]
    return log


def format_recipe(name_or_recipe: str | dict) -> str:
    """A readable, JSON-like listing of a recipe (chapters print it)."""
    recipe = get_recipe(name_or_recipe) if isinstance(name_or_recipe, str) else name_or_recipe
    return json.dumps(recipe, indent=2, default=str)
