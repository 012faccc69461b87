"""Something-Something recipes read rawframe folders: the recipe's file keys reach build_dataset."""

import numpy as np
import pytest
from PIL import Image

import vidlib
from vidlib.engine.recipes import get_recipe
from vidlib.engine.training import build_datasets


@pytest.mark.parametrize("recipe, tmpl", [("tin_r50_sthv1", "{:05}.jpg"), ("tin_r50_sthv2", "img_{:05}.jpg")])
def test_sth_recipes_read_rawframes(tmp_path, recipe, tmpl):
    for split in ("train", "val"):
        lines = []
        for v in range(2):
            folder = tmp_path / f"{split}{v}"
            folder.mkdir()
            for i in range(1, 13):  # frames are numbered from 1 (start_index=1)
                Image.fromarray(np.full((40, 48, 3), 20 * v + i, np.uint8)).save(folder / tmpl.format(i))
            lines.append(f"{split}{v} 12 {v}")
        (tmp_path / f"{split}.txt").write_text("\n".join(lines) + "\n")
    rec = get_recipe(recipe)
    assert rec["data"]["format"] == "rawframes" and rec["data"]["filename_tmpl"] == tmpl
    cfg = vidlib.create_model("tin_tiny", num_classes=174).default_cfg
    train, val = build_datasets(tmp_path, cfg, rec)
    assert train.format == val.format == "rawframes"
    x, y = val[1]
    assert tuple(x.shape) == (3, 8, 64, 64) and y == 1


def test_wrong_template_names_the_missing_frame(tmp_path):
    folder = tmp_path / "v0"
    folder.mkdir()
    for i in range(1, 9):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(folder / f"img_{i:05}.jpg")
    (tmp_path / "train.txt").write_text("v0 8 0\n")
    (tmp_path / "val.txt").write_text("v0 8 0\n")
    cfg = vidlib.create_model("tin_tiny", num_classes=174).default_cfg
    _, val = build_datasets(tmp_path, cfg, get_recipe("tin_r50_sthv1"))
    with pytest.raises(Exception, match="00001.jpg"):
        val[0]
