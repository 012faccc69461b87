"""The chapters' claims on Something-Synthetic, re-checked from their committed files.

Each :class:`Claim` is a paper's claim as a chapter tested it: the comparisons the chapter asserts, with the
chapter's margins (:data:`MARGINS`), evaluated on ``results/<chapter>.json`` and on every setting of
``results/<chapter>_kernels.json`` (:func:`check_claims`). The noise band is the chapters': three binomial
standard deviations of an accuracy of 0.5 over the videos a number is computed on.
"""

from __future__ import annotations

import math
import operator
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import stats

__all__ = [
    "MARGINS",
    "CLAIMS",
    "SUMMARY_METRICS",
    "KERNEL_METRIC",
    "Runs",
    "Comparison",
    "Claim",
    "ClaimOutcome",
    "runs_from_results",
    "runs_from_kernels",
    "check_claims",
    "assert_claims",
    "synthetic_rows",
    "kernel_rows",
]

#: The chapters' margins (fractions), as their experiment cells set them (tests/test_reproduction.py checks
#: that each chapter's source still sets them so).
MARGINS = {
    "tam": {"WIDE": 0.20},
    "tin": {"WIDE": 0.20, "TOP1_BEHIND": 0.05},
    "tpn": {"WIDE": 0.20, "AUX_GAIN": 0.05},
    "csn": {"IR_LOSS": 0.04, "GAP_CAP": 0.15},
    "stam": {"WIDE": 0.12},
}


@dataclass(frozen=True)
class Runs:
    """One experiment's per-seed metrics: ``values[model][metric]`` lists fractions in seed order;
    ``n_val``, ``n_pair`` and ``n_tempo`` count the validation videos, those of the reversal pairs and those
    of the tempo pairs."""

    values: Mapping[str, Mapping[str, list[float]]]
    n_val: int
    n_pair: int | None = None
    n_tempo: int | None = None

    def seeds(self, model: str, metric: str) -> list[float]:
        return self.values[model][metric]

    def mean(self, model: str, metric: str) -> float:
        return statistics.fmean(self.values[model][metric])

    def diff(self, a: str, b: str, metric: str) -> float:
        """Seed mean of ``a`` minus seed mean of ``b``."""
        return self.mean(a, metric) - self.mean(b, metric)


def band(n: int | None) -> float:
    """Three binomial standard deviations of an accuracy of 0.5 over ``n`` videos."""
    if not n:
        raise ValueError("a noise band needs the number of videos")
    return 3 * 0.5 / math.sqrt(n)


def _metrics(run: Mapping[str, Any]) -> dict[str, float]:
    """The numeric metrics of one run (of a results file or of a kernel setting), groups flattened."""
    skip = ("wall_s", "n_pair_videos", "seed")
    out = {k: v for k, v in run.items() if isinstance(v, (int, float)) and k not in skip}
    for name, key in (("tempo_groups", "tempo_acc"), ("multiphase_groups", "multiphase_acc")):
        if name in run.get("groups", {}):
            out.setdefault(key, run["groups"][name]["pair_acc"])
    if "train_top1" in out:
        out.setdefault("gap", out["train_top1"] - out["top1"])
    return out


def _collect(items) -> dict[str, dict[str, list[float]]]:
    """``{model: {metric: [values in seed order]}}`` from ``(model, seed, metrics)`` items."""
    by: dict[str, dict[str, dict[int, float]]] = {}
    for model, seed, metrics in items:
        for k, v in metrics.items():
            by.setdefault(model, {}).setdefault(k, {})[seed] = v
    return {m: {k: [d[s] for s in sorted(d)] for k, d in ms.items()} for m, ms in by.items()}


def _sizes(run: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """``(n_pair, n_tempo)`` as a run records them (None where it does not)."""
    return run.get("n_pair_videos"), run.get("groups", {}).get("tempo_groups", {}).get("n_pair_videos")


def runs_from_results(results: Mapping[str, Any], kernels: Mapping[str, Any] | None = None) -> Runs:
    """:class:`Runs` of a chapter's results file (keys ``model/seed<s>``, or ``model/t<T>/seed<s>`` of
    which the chapter's main T is kept). The set sizes the file lacks come from ``kernels``, whose data must
    be the same (content hash)."""
    items, first = [], None
    for key, run in results["runs"].items():
        parts = key.split("/")
        if len(parts) == 3 and parts[1] != f"t{results['frames_main']}":
            continue
        items.append((parts[0], int(parts[-1].removeprefix("seed")), _metrics(run)))
        first = first or run
    data = results["environment"]["data"]
    n_pair, n_tempo = _sizes(first)
    if kernels is not None:
        setting = next(iter(kernels["settings"].values()))
        if setting["environment"]["data"]["content_sha256"] != data["content_sha256"]:
            raise ValueError("the kernel-spread file was measured on other data than the results file")
        k_pair, k_tempo = _sizes(next(iter(setting["runs"].values())))
        n_pair, n_tempo = n_pair or k_pair, n_tempo or k_tempo
    return Runs(_collect(items), data["counts"]["val"], n_pair, n_tempo)


def _kernel_labels(results: Mapping[str, Any]) -> dict[str, str]:
    """Kernel-spread model specs (``model:key=value``) -> the chapter's labels (TPN's variants)."""
    out = {}
    for label, v in results.get("variants", {}).items():
        kw = ",".join(f"{k}={val}" for k, val in v["model_kwargs"].items())
        out[v["model"] + (f":{kw}" if kw else "")] = label
    return out


def runs_from_kernels(kernels: Mapping[str, Any], setting: str, results: Mapping[str, Any]) -> Runs:
    """:class:`Runs` of one setting of a kernel-spread file, with the chapter's model labels."""
    s, labels = kernels["settings"][setting], _kernel_labels(results)
    items = [(labels.get(r["model"], r["model"]), r["seed"], _metrics(r)) for r in s["runs"].values()]
    n_pair, n_tempo = _sizes(next(iter(s["runs"].values())))
    return Runs(_collect(items), s["environment"]["data"]["counts"]["val"], n_pair, n_tempo)


_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


@dataclass(frozen=True)
class Comparison:
    """``value relation bound`` (fractions), as a chapter asserts it."""

    what: str
    value: float
    relation: str
    bound: float

    @property
    def holds(self) -> bool:
        return _OPS[self.relation](self.value, self.bound)

    def __str__(self) -> str:
        return f"{self.what}: {100 * self.value:.1f} {self.relation} {100 * self.bound:.1f} points"


def _beats_tsn(r: Runs, model: str, wide: float) -> list[Comparison]:
    """The TAM and TIN chapters' block: TSN-tiny at chance on the reversal pairs; ``model`` above it by
    ``wide`` (seed mean), and every seed of it beyond the noise band."""
    b, tsn = band(r.n_pair), r.mean("tsn_tiny", "pair_acc")
    return [
        Comparison("|tsn_tiny - chance|, reversal pairs", abs(tsn - 0.5), "<=", b),
        Comparison(f"{model} - tsn_tiny, reversal pairs", r.mean(model, "pair_acc") - tsn, ">=", wide),
        Comparison(
            f"worst {model} seed - tsn_tiny, reversal pairs", min(r.seeds(model, "pair_acc")) - tsn, ">=", b
        ),
    ]


def _tin_vs_tsm(r: Runs) -> list[Comparison]:
    """TIN is not ahead of TSM on the pairs beyond the noise band, and behind on top-1."""
    return [
        Comparison(
            "tin_tiny - tsm_tiny, reversal pairs",
            r.diff("tin_tiny", "tsm_tiny", "pair_acc"),
            "<=",
            band(r.n_pair),
        ),
        Comparison(
            "tsm_tiny - tin_tiny, top-1",
            r.diff("tsm_tiny", "tin_tiny", "top1"),
            ">=",
            MARGINS["tin"]["TOP1_BEHIND"],
        ),
    ]


def _tpn_neck(r: Runs) -> list[Comparison]:
    """The neck beats its backbone widely on top-1, every seed beyond noise; the backbone is at chance on
    the tempo and reversal pairs, every TPN seed beyond it."""
    base, tpn = "slowonly_tiny", "tpn_slowonly_tiny"
    b_val, b_pair, b_tempo = band(r.n_val), band(r.n_pair), band(r.n_tempo)
    return [
        Comparison(f"{tpn} - {base}, top-1", r.diff(tpn, base, "top1"), ">=", MARGINS["tpn"]["WIDE"]),
        Comparison(f"worst {tpn} seed - best {base} seed, top-1",
                   min(r.seeds(tpn, "top1")) - max(r.seeds(base, "top1")), ">=", b_val),
        Comparison(f"|{base} - chance|, tempo pairs", abs(r.mean(base, "tempo_acc") - 0.5), "<=", b_tempo),
        Comparison(f"|{base} - chance|, reversal pairs", abs(r.mean(base, "pair_acc") - 0.5), "<=", b_pair),
        Comparison(f"worst {tpn} seed - chance, reversal pairs",
                   min(r.seeds(tpn, "pair_acc")) - 0.5, ">=", b_pair),
        Comparison(f"worst {tpn} seed - chance, tempo pairs",
                   min(r.seeds(tpn, "tempo_acc")) - 0.5, ">=", b_tempo),
    ]  # fmt: skip


def _tpn_aux(r: Runs) -> list[Comparison]:
    """The auxiliary loss helps: on the seed mean by AUX_GAIN, and for every seed."""
    tpn, noaux = "tpn_slowonly_tiny", "tpn_slowonly_tiny (no aux)"
    per_seed = [a - b for a, b in zip(r.seeds(tpn, "top1"), r.seeds(noaux, "top1"))]
    return [
        Comparison(f"{tpn} - {noaux}, top-1", r.diff(tpn, noaux, "top1"), ">=", MARGINS["tpn"]["AUX_GAIN"]),
        Comparison("smallest gain of one seed, top-1", min(per_seed), ">", 0.0),
    ]


def _csn_ip(r: Runs) -> list[Comparison]:
    return [
        Comparison(
            "|ipcsn_tiny - r3d_tiny|, top-1",
            abs(r.diff("ipcsn_tiny", "r3d_tiny", "top1")),
            "<=",
            band(r.n_val),
        )
    ]


def _csn_ir(r: Runs) -> list[Comparison]:
    return [
        Comparison(
            "r3d_tiny - ircsn_tiny, top-1",
            r.diff("r3d_tiny", "ircsn_tiny", "top1"),
            ">=",
            MARGINS["csn"]["IR_LOSS"],
        )
    ]


def _csn_regulariser(r: Runs) -> list[Comparison]:
    """Not both a lower train and a higher val accuracy than R3D, and no smaller gap, beyond the noise of a
    seed mean; no run more than GAP_CAP better on its training videos than on the validation videos."""
    base, out = "r3d_tiny", []
    b_mean = band(r.n_val) / math.sqrt(len(r.seeds(base, "top1")))
    for m in ("ipcsn_tiny", "ircsn_tiny"):
        both = min(r.diff(base, m, "train_top1"), r.diff(m, base, "top1"))  # not (lower train and higher val)
        out.append(Comparison(f"{m}: min(train below r3d_tiny, val above r3d_tiny)", both, "<=", b_mean))
        out.append(Comparison(f"{m} gap - r3d_tiny gap", r.diff(m, base, "gap"), ">", -b_mean))
    largest = max(g for m in r.values for g in r.seeds(m, "gap"))
    return out + [Comparison("largest train - val gap of a run", largest, "<=", MARGINS["csn"]["GAP_CAP"])]


def _stam_order(r: Runs) -> list[Comparison]:
    """Every mean-tiny seed at chance on the pairs; STAM-tiny above it widely, every seed beyond noise, and
    widely ahead on top-1."""
    b, wide = band(r.n_pair), MARGINS["stam"]["WIDE"]
    mean, stam = r.seeds("stam_mean_tiny", "pair_acc"), r.seeds("stam_tiny", "pair_acc")
    return [
        Comparison(
            "worst |stam_mean_tiny seed - chance|, reversal pairs", max(abs(p - 0.5) for p in mean), "<=", b
        ),
        Comparison("stam_tiny - chance, reversal pairs", statistics.fmean(stam) - 0.5, ">=", wide),
        Comparison("worst stam_tiny seed - chance, reversal pairs", min(stam) - 0.5, ">=", b),
        Comparison(
            "stam_tiny - stam_mean_tiny, top-1", r.diff("stam_tiny", "stam_mean_tiny", "top1"), ">=", wide
        ),
    ]


@dataclass(frozen=True)
class Claim:
    """A paper's claim as a chapter tested it on Something-Synthetic.

    ``verdict``: what the chapter's asserts establish about the claim when ``compare`` holds
    (``"supported"``, ``"contradicted"`` or ``"not seen"``). ``entries``: the published entries whose paper
    makes the claim, for the architecture tested. ``show``: the ``(model, metric)`` summaries that state it.
    """

    id: str
    chapter: str
    paper: str
    claim: str
    verdict: str
    entries: tuple[str, ...]
    compare: Callable[[Runs], list[Comparison]]
    show: tuple[tuple[str, str], ...]


_TANET = ("tanet_r50_k400", "tanet_r50_sthv1_8f", "tanet_r50_sthv1_16f")
_TIN = ("tin_r50_sthv1", "tin_r50_sthv2", "tin_r50_k400")
_TPN = ("tpn_slowonly_r50_k400", "tpn_slowonly_r50_scratch_k400")
_IP = ("ipcsn_r152_k400", "ipcsn_r152_ig65m_bnfrozen_k400", "ipcsn_r152_sports1m_bnfrozen_k400")
_IR = ("ircsn_r152_ig65m_k400", "ircsn_r152_ig65m_bnfrozen_k400", "ircsn_r50_ig65m_bnfrozen_k400",
       "ircsn_r152_k400", "ircsn_r152_sports1m_bnfrozen_k400")  # fmt: skip
_STAM = ("stam_8_k400", "stam_16_k400", "stam_32_k400", "stam_64_k400")
_ORDER = "lets a 2D network tell an action from its reversal"

CLAIMS = (
    Claim("tsm-order", "tam", "tsm", f"a temporal shift {_ORDER}", "supported", ("tsm_r50_k400",),
          lambda r: _beats_tsn(r, "tsm_tiny", MARGINS["tam"]["WIDE"]),
          (("tsm_tiny", "pair_acc"), ("tsn_tiny", "pair_acc"))),
    Claim("tam-order", "tam", "tam", f"a video-adaptive temporal kernel {_ORDER}", "supported", _TANET,
          lambda r: _beats_tsn(r, "tanet_tiny", MARGINS["tam"]["WIDE"]),
          (("tanet_tiny", "pair_acc"), ("tsn_tiny", "pair_acc"))),
    Claim("tin-order", "tin", "tin", f"temporal interlacing {_ORDER}", "supported", _TIN,
          lambda r: _beats_tsn(r, "tin_tiny", MARGINS["tin"]["WIDE"]),
          (("tin_tiny", "pair_acc"), ("tsn_tiny", "pair_acc"))),
    Claim("tin-vs-tsm", "tin", "tin", "a learned, fractional shift is more accurate than TSM's fixed one",
          "contradicted", _TIN, _tin_vs_tsm, (("tin_tiny", "top1"), ("tsm_tiny", "top1"))),
    Claim("tpn-neck", "tpn", "tpn", "a temporal pyramid neck improves its backbone, on tempo above all",
          "supported", _TPN, _tpn_neck,
          (("tpn_slowonly_tiny", "top1"), ("slowonly_tiny", "top1"), ("tpn_slowonly_tiny", "tempo_acc"),
           ("slowonly_tiny", "tempo_acc"))),
    Claim("tpn-aux", "tpn", "tpn", "the auxiliary loss on the backbone's features improves the model",
          "supported", _TPN, _tpn_aux,
          (("tpn_slowonly_tiny", "top1"), ("tpn_slowonly_tiny (no aux)", "top1"))),
    Claim("csn-ip", "csn", "csn", "ip-CSN is as accurate as a dense 3D ResNet, with fewer multiply-adds",
          "supported", _IP, _csn_ip, (("ipcsn_tiny", "top1"), ("r3d_tiny", "top1"))),
    Claim("csn-ir", "csn", "csn", "ir-CSN, without channel mixing in its middle convolutions, is as accurate",
          "contradicted", _IR, _csn_ir, (("ircsn_tiny", "top1"), ("r3d_tiny", "top1"))),
    Claim("csn-regulariser", "csn", "csn", "channel separation regularises: lower train, higher val accuracy",
          "not seen", _IP + _IR, _csn_regulariser,
          (("ipcsn_tiny", "train_top1"), ("ircsn_tiny", "train_top1"), ("r3d_tiny", "train_top1"))),
    Claim("stam-order", "stam", "stam", "a temporal transformer over frame embeddings tells the order of "
          "events, their mean cannot", "supported", _STAM, _stam_order,
          (("stam_tiny", "pair_acc"), ("stam_mean_tiny", "pair_acc"))),
)  # fmt: skip


@dataclass(frozen=True)
class ClaimOutcome:
    """A claim's comparisons on the chapter's results file and on each kernel setting."""

    claim: Claim
    results: list[Comparison]
    settings: dict[str, list[Comparison]]

    @property
    def holds(self) -> bool:
        """Every comparison holds, in the results file and in every kernel setting."""
        return not self.failures()

    def failures(self) -> list[str]:
        out = [f"results: {c}" for c in self.results if not c.holds]
        return out + [f"{name}: {c}" for name, cs in self.settings.items() for c in cs if not c.holds]


def check_claims(
    results: Mapping[str, Mapping], kernels: Mapping[str, Mapping], claims: Sequence[Claim] = CLAIMS
) -> list[ClaimOutcome]:
    """Every claim's comparisons on ``results[chapter]`` and on every setting of ``kernels[chapter]``."""
    out = []
    for c in claims:
        res, ker = results[c.chapter], kernels[c.chapter]
        settings = {s: c.compare(runs_from_kernels(ker, s, res)) for s in ker["settings"]}
        out.append(ClaimOutcome(c, c.compare(runs_from_results(res, ker)), settings))
    return out


def assert_claims(outcomes: Sequence[ClaimOutcome]) -> None:
    """Raise ``AssertionError`` naming every claim with a comparison that does not hold."""
    bad = {o.claim.id: o.failures() for o in outcomes if not o.holds}
    assert not bad, f"claims that do not hold on the committed files: {bad}"


#: Metrics of the chapters' summaries, with their column headers.
SUMMARY_METRICS = {
    "top1": "top-1 (%)",
    "pair_acc": "reversal pairs (%)",
    "tempo_acc": "tempo pairs (%)",
    "multiphase_acc": "multi-phase pairs (%)",
    "train_top1": "train top-1 (%)",
}
#: The metric each chapter's kernel-spread table shows.
KERNEL_METRIC = {"tam": "pair_acc", "tin": "pair_acc", "tpn": "top1", "csn": "top1", "stam": "pair_acc"}


def synthetic_rows(results: Mapping[str, Mapping[str, Any]]) -> list[dict]:
    """One row per chapter and model: the seed mean ± std (%) of :data:`SUMMARY_METRICS` (None where the
    chapter did not measure it), the seeds, epochs and recipe."""
    rows = []
    for chapter, res in results.items():
        for model, s in res["summary"].items():
            row = dict(chapter=chapter, model=model, seeds=len(res["seeds"]), epochs=res["epochs"])
            rows.append(row | {k: s.get(k) for k in SUMMARY_METRICS} | dict(recipe=res["recipe"]))
    return rows


def kernel_rows(kernels: Mapping[str, Mapping], outcomes: Sequence[ClaimOutcome]) -> list[dict]:
    """Per chapter: its kernel settings, how far a seed mean and one seed moved between them
    (:func:`vidbook.stats.kernel_spread`, in points), and whether every claim of the chapter holds in every
    setting."""
    rows = []
    for chapter, ker in kernels.items():
        spread = stats.kernel_spread(ker, KERNEL_METRIC[chapter])
        mine = [o for o in outcomes if o.claim.chapter == chapter]
        settings = ", ".join(
            f"{n} ({s['environment']['cpu_capability']})" for n, s in ker["settings"].items()
        )
        hold = all(c.holds for o in mine for cs in o.settings.values() for c in cs)
        rows.append(dict(chapter=chapter, metric=KERNEL_METRIC[chapter], settings=settings,
                         seeds=len(ker["seeds"]), mean_range=spread["max_mean_range"],
                         seed_range=spread["max_seed_range"], claims=len(mine),
                         hold="yes" if hold else "no"))  # fmt: skip
    return rows
