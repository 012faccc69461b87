"""Golden reference data (JSON) and the scripts that made it; :func:`load` imports one of those scripts.

The scripts are plain files, not an installed package (the generators run only in a scratch venv with
the reference code), so tests import them by path.
"""
import importlib.util
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent


def load(name: str):
    """Import ``tests/golden/<name>.py`` (e.g. ``fill_rule``) and return the module."""
    spec = importlib.util.spec_from_file_location(f"golden_{name}", GOLDEN / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
