"""The import graphs of the library (``vidlib``) and the book layer (``vidbook``): no cycles, every
import points down the layers, and the library never imports the book layer.

The modules are parsed with ``ast`` (nothing is imported); relative imports are resolved, and imports
inside functions count as well (a lazy import is still a dependency). The layers, lowest first:

    the library:     errors < utils < data < weights < models < vidlib (the package's __init__)
                     < flops | golden < engine < __main__
    the book layer:  vidbook.modes < vidbook.results < vidbook.stats | listings | probes
                     < vidbook.tables | figures | experiments < vidbook (its __init__)
                     < vidbook.reproduction | performance

- ``errors``: the bad-input exception family; ``utils``: small helpers; ``data``: videos to tensors;
- ``weights``: model-agnostic checkpoint reading and strict loading (no model);
- ``models``: the zoo; never engine, flops or golden;
- ``vidlib``: the package's public face (``create_model``, ``list_models``);
- ``flops`` and ``golden``: measuring models (peers: neither imports the other);
- ``engine``: training, evaluation, recipes; ``__main__``: the command line;
- ``vidbook.*``: the pages' logic, above all of the library; nothing in ``vidlib`` imports it
  (:func:`test_the_library_never_imports_the_book_layer`).

A module may import modules of its own layer and of lower layers. Layers of the same rank (``|``) may
not import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vidlib"
BOOK_PACKAGE = ROOT / "vidbook"

#: (layer, rank, module prefixes): the longest matching prefix decides a module's layer.
LAYERS = [
    ("errors", 0, ("vidlib.errors",)),
    ("utils", 1, ("vidlib.utils",)),
    ("data", 2, ("vidlib.data",)),
    ("weights", 3, ("vidlib.weights",)),
    ("models", 4, ("vidlib.models",)),
    ("vidlib", 5, ("vidlib",)),
    ("flops", 6, ("vidlib.flops",)),
    ("golden", 6, ("vidlib.golden",)),
    ("engine", 7, ("vidlib.engine",)),
    ("__main__", 8, ("vidlib.__main__",)),
    ("book.modes", 10, ("vidbook.modes",)),
    ("book.results", 11, ("vidbook.results",)),
    ("book.stats", 12, ("vidbook.stats",)),
    ("book.listings", 12, ("vidbook.listings",)),
    ("book.probes", 12, ("vidbook.probes",)),
    ("book.tables", 13, ("vidbook.tables",)),
    ("book.figures", 13, ("vidbook.figures",)),
    ("book.experiments", 13, ("vidbook.experiments",)),
    ("vidbook", 14, ("vidbook",)),
    ("book.reproduction", 15, ("vidbook.reproduction",)),
    ("book.performance", 15, ("vidbook.performance",)),
]


def module_name(path: Path, root: Path = PACKAGE) -> str:
    """``vidlib/models/tam.py`` -> ``vidlib.models.tam``; ``vidlib/data/__init__.py`` -> ``vidlib.data``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """The vidlib modules ``module`` imports anywhere in its body (functions included)."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            for alias in node.names:  # ``from pkg import submodule`` depends on the submodule itself
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {m for m in found if m.split(".")[0] in ("vidlib", "vidbook")}


def import_graph(*roots: Path) -> dict[str, set[str]]:
    """``{module: {vidlib and vidbook modules it imports}}`` for every ``.py`` file under ``roots``
    (default: both packages)."""
    files = {
        module_name(p, root): p
        for root in (roots or (PACKAGE, BOOK_PACKAGE))
        for p in sorted(root.rglob("*.py"))
    }
    modules = set(files)
    return {
        m: _imports(ast.parse(p.read_text(), str(p)), m, p.name == "__init__.py", modules) - {m}
        for m, p in files.items()
    }


def layer_of(module: str) -> tuple[str, int]:
    """The (layer, rank) of ``module``; ``KeyError`` if no layer claims it."""
    best = None
    for layer, rank, prefixes in LAYERS:
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > best[0]):
                best = (len(p), layer, rank)
    if best is None:
        raise KeyError(f"{module} belongs to no layer of tests/test_layering.py")
    return best[1], best[2]


def direction_violations(graph: dict[str, set[str]]) -> list[str]:
    """One line per import that does not point to the importer's own layer or a lower one."""
    out = []
    for importer, targets in sorted(graph.items()):
        layer, rank = layer_of(importer)
        for target in sorted(targets):
            t_layer, t_rank = layer_of(target)
            if t_layer != layer and t_rank >= rank:
                rule = (
                    "peer layers do not import each other"
                    if t_rank == rank
                    else "imports point down the layers"
                )
                out.append(
                    f"{importer} (layer {layer}) imports {target} (layer {t_layer}): {rule} "
                    f"({' < '.join(name for name, _, _ in LAYERS)})"
                )
    return out


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle ``[a, b, ..., a]`` per strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on_stack, sccs = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                sccs.append(set(scc))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_in(scc, graph) for scc in sccs]


def _cycle_in(scc: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A concrete cycle through the first module of ``scc`` (breadth-first, so a shortest one)."""
    start = min(scc)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph.get(v, ()) & scc):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start} in {sorted(scc)}")  # pragma: no cover


# ----------------------------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_every_module_has_a_layer(graph):
    assert "vidlib.models.tam" in graph and "vidlib.engine.training" in graph
    unplaced = []
    for m in graph:
        try:
            layer_of(m)
        except KeyError as e:
            unplaced.append(str(e))
    assert not unplaced, "\n".join(unplaced)


def test_every_vidlib_import_names_an_existing_module(graph):
    missing = sorted(
        f"{m} imports {t}, which does not exist" for m, ts in graph.items() for t in ts if t not in graph
    )
    assert not missing, "\n".join(missing)


def test_lazy_imports_are_in_the_graph(graph):
    """``tables.cost_rows`` imports ``vidlib.flops`` inside the function: still an edge of the graph."""
    assert "vidlib.flops" in graph["vidbook.tables"]


def test_the_library_never_imports_the_book_layer(graph):
    """``vidlib`` is what a user installs; the book's page logic sits on top of it and never below."""
    assert any(m.startswith("vidbook.") for m in graph) and any(m.startswith("vidlib.") for m in graph)
    upward = sorted(
        f"{m} imports {t}"
        for m, ts in graph.items()
        if m.split(".")[0] == "vidlib"
        for t in ts
        if t.split(".")[0] == "vidbook"
    )
    assert not upward, "the library imports the book layer:\n" + "\n".join(upward)


def test_the_book_layer_check_catches_an_upward_import():
    bad = {"vidlib.engine.training": {"vidbook.tables"}, "vidbook.tables": set()}
    lines = direction_violations(bad)
    assert lines and lines[0].startswith("vidlib.engine.training (layer engine) imports vidbook.tables")


def test_no_import_cycles(graph):
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_imports_follow_the_layers(graph):
    bad = direction_violations(graph)
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_the_checker_catches_a_bad_graph():
    """A synthetic graph with a models <-> weights cycle and a data -> engine import must fail both checks."""
    bad = {
        "vidlib.weights": {"vidlib.models.tam"},
        "vidlib.models.tam": {"vidlib.models.resnet2d"},
        "vidlib.models.resnet2d": {"vidlib.weights"},
        "vidlib.data.dataset": {"vidlib.engine.training"},
        "vidlib.engine.training": {"vidlib.data"},
        "vidlib.flops": {"vidlib.golden"},
        "vidlib.golden": set(),
    }
    assert find_cycles(bad) == [
        ["vidlib.models.resnet2d", "vidlib.weights", "vidlib.models.tam", "vidlib.models.resnet2d"]
    ]
    lines = direction_violations(bad)
    assert any(
        line.startswith(
            "vidlib.data.dataset (layer data) imports vidlib.engine.training (layer engine): "
            "imports point down"
        )
        for line in lines
    ), lines
    assert any(line.startswith("vidlib.weights (layer weights) imports vidlib.models.tam") for line in lines)
    assert any(
        "vidlib.flops (layer flops) imports vidlib.golden (layer golden): peer layers" in line
        for line in lines
    )
    assert not any(line.startswith(("vidlib.models.tam ", "vidlib.engine.training ")) for line in lines)


def test_relative_imports_resolve(tmp_path):
    """``from ..x import y``, ``from . import sub`` and imports inside functions, on a throwaway package."""
    pkg = tmp_path / "vidlib"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .models import create_model\n")
    (pkg / "utils.py").write_text("")
    (pkg / "weights.py").write_text("import torch\n")
    (pkg / "models" / "__init__.py").write_text("from . import tam\n")
    (pkg / "models" / "tam.py").write_text(
        "from ..weights import load\n\ndef f():\n    from .. import utils\n"
    )
    g = import_graph(pkg)
    assert g == {
        "vidlib": {"vidlib.models"},
        "vidlib.utils": set(),
        "vidlib.weights": set(),
        "vidlib.models": {"vidlib.models.tam"},
        "vidlib.models.tam": {"vidlib.weights", "vidlib.utils"},
    }
