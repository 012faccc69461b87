"""Tests for vidlib.report and the data in results/published.yaml."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from vidbook import modes, results, stats, tables

ROOT = Path(__file__).resolve().parents[1]

#: The keys the model cfgs refer to (``make_cfg(..., published=<key>)``), see CONTRIBUTING.md.
KEYS_USED_BY_MODELS = [
    "tsn_r50_k400",
    "tsm_r50_k400",
    "tanet_r50_k400",
    "tanet_r50_sthv1_8f",
    "tanet_r50_sthv1_16f",
    "tin_r50_sthv1",
    "tin_r50_sthv2",
    "tin_r50_k400",
    "tpn_slowonly_r50_k400",
    "tpn_slowonly_r50_scratch_k400",
    "tpn_tsm_r50_sthv1",
    "ircsn_r152_ig65m_k400",
    "ircsn_r152_ig65m_bnfrozen_k400",
    "ircsn_r50_ig65m_bnfrozen_k400",
    "ipcsn_r152_k400",
    "ircsn_r152_k400",
    "ipcsn_r152_ig65m_bnfrozen_k400",
    "ipcsn_r152_sports1m_bnfrozen_k400",
    "ircsn_r152_sports1m_bnfrozen_k400",
    "stam_8_k400",
    "stam_16_k400",
    "stam_32_k400",
    "stam_64_k400",
]


@pytest.fixture(autouse=True)
def _root(monkeypatch):
    monkeypatch.setenv("VIDLIB_ROOT", str(ROOT))


def test_yaml_loads_and_sections():
    for section in ("entries", "papers", "sources"):
        assert results.published(section=section)


@pytest.mark.parametrize("key", KEYS_USED_BY_MODELS)
def test_keys_used_by_model_cfgs_exist(key):
    assert results.published(key)


def test_every_entry_has_required_fields():
    entries = results.published()
    papers, sources = results.published(section="papers"), results.published(section="sources")
    for key, e in entries.items():
        missing = [f for f in results.REQUIRED_FIELDS if f not in e]
        assert not missing, f"{key}: missing {missing}"
        assert e["paper"] in papers, key
        assert e["source"]["tag"] in sources, key
        assert isinstance(e["top1"], float) and 0 < e["top1"] < 100, key
        assert e["top5"] is None or 0 < e["top5"] < 100, key
        proto = e["test_protocol"]
        assert {"as_stated", "as_configured", "verified"} <= set(proto), key
        assert proto["as_configured"]["views"] >= 1, key
        assert e["checkpoint"].startswith("https://"), key
        assert isinstance(e["verified"], bool), key


def test_flops_and_params_are_consistent():
    for key, e in results.published().items():
        f = e["flops"]
        assert f["unit"] == "G" and f["counted_as"].startswith("MACs per view"), key
        b, c, t, h, w = f["input_shape"]
        assert (b, c, t) == (1, 3, f["input_shape"][2]) and h == w in (224, 256), key
        # the printed string and the numeric value agree (value may be the raw count / 1e9)
        digits = re.sub(r"[^0-9.]", "", f["as_printed"].split("×")[0])
        assert math.isclose(float(digits) / (1e9 if float(digits) > 1e6 else 1), f["value"], rel_tol=1e-9), (
            key
        )
        if "recount_g" in f and "copy error" not in f.get("note", ""):
            assert math.isclose(f["recount_g"], f["value"], rel_tol=0.003), key
        p = e["params"]
        assert isinstance(p["recount"], int), key
        if (
            p["value"] is not None
            and "copy error" not in p.get("note", "")
            and e["params"].get("verified", True)
        ):
            decimals = len(p["as_printed"].rstrip("M").partition(".")[2]) if "M" in p["as_printed"] else 6
            assert round(p["recount"] / 1e6, decimals) == pytest.approx(p["value"]), key


def test_tanet_pitfalls_are_recorded():
    k400 = results.published("tanet_r50_k400")
    assert k400["test_protocol"]["as_stated"] == "8 clips x 3 crop"
    assert k400["test_protocol"]["as_configured"]["views"] == 30
    assert k400["recipe"]["mean"][2] == 103.5
    assert results.published("tanet_r50_sthv1_16f")["test_protocol"]["as_configured"]["views"] == 1
    assert k400["flops"]["input_shape"][-1] == 256


def test_unknown_key_and_missing_file(monkeypatch, tmp_path):
    with pytest.raises(KeyError, match="tanet_r50_k400"):
        results.published("no_such_model")
    monkeypatch.setenv("VIDLIB_ROOT", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="published.yaml"):
        results.published("tanet_r50_k400")


def test_table_text_renders_and_formats():
    rows = [dict(name="a|b", x=1.23456, n=3, missing=None), dict(name="c", x=float("nan"), n=4)]
    text = tables.table_text(rows, {"name": "model", "x": "x", "n": "N", "missing": "m"}, floatfmt=".1f")
    lines = text.splitlines()
    assert lines[0] == "| model | x | N | m |"
    assert lines[2] == "| a\\|b | 1.2 | 3 | – |"
    assert lines[3] == "| c | nan | 4 | – |"
    md = tables.markdown_table(rows, ["name", "n"], caption="cap")
    assert "| name | n |" in md.data and "*cap*" in md.data
    with pytest.raises(KeyError, match="nope"):
        tables.table_text(rows, ["nope"])
    with pytest.raises(ValueError):
        tables.table_text([], None)


def test_mean_std_and_results_roundtrip(tmp_path, monkeypatch):
    assert stats.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert stats.mean_std([5.0]) == (5.0, 0.0)
    assert stats.fmt_mean_std([1.0, 2.0, 3.0]) == "2.0 ± 1.0"
    monkeypatch.setenv("VIDLIB_ROOT", str(tmp_path))
    p = results.save_results("demo", {"a": 1}, quick=True)
    assert p == tmp_path / "results" / "runs" / "demo_quick.json"
    assert results.load_results("demo", quick=True) == {"a": 1}
    with pytest.raises(FileNotFoundError, match="demo"):
        results.load_results("demo", quick=False)


def test_assert_close_and_glue_all():
    assert stats.assert_close(43.08, 43.0, rel=0.01, what="flops") == pytest.approx(43.08 / 43.0)
    with pytest.raises(AssertionError, match="flops"):
        stats.assert_close(50.0, 43.0, what="flops")
    assert tables.glue_all({"x": 1.234, "n": 3}, prefix="t_", fmt=".1f") == {"t_x": "1.2", "t_n": 3}


def test_cost_rows_compare_only_at_the_published_shape():
    specs = [
        dict(label="tiny@64", model="tanet_tiny", num_frames=8, size=64, published="tanet_r50_k400"),
        dict(label="tiny@256", model="tanet_tiny", num_frames=8, size=256, published="tanet_r50_k400"),
        dict(label="no pub", model="tsn_tiny", num_frames=4, size=32, num_classes=10),
    ]
    rows, md = tables.cost_table(specs)
    small, at_pub, nopub = rows
    assert small["flops_ratio"] is None and small["pub_input"] == "8×256×256" and small["gflops_mmcv"] is None
    assert at_pub["pub_gflops"] == "43.0G" and at_pub["flops_ratio"] == pytest.approx(at_pub["gflops"] / 43.0)
    assert at_pub["gflops_mmcv"] > at_pub["gflops"] > small["gflops"] > 0  # mmcv adds ReLU/pool elements
    assert at_pub["num_classes"] == 400 and nopub["num_classes"] == 10 and nopub["pub_params"] is None
    assert round(at_pub["params_m"] * 1e6) == at_pub["flop_count"].params
    import vidlib

    assert round(nopub["params_m"] * 1e6) == vidlib.num_params(
        vidlib.create_model("tsn_tiny", num_classes=10)
    )
    assert "| tiny@256 |" in md.data


def test_model_cfgs_point_at_existing_entries_with_the_same_checkpoint():
    """Every registered model's ``default_cfg["published"]`` exists, and its ``url`` is that entry's
    checkpoint."""
    import vidlib

    entries = results.published()
    for name in vidlib.list_models():
        cfg = vidlib.create_model(name).default_cfg
        key = cfg.get("published")
        if key is None:
            continue
        assert key in entries, f"{name}: default_cfg published={key!r} is not in results/published.yaml"
        if cfg.get("url"):
            assert cfg["url"] == entries[key]["checkpoint"], (name, cfg["url"], entries[key]["checkpoint"])


def test_tables_align_text_left_and_numbers_right():
    text = tables.table_text([dict(name="a", n=1, x=0.5, note=None), dict(name="b", n=22, x=None, note="ok")])
    assert text.splitlines()[1] == "|:---|---:|---:|:---|"


def test_recipe_rows_show_what_decides_a_result():
    rows = {r["setting"]: r["value"] for r in tables.recipe_rows("tanet_r50_k400", epochs=3)}
    assert rows["epochs"] == "100 (this run: 3)" and rows["schedule"] == "x0.1 at epochs 50, 75, 90"
    assert "10 dense clips x ThreeCrop 256" in rows["test views"] and "lr 0.01" in rows["optimizer"]


def test_seed_table_means_and_extremes():
    rows = tables.seed_table(
        {("a", 0): {"acc": 0.5}, ("a", 1): {"acc": 0.7}, ("b", 0): {"acc": 0.9}}, {"acc": "accuracy"}
    )
    assert [r["model"] for r in rows] == ["a", "b"]
    assert rows[0]["acc"] == "60.0 ± 14.1" and (rows[0]["acc_min"], rows[0]["acc_max"]) == (50.0, 70.0)


def test_kernel_spread_ranges_and_dotted_metrics():
    def run(model, seed, acc, tempo):
        return dict(model=model, seed=seed, pair_acc=acc, groups={"tempo_groups": {"pair_acc": tempo}})

    env = {"environment": {"cpu_capability": "X"}}
    kernels = dict(
        models=["a", "b"],
        settings={
            "native": dict(
                env,
                runs={
                    "a/0": run("a", 0, 0.5, 0.9),
                    "a/1": run("a", 1, 0.7, 0.8),
                    "b/0": run("b", 0, 0.9, 0.6),
                    "b/1": run("b", 1, 0.9, 0.6),
                },
            ),
            "avx2": dict(
                env,
                runs={
                    "a/0": run("a", 0, 0.6, 0.9),
                    "a/1": run("a", 1, 0.4, 0.7),
                    "b/0": run("b", 0, 0.9, 0.6),
                    "b/1": run("b", 1, 0.8, 0.5),
                },
            ),
        },
    )
    s = stats.kernel_spread(kernels)
    a = s["rows"][0]
    assert a["native"] == pytest.approx(60) and a["avx2"] == pytest.approx(50)
    assert a["mean_range"] == pytest.approx(10) and a["seed_range"] == pytest.approx(30)  # seed 1: 70 vs 40
    assert s["max_seed_range"] == pytest.approx(30) and list(s["columns"])[1] == "native"
    t = stats.kernel_spread(kernels, "groups.tempo_groups.pair_acc")
    assert t["rows"][1]["avx2"] == pytest.approx(55) and t["rows"][1]["mean_range"] == pytest.approx(5)


def test_chapter_mode(monkeypatch):
    monkeypatch.setenv("VIDLIB_DEVICE", "cpu")
    monkeypatch.setenv("VIDLIB_QUICK", "1")
    m = modes.chapter_mode()
    assert (m.name, m.full_size, m.data_root) == ("quick", False, "data/synthetic_quick")
    assert m.pick(quick=1, default=2, gpu=3) == 1
    monkeypatch.setenv("VIDLIB_FULL", "1")
    assert modes.chapter_mode().full_size
    monkeypatch.setenv("VIDLIB_QUICK", "0")
    m = modes.chapter_mode()
    assert (m.name, m.data_root, m.pick(quick=1, default=2)) == ("default", "data/synthetic", 2)


def test_comparison_rows_agree_with_the_entries_they_name():
    """A comparison table's rows for the book's own models repeat their entries' numbers exactly."""
    for name, table in results.published(section="comparisons").items():
        assert table["source"]["tag"] in results.published(section="sources"), name
        for row in table["rows"]:
            assert set(table["columns"]) <= set(row), (name, row)
            if "entry" not in row:
                continue
            e = results.published(row["entry"])
            assert row["top1"] == e["top1"], row
            assert row["gflops"] == e["flops"]["value"], row
            assert row["frames"] == e["num_frames"], row
            assert row["views"] == e["test_protocol"]["as_configured"]["views"], row
            assert row["videos_per_s"] == (e.get("runtime") or {}).get("videos_per_s"), row
