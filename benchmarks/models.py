"""CPU forward speed and peak memory of vidlib's models, and ours-vs-naive checks for TAM and TIN.

    python benchmarks/models.py                       # every row of MODELS, 2 threads
    python benchmarks/models.py --models 'tanet*,tin*'  # shell patterns over the names
    python benchmarks/models.py --threads 1           # on an oversubscribed machine (see below)
    python benchmarks/models.py --naive               # only the TAM / TIN comparisons
    python benchmarks/models.py --json out.json       # also write the rows as JSON

Every model runs in a fresh subprocess (fp32, eval, ``torch.no_grad``), so ``peak MiB`` is that
process's peak resident memory (``ru_maxrss``) and ``model MiB`` the resident memory once the model
is built: their difference is what the forward pass needs. Timings are the median of ``--repeats``
runs after ``--warmup`` runs (ours-vs-naive: the best of alternating runs). The machine's load
changes them; compare rows of the same run only. On a machine whose load average exceeds its
cores, OpenMP barriers make 2 threads several times slower than 1 (measured here: tiny models
fwd+bwd ~1 s/clip with 2 threads vs ~0.1 s/clip with 1 thread at load 9-15 on 2 cores).

The 3D and STAM helpers append their rows to ``MODELS`` (name, create_model kwargs, input shape).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import resource
import subprocess
import sys

#: (registered name, create_model kwargs, input [B, 3, T, H, W]): paper shape at batch 1, tiny at batch 8.
MODELS = [
    ("tsn_r50", {}, (1, 3, 8, 224, 224)),
    ("tsm_r50", {}, (1, 3, 8, 224, 224)),
    ("tanet_r50", {}, (1, 3, 8, 256, 256)),  # the 256x256 test view behind the published 43.0G
    ("tin_r50", {"dataset": "sthv1"}, (1, 3, 8, 224, 224)),
    ("tsn_tiny", {}, (8, 3, 8, 112, 112)),
    ("tsm_tiny", {}, (8, 3, 8, 112, 112)),
    ("tanet_tiny", {}, (8, 3, 8, 112, 112)),
    ("tin_tiny", {}, (8, 3, 8, 112, 112)),
    # 3D models (H4): the single views behind the published FLOPs (TPN 8x256^2, CSN 32x256^2)
    ("slowonly_r50", {}, (1, 3, 8, 224, 224)),
    ("tpn_slowonly_r50", {}, (1, 3, 8, 256, 256)),
    ("tpn_tsm_r50", {"dataset": "sthv1"}, (1, 3, 8, 256, 256)),
    ("ircsn_r152", {}, (1, 3, 32, 256, 256)),
    ("ipcsn_r152", {}, (1, 3, 32, 256, 256)),
    ("ircsn_r50", {}, (1, 3, 32, 256, 256)),
    ("r3d_r50", {}, (1, 3, 32, 256, 256)),  # dense 3x3x3 conv2: 2.8x the MACs of ircsn_r50
    ("slowonly_tiny", {}, (8, 3, 8, 112, 112)),
    ("r3d_tiny", {}, (8, 3, 8, 112, 112)),
    ("ircsn_tiny", {}, (8, 3, 8, 112, 112)),
    ("ipcsn_tiny", {}, (8, 3, 8, 112, 112)),
    ("tpn_slowonly_tiny", {}, (8, 3, 8, 112, 112)),
    ("tpn_tsm_tiny", {}, (8, 3, 8, 112, 112)),
    # STAM (H5): the single 224x224 view behind the published 135/270 G, and the tiny CPU variants
    ("stam_8", {}, (1, 3, 8, 224, 224)),
    ("stam_16", {}, (1, 3, 16, 224, 224)),
    ("stam_tiny", {}, (8, 3, 8, 32, 32)),
    ("stam_mean_tiny", {}, (8, 3, 8, 32, 32)),
]


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_one(name: str, kwargs: dict, shape: tuple, threads: int, warmup: int, repeats: int) -> dict:
    """Build ``name`` and time its forward pass on a random clip of ``shape`` (run in a subprocess)."""
    import torch

    import vidlib
    from vidlib.utils import time_interleaved

    torch.set_num_threads(threads)
    model = vidlib.create_model(name, **kwargs).eval()
    x = torch.randn(shape)
    model_mib = _rss_mib()
    with torch.no_grad():
        fwd = {"fwd": lambda: model(x)}
        sec = time_interleaved(fwd, warmup=warmup, repeats=repeats, statistic="median")["fwd"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(
        model=name,
        input=list(shape),
        params_m=vidlib.num_params(model) / 1e6,
        batch_s=sec,
        clips_per_s=shape[0] / sec,
        ms_per_clip=1e3 * sec / shape[0],
        model_mib=model_mib,
        peak_mib=peak,
    )


def run_models(pattern: str, threads: int, warmup: int, repeats: int) -> list[dict]:
    rows = []
    for name, kwargs, shape in MODELS:
        if not any(fnmatch.fnmatch(name, pat) for pat in pattern.split(",")):
            continue
        args = json.dumps([name, kwargs, shape, threads, warmup, repeats])
        here = os.path.dirname(os.path.abspath(__file__))
        code = (
            f"import json, sys; sys.path.insert(0, {here!r}); import models as b; "
            f"print(json.dumps(b.bench_one(*json.loads({args!r}))))"
        )
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(
            f"{name:<12} {str(tuple(shape)):<22} {r['params_m']:7.2f}M {r['clips_per_s']:8.2f} clips/s "
            f"{r['ms_per_clip']:9.1f} ms/clip  model {r['model_mib']:6.0f} MiB  "
            f"peak {r['peak_mib']:6.0f} MiB",
            flush=True,
        )
    return rows


# ----------------------------------------------------------------------------- naive references
def naive_tam(tam, x):
    """TAM with a Python loop over videos and an explicit sum over the K kernel taps (same math)."""
    import torch
    import torch.nn.functional as F

    t, k, pad = tam.num_segments, tam.kernel_size, tam.padding
    outs = []
    for clip in x.split(t):  # [T, C, H, W] per video
        z = clip.mean(dim=(2, 3)).t()  # [C, T]
        w = tam.G(z)  # [C, K]
        xs = clip * tam.L(z[None])[0].t()[:, :, None, None]  # [T, C, H, W]
        xp = F.pad(xs, (0, 0, 0, 0, 0, 0, pad, pad))  # [T + 2 pad, C, H, W]
        outs.append(sum(w[:, j][None, :, None, None] * xp[j : j + t] for j in range(k)))
    return torch.cat(outs)


def naive_linear_sampler(x, offset):
    """TIN's fractional shift with Python loops over videos, channel groups and frames."""
    import torch

    n, t, c, h, w = x.shape
    g = offset.shape[1]
    out = torch.zeros_like(x)
    for v in range(n):
        for gi in range(g):
            o = offset[v, gi]
            o0 = int(torch.floor(o))
            f = o - o0
            chans = slice(gi * c // g, (gi + 1) * c // g)
            for i in range(t):
                for src, wt in ((i - o0, 1 - f), (i - o0 - 1, f)):
                    if 0 <= src < t:
                        out[v, i, chans] += wt * x[v, src, chans]
    return out


def run_naive(threads: int, warmup: int, repeats: int) -> list[dict]:
    """Ours vs naive: the operator at ResNet-50 layer1 shapes, and the tiny models end to end."""
    import torch

    import vidlib
    from vidlib.models import tin as tin_mod
    from vidlib.models.tam import TAM
    from vidlib.utils import time_interleaved

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rows = []

    def row(what, ours, naive, check):
        with torch.no_grad():
            diff = (ours() - naive()).abs().max().item() if check else float("nan")
            best = time_interleaved({"ours": ours, "naive": naive}, warmup=warmup, repeats=repeats)
            a, b = best["ours"], best["naive"]
        rows.append(dict(what=what, ours_ms=1e3 * a, naive_ms=1e3 * b, speedup=b / a, max_abs_diff=diff))
        print(
            f"{what:<44} ours {1e3 * a:8.2f} ms  naive {1e3 * b:8.2f} ms  "
            f"x{b / a:5.2f}  max|diff| {diff:.1e}",
            flush=True,
        )

    tam = TAM(64, num_segments=8).eval()
    x = torch.randn(8 * 8, 64, 56, 56)  # 8 videos at R50 layer1 after conv1
    row("TAM op [8x8, 64, 56, 56]", lambda: tam(x), lambda: naive_tam(tam, x), True)
    xs = torch.randn(8, 8, 16, 56, 56)  # TIN's interlaced C/4 channels of layer1's first block
    off = 4 * (torch.rand(8, 4) - 0.5)
    row(
        "TIN shift op [8, 8, 16, 56, 56]",
        lambda: tin_mod.linear_sampler(xs, off),
        lambda: naive_linear_sampler(xs, off),
        True,
    )

    clip = torch.randn(8, 3, 8, 112, 112)
    tanet = vidlib.create_model("tanet_tiny").eval()
    ours_tanet = lambda: tanet(clip)  # noqa: E731

    def naive_tanet():
        forward = TAM.forward
        TAM.forward = naive_tam
        try:
            return tanet(clip)
        finally:
            TAM.forward = forward

    row("tanet_tiny forward [8, 3, 8, 112, 112]", ours_tanet, naive_tanet, True)

    tin = vidlib.create_model("tin_tiny").eval()
    naive_sampler = lambda x, o, scale: naive_linear_sampler(x, o) * scale[..., None, None]  # noqa: E731

    def naive_tin():
        sampler = tin_mod.linear_sampler
        tin_mod.linear_sampler = naive_sampler
        try:
            return tin(clip)
        finally:
            tin_mod.linear_sampler = sampler

    row("tin_tiny forward [8, 3, 8, 112, 112]", lambda: tin(clip), naive_tin, True)
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="*", help="comma-separated shell patterns over the names in MODELS")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--naive", action="store_true", help="run only the TAM / TIN ours-vs-naive comparison")
    p.add_argument("--no-naive", action="store_true", help="skip the ours-vs-naive comparison")
    p.add_argument("--json", help="write the rows to this file")
    a = p.parse_args(argv)
    result = {
        "threads": a.threads,
        "torch_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "loadavg": os.getloadavg(),
    }
    if not a.naive:
        result["models"] = run_models(a.models, a.threads, a.warmup, a.repeats)
    if not a.no_naive:
        result["naive"] = run_naive(a.threads, a.warmup, a.repeats)
    result["loadavg_after"] = os.getloadavg()
    print(f"load average before/after: {result['loadavg']} / {result['loadavg_after']}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
