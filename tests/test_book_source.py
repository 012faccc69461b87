"""The chapter pattern (CONTRIBUTING.md, "The chapter pattern"), checked on the chapters' sources.

- every visible code cell fits the rendered page: lines of at most 88 columns (hidden cells: 110);
- every chapter starts with a hidden setup cell (``remove-cell``);
- a paper chapter takes its mode from ``modes.chapter_mode()``, writes its results with
  ``results.save_results`` and ends with a bibliography.
"""

import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
CHAPTERS = sorted(BOOK.glob("*.md"))
NOT_PAPERS = {"intro", "data", "report", "performance"}
HIDDEN = ("remove-cell", "remove-input", "hide-input")


def code_cells(path: Path) -> list[tuple[bool, list[str]]]:
    """``(hidden, lines)`` of every code cell of a chapter, in order."""
    cells = re.findall(r"```\{code-cell\} ipython3\n(.*?)```", path.read_text(), flags=re.S)
    out = []
    for cell in cells:
        lines = cell.splitlines()
        hidden = bool(lines) and lines[0].startswith(":tags:") and any(t in lines[0] for t in HIDDEN)
        out.append((hidden, lines))
    return out


def test_there_are_chapters():
    assert len(CHAPTERS) >= 3 and any(p.stem not in NOT_PAPERS for p in CHAPTERS)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_code_fits_the_page(path):
    too_wide = [
        (len(line), line)
        for hidden, lines in code_cells(path)
        for line in lines
        if len(line) > (110 if hidden else 88)
    ]
    assert not too_wide, f"{path.name}: lines wider than the page shows: {too_wide[:5]}"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_the_setup_cell_is_hidden(path):
    cells = code_cells(path)
    assert cells and cells[0][1][0] == ":tags: [remove-cell]", f"{path.name}: first cell not hidden"


PAPERS = [p for p in CHAPTERS if p.stem not in NOT_PAPERS]


@pytest.mark.parametrize("path", PAPERS, ids=[p.stem for p in PAPERS])
def test_a_paper_chapter_follows_the_pattern(path):
    text = path.read_text()
    assert "modes.chapter_mode()" in text and "results.save_results(" in text
    # Each chapter's bibliography lists its own citations under its own key prefix (a key cited by two
    # pages would otherwise be a duplicate citation): {cite:p}`tam-liu2021tam` with :keyprefix: tam-
    ending = f"```{{bibliography}}\n:filter: docname in docnames\n:keyprefix: {path.stem}-\n```"
    assert text.rstrip().endswith(ending), f"{path.name} must end with its bibliography"
    assert f"{{cite:p}}`{path.stem}-" in text, f"{path.name} cites no paper"
