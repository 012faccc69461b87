"""The book's figures (matplotlib): :mod:`.diagrams` draws the papers' modules and what a trained module
computes; :mod:`.training` plots training runs (curves, confusion matrices). Every function returns the
``Figure``."""

from .diagrams import *  # noqa: F403
from .diagrams import __all__ as _diagrams
from .training import *  # noqa: F403
from .training import __all__ as _training

__all__ = [*_diagrams, *_training]
