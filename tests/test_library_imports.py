"""Using the library loads no plotting or notebook package, and never the book layer.

A user who installs ``vidlib`` to train on their own videos imports it, builds a model, trains through the
command line and tests a checkpoint; none of that may import matplotlib, IPython, myst_nb, Jupyter or the
book's page logic (``vidbook``). Each step runs in a fresh interpreter, which then lists the forbidden
top-level packages it has loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = (
    "matplotlib",
    "IPython",
    "myst_nb",
    "jupyter",
    "jupyter_client",
    "ipykernel",
    "nbformat",
    "vidbook",
)

_PRELUDE = f"""
import json, sys
FORBIDDEN = {FORBIDDEN!r}
def loaded():
    return sorted({{m.split(".")[0] for m in sys.modules}} & set(FORBIDDEN))
"""


def _loaded_after(body: str, cwd: Path) -> list[str]:
    code = _PRELUDE + textwrap.dedent(body) + "\nprint('LOADED=' + json.dumps(loaded()))\n"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    line = [x for x in out.stdout.splitlines() if x.startswith("LOADED=")][-1]
    return json.loads(line.removeprefix("LOADED="))


def test_import_and_create_model_load_no_book_package(tmp_path):
    body = """
    import vidlib, vidlib.engine, vidlib.flops, vidlib.golden, vidlib.weights
    model = vidlib.create_model("tsm_tiny", num_classes=3)
    vidlib.list_models()
    """
    assert _loaded_after(body, tmp_path) == []


def test_a_cli_training_run_and_vidlib_test_load_no_book_package(tiny_data, tmp_path):
    work, data = tmp_path / "w", tiny_data
    body = f"""
    from vidlib.engine.cli import main
    common = ["--num-workers", "0", "--backend", "pyav"]
    small = ["--set", "data.crop_size=32", "--set", "data.resize_short=32", "--set", "data.test_crop_size=32"]
    rc = main(["train", "--model", "tsn_tiny", "--data", {str(data)!r}, "--epochs", "1", "--batch-size", "4",
               "--model-kw", "num_frames=4", "--work-dir", {str(work)!r}, "--amp", "off", *small, *common])
    assert rc == 0, rc
    rc = main(["test", "--checkpoint", {str(work / "last.pth")!r}, "--data", {str(data)!r}, "--mode", "test",
               *common])
    assert rc == 0, rc
    """
    assert _loaded_after(body, tmp_path) == []


def test_the_check_sees_a_forbidden_import(tmp_path):
    """The probe itself works: importing the book layer is reported."""
    pytest.importorskip("matplotlib")
    assert "vidbook" in _loaded_after("import vidbook.tables", tmp_path)
