"""Several independent training runs at once: one process per CPU core (several small runs share a GPU).

A chapter's experiment is a grid of small runs (models x seeds). One tiny model does not keep two CPU
cores busy (its convolutions are too small to split well, and the Python around them is serial), but
two runs side by side do. :func:`train_many` runs a list of
:class:`~vidlib.engine.config.TrainConfig` in ``processes`` worker processes (``spawn``, each with
``cores // processes`` torch threads) and returns their summaries in order::

    base = TrainConfig(data="data/synthetic", recipe="synthetic_tiny", frame_cache=True)
    runs = [replace(base, model=m, seed=s, work_dir=f"work_dirs/x/{m}_s{s}")
            for m in models for s in (0, 1, 2)]
    summaries = train_many(runs)

Each worker keeps its own :func:`~vidlib.data.shared_frame_cache`, so with ``frame_cache=True`` a
worker decodes the data set once for all of its runs. Every run seeds itself (``seed``), so a run gives
the same result in a worker as in this process with the same number of threads (a test checks it).
On a GPU, up to 8 small runs share the device (their pace is set by the data pipeline of each process);
with ``processes=1`` the runs go one after another in this process.
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import torch

from ..data import shared_frame_cache
from ..models import create_model
from ..utils import get_device
from ..weights import load_state_dict_strict
from .config import TrainConfig
from .training import RunSummary, Trainer

__all__ = ["train_many", "default_processes"]


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _available_gb() -> float | None:
    """Memory available to new processes: Linux's ``MemAvailable`` (free memory plus the page cache the
    kernel can drop). Free pages alone shrink as files are read, which made the worker count, and with it
    the threads per worker, depend on what was read before."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20  # kB -> GiB
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (ValueError, OSError, AttributeError):  # not on every platform
        return None


#: At most this many runs share one GPU by default (each holds a CUDA context of about 0.5 GB).
MAX_GPU_SHARING = 8


def default_processes(
    num_runs: int, device: torch.device | str | None = None, gb_per_process: float = 0.0
) -> int:
    """One process per available CPU core (at most ``num_runs``), on a GPU too (at most
    :data:`MAX_GPU_SHARING`). On a CPU, when the runs do not divide evenly over the cores, up to twice
    as many processes (one thread each) share the cores so that none idles in the last round.

    Small models on a GPU are paced by their one-process data pipeline, not by the GPU, so several runs
    share it well; pass ``processes=1`` to :func:`train_many` for runs that each fill the GPU.
    ``gb_per_process``: memory one worker may need (e.g. its frame cache); the count is capped so that the
    workers fit in the memory available now.
    """
    dev = torch.device(device) if device is not None else get_device()
    cores = n = min(_cores(), num_runs)
    if dev.type != "cpu":
        n = min(n, MAX_GPU_SHARING)
    elif num_runs > cores:
        # Equal runs on `cores` cores: p processes take ceil(runs / p) rounds of p / cores run-times
        # each. Take the p in [cores, 2 cores] that finishes first, e.g. 9 runs on 2 cores: 3 processes
        # (3 rounds of 1.5 = 4.5 run-times) rather than 2 (5 rounds of 1, the last with a core idle).
        n = min(
            range(cores, min(2 * cores, num_runs) + 1), key=lambda p: (math.ceil(num_runs / p) * p / cores, p)
        )
    free = _available_gb()
    if gb_per_process > 0 and free is not None:
        n = min(n, int(free // (gb_per_process + 1.0)))  # + about 1 GB for the process itself
    return max(1, n)


def _die_with_parent(parent: int) -> None:
    """Linux: ask for SIGTERM when the process that started this worker dies, so that a killed chapter
    kernel or script does not leave its runs training (and holding the cores) as orphans."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - no prctl: orphans finish their runs
        return
    if os.getppid() != parent:  # the parent died before the request: nobody would send the signal
        os.kill(os.getpid(), signal.SIGTERM)


def _worker_init(threads: int, parent: int | None = None) -> None:
    if parent is not None:
        _die_with_parent(parent)
    torch.set_num_threads(threads)


def _train_in_worker(cfg: TrainConfig) -> tuple[dict, dict]:
    """Run one config; return the summary and the evaluated model's weights (modules stay here)."""
    summary = Trainer(cfg).fit()
    model = summary.model
    model = getattr(model, "module", model)  # an EMA AveragedModel holds the model in .module
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return dict(summary), state


def _rebuild(summary: dict, state: dict) -> RunSummary:
    out = RunSummary(summary)
    model = create_model(summary["model"], **summary["model_kwargs"])
    load_state_dict_strict(model, state, source=f"run {summary['name']}")
    out.model = model.eval()
    return out


def _cache_gb(cfg: TrainConfig) -> float:
    """The memory a run's frame cache may take (``cfg.frame_cache``: the process's shared cache)."""
    return shared_frame_cache().max_bytes / 2**30 if cfg.frame_cache else 0.0


def train_many(
    runs: Sequence[TrainConfig], *, processes: int | None = None, threads: int | None = None
) -> list[RunSummary]:
    """Train every :class:`~vidlib.engine.config.TrainConfig` of ``runs``; the summaries in order.

    Args:
        runs: e.g. ``[dataclasses.replace(base, model=m, seed=s) for m in models for s in seeds]``; each
            needs a registered model name (``model``) and its own ``work_dir``.
        processes: worker processes (default :func:`default_processes`: one per CPU core, at most 8 on a
            GPU, and no more than fit in the free memory when each keeps a frame cache). With 1, the runs go
            one after another in this process.
        threads: torch threads per worker (default: cores // processes, at least 1, where processes is the
            count the cores alone would give: a memory cap lowers the processes, not the threads).

    Each summary's ``.model`` is the trained model, on the CPU when it was trained in a worker, and
    ``summary["parallel"]`` says how many processes ran the batch, with how many threads each. A run
    that fails raises its error here (the other runs of the batch are still finished first).
    """
    runs = list(runs)
    if not runs:
        return []
    for cfg in runs:
        if not isinstance(cfg, TrainConfig):
            raise TypeError(f"train_many takes TrainConfig objects, got {type(cfg).__name__}")
        if not isinstance(cfg.model, str):
            raise TypeError(
                f"train_many needs a registered model name (a string) in every config, got {cfg.model!r}"
            )
    work_dirs = [os.fspath(c.work_dir) for c in runs if c.work_dir is not None]
    if len(set(work_dirs)) != len(work_dirs):
        raise ValueError("train_many: two runs share a work_dir; give each run its own")
    if processes:
        n = processes
        per_worker = threads or max(1, _cores() // n)
    else:
        # The threads per process follow from the cores alone: when memory allows fewer processes,
        # each keeps its thread count (a slower batch, the same numbers: a run's floating-point sums
        # depend on its thread count).
        by_cores = default_processes(len(runs), runs[0].device)
        n = default_processes(len(runs), runs[0].device, gb_per_process=max(_cache_gb(c) for c in runs))
        per_worker = threads or max(1, _cores() // by_cores)
    if n <= 1:
        old = torch.get_num_threads()
        torch.set_num_threads(per_worker)
        try:
            return [_tag(Trainer(cfg).fit(), 1, per_worker) for cfg in runs]
        finally:
            torch.set_num_threads(old)
    # one tqdm bar per process would interleave
    runs = [dataclasses.replace(cfg, progress=False) for cfg in runs]
    with ProcessPoolExecutor(
        n, mp_context=get_context("spawn"), initializer=_worker_init, initargs=(per_worker, os.getpid())
    ) as pool:
        futures = [pool.submit(_train_in_worker, cfg) for cfg in runs]
        results = [f.result() for f in futures]
    return [_tag(_rebuild(summary, state), n, per_worker) for summary, state in results]


def _tag(summary: RunSummary, processes: int, threads: int) -> RunSummary:
    summary["parallel"] = dict(processes=processes, threads=threads)  # how the batch of runs was spread
    return summary
