"""The rendered book, checked as a reader sees it: static HTML checks, then headless Chromium.

Needs a built book (``make book`` or ``make book QUICK=1``; ``make test`` builds the quick one first).
``VIDLIB_BOOK_HTML`` points at another build folder, ``VIDLIB_BOOK_TOC`` at another toc. The browser tests
need Chromium (Debian package ``chromium``). Outside CI a missing book or a missing Chromium skips these
tests; under CI (``CI`` set, as ``.ci/run`` does) or with ``VIDLIB_REQUIRE_BROWSER=1`` both are failures.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("VIDLIB_BOOK_HTML", ROOT / "_build" / "html"))
_spec = importlib.util.spec_from_file_location(
    "vidlib_tools_browser_check", ROOT / "tools" / "browser_check.py"
)
browser_check = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = browser_check  # dataclasses look their module up there
_spec.loader.exec_module(browser_check)


def _required() -> bool:
    flags = (os.environ.get("CI", ""), os.environ.get("VIDLIB_REQUIRE_BROWSER", ""))
    return any(v.strip().lower() not in ("", "0", "false", "no", "off") for v in flags)


def _unavailable(reason: str):
    if _required():
        pytest.fail(f"{reason} (required under CI / VIDLIB_REQUIRE_BROWSER)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def pages() -> list[str]:
    if not (HTML / "index.html").is_file():
        _unavailable(f"no built book at {HTML}: run `make book QUICK=1` first")
    return browser_check.toc_pages(ROOT)


@pytest.fixture(scope="module")
def reports(pages) -> dict:
    chromium = browser_check.find_chromium()
    if chromium is None:
        _unavailable("chromium is not installed (apt-get install chromium)")
    return browser_check.check_book(HTML, chromium, pages)


# --- static checks of the HTML files -----------------------------------------------------------
def test_every_toc_page_is_built(pages):
    missing = [p for p in pages if not (HTML / f"{p}.html").is_file()]
    assert not missing, f"pages of _toc.yml missing from {HTML}: {missing}"


def test_mathjax_is_served_locally(pages):
    for page in pages:
        if not (HTML / f"{page}.html").is_file():
            continue  # reported by test_every_toc_page_is_built
        html = (HTML / f"{page}.html").read_text()
        srcs = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
        mathjax = [s for s in srcs if "mathjax" in s.lower()]
        assert mathjax, f"{page}.html loads no MathJax script"
        for src in mathjax:
            assert not re.match(r"(https?:)?//", src), f"{page}.html loads MathJax from the network: {src}"
            assert (HTML / page).parent.joinpath(src.split("?")[0]).resolve().is_file(), (
                f"{page}.html: {src} is not in the build"
            )
        external = [s for s in srcs if re.match(r"(https?:)?//", s)]
        assert not external, f"{page}.html loads scripts from the network: {external}"


# --- the pages in a real browser ---------------------------------------------------------------
def test_pages_show_no_raw_tex_failed_cell_or_missing_output(reports):
    broken = {page: browser_check.page_problems(r) for page, r in reports.items()}
    broken = {page: problems for page, problems in broken.items() if problems}
    assert not broken, f"pages a reader would see broken: {broken}"


def test_intro_page_has_title_equations_figure_and_output(reports):
    intro = reports[browser_check.toc_pages(ROOT)[0]]
    assert intro.title == "Video Recognition, Reproduced"
    assert intro.typeset_math >= 1 and intro.typeset_math == intro.math_sources, intro
    assert intro.output_images >= 1, "the intro's sampling figure (an executed cell's <img>) is missing"
    assert intro.outputs >= intro.code_cells // 2 and intro.outputs > 0, intro


# --- the checker itself, on hand-made DOMs (no browser needed) ---------------------------------
def test_scanner_flags_raw_tex_and_tracebacks():
    dom = (
        '<html><body><h1>T<a class="headerlink">#</a></h1><div class="math">\\[x^2\\]</div>'
        '<div class="cell_input">c</div><div class="cell_output"><pre>Traceback (most recent call last)'
        '</pre><div class="output traceback">err</div></div></body></html>'
    )
    report = browser_check.scan(dom)
    assert report.title == "T" and report.math_sources == 1 and report.typeset_math == 0
    problems = " ".join(browser_check.page_problems(report))
    assert "raw TeX" in problems and "typeset" in problems and "traceback" in problems


def test_scanner_accepts_an_intended_error():
    dom = (
        '<html><body><h1>T</h1><div class="cell tag_raises-exception"><div class="cell_input">c</div>'
        '<div class="cell_output"><div class="output traceback"><pre>ValueError</pre></div></div></div>'
        "</body></html>"
    )
    assert browser_check.page_problems(browser_check.scan(dom)) == []


def test_scanner_accepts_a_typeset_page():
    dom = (
        '<html><head><script src="../_static/mathjax/tex-chtml.js"></script></head><body><h1>T</h1>'
        '<p>code <code>$$ok$$</code></p><span class="math"><mjx-container>'
        "<mjx-assistive-mml>x</mjx-assistive-mml></mjx-container></span>"
        '<div class="cell_input">c</div><div class="cell_output"><img src="a.png"><pre>1</pre></div>'
        "</body></html>"
    )
    report = browser_check.scan(dom)
    assert browser_check.page_problems(report) == []
    assert report.output_images == 1 and report.typeset_math == 1
