"""The ``discrepancies:`` section of ``results/published.yaml``: every check evaluated, and the section as
Markdown for the closing page.

A check compares field ``a`` of a published entry with ``relation`` against exactly one of ``b`` (a field of
the same entry, or of ``b_entry`` in ``b_section``), ``value`` (a literal) or ``measured`` (a value of a
committed results file); the comment above the section in ``published.yaml`` gives the schema.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "RELATIONS",
    "CheckOutcome",
    "get_path",
    "evaluate_check",
    "check_discrepancies",
    "assert_discrepancies",
    "source_text",
    "discrepancy_markdown",
]

_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt}
_OPS[">="] = operator.ge
#: The relations a check may use: comparisons, ``~=`` / ``!~=`` (relative difference within / beyond
#: ``tol``) and ``contains`` (a substring).
RELATIONS: dict[str, Callable[..., bool]] = {
    **_OPS,
    "~=": lambda a, b, tol: abs(a / b - 1) <= tol,
    "!~=": lambda a, b, tol: abs(a / b - 1) > tol,
    "contains": lambda a, b: str(b) in str(a),
}


def get_path(obj: Any, path: str) -> Any:
    """``obj`` at a dotted path (list items by index: ``recipe.mean.2``); ``KeyError`` naming the path."""
    for part in path.split("."):
        try:
            obj = obj[int(part)] if isinstance(obj, list) else obj[part]
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise KeyError(f"no {path!r} (at {part!r})") from e
    return obj


def _number(x: Any) -> float:
    """A number, or the number a printed figure starts with ("29.6M", "135 × 1")."""
    if isinstance(x, (int, float)):
        return float(x)
    m = re.match(r"\s*(-?\d+(?:\.\d+)?)", str(x))
    if m is None:
        raise ValueError(f"not a number: {x!r}")
    return float(m.group(1))


def _measured(spec: Mapping[str, Any], results: Mapping[str, Mapping]) -> tuple[Any, str]:
    """The value a ``measured`` spec points at in ``results[spec["results"]]``, and where it is."""
    path = spec.get("path", "cost")
    obj = get_path(results[spec["results"]], path)
    where = spec.get("where")
    if where:
        rows = [r for r in obj if all(r.get(k) == v for k, v in where.items())]
        if len(rows) != 1:
            raise KeyError(f"results/{spec['results']}.json {path}: {len(rows)} rows match {where}")
        obj = rows[0]
    value = get_path(obj, spec["field"]) * spec.get("scale", 1)
    selected = f"[{', '.join(f'{k}={v}' for k, v in where.items())}]" if where else ""
    return value, f"results/{spec['results']}.json {path}{selected}.{spec['field']}"


@dataclass(frozen=True)
class CheckOutcome:
    """One check of a discrepancy item: the comparison as text, with the values compared, and whether it
    holds."""

    item: str
    text: str
    holds: bool


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else json.dumps(v) if isinstance(v, (list, str)) else str(v)


def evaluate_check(
    item: str, check: Mapping[str, Any], data: Mapping[str, Mapping], results: Mapping
) -> CheckOutcome:
    """Evaluate one check of discrepancy ``item``; ``data`` holds the sections of published.yaml by name,
    ``results`` the chapters' results files by chapter."""
    rel = check["relation"]
    if rel not in RELATIONS:
        raise ValueError(f"unknown relation {rel!r}; known: {', '.join(RELATIONS)}")
    given = [k for k in ("b", "value", "measured") if k in check]
    if len(given) != 1:
        raise ValueError(f"a check needs exactly one of b, value, measured; this one has {given}")
    a = get_path(data["entries"][check["entry"]], check["a"])
    if "b" in check:
        b_entry = check.get("b_entry", check["entry"])
        b = get_path(data[check.get("b_section", "entries")][b_entry], check["b"])
        b_text = check["b"] if b_entry == check["entry"] else f"{b_entry}.{check['b']}"
    elif "value" in check:
        b, b_text = check["value"], "value"
    else:
        b, b_text = _measured(check["measured"], results)
    if rel in ("~=", "!~="):
        holds = RELATIONS[rel](_number(a), _number(b), check["tol"])
        rel = f"{rel} (tol {check['tol']:g})"
    elif rel in ("<", "<=", ">", ">="):
        holds = RELATIONS[rel](_number(a), _number(b))
    else:
        holds = RELATIONS[rel](a, b)
    return CheckOutcome(
        item, f"{check['entry']}.{check['a']} = {_fmt(a)} {rel} {b_text} = {_fmt(b)}", bool(holds)
    )


def check_discrepancies(
    data: Mapping[str, Mapping], results: Mapping[str, Mapping]
) -> dict[str, list[CheckOutcome]]:
    """``{item id: [CheckOutcome, ...]}`` for every item of ``data["discrepancies"]``. A malformed check (an
    unknown field, relation or results row) raises naming the item."""
    out = {}
    for item in data["discrepancies"]:
        try:
            out[item["id"]] = [evaluate_check(item["id"], c, data, results) for c in item["checks"]]
        except (KeyError, ValueError, TypeError) as e:
            raise type(e)(f"discrepancy {item['id']}: {e}") from e
    return out


def assert_discrepancies(outcomes: Mapping[str, Sequence[CheckOutcome]]) -> None:
    """Raise ``AssertionError`` naming every discrepancy item with a check that does not hold."""
    bad = [f"{item}: {o.text}" for item, checks in outcomes.items() for o in checks if not o.holds]
    assert not bad, "discrepancy checks that do not hold:\n" + "\n".join(bad)


def source_text(source: Mapping[str, Any], sources: Mapping[str, Mapping]) -> str:
    """A source of an item as Markdown: ``repo@commit`` and its files (links where the source's url points
    into a commit or branch), or a url."""
    if "url" in source:
        return f"<{source['url']}>"
    s = sources[source["tag"]]
    name = f"{s['repo']}@{str(s.get('commit', s.get('branch')))[:7]}"
    if s["url"].endswith("/"):  # .../blob/<commit>/ or .../tree/<branch>/: files resolve under it
        return ", ".join(f"[{name} {f}]({s['url']}{f})" for f in source["files"])
    return ", ".join(f"{name} {f}" for f in source["files"])


def discrepancy_markdown(
    items: Sequence[Mapping[str, Any]],
    outcomes: Mapping[str, Sequence[CheckOutcome]],
    sources: Mapping[str, Mapping],
    link: Callable[[str], str],
) -> str:
    """The items as a numbered Markdown list: title, id and page (``link(page)``), evidence, sources,
    entries, and every check with the values it compared."""
    out = []
    for i, item in enumerate(items, 1):
        checks = "; ".join(f"`{o.text}`" for o in outcomes[item["id"]])
        entries = ", ".join(f"`{e}`" for e in item["entries"])
        pad = " " * len(f"{i}. ")  # continuation lines indented to the item's text
        out += [
            f"{i}. **{item['title']}** (`{item['id']}`; {link(item['chapter'])})",
            f"{pad}{' '.join(item['evidence'].split())}",
            f"{pad}- sources: {'; '.join(source_text(s, sources) for s in item['sources'])}",
            f"{pad}- entries: {entries}",
            f"{pad}- checked: {checks}",
        ]
    return "\n".join(out)
