"""Sphinx extension of the book (loaded from ``_config.yml``, ``sphinx.local_extensions``).

The book runs in two modes, selected by the ``VIDLIB_QUICK`` environment variable (``vidbook.is_quick``):
the default mode and the quick mode that CI uses. Their outputs differ, so this extension

- keeps one myst-nb execution cache per mode (``_build/.jupyter_cache`` and
  ``_build/.jupyter_cache_quick``): switching mode never shows cached outputs of the other mode,
  and switching back does not execute the chapters again;
- puts a banner on every page of a quick-mode build, so a reader knows the numbers come from the
  small setting.

Changing ``nb_execution_cache_path`` changes the Sphinx configuration, so Sphinx re-reads every page
when the mode changes.

Pages that only read results files (the report and performance pages) set ``mystnb: execution_mode:
force`` in their front matter, so myst-nb executes them on every read; this extension also marks them
outdated on every build (Sphinx would otherwise not re-read an unchanged page), so they can never show
numbers older than ``results/``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}
QUICK_BANNER = (
    "Built in quick mode (VIDLIB_QUICK=1): the chapters ran their small CPU setting, "
    "so their numbers differ from those of the default build (make book)."
)


def _is_quick() -> bool:
    # Same rule as vidbook.is_quick; read here so the build does not import torch.
    return os.environ.get("VIDLIB_QUICK", "0").strip().lower() in _TRUE


def _configure_mode(app, config) -> None:
    quick = _is_quick()
    if not config.nb_execution_cache_path:
        name = ".jupyter_cache_quick" if quick else ".jupyter_cache"
        config.nb_execution_cache_path = str(Path(app.outdir).parent / name)
    if quick:
        options = dict(config.html_theme_options or {})
        options["announcement"] = QUICK_BANNER
        config.html_theme_options = options


_FORCE = re.compile(r"^mystnb:\s*\n\s+execution_mode:\s*force\s*$", re.M)


def _always_reread(app, env, added, changed, removed) -> list[str]:
    """Docnames whose front matter forces execution: re-read (hence re-executed) on every build."""
    docs = []
    for docname in env.found_docs:
        path = Path(env.doc2path(docname))
        if path.suffix == ".md" and path.is_file():
            head = path.read_text(encoding="utf-8").split("\n---", 1)[0]
            if _FORCE.search(head) and docname not in added | changed:
                docs.append(docname)
    return docs


def setup(app):
    app.connect("config-inited", _configure_mode)
    app.connect("env-get-outdated", _always_reread)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
