"""What the book reproduced: the logic of its closing page (``book/report.md``) and of the README's results
block (``tools/readme_results.py``), from ``results/published.yaml`` and the chapters' committed results
files (``results/<chapter>.json``, ``results/<chapter>_kernels.json``). Nothing in the library imports it.

- :mod:`.entries`: every published entry against what the book measured: params and FLOPs in the
  source's counting convention, the golden logits check, and what became of the published accuracy
  (with the command that would measure it);
- :mod:`.claims`: each chapter's headline comparisons on Something-Synthetic, with the chapter's margins,
  re-checked on its results file and on every setting of its kernel-spread file;
- :mod:`.discrepancies`: the ``discrepancies:`` section of ``published.yaml``, every check evaluated;
- :mod:`.summary`: all of it at once (:func:`collect`), one row per paper for the README, page links.

Checks return what they compared; the ``assert_*`` functions raise ``AssertionError`` naming what failed.
"""

from .claims import *  # noqa: F403
from .claims import __all__ as _claims
from .discrepancies import *  # noqa: F403
from .discrepancies import __all__ as _discrepancies
from .entries import *  # noqa: F403
from .entries import __all__ as _entries
from .summary import *  # noqa: F403
from .summary import __all__ as _summary

__all__ = [*_entries, *_claims, *_discrepancies, *_summary]
