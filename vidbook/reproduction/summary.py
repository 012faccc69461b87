"""Everything at once (:func:`collect`), one row per paper for the README (:func:`paper_rows`), and links
to the book's pages (:func:`doc_link`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .. import tables
from ..modes import project_root
from ..results import published
from .claims import SUMMARY_METRICS, ClaimOutcome, check_claims
from .discrepancies import CheckOutcome, check_discrepancies
from .entries import (
    ENTRY_MODELS,
    NOT_RUN,
    SMALL_SCALE,
    TOLERANCE,
    CountRow,
    EntryRow,
    GoldenRecord,
    cost_check,
    count_rows,
    entry_rows,
    golden_files,
    golden_records,
    live_count_rows,
    load_chapter_results,
    load_kernel_spreads,
    measured_datasets,
    run_golden,
    unrecorded_golden_files,
)

__all__ = ["SECTIONS", "Reproduction", "collect", "measure_missing", "paper_rows", "built_docs", "doc_link"]

#: The sections of ``results/published.yaml`` the closing page reads.
SECTIONS = ("entries", "papers", "sources", "_counting", "comparisons", "discrepancies")


@dataclass(frozen=True)
class Reproduction:
    """What the book reproduced: ``data`` (published.yaml's sections), the chapters' ``results`` and
    ``kernels`` files, the claims' ``outcomes``, the discrepancy ``checks``, one row per entry, and what
    was measured beyond the chapters (``live_counts``, ``live_golden``)."""

    data: dict[str, Any]
    results: dict[str, dict]
    kernels: dict[str, dict]
    outcomes: list[ClaimOutcome]
    checks: dict[str, list[CheckOutcome]]
    entries: list[EntryRow]
    live_counts: list[CountRow]
    live_golden: list[GoldenRecord]


def collect(live: bool = False) -> Reproduction:
    """Read published.yaml and the committed results files, and check everything (nothing is asserted here:
    see :func:`~vidbook.reproduction.assert_claims` and :func:`~vidbook.reproduction.assert_discrepancies`).
    ``live=True`` also measures what no chapter measured (:func:`measure_missing`: seconds to a minute)."""
    data = {s: published(section=s) for s in SECTIONS}
    results, kernels = load_chapter_results(), load_kernel_spreads()
    outcomes, files = check_claims(results, kernels), golden_files()
    rows = [r for chapter, res in results.items() for r in count_rows(chapter, res)]
    records = golden_records(results, files)
    live_counts, live_golden = measure_missing(data, rows, records, files) if live else ([], [])
    entries = entry_rows(
        data["entries"], data["_counting"], rows + live_counts, records + live_golden, files, outcomes,
        measured_datasets(results), data["discrepancies"],
    )  # fmt: skip
    checks = check_discrepancies(data, results)
    return Reproduction(data, results, kernels, outcomes, checks, entries, live_counts, live_golden)


def measure_missing(data, rows, records, files) -> tuple[list[CountRow], list[GoldenRecord]]:
    """What no chapter measured: the published view of every entry that no count covers
    (:func:`vidbook.tables.cost_rows`, in the entry's convention), and the golden files of the entries'
    models that no chapter recorded (:func:`run_golden`)."""
    specs, mmcv = [], False
    for key, e in data["entries"].items():
        params, flops = cost_check(key, e, rows, data["_counting"])
        if params.kind == "not counted" or flops.kind == "not counted":
            ref, (_, _, t, h, _) = ENTRY_MODELS[key], e["flops"]["input_shape"]
            specs.append(dict(label=ref.counted_as, model=ref.model, num_frames=t, size=h, published=key))
            mmcv |= flops.convention == "mmcv style"
    counts = live_count_rows(tables.cost_rows(specs, mmcv=mmcv)) if specs else []
    return counts, run_golden(unrecorded_golden_files(records, files), files)


def _cost_text(what: str, rows: Sequence[EntryRow]) -> str:
    checks = [getattr(r, what) for r in rows]
    name = "params" if what == "params" else f"FLOPs ({'/'.join(sorted({c.convention for c in checks}))})"
    counts = (
        (sum(c.ok is True for c in checks), f"equal or within {100 * TOLERANCE:g}%"),
        (sum(c.ok is False for c in checks), "differ"),
        (sum(c.status == "not published" for c in checks), "not published"),
        (sum(c.status == "not counted" for c in checks), "not counted in a chapter"),
    )
    ids = sorted({i for r in rows for i in r.explained_by.get(what, [])})
    parts = ", ".join(f"{n}/{len(checks)} {text}" for n, text in counts if n)
    return f"{name} {parts}" + (f" (see {', '.join(ids)})" if ids else "")


def _logits_text(rows: Sequence[EntryRow]) -> str:
    """How many entries' models are verified, against which reference (no error magnitudes: those of
    checks run live vary in the last digits between CPUs, and the README must not)."""
    verified = [r.logits["worst"] for r in rows if r.logits["status"] == "verified"]
    parts = []
    if verified:
        refs = sorted({w.reference.split(" / ")[0] for w in verified})
        parts.append(
            f"{len(verified)}/{len(rows)} verified against {', '.join(refs)} (golden files, float64)"
        )
    for status in ("golden file, not recorded", "no golden file"):
        n = sum(r.logits["status"] == status for r in rows)
        parts += [f"{n}/{len(rows)} {status}"] if n else []
    return "; ".join(parts)


def _claims_text(outcomes: Sequence[ClaimOutcome], results: dict[str, dict]) -> str:
    if not outcomes:
        return "– (a baseline; no claim of its paper tested)"
    parts = []
    for o in outcomes:
        res, by_metric = results[o.claim.chapter], {}
        for model, metric in o.claim.show:
            by_metric.setdefault(metric, []).append(f"{model} {res['summary'][model][metric]}")
        shown = "; ".join(
            f"{SUMMARY_METRICS[k].removesuffix(' (%)')}: {' vs '.join(v)}" for k, v in by_metric.items()
        )
        parts.append(f"**{o.claim.verdict}** ({shown}; %, {len(res['seeds'])} seeds)")
    return "; ".join(parts)


def _top1_text(rows: Sequence[EntryRow]) -> str:
    short = {SMALL_SCALE: "the claim at small scale, not the number", NOT_RUN: "not run here"}
    groups: dict[str, list[str]] = {}
    for r in rows:
        groups.setdefault(short.get(r.accuracy, r.accuracy), []).append(f"{r.top1:g}")
    return "; ".join(f"{', '.join(v)}: {k}" for k, v in groups.items())


def paper_rows(rep: Reproduction) -> list[dict]:
    """One row per paper of published.yaml: its entries' cost and logits checks, its claims on
    Something-Synthetic with our seed means ± std, and its published top-1 with what became of them."""
    rows = []
    for paper in rep.data["papers"]:
        mine = [r for r in rep.entries if r.paper == paper]
        claims = [o for o in rep.outcomes if o.claim.paper == paper]
        rows.append(dict(
            paper=paper.upper(), entries=len(mine),
            cost=f"{_cost_text('params', mine)}; {_cost_text('flops', mine)}",
            logits=_logits_text(mine), claims=_claims_text(claims, rep.results), top1=_top1_text(mine),
        ))  # fmt: skip
    return rows


def built_docs(toc: str | os.PathLike | None = None) -> set[str]:
    """The page names of the book being built: those of ``VIDLIB_BOOK_TOC`` (a build of a few pages, see
    ``tools/build_book.sh``) or of ``_toc.yml``."""
    path = Path(toc or os.environ.get("VIDLIB_BOOK_TOC") or project_root() / "_toc.yml")
    data = yaml.safe_load(path.read_text())
    files, stack = [data["root"]], [*data.get("chapters", []), *data.get("parts", [])]
    while stack:
        node = stack.pop()
        files += [node["file"]] if "file" in node else []
        stack += [*node.get("sections", []), *node.get("chapters", [])]
    return {Path(f).stem for f in files}


def doc_link(docs: set[str], names: dict[str, str] | None = None) -> Callable[[str], str]:
    """A function page -> Markdown: a MyST link to ``book/<page>.md`` when the build includes the page,
    else its name alone (a build of a few pages then has no broken reference). ``names``: the link texts
    (default: the page name in capitals)."""

    def link(page: str) -> str:
        text = (names or {}).get(page, page.upper())
        return f"[{text}]({page}.md)" if page in docs else text

    return link
