"""vidbook: the page logic of the book *Video Recognition, Reproduced*, built on the library ``vidlib``.

The library (``vidlib``) is what a user installs to train and test the models on their own videos; this
package is what the book's pages need on top of it, and nothing in ``vidlib`` imports it
(``tests/test_layering.py`` enforces that). One module per concern:

- :mod:`.results`: ``results/published.yaml`` and the results files the chapters write;
- :mod:`.modes`: quick, default and GPU mode, the book's root folder, the environment record;
- :mod:`.tables`: generated tables (recipes, seeds, costs) and :func:`~.tables.glue_all`;
- :mod:`.stats`: summaries over seeds and CPU kernel settings;
- :mod:`.figures`: diagrams of the papers' modules and plots of training runs;
- :mod:`.listings`: :func:`show_source`, library code on the page;
- :mod:`.probes`: what a trained module computes (CSN filters, TIN offsets, STAM attention);
- :mod:`.experiments`: experiment helpers only the chapters use (playback speeds, frame pre-training);
- :mod:`.reproduction`: the closing page (every published entry against the book's measurements);
- :mod:`.performance`: the performance page's data (``results/bench_*.json``).
"""

from .listings import show_source, source_of
from .modes import is_full, is_quick, project_root

__all__ = ["show_source", "source_of", "is_quick", "is_full", "project_root"]
