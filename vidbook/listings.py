"""Library code on the page: :func:`show_source` displays a vidlib function or class in a chapter, so that
chapters never copy the code they explain (and it refuses lines wider than the book's code column)."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import vidlib

__all__ = ["source_of", "show_source", "SHOW_SOURCE_WIDTH"]


def source_of(obj) -> str:
    """The source code of a vidlib function, class or method, dedented."""
    return textwrap.dedent(inspect.getsource(obj))


#: The widest source line :func:`show_source` displays: the book's code column shows about 88 characters
#: (``vidlib/models/ruff.toml`` keeps the model files, which the chapters display, at that width).
SHOW_SOURCE_WIDTH = 88


def show_source(obj, title: str | None = None):
    """Display the source of ``obj`` in a notebook as a highlighted code block.

    Returns an ``IPython.display.Markdown`` object (so the last line of a cell renders it); outside
    IPython it returns the plain source string.

    Raises ``ValueError`` naming the object, its file, and the number and length of every displayed line
    wider than :data:`SHOW_SOURCE_WIDTH` (88) columns, so that a chapter displaying a too-wide function
    fails its build instead of showing a listing with a horizontal scroll bar.
    """
    obj = inspect.unwrap(obj)  # a decorated function (torch.no_grad, functools.wraps): the code as written
    src = source_of(obj)
    where = f"{inspect.getmodule(obj).__name__}.{getattr(obj, '__qualname__', '')}"
    package_dir = Path(vidlib.__file__).resolve().parent  # .../vidlib
    # e.g. vidlib/models/tam.py
    rel = Path(inspect.getsourcefile(obj)).resolve().relative_to(package_dir.parent).as_posix()
    first = max(inspect.getsourcelines(obj)[1], 1)  # the file's line number of the first displayed line
    wide = [(first + i, len(line)) for i, line in enumerate(src.split("\n")) if len(line) > SHOW_SOURCE_WIDTH]
    if wide:
        lines = ", ".join(f"line {n} ({width} columns)" for n, width in wide)
        raise ValueError(
            f"show_source({where}): {rel} has lines wider than the {SHOW_SOURCE_WIDTH} columns "
            f"the book displays: {lines}; wrap them"
        )
    header = f"**{title or where}** (from `{rel}`)\n\n"
    try:
        from IPython.display import Markdown
    except ImportError:  # pragma: no cover - IPython is installed with jupyter
        return src
    return Markdown(header + "```python\n" + src + "```")
