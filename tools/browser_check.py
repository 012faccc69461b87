"""Check the rendered book the way a reader sees it: in a real, headless Chromium.

The built HTML (``_build/html``) is served on 127.0.0.1 and every page listed in ``_toc.yml`` is loaded
in headless Chromium, which runs MathJax; the DOM after the scripts ran (``--dump-dom``) is then
inspected. :func:`page_problems` lists what a reader would see broken: raw TeX, math left untypeset,
a traceback, code cells without output, no title. ``tests/test_book_html.py`` asserts on these
reports; run this file directly for a quick look::

    .venv/bin/python tools/browser_check.py [_build/html]
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--mute-audio",
)
# TeX that MathJax should have replaced; code, preformatted text and scripts are ignored.
RAW_TEX = re.compile(r"\\\[|\\\(|\$\$|\\begin\{|\\frac\{|\\mathbb\{")
SKIP_TEXT_TAGS = {"script", "style", "pre", "code", "textarea", "kbd", "samp", "mjx-assistive-mml"}
VOID_TAGS = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


def find_chromium() -> str | None:
    """Path of a Chromium executable (``$CHROMIUM`` first), or None."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def toc_pages(root: Path = ROOT) -> list[str]:
    """Document names of the toc in reading order, e.g. ``["book/intro", "book/data"]``.

    The toc is ``$VIDLIB_BOOK_TOC`` when set (as for ``tools/build_book.sh``), else ``_toc.yml``.
    """
    toc = yaml.safe_load(Path(os.environ.get("VIDLIB_BOOK_TOC") or root / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))

    walk(toc.get("chapters"))
    for part in toc.get("parts") or []:
        walk(part.get("chapters"))
    return [str(Path(p).with_suffix("")) for p in pages]


@contextlib.contextmanager
def serve(directory: Path):
    """Serve ``directory`` over HTTP on a free local port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output readable
        pass


def dump_dom(url: str, chromium: str, budget_ms: int = 20000, timeout_s: int = 180) -> str:
    """The page's DOM after its scripts ran, from ``chromium --dump-dom`` with a fresh profile."""
    with tempfile.TemporaryDirectory(prefix="vidlib-chromium-") as profile:
        cmd = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}",
            "--dump-dom",
            url,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0 or "<html" not in proc.stdout:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


@dataclass
class PageReport:
    """What a page shows, from its DOM (see :class:`_DomScanner`)."""

    built: bool = True  # False: the page's HTML file is not in the build
    title: str = ""  # text of the first <h1>
    math_sources: int = 0  # elements of class "math" (Sphinx math, before MathJax)
    typeset_math: int = 0  # <mjx-container> elements (MathJax output)
    code_cells: int = 0  # executed-notebook input cells
    outputs: int = 0  # cell output blocks
    output_images: int = 0  # <img> inside a cell output (figures made by code)
    tracebacks: int = 0  # error outputs
    raw_tex: list = field(default_factory=list)  # text snippets that still hold TeX
    external_scripts: list = field(default_factory=list)


class _DomScanner(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.report = PageReport()
        self.stack: list[tuple[str, set]] = []
        self._h1: list[str] | None = None

    def _inside(self, cls: str) -> bool:
        return any(cls in classes for _, classes in self.stack)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = set((a.get("class") or "").split())
        r = self.report
        if tag == "h1" and not r.title and self._h1 is None:
            self._h1 = []
        if "math" in classes and tag in ("div", "span"):
            r.math_sources += 1
        if tag == "mjx-container":
            r.typeset_math += 1
        if "cell_input" in classes:
            r.code_cells += 1
        if "cell_output" in classes:
            r.outputs += 1
        if "traceback" in classes and not self._inside("tag_raises-exception"):
            r.tracebacks += 1  # cells tagged raises-exception show an error on purpose
        if tag == "img" and self._inside("cell_output"):
            r.output_images += 1
        if tag == "script" and re.match(r"(https?:)?//", a.get("src") or ""):
            r.external_scripts.append(a["src"])
        if tag not in VOID_TAGS:
            self.stack.append((tag, classes))

    def handle_endtag(self, tag):
        if tag == "h1" and self._h1 is not None:
            self.report.title = " ".join("".join(self._h1).split()).rstrip("#").strip()
            self._h1 = None
        for i in range(len(self.stack) - 1, -1, -1):  # tolerate unclosed tags
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if self._h1 is not None:
            self._h1.append(data)
        if any(tag in SKIP_TEXT_TAGS for tag, _ in self.stack):
            return
        if "Traceback (most recent call last)" in data and not self._inside("tag_raises-exception"):
            self.report.tracebacks += 1
        for m in RAW_TEX.finditer(data):
            self.report.raw_tex.append(data[max(0, m.start() - 40) : m.end() + 40].strip())


def scan(dom: str) -> PageReport:
    """Parse a DOM dump into a :class:`PageReport`."""
    scanner = _DomScanner()
    scanner.feed(dom)
    scanner.close()
    return scanner.report


def page_problems(report: PageReport) -> list[str]:
    """Everything a reader would see broken on the page (empty when the page is fine)."""
    if not report.built:
        return ["the page is not in the build"]
    problems = []
    if not report.title:
        problems.append("no <h1> title")
    if report.typeset_math < report.math_sources:
        problems.append(
            f"{report.math_sources} math elements but only {report.typeset_math} typeset by MathJax"
        )
    if report.raw_tex:
        problems.append(f"raw TeX on the page: {report.raw_tex[:3]}")
    if report.tracebacks:
        problems.append(f"{report.tracebacks} failed cell output(s) (traceback)")
    if report.code_cells and not report.outputs:
        problems.append(f"{report.code_cells} code cells but no executed output")
    if report.external_scripts:
        problems.append(f"scripts loaded from the network: {report.external_scripts}")
    return problems


def check_book(html_dir: Path, chromium: str, pages: list[str] | None = None) -> dict[str, PageReport]:
    """Load every page (default: the toc) in Chromium; returns ``{docname: PageReport}``."""
    pages = pages or toc_pages()
    reports = {}
    with serve(html_dir) as base:
        for page in pages:
            if (html_dir / f"{page}.html").is_file():
                reports[page] = scan(dump_dom(f"{base}/{page}.html", chromium))
            else:
                reports[page] = PageReport(built=False)
    return reports


def main(argv: list[str]) -> int:
    html_dir = Path(argv[0] if argv else ROOT / "_build" / "html")
    chromium = find_chromium()
    if chromium is None:
        print("no chromium found (apt-get install chromium)", file=sys.stderr)
        return 2
    failed = False
    for page, report in check_book(html_dir, chromium).items():
        problems = page_problems(report)
        failed |= bool(problems)
        print(
            f"{page}: {'OK' if not problems else 'PROBLEMS'}  title={report.title!r} "
            f"math={report.typeset_math}/{report.math_sources} cells={report.code_cells} "
            f"outputs={report.outputs} figures={report.output_images}"
        )
        for p in problems:
            print(f"    - {p}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
