"""Every command of README.md's "Use the library" section runs as written (on the quick data it makes)."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def section() -> str:
    return README.read_text().split("## Use the library", 1)[1].split("\n## ", 1)[0]


def section_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", section(), flags=re.S)
    return [line for block in blocks for line in block.strip().splitlines() if line.startswith("python -m ")]


def test_the_readme_shows_every_subcommand():
    commands = section_commands()
    assert {c.split()[2] for c in commands} >= {"vidlib.data.synthetic", "vidlib"}
    assert {c.split()[3] for c in commands if c.split()[2] == "vidlib"} == {
        "recipes",
        "train",
        "test",
        "flops",
        "benchmark",
    }


def test_every_readme_command_runs(tmp_path):
    """In order, in an empty folder: generate the quick data, list recipes, train, test, count, time."""
    env = {**os.environ, "VIDLIB_DEVICE": "cpu", "PYTHONPATH": str(README.parent)}
    for command in section_commands():
        args = shlex.split(command)
        args[0] = sys.executable
        proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    assert (tmp_path / "work_dirs/readme_tsm/test.json").is_file()
    assert (tmp_path / "work_dirs/readme_tsm/summary.json").is_file()
    (snippet,) = re.findall(r"```python\n(.*?)```", section(), flags=re.S)  # then the Python example
    proc = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_results_block_is_generated():
    """README.md's results block is what ``tools/readme_results.py`` makes of the committed files."""
    tool = README.parent / "tools" / "readme_results.py"
    env = {**os.environ, "VIDLIB_DEVICE": "cpu", "VIDLIB_ROOT": str(README.parent)}
    proc = subprocess.run(
        [sys.executable, str(tool), "--check"], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
