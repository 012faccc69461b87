"""vidbook.reproduction (the closing page's logic) and the ``discrepancies:`` section of published.yaml."""

from __future__ import annotations

import copy
import re
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from vidbook import reproduction as rp
from vidbook import results, tables
from vidbook.reproduction import claims as claims_mod

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _root(monkeypatch):
    monkeypatch.setenv("VIDLIB_ROOT", str(ROOT))


@pytest.fixture(scope="module")
def rep():
    """Everything the closing page reads and checks, without the live measurements (seconds)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VIDLIB_ROOT", str(ROOT))
        yield rp.collect()


# ----------------------------------------------------------------------------------------- discrepancies
ITEM_KEYS = {"id", "title", "chapter", "sources", "entries", "evidence", "checks"}
#: A number standing on its own (not part of a name such as ir-CSN-152, mmaction2, 0.x or issue #7).
NUMBER = re.compile(r"(?<![\w#.\-])\d+(?:\.\d+)?(?![\w.\-])")


def test_discrepancy_section_schema():
    items = results.published(section="discrepancies")
    entries, sources = results.published(), results.published(section="sources")
    assert len(items) >= 20
    ids = [i["id"] for i in items]
    assert len(ids) == len(set(ids)), "duplicate ids"
    for item in items:
        assert set(item) == ITEM_KEYS, (item["id"], set(item) ^ ITEM_KEYS)
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", item["id"]), item["id"]
        assert (ROOT / "book" / f"{item['chapter']}.md").is_file(), item["id"]
        assert item["entries"] and set(item["entries"]) <= set(entries), item["id"]
        for s in item["sources"]:
            assert ("tag" in s and s["tag"] in sources and s["files"]) or s.get("url", "").startswith(
                "https://"
            )
        # the evidence states facts in words: the numbers are in the entries and the checks
        text = f"{item['title']} {item['evidence']}"
        assert not NUMBER.findall(text), (item["id"], NUMBER.findall(text))
        assert item["checks"], item["id"]
        for c in item["checks"]:
            assert c["entry"] in item["entries"] and c["relation"] in rp.RELATIONS, (item["id"], c)
            assert sum(k in c for k in ("b", "value", "measured")) == 1, (item["id"], c)
            assert ("tol" in c) == (c["relation"] in ("~=", "!~=")), (item["id"], c)
            assert c.get("b_entry", c["entry"]) in results.published(section=c.get("b_section", "entries"))


def test_every_discrepancy_check_holds(rep):
    assert set(rep.checks) == {i["id"] for i in rep.data["discrepancies"]}
    rp.assert_discrepancies(rep.checks)
    assert sum(len(v) for v in rep.checks.values()) == sum(
        len(i["checks"]) for i in rep.data["discrepancies"]
    )


def test_a_check_that_does_not_hold_raises_naming_the_item(rep):
    data = copy.deepcopy(rep.data)
    item = data["discrepancies"][0]
    item["checks"] = [{"entry": "tin_r50_sthv1", "a": "top1", "relation": "==", "b": "top1_metafile"}]
    outcomes = rp.check_discrepancies(data, rep.results)
    with pytest.raises(AssertionError, match=item["id"]):
        rp.assert_discrepancies(outcomes)
    # malformed checks raise too, naming the item: an unknown field, relation, or results row
    for bad in (
        {"entry": "tin_r50_sthv1", "a": "no_such_field", "relation": "==", "value": 1},
        {"entry": "tin_r50_sthv1", "a": "top1", "relation": "=~", "value": 1},
        {"entry": "tin_r50_sthv1", "a": "top1", "relation": "==", "value": 1, "b": "top1"},
        {"entry": "tin_r50_sthv1", "a": "top1", "relation": "~=", "tol": 0.1,
         "measured": {"results": "tin", "where": {"label": "nothing"}, "field": "gflops"}},
    ):  # fmt: skip
        item["checks"] = [bad]
        with pytest.raises((KeyError, ValueError), match=item["id"]):
            rp.check_discrepancies(data, rep.results)


def test_relations_and_printed_numbers():
    data = {"entries": {"e": {"x": "29.6M", "y": [1, 2, 3], "s": "8 clips x 3 crop"}}}
    check = rp.evaluate_check
    assert check("i", {"entry": "e", "a": "x", "relation": "~=", "tol": 0.01, "value": 29.55}, data, {}).holds
    assert not check(
        "i", {"entry": "e", "a": "x", "relation": "!~=", "tol": 0.01, "value": 29.55}, data, {}
    ).holds
    assert check("i", {"entry": "e", "a": "y.2", "relation": ">", "value": 2}, data, {}).holds
    assert check("i", {"entry": "e", "a": "s", "relation": "contains", "value": "clips"}, data, {}).holds
    out = check("i", {"entry": "e", "a": "y", "relation": "==", "value": [1, 2, 3]}, data, {})
    assert out.holds and out.text == "e.y = [1, 2, 3] == value = [1, 2, 3]"


def test_discrepancy_markdown_and_sources(rep):
    md = rp.discrepancy_markdown(
        rep.data["discrepancies"], rep.checks, rep.data["sources"], rp.doc_link({"tam"})
    )
    assert md.count("\n1. ") == 0 and md.startswith("1. **")
    assert "[TAM](tam.md)" in md and "[TIN](tin.md)" not in md  # links only to the pages being built
    mm = rp.source_text({"tag": "MM", "files": ["a/README.md"]}, rep.data["sources"])
    assert mm.startswith(
        "[open-mmlab/mmaction2@4d6c934 a/README.md](https://github.com/open-mmlab/mmaction2/blob/"
    )
    assert (
        rp.source_text({"tag": "VMZ", "files": ["f.md"]}, rep.data["sources"])
        == "facebookresearch/VMZ@4cc542d f.md"
    )


# ----------------------------------------------------------------------------------------- cost
def test_compare_statuses():
    assert rp.compare(24.327632, 24.33, "24.33M") == ("equal", True)
    assert rp.compare(43.066, 43.0, "43.0G") == ("within 0.15%", True)
    assert rp.compare(66.014511104, 66.01457664, "66014576640") == ("within 0.01%", True)
    assert rp.compare(91.498336, 91.498336, "91498336") == ("equal", True)
    assert rp.compare(135.08, 135, "135 × 1") == ("equal", True)
    assert rp.compare(29.703568, 33.02, "33.02M") == ("differs by -10.0%", False)
    assert rp.compare(1.0, None, None) == ("not published", None)
    assert rp.compare(None, 1.0, "1.0") == ("not counted", None)


def test_conventions(rep):
    counting, entries = rep.data["_counting"], rep.data["entries"]
    assert rp.counting_convention(entries["tanet_r50_k400"], counting) == "mmcv_tam"
    assert rp.counting_convention(entries["stam_8_k400"], counting) == "stam_linear"
    with pytest.raises(ValueError, match="matches none"):
        rp.counting_convention({"flops": {"counting": "by hand"}}, counting)


def test_a_wrong_params_count_differs_and_must_be_explained(rep):
    """A fabricated TAM results file whose TANet-R50 (K400) rows count 10% more parameters."""
    results = copy.deepcopy(rep.results)
    for row in results["tam"]["cost"]:
        if row["label"] == "TANet-R50 (K400)":
            row["params_m"] *= 1.1
    rows = [r for c, res in results.items() for r in rp.count_rows(c, res)]
    params, flops = rp.cost_check(
        "tanet_r50_k400", rep.data["entries"]["tanet_r50_k400"], rows, rep.data["_counting"]
    )
    assert params.status == "differs by +10.0%" and params.ok is False and flops.ok is True
    out = rp.entry_rows(
        rep.data["entries"], rep.data["_counting"], rows, [], {}, [], set(), rep.data["discrepancies"]
    )
    assert {r.key: r.unexplained for r in out}["tanet_r50_k400"] == ["params"]
    # two rows that disagree on one figure are an error, not a silent choice
    tsm = next(r for r in rows if (r.label, r.frames, r.size) == ("TSM-R50", 8, 224))
    rows.append(replace(tsm, fvcore=tsm.fvcore + 1))
    with pytest.raises(ValueError, match="disagree"):
        rp.cost_check("tsm_r50_k400", rep.data["entries"]["tsm_r50_k400"], rows, rep.data["_counting"])


def test_entry_rows_on_the_committed_files(rep):
    rows = {r.key: r for r in rep.entries}
    assert list(rows) == list(rep.data["entries"])
    assert all(not r.unexplained for r in rows.values())
    assert rows["ircsn_r152_sports1m_bnfrozen_k400"].explained_by == {
        "params": ["csn-ir-sports1m-copy"], "flops": ["csn-ir-sports1m-copy"]}  # fmt: skip
    assert rows["tsm_r50_k400"].explained_by == {"params": ["tsm-params"]}
    assert rows["tsn_r50_k400"].flops.status == "not counted"  # no chapter counted its 25-frame view
    assert rows["stam_8_k400"].params.status == "not published"
    assert rows["stam_64_k400"].logits["status"] == "no golden file"
    assert rows["tsn_r50_k400"].logits["status"] == "golden file, not recorded"
    cells = rp.entry_cells(rows["tpn_slowonly_r50_k400"], rp.doc_link(set()))
    assert cells["params"] == "91498336 / 91498336" and cells["chapter"] == "TPN"


def test_every_entry_has_its_model():
    entries = results.published()
    assert rp.check_model_refs(entries)["tanet_r50_sthv1_16f"] == "tanet_r50"
    wrong = dict(
        rp.ENTRY_MODELS, tin_r50_sthv2=rp.ModelRef("tin_r50", "TIN-R50 (sthv1)", {"dataset": "sthv1"})
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("vidbook.reproduction.entries.ENTRY_MODELS", wrong)
        with pytest.raises(AssertionError, match="tin_r50_sthv2"):
            rp.check_model_refs(entries)


# ----------------------------------------------------------------------------------------- claims
def test_claims_hold_on_the_committed_files(rep):
    rp.assert_claims(rep.outcomes)
    by_id = {o.claim.id: o for o in rep.outcomes}
    assert set(by_id) == {c.id for c in rp.CLAIMS}
    assert all(len(o.settings) == 3 for o in rep.outcomes)  # native, avx2, threads
    assert {c.verdict for c in rp.CLAIMS} == {"supported", "contradicted", "not seen"}


def test_a_claim_that_does_not_hold_raises(rep):
    results = copy.deepcopy(rep.results)
    for key, run in results["tam"]["runs"].items():
        if key.startswith("tsn_tiny/"):
            run["pair_acc"] = 0.9  # TSN would no longer be at chance
    out = rp.check_claims(results, rep.kernels, [c for c in rp.CLAIMS if c.chapter == "tam"])
    assert not any(o.holds for o in out)
    with pytest.raises(AssertionError, match="tsm-order"):
        rp.assert_claims(out)


def test_runs_read_both_file_formats(rep):
    r = rp.runs_from_results(rep.results["tpn"], rep.kernels["tpn"])
    assert (r.n_val, r.n_pair, r.n_tempo) == (600, 450, 100)
    assert len(r.seeds("tpn_slowonly_tiny (no aux)", "top1")) == 3
    k = rp.runs_from_kernels(rep.kernels["tpn"], "avx2", rep.results["tpn"])
    assert set(k.values) == set(r.values)  # kernel specs mapped to the chapter's labels
    s = rp.runs_from_results(rep.results["stam"], rep.kernels["stam"])
    assert set(s.values) == {"stam_tiny", "stam_mean_tiny"} and len(s.seeds("stam_tiny", "pair_acc")) == 3
    c = rp.runs_from_kernels(rep.kernels["csn"], "native", rep.results["csn"])
    assert c.seeds("r3d_tiny", "gap") == [a - b for a, b in zip(c.seeds("r3d_tiny", "train_top1"),
                                                               c.seeds("r3d_tiny", "top1"))]  # fmt: skip


#: The line of each chapter that sets a margin the claims re-use (claims.MARGINS).
MARGIN_LINES = {
    ("tam", "WIDE"): "BAND, WIDE = 3 * 0.5 / np.sqrt(n_pair), 0.20",
    ("tin", "WIDE"): "BAND, WIDE = 3 * 0.5 / np.sqrt(n_pair), 0.20",
    ("tin", "TOP1_BEHIND"): "TOP1_BEHIND = 0.05",
    ("tpn", "WIDE"): "WIDE, AUX_GAIN = 0.20, 0.05",
    ("tpn", "AUX_GAIN"): "WIDE, AUX_GAIN = 0.20, 0.05",
    ("csn", "IR_LOSS"): "IR_LOSS = 0.04",
    ("csn", "GAP_CAP"): "GAP_CAP = 0.15",
    ("stam", "WIDE"): "WIDE = 0.12",
}


def test_margins_are_the_chapters():
    assert set(MARGIN_LINES) == {(c, k) for c, ms in claims_mod.MARGINS.items() for k in ms}
    for (chapter, name), line in MARGIN_LINES.items():
        assert line in (ROOT / "book" / f"{chapter}.md").read_text(), (chapter, line)
        names, values = (s.split(", ") for s in line.split(" = "))
        value = float(values[names.index(name)]) if len(names) > 1 else float(values[0])
        assert claims_mod.MARGINS[chapter][name] == value, (chapter, name)


def test_synthetic_and_kernel_rows(rep):
    rows = rp.synthetic_rows(rep.results)
    assert {r["chapter"] for r in rows} == set(rp.CHAPTERS) and all(r["top1"] for r in rows)
    assert all(r["seeds"] == 3 for r in rows)
    k = rp.kernel_rows(rep.kernels, rep.outcomes)
    assert [r["chapter"] for r in k] == list(rp.CHAPTERS) and all(r["hold"] == "yes" for r in k)


# ----------------------------------------------------------------------------------------- accuracy
def test_accuracy_labels(rep):
    labels = {r.key: r.accuracy for r in rep.entries}
    assert set(labels.values()) <= set(rp.LABELS)
    assert rp.REPRODUCED_HERE not in labels.values()  # nothing was measured on Kinetics or Something
    assert labels["tanet_r50_k400"] == rp.SMALL_SCALE and labels["tin_r50_k400"] == rp.NOT_RUN
    e = rep.data["entries"]["tanet_r50_k400"]
    assert rp.accuracy_label("tanet_r50_k400", e, rep.outcomes, {"kinetics400"}) == rp.REPRODUCED_HERE
    assert rp.accuracy_label("tanet_r50_k400", e, [], set()) == rp.NOT_RUN


def test_commands_parse_with_the_cli_and_build_the_entry_model():
    import torch

    import vidlib
    from vidlib.engine.cli import build_parser

    parser = build_parser()
    for key, entry in results.published().items():
        lines = rp.reproduce_command(key, entry).splitlines()
        assert lines[0] == f"wget {entry['checkpoint']}" and lines[-1].startswith(
            f"# expected: top-1 {entry['top1']:g}"
        )
        test = next(line for line in lines if line.startswith("python -m vidlib test "))
        args = parser.parse_args(shlex.split(test)[3:])
        assert (args.command, args.mode, args.data) == ("test", "test", f"data/{entry['dataset']}")
        with torch.device("meta"):
            cfg = vidlib.create_model(args.model, **dict(args.model_kwargs)).default_cfg
        assert cfg["published"] == (rp.ENTRY_MODELS[key].same_as or key), key


def test_the_stam_command_reads_the_official_layout(tmp_path, tiny_data, monkeypatch):
    """The official STAM files wrap the state dict ({'model': ...}, timm-style keys); ``vidlib test``
    loads them with ``load_stam``. Run on stam_tiny with the tiny data: the command as generated."""
    import torch

    import vidlib
    from vidlib.weights import CheckpointError, load_mmaction2

    model = vidlib.create_model("stam_tiny", num_classes=3)
    torch.save({"model": model.state_dict()}, tmp_path / "official.pth")
    with pytest.raises(CheckpointError):  # not mmaction2's layout: the STAM loader is needed
        load_mmaction2(vidlib.create_model("stam_tiny", num_classes=3), tmp_path / "official.pth")
    fake = rp.ModelRef("stam_tiny", "STAM-tiny", {"num_classes": 3}, loader="stam")
    monkeypatch.setitem(rp.ENTRY_MODELS, "fake", fake)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "tiny").symlink_to(tiny_data)
    entry = dict(checkpoint="https://example.org/official.pth", dataset="tiny", top1=1.0, top5=None,
                 test_protocol={"as_configured": {"views": 1}})  # fmt: skip
    lines = rp.reproduce_command("fake", entry).splitlines()
    assert len(lines) == 3 and lines[1].startswith("python -m vidlib test --model stam_tiny")
    env = {"VIDLIB_DEVICE": "cpu", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    args = shlex.split(lines[1])
    args[0] = sys.executable
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{lines[1]}\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}"
    assert "top1" in proc.stdout


# ----------------------------------------------------------------------------------------- summary
def test_paper_rows_cover_every_paper(rep):
    rows = rp.paper_rows(rep)
    assert [r["paper"].lower() for r in rows] == list(rep.data["papers"])
    assert sum(r["entries"] for r in rows) == len(rep.data["entries"])
    csn = next(r for r in rows if r["paper"] == "CSN")
    assert "1/8 differ (see csn-ir-sports1m-copy)" in csn["cost"] and "**contradicted**" in csn["claims"]


def test_doc_links_follow_the_toc(tmp_path):
    toc = tmp_path / "toc.yml"
    toc.write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/report\n")
    assert rp.built_docs(toc) == {"intro", "report"}
    link = rp.doc_link(rp.built_docs(toc), {"report": "this page"})
    assert link("report") == "[this page](report.md)" and link("tam") == "TAM"
    assert {"intro", "tam", "stam"} <= rp.built_docs(ROOT / "_toc.yml")


def test_measure_missing_counts_only_what_no_chapter_counted(rep, monkeypatch):
    rows = [r for c, res in rep.results.items() for r in rp.count_rows(c, res)]
    files = rp.golden_files()
    records = rp.golden_records(rep.results, files)
    seen = []

    def cost_rows(specs, mmcv):  # what would be counted (the real count takes seconds)
        seen.extend(specs)
        return [dict(label=s["label"], params_m=24.327632, frames=s["num_frames"], size=s["size"], gflops=1.0)
                for s in specs]  # fmt: skip

    monkeypatch.setattr(tables, "cost_rows", cost_rows)
    monkeypatch.setattr("vidbook.reproduction.summary.run_golden", lambda paths, files: sorted(paths))
    counts, golden = rp.measure_missing(rep.data, rows, records, files)
    assert [(s["model"], s["num_frames"], s["size"]) for s in seen] == [("tsn_r50", 25, 224)]
    assert [(c.label, c.frames, c.source) for c in counts] == [("TSN-R50", 25, "this page")]
    assert golden == sorted(f for f, m in files.items() if m in ("tsn_r50", "tsm_r50"))
    seen.clear()  # with the count made, nothing is missing
    rp.measure_missing(rep.data, rows + counts, records, {})
    assert seen == []


def test_the_page_runs_on_every_build():
    """book/report.md is executed on every build (myst-nb file-level config), never from a cache."""
    front = (ROOT / "book" / "report.md").read_text().split("---\n")[1]
    assert "mystnb:\n  execution_mode: force\n" in front
