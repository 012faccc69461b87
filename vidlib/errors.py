"""The errors of bad input: what the user gave (an option, a file, a name) cannot be used.

Every one derives from :class:`InputError`, raised where the input is checked, with a message that names
the file, key or value. ``python -m vidlib`` prints such an error as one line and exits with status 2;
any other exception is a bug and keeps its traceback. Each subclass also derives from the built-in
exception that callers caught before (``KeyError``, ``ValueError`` ...), so existing ``except`` clauses
still work.

This module is the lowest layer of vidlib: it imports nothing from it.
"""

from __future__ import annotations

__all__ = [
    "InputError",
    "UnknownNameError",
    "UnknownModelError",
    "UnknownOptionError",
    "BadConfigError",
    "BadDataError",
    "BadFileError",
    "MissingInputError",
    "ExistingPathError",
]


class InputError(Exception):
    """Input that cannot be used; the message says which and why (the base of every bad-input error)."""

    def __str__(self) -> str:  # KeyError would quote its message: show it as written
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class UnknownNameError(InputError, KeyError):
    """A name that is not known (a recipe, a recipe key); the message lists the known ones."""


class UnknownModelError(UnknownNameError):
    """A model name that is not registered (``vidlib.list_models()``)."""


class UnknownOptionError(InputError, TypeError):
    """A keyword argument or option name that the receiver does not take; the message lists those it does."""


class BadConfigError(InputError, ValueError):
    """A value that does not fit: a recipe or option value, a class count, an input shape."""


class BadDataError(InputError, ValueError):
    """A data set whose files do not fit together: labels out of range, an empty list."""


class BadFileError(InputError, RuntimeError):
    """A file that exists but is not what it should be (e.g. not a PyTorch checkpoint)."""


class MissingInputError(InputError, FileNotFoundError):
    """A file or folder the input names (or needs) does not exist."""


class ExistingPathError(InputError, FileExistsError):
    """A path that should be a folder (or free) is taken by something else, e.g. a file as ``--work-dir``."""
