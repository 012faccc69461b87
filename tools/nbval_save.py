"""Run the chapters under nbval once, and hand the executions to the book build.

``make test`` checks every chapter twice: nbval reports pass/fail per cell, and the rendered book (built
by jupyter-book, checked in Chromium) needs the executed outputs. Executing each chapter twice doubles the
longest stage, so this module lets nbval's execution serve both:

``python tools/nbval_save.py convert OUTDIR [CHAPTER.md ...]``
    writes each chapter as ``OUTDIR/<name>.ipynb``, read by **myst-nb's own reader** with the book's MyST
    settings (``_config.yml``), i.e. the notebook jupyter-book builds: same code cells, same metadata, so
    the same execution-cache key. Without chapters: the pages of ``$VIDLIB_BOOK_TOC`` when set, else
    ``book/*.md``. Exits 1 when there is no chapter.

``python tools/nbval_save.py pytest [PYTEST ARGS] --nbval-save-cache DIR``
    runs pytest with this module as a plugin. While nbval runs a notebook, the plugin records the kernel's
    IOPub messages of each cell (nbval keeps only a coalesced copy of the outputs) and turns them into
    cell outputs the way nbclient does (``nbformat.v4.output_from_msg``, ``clear_output``,
    ``update_display_data``), so ``glue`` outputs (display_data with their own MIME types) are kept as
    they are. When every code cell of a notebook passed, the executed notebook is added to the
    jupyter-cache folder DIR (the myst-nb execution cache of the quick book build, see
    ``tools/sphinx_vidlib.py``) under the key jupyter-book computes from the chapter's ``.md``: the book
    build then finds it there and only renders ("Using cached notebook").

Nothing is stored for a notebook that did not run completely and cleanly (a failed, skipped or
deselected cell, a timeout, a widget, a chapter edited while it ran); a notebook with a failed cell also
has its cache entry removed, so the book build executes it again and reports the failure itself instead
of rendering an older output. Dropping the caches when vidlib changes is ``tools/book_cache.sh``'s job,
which ``tools/run_nbval.sh`` runs before nbval.

Run it through ``tools/run_nbval.sh``. ``python tools/nbval_save.py`` rather than ``pytest -p`` keeps
``tools/`` out of ``PYTHONPATH``, which the notebook kernels would inherit.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
META_KEY = "vidlib_nbval"  # notebook metadata: {"source": "<absolute path of the chapter .md>"}
OUTPUT_MSGS = {"stream", "display_data", "execute_result", "error"}


# --- the notebook as jupyter-book reads it ---------------------------------------------------------
def _md_config():
    """The MyST parser settings of the book (``parse.myst_enable_extensions`` of ``_config.yml``)."""
    import yaml
    from myst_parser.config.main import MdParserConfig

    config = yaml.safe_load((ROOT / "_config.yml").read_text()) or {}
    extensions = (config.get("parse") or {}).get("myst_enable_extensions") or []
    return MdParserConfig(enable_extensions=set(extensions))


def read_chapter(path: Path):
    """The chapter as myst-nb reads it for the book (its reader, the book's MyST settings), or None if
    myst-nb would not treat the file as a notebook (no jupytext/mystnb front matter)."""
    from myst_nb.core.config import NbParserConfig
    from myst_nb.core.read import create_nb_reader

    text = path.read_text(encoding="utf8")
    reader = create_nb_reader(str(path), _md_config(), NbParserConfig(), text)
    return None if reader is None else reader.read(text)


def toc_chapters() -> list[Path]:
    """The chapters to run: the pages of ``$VIDLIB_BOOK_TOC`` when set, else ``book/*.md``."""
    if os.environ.get("VIDLIB_BOOK_TOC"):
        sys.path.insert(0, str(ROOT / "tools"))
        from browser_check import toc_pages

        return [ROOT / f"{page}.md" for page in toc_pages(ROOT)]
    return sorted((ROOT / "book").glob("*.md"))


def convert(outdir: Path, chapters: list[Path]) -> int:
    import nbformat

    chapters = chapters or toc_chapters()
    if not chapters:
        print(
            f"nbval_save: no chapters ({os.environ.get('VIDLIB_BOOK_TOC') or 'book/*.md'} matches nothing)",
            file=sys.stderr,
        )
        return 1
    missing = [str(p) for p in chapters if not p.is_file()]
    if missing:
        print(f"nbval_save: chapters not found: {missing}", file=sys.stderr)
        return 1
    written = 0
    for md in chapters:
        nb = read_chapter(md)
        if nb is None:
            print(f"nbval_save: {md} is not a notebook (no jupytext front matter); not run")
            continue
        nb.metadata[META_KEY] = {"source": str(md.resolve())}
        nbformat.write(nb, str(outdir / f"{md.stem}.ipynb"))
        written += 1
    if not written:
        print("nbval_save: none of the chapters is a notebook", file=sys.stderr)
        return 1
    return 0


# --- kernel messages -> cell outputs, as nbclient builds them --------------------------------------
class _Notebook:
    """One notebook under nbval: its cells' outputs, rebuilt from the kernel's IOPub messages."""

    def __init__(self, collector):
        self.collector = collector  # nbval's IPyNbFile
        self.items: list = []  # its items in run order
        self.outputs: dict[int, list] = {}  # code cell number -> outputs
        self.passed: set[int] = set()  # code cells whose call phase passed
        self.problems: list[str] = []  # why it cannot be stored
        self.failed = False  # a cell failed (error, timeout, setup)
        self.display_ids: dict[str, list[tuple[int, int]]] = {}
        self.clear_pending = False
        self.language_info = None
        self.seconds = 0.0
        self.done = False

    def message(self, cell: int, msg: dict) -> None:
        from nbformat.v4 import output_from_msg

        msg_type = msg["header"]["msg_type"]
        content = msg["content"]
        outs = self.outputs.setdefault(cell, [])
        display_id = (content.get("transient") or {}).get("display_id")
        if display_id and msg_type in ("execute_result", "display_data", "update_display_data"):
            for c, i in self.display_ids.get(display_id, []):  # update earlier displays of that id
                self.outputs[c][i]["data"] = content["data"]
                self.outputs[c][i]["metadata"] = content["metadata"]
        if msg_type == "clear_output":
            if content.get("wait"):
                self.clear_pending = True
            else:
                self._clear(cell)
        elif msg_type.startswith("comm"):
            self.problems.append(f"cell {cell} uses widgets (comm messages), which nbval does not record")
        elif msg_type in OUTPUT_MSGS:
            if self.clear_pending:
                self._clear(cell)
                outs = self.outputs[cell]
            if display_id:
                self.display_ids.setdefault(display_id, []).append((cell, len(outs)))
            outs.append(output_from_msg(msg))

    def _clear(self, cell: int) -> None:
        self.outputs[cell] = []
        self.clear_pending = False
        for refs in self.display_ids.values():
            refs[:] = [(c, i) for c, i in refs if c != cell]


class NbvalSave:
    """The pytest plugin (registered by :func:`pytest_configure` when ``--nbval-save-cache`` is given)."""

    def __init__(self, cache_dir: Path):
        self.cache_dir = cache_dir
        self.notebooks: dict[int, _Notebook] = {}  # id(collector) -> state
        self.stored: list[str] = []
        self.not_stored: list[str] = []

    def _state(self, item):
        return self.notebooks.get(id(getattr(item, "parent", None)))

    @pytest.hookimpl(trylast=True)  # after -k/-m deselection: the cells that will run
    def pytest_collection_modifyitems(self, session, config, items):
        for item in items:
            if type(item).__name__ == "IPyNbCell":
                state = self.notebooks.setdefault(id(item.parent), _Notebook(item.parent))
                state.items.append(item)

    def _hook_kernel(self, state: _Notebook, item) -> None:
        """Wrap nbval's two kernel entry points of this notebook, once: the execute request (to learn the
        cell's message id) and the IOPub reader (to record that cell's messages before nbval sees them)."""
        collector = item.parent
        if getattr(collector, "_vidlib_hooked", False):
            return
        kernel = collector.kernel
        current = {"msg_id": None, "cell": None}
        get_message = collector.get_kernel_message

        def execute_cell_input(cell_input, allow_stdin=None):
            # As nbclient (the book build) executes a cell: with store_history=True. nbval sends
            # store_history=False, and IPython then judges a trailing ';' by the previous history entry,
            # so a cell ending in ';' showed its value (a figure returned and drawn twice, on every page).
            current["msg_id"] = kernel.kc.execute(
                cell_input, store_history=True, allow_stdin=allow_stdin, stop_on_error=False
            )
            return current["msg_id"]

        def get_kernel_message(*args, **kwargs):
            msg = get_message(*args, **kwargs)
            if current["msg_id"] and msg.get("parent_header", {}).get("msg_id") == current["msg_id"]:
                state.message(current["cell"], msg)
            return msg

        kernel.execute_cell_input = execute_cell_input
        collector.get_kernel_message = get_kernel_message
        collector._vidlib_hooked = True
        collector._vidlib_current = current
        try:  # language_info, as nbclient stores it (myst-nb picks the code lexer from it)
            reply = kernel.kc.kernel_info(reply=True, timeout=60)
            state.language_info = reply["content"].get("language_info")
        except Exception as exc:  # the cache entry is still useful without it
            print(f"nbval_save: no kernel_info ({exc!r}); storing without language_info")

    @pytest.hookimpl(tryfirst=True)  # before nbval's runtest
    def pytest_runtest_call(self, item):
        state = self._state(item)
        if state is None:
            return
        try:
            self._hook_kernel(state, item)
        except AttributeError as exc:  # nbval's internals changed: run, but store nothing
            state.problems.append(f"cannot follow nbval's kernel ({exc}); update tools/nbval_save.py")
            return
        item.parent._vidlib_current.update(msg_id=None, cell=item.cell_num)
        state.outputs[item.cell_num] = []

    def pytest_runtest_logreport(self, report):
        state = next(
            (s for s in self.notebooks.values() if any(i.nodeid == report.nodeid for i in s.items)), None
        )
        if state is None:
            return
        item = next(i for i in state.items if i.nodeid == report.nodeid)
        if report.when == "call":
            state.seconds += report.duration
            if report.passed:
                state.passed.add(item.cell_num)
            elif report.skipped:
                state.problems.append(f"cell {item.cell_num} was skipped")
        if report.failed:
            state.failed = True
            state.problems.append(f"cell {item.cell_num} failed ({report.when})")
        if report.when == "teardown" and item is state.items[-1]:
            self._finish(state)

    def pytest_sessionfinish(self, session):
        for state in self.notebooks.values():  # -x, an interrupted run: notebooks left unfinished
            if not state.done and state.outputs:
                state.problems.append("the run stopped before its last cell")
                self._finish(state)

    def _finish(self, state: _Notebook) -> None:
        from jupyter_cache import get_cache
        from jupyter_cache.base import CacheBundleIn

        state.done = True
        nb = copy.deepcopy(state.collector.nb)
        name = Path(str(state.collector.fspath)).stem
        code = [c for c in nb.cells if c.cell_type == "code"]
        unrun = sorted(set(range(len(code))) - state.passed)
        if unrun and not state.problems:
            state.problems.append(f"cells {unrun[:5]} did not run (deselected?)")
        source = Path(nb.metadata.pop(META_KEY, {}).get("source", ""))
        cache = get_cache(str(self.cache_dir))
        if state.failed:  # never let the book render an older execution of a failing chapter
            try:
                cache.remove_cache(cache.match_cache_notebook(nb).pk)
                state.problems.append("its earlier cache entry was removed")
            except KeyError:
                pass
        if not state.problems and source.is_file():
            current = read_chapter(source)
            if (
                current is None
                or cache.create_hashed_notebook(current)[1] != cache.create_hashed_notebook(nb)[1]
            ):
                state.problems.append(f"{source} changed while it ran")
        if state.problems:
            self.not_stored.append(f"{name}: {'; '.join(state.problems)}")
            return
        for number, cell in enumerate(code):
            cell.execution_count = number + 1
            cell.outputs = state.outputs.get(number, [])
            for out in cell.outputs:
                if out.output_type == "execute_result":
                    out.execution_count = number + 1
        if state.language_info:
            nb.metadata["language_info"] = state.language_info
        record = cache.cache_notebook_bundle(
            CacheBundleIn(nb, str(source), data={"execution_seconds": round(state.seconds, 2)}),
            check_validity=False,
            overwrite=True,
        )
        self.stored.append(f"{name} (ID={record.pk}, {state.seconds:.0f} s)")

    def pytest_terminal_summary(self, terminalreporter):
        write = terminalreporter.write_line
        terminalreporter.section("executions stored for the book (tools/nbval_save.py)")
        write(f"cache: {self.cache_dir}")
        write(f"stored: {', '.join(self.stored) or 'none'}")
        for line in self.not_stored:
            write(f"NOT stored, the book build executes it: {line}")


def pytest_addoption(parser):
    parser.getgroup("nbval").addoption(
        "--nbval-save-cache",
        metavar="DIR",
        default=None,
        help="store each notebook that passed completely in this jupyter-cache folder (myst-nb's cache)",
    )


def pytest_configure(config):
    if config.getoption("nbval_save_cache"):
        path = Path(config.getoption("nbval_save_cache")).resolve()
        config.pluginmanager.register(NbvalSave(path), "vidlib_nbval_save")


def main(argv: list[str]) -> int:
    if argv[:1] == ["convert"] and len(argv) >= 2:
        return convert(Path(argv[1]), [Path(p) for p in argv[2:]])
    if argv[:1] == ["pytest"]:
        return int(pytest.main(argv[1:], plugins=[sys.modules[__name__]]))
    print(
        "usage: nbval_save.py convert OUTDIR [CHAPTER.md ...]\n"
        "       nbval_save.py pytest [PYTEST ARGS] --nbval-save-cache DIR",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
