"""The performance page's data (``vidbook.performance``): the files of ``make bench`` exist, are not older
than the code they measured, and the rendered page shows exactly their numbers.

A stale file fails here on purpose: re-run ``make bench`` after changing ``vidlib/models`` or
``vidlib/data`` and commit the new ``results/bench_*.json``.
"""

from __future__ import annotations

import copy
import html
import json
import os
import re
from pathlib import Path

import pytest

from vidbook import figures, performance, results, tables

ROOT = Path(__file__).resolve().parents[1]
PAGE = Path(os.environ.get("VIDLIB_BOOK_HTML", ROOT / "_build" / "html")) / "book" / "performance.html"
REQUIRED = ("cpu", "reference_cpu")  # what a CPU-only `make bench` writes
GPU_KINDS = ("gpu", "reference_gpu")  # written only on a machine with a CUDA device


@pytest.mark.parametrize("kind", REQUIRED)
def test_the_bench_files_exist_and_measured_todays_code(kind):
    data = performance.load_bench(kind)  # raises naming the file and `make bench` when missing or stale
    assert data["code"]["vidlib"] and data["code"]["commit"]
    assert performance.stale_parts(data, performance.BENCH_FILES[kind]) == []


@pytest.mark.parametrize("kind", GPU_KINDS)
def test_gpu_files_are_current_when_present(kind):
    if not performance.bench_path(kind).is_file():
        pytest.skip(f"no {performance.bench_path(kind).name}: `make bench` ran without a GPU")
    performance.load_bench(kind)


def test_a_stale_or_missing_file_is_refused(tmp_path, monkeypatch):
    data = json.loads(performance.bench_path("reference_cpu").read_text())
    stale = copy.deepcopy(data)
    stale["code"]["source_hash"]["models"] = "0" * 16
    assert performance.stale_parts(stale, ["models"]) == ["models"]
    assert performance.stale_parts({"code": {}}, ["models"]) == ["models"]  # nothing recorded: stale
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "bench_reference_cpu.json").write_text(json.dumps(stale))
    monkeypatch.setattr(performance, "project_root", lambda: tmp_path)
    with pytest.raises(RuntimeError, match=r"stale: vidlib/models changed.*make bench"):
        performance.load_bench("reference_cpu")
    assert performance.load_bench("reference_cpu", allow_stale=True)["pairs"]
    with pytest.raises(FileNotFoundError, match=r"bench_cpu.json is missing: run `make bench`"):
        performance.load_bench("cpu")


def test_source_hash_follows_the_source():
    h = results.source_hash("models")
    assert h == results.source_hash("models") and len(h) == 16
    assert h != results.source_hash("data")
    with pytest.raises(FileNotFoundError):
        results.source_hash("no_such_part")


def test_side_by_side_rows_and_ratios():
    data = performance.load_bench("reference_cpu")
    rows = performance.side_by_side_rows(data)
    assert [r["model"] for r in rows] == [p["model"] for p in data["pairs"]]
    for row, pair in zip(rows, data["pairs"]):
        if "skipped" in pair:
            continue
        entry = pair["settings"]["infer_b1_fp32"]
        a, b = entry["vidlib"]["clips_per_s"], entry["reference"]["clips_per_s"]
        assert row["infer_b1_fp32"] == f"{a:.2f} / {b:.2f} = {a / b:.2f}"
        assert entry["ratio"] == pytest.approx(a / b)
    summary = performance.ratio_summary(data)
    ratios = [p["settings"]["train_b1_fp32"]["ratio"] for p in data["pairs"] if "settings" in p]
    assert summary["train_b1_fp32"]["geomean"] == pytest.approx(performance.geomean(ratios))
    assert performance.geomean([2.0, 0.5]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        performance.geomean([])


def test_the_h200_reference_measurement_keeps_its_provenance():
    data = performance.load_bench("reference_h200_2026-11-29")
    prov = data["provenance"]
    assert prov["date"] == "2026-11-29" and "17a615d" in prov["measured_with"]
    assert data["device_name"] == "NVIDIA H200" and data["references"]["mmaction2"] == "1.2.0"
    rows = performance.side_by_side_rows(data)
    assert {r["model"] for r in rows} == {p["model"] for p in data["pairs"]}


def _page_text() -> str:
    if not PAGE.is_file():
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off"):
            pytest.fail(f"no rendered performance page at {PAGE} (required under CI)")
        pytest.skip(f"no rendered performance page at {PAGE}: run `make book QUICK=1` first")
    text = html.unescape(re.sub(r"<[^>]+>", " ", PAGE.read_text()))
    return re.sub(r"\s+", " ", text)


def _cells(rows, columns, floatfmt=".2f") -> set[str]:
    text = tables.table_text(rows, columns, floatfmt)
    return {c.strip() for line in text.splitlines()[2:] for c in line.strip("|").split(" | ")}


def test_the_rendered_page_shows_the_files_numbers():
    """Every cell of the page's generated tables, recomputed from today's files, is on the page."""
    page = _page_text()
    cpu, ref = performance.load_bench("cpu"), performance.load_bench("reference_cpu")
    expected = _cells(
        performance.side_by_side_rows(ref),
        ["model", "parity", "infer_b1_fp32", "train_b1_fp32", "infer_mib", "train_mib"],
    )
    expected |= _cells(performance.machine_rows(cpu), ["model", "gmacs", "clips_per_s", "gmac_per_s"])
    expected |= _cells(performance.data_loading_rows(cpu), ["clips_per_s"], ".1f")
    missing = sorted(c for c in expected if c not in ("–", "") and c not in page)
    assert not missing, f"{PAGE} shows other numbers than results/bench_*.json: {missing[:10]}"


def test_the_peak_share_figure_draws_one_bar_per_model():
    import matplotlib

    matplotlib.use("Agg")

    rows = [
        dict(model="a_r50", input="1×8×224²", gmac_per_s=50.0),
        dict(model="a_tiny", input="8", gmac_per_s=5.0),
    ]
    fig = figures.peak_share(rows, peak=100.0)
    bars = fig.axes[0].patches
    assert [round(b.get_width(), 6) for b in bars] == [50.0, 5.0]
    assert any(list(line.get_xdata()) == [100, 100] for line in fig.axes[0].get_lines())


def test_build_time_rows_and_the_budget():
    def run(seconds, when):
        return {"seconds": seconds, "executed": when}

    quick = {"tam": run(85.0, "2026-11-30T18:01"), "tin": run(121.0, "2026-11-30T18:03")}
    default = {"tam": run(601.0, "2026-11-30T20:00")}
    data = {"book_build": {"quick": {"chapters": quick}, "default": {"chapters": default}}}
    rows = performance.build_time_rows(data, {"tam": 8.5, "csn": 4.0})
    assert [r["chapter"] for r in rows] == ["csn", "tam", "tin"]
    by = {r["chapter"]: r for r in rows}
    assert by["csn"] == dict(chapter="csn", quick_s=None, default_s=None, default_date=None, train_min=4.0)
    assert by["tam"]["default_date"] == "2026-11-30" and by["tin"]["default_s"] is None
    assert performance.over_budget(rows, "quick") == {"tin": 121.0}  # 120 s is the quick budget
    assert performance.over_budget(rows, "default") == {"tam": 601.0}  # 600 s the default one
    with pytest.raises(KeyError):
        performance.over_budget(rows, "gpu")


def test_a_partial_rebuild_does_not_replace_a_full_measurement_of_build_times():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_machine", ROOT / "benchmarks" / "machine.py")
    machine = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(machine)
    cached = machine.cached_pages()
    assert {"intro", "tam", "stam"} <= cached and not {"report", "performance"} & cached  # forced pages

    def reading(names, seconds):
        return {"chapters": {n: {"seconds": seconds, "executed": "x"} for n in names}, "not_measured": None}

    old = {"quick": reading(cached, 50.0), "default": reading(cached, 500.0)}
    new = {"quick": reading(["intro"], 13.0), "default": reading(cached, 400.0)}
    merged = machine.merge_build_times(old, new)
    assert merged["quick"] == old["quick"]  # one page re-run after a cache drop: the full record stays
    assert merged["default"] == new["default"]  # a complete build replaces the old one
    assert machine.merge_build_times(None, new) == new  # nothing recorded yet: take what there is
