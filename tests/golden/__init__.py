"""Golden reference data (JSON) and the scripts that made it (``make_*.py``).

The fill rule and the check live in the library (:mod:`vidlib.golden`). The generator scripts run only in a
scratch environment next to the reference code; the tests import them as ``golden.make_mmaction2_golden``
(``tests/`` is on ``sys.path`` under pytest) for their list of cases and the reference ``tin_shift``
self-check.
"""
