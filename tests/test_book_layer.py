"""Tests of the book layer's switches and helpers (vidbook.modes, vidbook.listings): the VIDLIB_QUICK
switch, the project root and the display of library code on the page."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import vidbook as book
import vidlib
from vidbook import listings, modes


# --- is_quick ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["1", "true", "True", "YES", "on", " 1 ", "yes\n"])
def test_is_quick_true(monkeypatch, value):
    monkeypatch.setenv("VIDLIB_QUICK", value)
    assert book.is_quick() is True


@pytest.mark.parametrize("value", ["0", "", "false", "no", "off", "2", "quick"])
def test_is_quick_false(monkeypatch, value):
    monkeypatch.setenv("VIDLIB_QUICK", value)
    assert book.is_quick() is False


def test_is_quick_unset_is_default_mode(monkeypatch):
    monkeypatch.delenv("VIDLIB_QUICK", raising=False)
    assert book.is_quick() is False


# --- project_root ------------------------------------------------------------------------------
def test_project_root_environment_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("VIDLIB_ROOT", str(tmp_path))
    assert book.project_root() == tmp_path.resolve()


def test_project_root_found_from_a_chapter_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("VIDLIB_ROOT", raising=False)
    (tmp_path / "_config.yml").write_text("title: t\n")
    (tmp_path / "vidbook").mkdir()
    (tmp_path / "book" / "sub").mkdir(parents=True)
    assert book.project_root(tmp_path / "book" / "sub") == tmp_path.resolve()
    monkeypatch.chdir(tmp_path / "book")
    assert book.project_root() == tmp_path.resolve()


def test_project_root_needs_both_markers(monkeypatch, tmp_path):
    monkeypatch.delenv("VIDLIB_ROOT", raising=False)
    (tmp_path / "_config.yml").write_text("title: t\n")  # a book without the package is not the root
    (tmp_path / "book").mkdir()
    assert book.project_root(tmp_path / "book") == (tmp_path / "book").resolve()


def test_project_root_of_this_checkout(monkeypatch):
    monkeypatch.delenv("VIDLIB_ROOT", raising=False)
    root = book.project_root(Path(__file__).parent)
    assert (root / "_config.yml").is_file() and (root / "vidbook" / "modes.py").is_file()


# --- source_of / show_source -------------------------------------------------------------------
def test_source_of_is_the_file_text():
    src = book.source_of(modes.is_quick)
    assert src.startswith("def is_quick(")
    assert src in Path(modes.__file__).read_text(), "source_of must return the code as it is in the file"
    namespace: dict = {"os": modes.os, "_TRUE": modes._TRUE}
    exec(compile(src, "<is_quick>", "exec"), namespace)  # the real, runnable definition
    assert namespace["is_quick"].__code__.co_code == modes.is_quick.__code__.co_code


def test_source_of_dedents_methods():
    class Holder:
        def method(self):
            return 1

    src = book.source_of(Holder.method)
    assert src.startswith("def method(self):")
    compile(src, "<method>", "exec")


def test_show_source_renders_markdown_with_the_source():
    shown = book.show_source(vidlib.create_model)
    text = shown.data
    assert book.source_of(vidlib.create_model) in text
    assert "```python\n" in text and text.rstrip().endswith("```")
    assert "models/_registry.py" in text and "create_model" in text
    assert shown._repr_markdown_() == text
    assert "My title" in book.show_source(vidlib.create_model, title="My title").data


def _narrow(x):
    """A function that fits the book's code column."""
    return x + 1


def _too_wide(x):
    """A function with a line wider than the book's code column."""
    return x + len("this string literal makes the line wider than the 88 columns of the book")


class _Indented:
    def method(self):
        return "in the file, this line is 90 columns wide; displayed (dedented), it is 86"


def _wide_lines(obj) -> list[tuple[int, int]]:
    """(file line number, width) of the lines of ``obj`` wider than 88 columns once dedented."""
    lines, first = inspect.getsourcelines(obj)
    indent = len(lines[0]) - len(lines[0].lstrip())
    widths = [len(line.rstrip("\n")) - indent for line in lines]
    return [(first + i, w) for i, w in enumerate(widths) if w > listings.SHOW_SOURCE_WIDTH]


def test_show_source_refuses_lines_wider_than_the_book_column():
    wide = _wide_lines(_too_wide)
    assert len(wide) == 1 and 88 < wide[0][1] <= 110, wide  # one line too wide for the book, not for ruff
    line, width = wide[0]
    with pytest.raises(ValueError) as e:
        book.show_source(_too_wide)
    msg = str(e.value)
    assert "test_book_layer._too_wide" in msg, msg  # the object
    assert "tests/test_book_layer.py" in msg, msg  # its file
    assert f"line {line} ({width} columns)" in msg, msg  # the line and its length


def test_show_source_displays_a_narrow_function():
    assert _wide_lines(_narrow) == []
    shown = book.show_source(_narrow)
    assert book.source_of(_narrow) in shown.data and "tests/test_book_layer.py" in shown.data


def test_show_source_measures_the_displayed_dedented_lines():
    lines, _ = inspect.getsourcelines(_Indented.method)
    assert max(len(line.rstrip("\n")) for line in lines) == 90  # too wide in the file ...
    assert _wide_lines(_Indented.method) == []  # ... but not as displayed
    assert "def method(self):" in book.show_source(_Indented.method).data


def test_the_book_layer_exports_its_page_helpers():
    assert book.show_source is listings.show_source and book.source_of is listings.source_of
    assert book.is_quick is modes.is_quick and book.project_root is modes.project_root
    for name in ("show_source", "source_of", "is_quick", "is_full", "project_root"):
        assert inspect.getdoc(getattr(book, name)), f"{name} needs a docstring"


def test_show_source_unwraps_decorators():
    """A decorated function (torch.no_grad, functools.wraps) is shown as written, from its own file."""
    import torch

    @torch.no_grad()
    def _decorated(x):
        return x

    shown = book.show_source(_decorated).data
    assert "def _decorated(x):" in shown and "tests/test_book_layer.py" in shown
