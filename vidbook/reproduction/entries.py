"""Every published entry against what the book measured: params and FLOPs, logits, accuracy.

- :data:`ENTRY_MODELS` names the registered model behind each entry (checked by :func:`check_model_refs`);
- :func:`cost_check` compares the published params and FLOPs with the chapters' counts, in the convention
  the source counted in (``flops.counting``, the ``_counting`` section of ``published.yaml``);
- :func:`logits_check` says how the model's logits were checked against the reference code;
- :func:`accuracy_label` says what became of the published accuracy, :func:`reproduce_command` how to
  measure it;
- :func:`entry_rows` puts the three together, :func:`entry_cells` formats them for a table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..modes import project_root
from ..results import load_results
from .claims import ClaimOutcome
from .discrepancies import get_path

__all__ = [
    "CHAPTERS",
    "CHAPTER_OF_PAPER",
    "TOLERANCE",
    "REPRODUCED_HERE",
    "SMALL_SCALE",
    "NOT_RUN",
    "LABELS",
    "ModelRef",
    "ENTRY_MODELS",
    "CountRow",
    "CONVENTIONS",
    "Check",
    "GoldenRecord",
    "EntryRow",
    "load_chapter_results",
    "load_kernel_spreads",
    "check_model_refs",
    "count_rows",
    "live_count_rows",
    "counting_convention",
    "compare",
    "cost_check",
    "golden_records",
    "golden_files",
    "unrecorded_golden_files",
    "run_golden",
    "logits_check",
    "measured_datasets",
    "accuracy_label",
    "reproduce_command",
    "entry_rows",
    "entry_cells",
]

#: The paper chapters in book order; each has results/<chapter>.json and results/<chapter>_kernels.json.
CHAPTERS = ("tam", "tin", "tpn", "csn", "stam")
#: The chapter that treats each paper of ``published.yaml`` (TSN and TSM are the TAM chapter's baselines).
CHAPTER_OF_PAPER = {
    "tsn": "tam",
    "tsm": "tam",
    "tam": "tam",
    "tin": "tin",
    "tpn": "tpn",
    "csn": "csn",
    "stam": "stam",
}
#: Relative tolerance of a count against a published figure: the chapters assert within 1%.
TOLERANCE = 0.01

#: What became of a published accuracy: exactly one of these per entry.
REPRODUCED_HERE = "reproduced here"
SMALL_SCALE = "reproduced at small scale on the synthetic benchmark (the claim, not the number)"
NOT_RUN = "not run here"
LABELS = (REPRODUCED_HERE, SMALL_SCALE, NOT_RUN)


@dataclass(frozen=True)
class ModelRef:
    """The registered model behind a published entry.

    ``kwargs`` select the entry's protocol (``dataset=``, ``pretrain=``, ``num_frames=``). ``counted_as`` is
    the label of the rows that count the model in its chapter's ``cost`` table. ``same_as``: the entry, of
    the same architecture and protocol, whose key the model's cfg carries (a cfg names one entry).
    ``loader``: ``"mmaction2"`` (``python -m vidlib test`` reads the file as it is) or ``"stam"`` (the
    official STAM layout, which ``vidlib test`` loads with :func:`vidlib.models.stam.load_stam`).
    """

    model: str
    counted_as: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    same_as: str | None = None
    loader: str = "mmaction2"


ENTRY_MODELS: dict[str, ModelRef] = {
    "tsn_r50_k400": ModelRef("tsn_r50", "TSN-R50"),
    "tsm_r50_k400": ModelRef("tsm_r50", "TSM-R50"),
    "tanet_r50_k400": ModelRef("tanet_r50", "TANet-R50 (K400)"),
    "tanet_r50_sthv1_8f": ModelRef("tanet_r50", "TANet-R50 (sthv1)", {"dataset": "sthv1"}),
    "tanet_r50_sthv1_16f": ModelRef("tanet_r50", "TANet-R50 (sthv1)", {"dataset": "sthv1", "num_frames": 16}),
    "tin_r50_sthv1": ModelRef("tin_r50", "TIN-R50 (sthv1)", {"dataset": "sthv1"}),
    "tin_r50_sthv2": ModelRef("tin_r50", "TIN-R50 (sthv1)", {"dataset": "sthv2"}),  # the same network
    "tin_r50_k400": ModelRef("tin_r50", "TIN-R50 (K400)", {"dataset": "k400"}),
    "tpn_slowonly_r50_k400": ModelRef("tpn_slowonly_r50", "TPN-SlowOnly-R50 (K400)"),
    "tpn_slowonly_r50_scratch_k400": ModelRef(
        "tpn_slowonly_r50", "TPN-SlowOnly-R50 (K400)", same_as="tpn_slowonly_r50_k400"
    ),
    "tpn_tsm_r50_sthv1": ModelRef("tpn_tsm_r50", "TPN-TSM-R50 (sthv1)", {"dataset": "sthv1"}),
    "ircsn_r152_ig65m_k400": ModelRef("ircsn_r152", "ir-CSN-152", same_as="ircsn_r152_ig65m_bnfrozen_k400"),
    "ircsn_r152_ig65m_bnfrozen_k400": ModelRef("ircsn_r152", "ir-CSN-152"),
    "ircsn_r50_ig65m_bnfrozen_k400": ModelRef("ircsn_r50", "ir-CSN-50"),
    "ipcsn_r152_k400": ModelRef("ipcsn_r152", "ip-CSN-152", {"pretrain": "scratch"}),
    "ircsn_r152_k400": ModelRef("ircsn_r152", "ir-CSN-152", {"pretrain": "scratch"}),
    "ipcsn_r152_ig65m_bnfrozen_k400": ModelRef("ipcsn_r152", "ip-CSN-152"),
    "ipcsn_r152_sports1m_bnfrozen_k400": ModelRef("ipcsn_r152", "ip-CSN-152", {"pretrain": "sports1m"}),
    "ircsn_r152_sports1m_bnfrozen_k400": ModelRef("ircsn_r152", "ir-CSN-152", {"pretrain": "sports1m"}),
    **{f"stam_{t}_k400": ModelRef(f"stam_{t}", f"STAM-{t}", loader="stam") for t in (8, 16, 32, 64)},
}  # fmt: skip


def load_chapter_results(chapters: Sequence[str] = CHAPTERS) -> dict[str, dict]:
    """The chapters' committed default-mode results (``results/<chapter>.json``), in any mode."""
    return {c: load_results(c, quick=False) for c in chapters}


def load_kernel_spreads(chapters: Sequence[str] = CHAPTERS) -> dict[str, dict]:
    """``results/<chapter>_kernels.json`` of every chapter (``benchmarks/kernel_spread.py``'s files)."""
    root = project_root() / "results"
    return {c: json.loads((root / f"{c}_kernels.json").read_text()) for c in chapters}


def check_model_refs(entries: Mapping[str, dict]) -> dict[str, str]:
    """Build every entry's model on the meta device (no memory, no time) and check that its cfg names the
    entry (or its ``same_as``) and the entry's checkpoint; an entry that shares another's cfg must share its
    parameter count, FLOPs input and test views. Returns ``{entry: model}``; raises ``AssertionError`` naming
    the entry."""
    import torch

    from vidlib import create_model

    missing = sorted(set(entries) - set(ENTRY_MODELS))
    assert not missing, f"published entries without a model in ENTRY_MODELS: {missing}"
    out = {}
    for key, entry in entries.items():
        ref = ENTRY_MODELS[key]
        with torch.device("meta"):
            cfg = create_model(ref.model, **ref.kwargs).default_cfg
        named = ref.same_as or key
        assert cfg.get("published") == named, (
            f"{key}: {ref.model} {dict(ref.kwargs)} is {cfg.get('published')}"
        )
        if ref.same_as is None:
            assert cfg.get("url") in (None, entry["checkpoint"]), (
                f"{key}: the cfg's url is another checkpoint"
            )
        else:
            protocol = [f"test_protocol.as_configured.{k}" for k in ("clips", "crops", "crop_size", "views")]
            for path in ("params.recount", "flops.input_shape", *protocol):
                twin = entries[ref.same_as]
                assert get_path(entry, path) == get_path(twin, path), (
                    f"{key} and {ref.same_as} differ: {path}"
                )
        out[key] = ref.model
    return out


# ----------------------------------------------------------------------------------------- cost
@dataclass(frozen=True)
class CountRow:
    """One count of a full-size model: a row of a chapter's ``cost`` table, or a count made on the page.

    GMACs of one view in three conventions, None where not counted: ``fvcore`` (vidlib's count), ``mmcv``
    (the style of mmcv's counter, behind the mmaction2 figures) and ``linear`` (linear and convolution
    layers only, STAM's). ``frames``/``size``: the view counted (None: the row does not say; STAM's rows
    are one per published model).
    """

    source: str
    label: str
    params: int
    frames: int | None
    size: int | None
    fvcore: float | None = None
    mmcv: float | None = None
    linear: float | None = None


def live_count_rows(rows: Sequence[Mapping[str, Any]], source: str = "this page") -> list[CountRow]:
    """:class:`CountRow` of rows in the format of :func:`vidbook.tables.cost_rows`."""
    return [
        CountRow(
            source,
            r["label"],
            round(r["params_m"] * 1e6),
            r["frames"],
            r["size"],
            r["gflops"],
            r.get("gflops_mmcv"),
        )
        for r in rows
    ]


def count_rows(chapter: str, results: Mapping[str, Any]) -> list[CountRow]:
    """The :class:`CountRow` of ``results["cost"]`` (both formats the chapters write)."""
    cost, source = results.get("cost", []), f"results/{chapter}.json"
    if all("params_m" in r for r in cost):  # tables.cost_rows' format (TAM, TIN, TPN, CSN)
        return live_count_rows(cost, source)
    return [CountRow(source, r["model"], r["params"], None, None, linear=r["gmacs"]) for r in cost]  # STAM


#: ``_counting`` names of published.yaml -> (the :class:`CountRow` field in that convention, its name).
#: CSN's counter is a variant of mmcv's (one BN term, not two); the CSN chapter compares it with fvcore's.
CONVENTIONS = {
    "mmcv": ("mmcv", "mmcv style"),
    "mmcv_tam": ("mmcv", "mmcv style"),
    "csn_mm": ("fvcore", "fvcore"),
    "conv_only": ("fvcore", "fvcore"),
    "fvcore_style": ("fvcore", "fvcore"),
    "stam_linear": ("linear", "linear + conv"),
}


def counting_convention(entry: Mapping[str, Any], counting: Mapping[str, str]) -> str:
    """The ``_counting`` name of the convention ``entry``'s FLOPs were counted in."""
    names = [name for name, text in counting.items() if text == entry["flops"]["counting"]]
    if len(names) != 1:
        raise ValueError(
            f"flops.counting matches {names or 'none'} of _counting: {entry['flops']['counting']!r}"
        )
    return names[0]


@dataclass(frozen=True)
class Check:
    """A published figure against our count. ``status``: ``"equal"`` (to the printed digits), ``"within x%"``
    (at most :data:`TOLERANCE`), ``"differs by +x%"``, ``"not published"`` or ``"not counted"``; ``ok``: True
    for the first two, False for a difference, None otherwise."""

    published: str | None
    ours: float | None
    status: str
    ok: bool | None
    convention: str | None = None
    source: str | None = None

    @property
    def kind(self) -> str:
        """The status without its percentage: equal, within, differs, not published or not counted."""
        return self.status.split()[0] if self.status.startswith(("within", "differs")) else self.status


def _half_digit(as_printed: str, value: float) -> float:
    """Half a unit of the last printed digit, in the units of ``value`` ("43.0G": 0.05; "66014576640" for
    66.01 G: 0.5e-9)."""
    m = re.match(r"\s*(\d+)(?:\.(\d+))?", str(as_printed))
    if m is None:
        raise ValueError(f"no number in {as_printed!r}")
    return 0.5 * 10.0 ** -len(m.group(2) or "") * value / float(m.group(0))


def compare(ours: float | None, value: float | None, as_printed: str | None, tol: float = TOLERANCE) -> tuple:
    """``(status, ok)`` of our count against a published ``value`` printed as ``as_printed`` (see
    :class:`Check`)."""
    if value is None:
        return "not published", None
    if ours is None:
        return "not counted", None
    if abs(ours - value) <= _half_digit(as_printed, value):
        return "equal", True
    rel = ours / value - 1
    if abs(rel) <= tol:
        return f"within {max(100 * abs(rel), 0.01):.2f}%", True
    return f"differs by {100 * rel:+.1f}%", False


def _one(values: set, key: str, what: str) -> float | None:
    if len({round(v, 9) for v in values}) > 1:
        raise ValueError(f"{key}: the counting rows disagree on {what}: {sorted(values)}")
    return next(iter(values), None)


def cost_check(key: str, entry: Mapping[str, Any], rows: Sequence[CountRow], counting: Mapping[str, str]):
    """``(params, flops)`` :class:`Check` of one entry against the rows labelled
    ``ENTRY_MODELS[key].counted_as`` with the entry's number of frames (the model's, or the FLOPs view's):
    params from any of them, FLOPs from the one at the published input shape, in the source's convention.
    Raises ``ValueError`` if two such rows disagree."""
    shape = entry["flops"]["input_shape"]
    attr, convention = CONVENTIONS[counting_convention(entry, counting)]
    frames = (None, entry["num_frames"], shape[2])  # TSN's view has more frames than its model
    mine = [r for r in rows if r.label == ENTRY_MODELS[key].counted_as and r.frames in frames]
    at_shape = [r for r in mine if r.frames in (None, shape[2]) and r.size in (None, shape[3])]
    at_shape = [r for r in at_shape if getattr(r, attr) is not None]
    params = _one({r.params / 1e6 for r in mine}, key, "params")
    flops = _one({getattr(r, attr) for r in at_shape}, key, f"FLOPs ({convention})")
    p, f = entry["params"], entry["flops"]
    return (
        Check(p["as_printed"], params, *compare(params, p["value"], p["as_printed"]), source=_source(mine)),
        Check(
            f["as_printed"],
            flops,
            *compare(flops, f["value"], f["as_printed"]),
            convention,
            _source(at_shape),
        ),
    )


def _source(rows: Sequence[CountRow]) -> str | None:
    return ", ".join(sorted({r.source for r in rows})) or None


# ----------------------------------------------------------------------------------------- logits
@dataclass(frozen=True)
class GoldenRecord:
    """A golden check (:func:`vidlib.golden.check_golden`) of ``file`` (the golden file of ``model``),
    recorded ``where`` (a results file, or the page that ran it)."""

    file: str
    model: str
    max_rel_err: float
    tol: float
    reference: str
    where: str


def golden_files(golden_dir: str = "tests/golden") -> dict[str, str]:
    """``{file: model}`` of every golden file (paths relative to the project root)."""
    root = project_root()
    return {
        str(p.relative_to(root)): json.loads(p.read_text())["model"]
        for p in sorted((root / golden_dir).glob("*.json"))
    }


def golden_records(results: Mapping[str, Mapping[str, Any]], files: Mapping[str, str]) -> list[GoldenRecord]:
    """The golden checks the chapters recorded (``results[chapter]["golden"]``: one record, or one per
    model or T)."""
    out = []
    for chapter, res in results.items():
        g = res.get("golden") or {}
        for r in [g] if "file" in g else list(g.values()):
            where = f"results/{chapter}.json"
            out.append(
                GoldenRecord(r["file"], files[r["file"]], r["max_rel_err"], r["tol"], r["reference"], where)
            )
    return out


def unrecorded_golden_files(records: Sequence[GoldenRecord], files: Mapping[str, str]) -> list[str]:
    """The golden files of the entries' models for which no chapter recorded a check."""
    recorded, models = {r.model for r in records}, {ref.model for ref in ENTRY_MODELS.values()}
    return [f for f, m in files.items() if m in models and m not in recorded]


def run_golden(
    paths: Sequence[str], files: Mapping[str, str], where: str = "this page"
) -> list[GoldenRecord]:
    """:func:`vidlib.golden.check_golden` on each file (raises if a logit differs beyond the tolerance)."""
    from vidlib.golden import check_golden

    out = []
    for path in paths:
        g = check_golden(project_root() / path)
        out.append(GoldenRecord(path, files[path], g.max_rel_err, g.tol, g.reference, where))
    return out


def logits_check(key: str, records: Sequence[GoldenRecord], files: Mapping[str, str]) -> dict[str, Any]:
    """How the logits of entry ``key``'s model were checked: ``status`` ``"verified"`` (golden checks were
    recorded by a chapter or made on the page: the worst of them relative to its tolerance), ``"golden file,
    not recorded"`` or ``"no golden file"``; with the files."""
    model = ENTRY_MODELS[key].model
    mine = [r for r in records if r.model == model]
    if mine:
        worst = max(mine, key=lambda r: r.max_rel_err / r.tol)
        return dict(status="verified", files=sorted({r.file for r in mine}), worst=worst)
    of_model = [f for f, m in files.items() if m == model]
    return dict(
        status="golden file, not recorded" if of_model else "no golden file", files=of_model, worst=None
    )


# ----------------------------------------------------------------------------------------- accuracy
def measured_datasets(results: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """The datasets the results files measured accuracies on (the folder names of their data)."""
    return {Path(r["environment"]["data"]["root"]).name for r in results.values()}


def accuracy_label(
    key: str, entry: Mapping[str, Any], outcomes: Sequence[ClaimOutcome], measured: set[str]
) -> str:
    """One of :data:`LABELS`. Reproduced here: a results file measured on the entry's dataset. At small scale:
    a claim that covers the entry is supported on the synthetic benchmark (results file and every kernel
    setting) and none is contradicted. Otherwise: not run here."""
    if entry["dataset"] in measured:
        return REPRODUCED_HERE
    mine = [o for o in outcomes if key in o.claim.entries]
    supported = any(o.claim.verdict == "supported" and o.holds for o in mine)
    contradicted = any(o.claim.verdict == "contradicted" for o in mine)
    return SMALL_SCALE if supported and not contradicted else NOT_RUN


def reproduce_command(key: str, entry: Mapping[str, Any]) -> str:
    """The commands that would measure ``entry``'s published accuracy, and the expected numbers: download,
    then ``python -m vidlib test`` with the model's test protocol (its cfg's views) on ``data/<dataset>``
    (it loads mmaction2's layout, and the official STAM files through ``load_stam``)."""
    ref, url = ENTRY_MODELS[key], entry["checkpoint"]
    file = url.rsplit("/", 1)[1]
    lines = [f"wget {url}"]  # `vidlib test` reads mmaction2's layout and, for STAM, the official one
    kw = "".join(f" --model-kw {k}={v}" for k, v in ref.kwargs.items())
    lines.append(
        f"python -m vidlib test --model {ref.model}{kw} --checkpoint {file} "
        f"--data data/{entry['dataset']} --split val --mode test"
    )
    top5 = "" if entry.get("top5") is None else f", top-5 {entry['top5']:g}"
    views = entry["test_protocol"]["as_configured"]["views"]
    return "\n".join([*lines, f"# expected: top-1 {entry['top1']:g}{top5} ({views} view(s) per video)"])


# ----------------------------------------------------------------------------------------- one row per entry
@dataclass(frozen=True)
class EntryRow:
    """Everything the book says about one published entry. ``explained_by``: for a figure (``"params"``,
    ``"flops"``) that differs from our count, the discrepancy items whose checks read it (``params.*`` /
    ``flops.*`` of the entry)."""

    key: str
    paper: str
    chapter: str
    params: Check
    flops: Check
    logits: dict
    top1: float
    views: int
    accuracy: str
    discrepancies: list[str]
    explained_by: dict[str, list[str]]

    @property
    def unexplained(self) -> list[str]:
        """The figures that differ from our count with no discrepancy item to explain them."""
        return [what for what, ids in self.explained_by.items() if not ids]


def entry_rows(
    entries: Mapping[str, dict],
    counting: Mapping[str, str],
    rows: Sequence[CountRow],
    records: Sequence[GoldenRecord],
    files: Mapping[str, str],
    outcomes: Sequence[ClaimOutcome],
    measured: set[str],
    discrepancies: Sequence[Mapping[str, Any]],
) -> list[EntryRow]:
    """One :class:`EntryRow` per published entry, in the order of ``published.yaml``."""
    out = []
    for key, e in entries.items():
        params, flops = cost_check(key, e, rows, counting)
        mine = [d for d in discrepancies if key in d["entries"]]
        explained_by = {
            what: [
                d["id"]
                for d in mine
                if any(c["entry"] == key and c["a"].startswith(f"{what}.") for c in d["checks"])
            ]
            for what, check in (("params", params), ("flops", flops))
            if check.ok is False
        }
        out.append(EntryRow(
            key, e["paper"], CHAPTER_OF_PAPER[e["paper"]], params, flops, logits_check(key, records, files),
            e["top1"], e["test_protocol"]["as_configured"]["views"],
            accuracy_label(key, e, outcomes, measured), [d["id"] for d in mine], explained_by,
        ))  # fmt: skip
    return out


def _short_reference(reference: str) -> str:
    """``"mmaction2 1.2.0 / mmengine ..."`` -> ``"mmaction2 1.2.0"``."""
    return reference.split(" / ")[0]


def _like(published: str | None, ours: float | None, unit: str, scale: float, digits: int) -> str:
    """Our count printed as the published figure is: a raw count when the source prints one."""
    if ours is None:
        return "–"
    return f"{round(ours * scale)}" if str(published).isdigit() else f"{ours:.{digits}f}{unit}"


def entry_cells(row: EntryRow, link) -> dict[str, str]:
    """A row of the closing page's table as text cells (``link(page)``: a page's link)."""
    p, f, g = row.params, row.flops, row.logits
    if g["status"] == "verified":
        w = g["worst"]
        logits = f"verified against {_short_reference(w.reference)}: {w.max_rel_err:.0e} ≤ {w.tol:.0e}"
    else:
        logits = g["status"]
    flops = _like(f.published, f.ours, "G", 1e9, 2)
    return dict(
        entry=f"`{row.key}`",
        chapter=link(row.chapter),
        params=f"{p.published or '–'} / {_like(p.published, p.ours, 'M', 1e6, 3)}",
        params_check=p.status,
        flops=f"{f.published} / {flops}" + (f" ({f.convention})" if f.ours is not None else ""),
        flops_check=f.status,
        logits=logits,
        top1=f"{row.top1:g} ({row.views} view{'s' if row.views != 1 else ''})",
        accuracy=row.accuracy,
        discrepancies=", ".join(f"`{d}`" for d in row.discrepancies) or "–",
    )
