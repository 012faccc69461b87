"""What a run tells its user: the log (stdout and ``<work_dir>/log.txt``), progress, and JSON files.

- :class:`RunLog` writes time-stamped lines on rank 0 to ``log.txt`` and, when verbose, to stdout.
- :class:`Progress` shows a tqdm bar on a terminal; without one (nohup, slurm, CI) it logs a line every
  ``interval`` iterations with the loss, the learning rate, the time per iteration and the ETA of the epoch,
  as mmaction2 and timm do. The lines go to ``log.txt`` in both cases.
- :func:`write_json` replaces a file atomically, so a reader never sees half of it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

__all__ = ["RunLog", "Progress", "write_text", "write_json", "jsonable", "error_message"]


class RunLog:
    """Rank-0 logging to ``<work_dir>/log.txt`` (always) and stdout (when ``verbose``)."""

    def __init__(self, work_dir: Path | None, is_main: bool = True, verbose: bool = True):
        self.file = Path(work_dir) / "log.txt" if is_main and work_dir is not None else None
        self.verbose = verbose and is_main
        self.is_main = is_main

    def __call__(self, msg: str, *, echo: bool = True) -> None:
        """Log ``msg``; ``echo=False`` writes it to the file only."""
        if not self.is_main:
            return
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        if self.file is not None and self.file.parent.is_dir():
            with open(self.file, "a") as f:
                f.write(line + "\n")
        if self.verbose and echo:
            print(line, flush=True)


def _eta(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


class Progress:
    """Progress of one loop: a tqdm bar when ``bar`` is true, otherwise a log line every ``interval`` steps.

    Args:
        total: steps in this loop; desc: e.g. ``"epoch 2/6"``; log: a :class:`RunLog` (or None).
        bar: show a tqdm bar (default: when stderr is a terminal); interval: steps between log lines
            (0: none). Log lines always reach ``log.txt``; they are printed only when there is no bar.
    """

    def __init__(
        self,
        total: int,
        desc: str,
        log: RunLog | None = None,
        *,
        bar: bool | None = None,
        interval: int = 20,
        enabled: bool = True,
    ):
        self.total, self.desc, self.log, self.interval = total, desc, log, interval
        self.n, self.t0 = 0, time.perf_counter()
        show = sys.stderr.isatty() if bar is None else bar
        self.bar = None
        if show and enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
        self.enabled = enabled

    def update(self, line: str = "", **postfix) -> None:
        """One step done; ``line`` (e.g. ``"loss 1.23 | lr 0.002"``) goes into the periodic log line."""
        self.n += 1
        if self.bar is not None:
            self.bar.update(1)
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
        if (
            self.enabled
            and self.log is not None
            and self.interval
            and (self.n % self.interval == 0 or self.n == self.total)
        ):
            per_it = (time.perf_counter() - self.t0) / self.n
            parts = [
                f"{self.desc} iter {self.n}/{self.total}",
                line,
                f"{per_it:.3f} s/it",
                f"ETA {_eta(per_it * (self.total - self.n))}",
            ]
            self.log(" | ".join(p for p in parts if p), echo=self.bar is None)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` atomically (readers never see a half-written file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def jsonable(o):
    """``json.dumps(default=...)`` for NumPy values, tensors and paths."""
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    if isinstance(o, (np.ndarray, torch.Tensor)):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return repr(o)


def write_json(path: Path, obj) -> None:
    """``obj`` as indented JSON, written atomically."""
    write_text(path, json.dumps(obj, indent=1, default=jsonable))


def error_message(e: BaseException) -> str:
    """One line for the user: the message of ``e`` without tracebacks.

    An error raised in a DataLoader worker reaches the main process as "Caught X in DataLoader worker
    process N. Original Traceback ... X: message": only the message is kept. A ``KeyError`` shows its key
    message without quotes.
    """
    msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    if isinstance(msg, str) and msg.startswith("Caught ") and "Original Traceback" in msg:
        last = [line for line in msg.strip().splitlines() if line.strip()][-1]
        head, sep, rest = last.partition(": ")
        msg = rest if sep and "Error" in head.rsplit(".", 1)[-1] else last
    return str(msg).strip() or type(e).__name__
