"""Every recipe against its model: the data protocol is written once, in the model's ``default_cfg``.

A published recipe's ``data`` states only what differs from its model's ``default_cfg``
(:data:`vidlib.engine.recipes.PROTOCOL_KEYS` come from the model, filled in by ``get_recipe``), and
what it documents (the ``test`` views) agrees with what runs.
"""

from __future__ import annotations

import pytest
import torch

from vidlib.engine.recipes import (
    DATA_CFG_KEYS,
    PROTOCOL_KEYS,
    RECIPES,
    get_recipe,
    model_cfg,
    recipe_data,
)

PUBLISHED = sorted(n for n, r in RECIPES.items() if r.get("published"))


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_builds_its_model(name):
    cfg = model_cfg(RECIPES[name])
    kwargs = RECIPES[name]["model_kwargs"]
    assert cfg["num_frames"] == kwargs.get("num_frames", cfg["num_frames"])
    over, _ = recipe_data(get_recipe(name))
    assert set(over) <= set(DATA_CFG_KEYS)


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_recipe_states_only_what_differs_from_its_model(name):
    cfg, stated = model_cfg(RECIPES[name]), RECIPES[name]["data"]
    restated = [k for k in PROTOCOL_KEYS if k in stated and stated[k] == cfg[k]]
    assert not restated, f"{name}: data restates the model's default_cfg {restated}; drop them"


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_recipe_protocol_is_the_models(name):
    recipe = get_recipe(name)
    cfg, data = model_cfg(recipe), recipe["data"]
    for k in PROTOCOL_KEYS:
        assert data[k] == RECIPES[name]["data"].get(k, cfg[k]), k
    test = data["test"]  # the documented test views agree with what runs
    assert (test["crops"], test["crop_size"]) == (data["test_crops"], data["test_crop_size"])
    assert test.get("clips", 1) == _test_clips(data["test_sampling"])


def _test_clips(sampling: dict) -> int:
    """The clips (temporal views) a test sampler gives a video."""
    if sampling["name"] == "DenseSampleFrames":
        return sampling.get("num_sample_positions", 10)
    if sampling["name"] == "SampleFrames" and sampling["clip_len"] > 1:
        return sampling["num_clips"]
    return 2 if sampling.get("twice_sample") else 1  # TSN segments, STAM: one clip


def test_get_recipe_keeps_the_random_state():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    get_recipe("tanet_r50_k400")
    get_recipe("stam_16_k400")
    assert torch.equal(torch.get_rng_state(), before)


def test_unpublished_recipes_are_not_resolved():
    assert "sampling" not in get_recipe("synthetic_tiny")["data"]
