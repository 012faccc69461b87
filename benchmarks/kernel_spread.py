"""How much a chapter's small-scale results move between machines: the same runs under other CPU kernels.

Training amplifies last-digit differences: the same code, data and seeds give other accuracies when the
CPU kernels differ (vector width and instruction set decide the order of floating-point sums). This
script re-runs a chapter's grid of tiny runs (models x seeds, one recipe) under several kernel settings
of this machine, each in a fresh process:

- ``native``: what PyTorch picks here (e.g. AVX512);
- ``avx2``: ``ATEN_CPU_CAPABILITY=avx2`` and ``ONEDNN_MAX_CPU_ISA=AVX2`` (an older x86 CPU);
- ``default``: ``ATEN_CPU_CAPABILITY=default`` and ``ONEDNN_MAX_CPU_ISA=SSE41`` (no wide vectors; about
  30 times slower than ``native`` on the 2-core build machine, too slow to run there routinely);
- ``threads``: the native kernels with one process of all cores instead of one process per core
  (other summation orders inside convolutions).

and writes, per setting, every run's validation metrics (``vidlib.engine.metrics.pair_accuracy`` on the
reversal pairs, and under ``groups`` on the data's tempo and multi-phase groups; with ``--train-eval``
also ``train_top1``, the training split through the recipe's validation view) to a JSON file that the
chapter reads (``results/<chapter>_kernels.json``). A model may carry keyword arguments after a colon,
``tpn_slowonly_tiny:aux_loss_weight=None``; the whole spec is the run's label::

    python benchmarks/kernel_spread.py --chapter tam --models tsn_tiny tsm_tiny tanet_tiny \\
        --recipe synthetic_tiny --epochs 8 --settings native avx2 threads
    python benchmarks/kernel_spread.py --chapter tin --models tsn_tiny tsm_tiny tin_tiny \\
        --recipe synthetic_tiny --epochs 8 --reuse results/tam_kernels.json
    python benchmarks/kernel_spread.py --chapter tpn --recipe synthetic_tiny_3d --models slowonly_tiny \\
        tpn_slowonly_tiny tpn_slowonly_tiny:aux_loss_weight=None --speeds 0.5 0.75 1 1.5 2
    python benchmarks/kernel_spread.py --chapter csn --recipe synthetic_tiny_3d --models r3d_tiny \\
        ipcsn_tiny ircsn_tiny --train-eval
    python benchmarks/kernel_spread.py --chapter stam --recipe synthetic_stam_tiny --models stam_tiny \\
        stam_mean_tiny --frame-pretraining

``--frame-pretraining`` first pre-trains the tiny STAM's frame encoder in each setting, as the STAM
chapter does (``vidbook.experiments.pretrain_to_file``), and starts every run from it (``vit_init=``).

Each setting takes as long as the chapter's own training (about 10 minutes on 2 idle cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SETTINGS = {
    "native": ({}, None),
    "avx2": ({"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}, None),
    "default": ({"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"}, None),
    "threads": ({}, 1),  # one process with every core's threads
}


def parse_model(spec: str) -> tuple[str, str, dict]:
    """``"tpn_slowonly_tiny:aux_loss_weight=None"`` -> (the spec as label, model name, model kwargs)."""
    import ast

    name, _, rest = spec.partition(":")
    kw = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        kw[key] = ast.literal_eval(value)
    return spec, name, kw


def safe(label: str) -> str:
    """A label as a folder name."""
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in label)


def run_grid(args) -> dict:
    """The grid in this process (called in a child with the setting's environment)."""
    from dataclasses import replace

    import numpy as np
    import torch

    from vidbook.experiments import evaluate_speeds, tempo_metrics
    from vidbook.modes import environment
    from vidlib.data import shared_frame_cache
    from vidlib.engine import TrainConfig, evaluate_recipe, get_recipe, train_many
    from vidlib.engine.metrics import pair_accuracy

    meta = json.loads((Path(args.data) / "meta.json").read_text())
    pairs = meta["reversal_pairs"]
    groups = {k: meta[k] for k in ("tempo_groups", "multiphase_groups") if k in meta}
    base = TrainConfig(
        data=args.data,
        recipe=args.recipe,
        epochs=args.epochs,
        frame_cache=True,
        results_dir=None,
        verbose=False,
        progress=False,
        device="cpu",
    )
    specs = [parse_model(m) for m in args.models]
    pretraining = None
    if args.frame_pretraining:  # the STAM chapter's encoder, pre-trained under this setting's kernels
        from vidbook.experiments import pretrain_to_file

        encoder = Path(args.work_dir) / "frame_encoder.pth"
        pre = pretrain_to_file(encoder, specs[0][1])
        pretraining = dict(history=pre.history, minutes=pre.minutes, config=pre.config)
        specs = [(label, name, dict(kw, vit_init=str(encoder))) for label, name, kw in specs]
    runs = [
        replace(base, model=name, model_kwargs=kw, seed=s, work_dir=f"{args.work_dir}/{safe(label)}_s{s}")
        for label, name, kw in specs
        for s in args.seeds
    ]
    labels = [label for label, _, _ in specs for _ in args.seeds]
    t0 = time.time()
    summaries = train_many(runs, processes=args.processes)
    out = {}
    cache = shared_frame_cache()
    for label, r in zip(labels, summaries):
        scores, y = np.asarray(r["val"]["scores"]), np.asarray(r["val"]["labels"])
        m = pair_accuracy(scores, y, pairs)
        m["groups"] = {k: pair_accuracy(scores, y, g) for k, g in groups.items()}
        if args.speeds:  # the validation set at other playback speeds (vidbook.experiments.tempo)
            recipe = get_recipe(args.recipe)
            reports = evaluate_speeds(r.model, args.data, recipe, args.speeds, frame_cache=cache)
            m["speeds"] = {
                str(v): tempo_metrics(rep["scores"], rep["labels"], groups["tempo_groups"])
                for v, rep in reports.items()
            }
        if args.train_eval:  # how well the run fits its own training videos (no augmentation)
            rep = evaluate_recipe(
                r.model, args.data, get_recipe(args.recipe), split="train", frame_cache=cache
            )
            m["train_top1"] = rep["top1"]
            m["train_top1_aug"] = r["history"][-1]["train_top1"]  # last epoch, augmented, while training
        out[f"{label}/{r['seed']}"] = dict(m, model=label, seed=r["seed"])
    return dict(
        runs=out,
        frame_pretraining=pretraining,
        minutes=(time.time() - t0) / 60,
        parallel=summaries[0]["parallel"],
        environment=environment(args.data),
        torch_threads=torch.get_num_threads(),
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chapter", required=True, help="writes results/<chapter>_kernels.json")
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--recipe", default="synthetic_tiny")
    ap.add_argument("--epochs", type=int, help="default: the recipe's")
    ap.add_argument("--data", default="data/synthetic")
    ap.add_argument("--settings", nargs="+", default=["native", "avx2", "threads"], choices=list(SETTINGS))
    ap.add_argument("--work-dir", default="work_dirs/kernel_spread")
    ap.add_argument("--out", help="default: results/<chapter>_kernels.json")
    ap.add_argument(
        "--reuse",
        help="a kernels file of the same grid (recipe, epochs, seeds, data): runs of --models it already "
        "holds for a setting are copied from it (and recorded as reused), not trained again",
    )
    ap.add_argument(
        "--speeds",
        nargs="+",
        type=float,
        help="also evaluate every run at these playback speeds (vidbook.experiments.evaluate_speeds)",
    )
    ap.add_argument(
        "--train-eval",
        action="store_true",
        help="also evaluate every run on its training split, as the recipe validates (train_top1)",
    )
    ap.add_argument(
        "--frame-pretraining",
        action="store_true",
        help="pre-train the STAM frame encoder first, as the STAM chapter does; every run starts from it",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)  # internal: run one setting, write JSON here
    ap.add_argument(
        "--processes",
        type=int,
        help="worker processes of the settings that do not fix their own (default: train_many's choice, "
        "which takes fewer when memory is short: then each gets more threads, another summation order)",
    )
    args = ap.parse_args(argv)
    if args.child:
        Path(args.child).write_text(json.dumps(run_grid(args)))
        return
    out = Path(args.out or f"results/{args.chapter}_kernels.json")
    result = json.loads(out.read_text()) if out.is_file() else {}
    result.update(
        chapter=args.chapter,
        models=args.models,
        seeds=args.seeds,
        recipe=args.recipe,
        epochs=args.epochs,
        data=args.data,
        speeds=args.speeds,
        train_eval=args.train_eval,
        frame_pretraining=args.frame_pretraining,
        settings=result.get("settings", {}),
    )
    reuse = json.loads(Path(args.reuse).read_text()) if args.reuse else None
    if reuse is not None:
        same = {k: (reuse.get(k), result[k]) for k in ("recipe", "epochs", "seeds", "data")}
        if any(a != b for a, b in same.values()):
            raise SystemExit(f"--reuse {args.reuse}: another grid ({same}); nothing can be reused")
    for name in args.settings:
        env, processes = SETTINGS[name]
        tmp = out.with_suffix(f".{name}.tmp")
        kept = result["settings"].get(name, {})  # this file's own runs of the setting (an earlier call)
        old_runs = (reuse or {}).get("settings", {}).get(name, {}).get("runs", {})
        have = [m for m in args.models if all(f"{m}/{s}" in kept.get("runs", {}) for s in args.seeds)]
        reused = [m for m in args.models if m not in have and all(f"{m}/{s}" in old_runs for s in args.seeds)]
        train = [m for m in args.models if m not in have + reused]
        if not train:
            setting = dict(
                kept,
                runs={
                    **{f"{m}/{s}": old_runs[f"{m}/{s}"] for m in reused for s in args.seeds},
                    **kept.get("runs", {}),
                },
            )
            if reused:
                setting["reused"] = dict(models=reused, file=args.reuse)
            result["settings"][name] = setting
            out.write_text(json.dumps(result, indent=1) + "\n")
            print(f"{name}: every run is already measured ({', '.join(have + reused)})", flush=True)
            continue
        cmd = [
            sys.executable,
            __file__,
            "--child",
            str(tmp),
            "--chapter",
            args.chapter,
            "--models",
            *train,
            "--seeds",
            *map(str, args.seeds),
            "--recipe",
            args.recipe,
            "--data",
            args.data,
            "--work-dir",
            f"{args.work_dir}/{name}",
        ]
        cmd += ["--epochs", str(args.epochs)] if args.epochs else []
        cmd += ["--speeds", *map(str, args.speeds)] if args.speeds else []
        cmd += ["--train-eval"] if args.train_eval else []
        cmd += ["--frame-pretraining"] if args.frame_pretraining else []
        processes = processes or args.processes  # one-thread processes unless the setting says otherwise
        cmd += ["--processes", str(processes)] if processes else []
        print(f"{name}: {' '.join(f'{k}={v}' for k, v in env.items()) or 'native kernels'} ...", flush=True)
        subprocess.run(cmd, env={**os.environ, **env}, check=True)
        setting = dict(json.loads(tmp.read_text()), env=env)
        tmp.unlink()
        # the same runs (recipe, epochs, seeds, data, setting) measured for another chapter, or earlier here
        setting["runs"] = {
            **{f"{m}/{s}": old_runs[f"{m}/{s}"] for m in reused for s in args.seeds},
            **{f"{m}/{s}": kept["runs"][f"{m}/{s}"] for m in have for s in args.seeds},
            **setting["runs"],
        }
        if reused:
            setting["reused"] = dict(models=reused, file=args.reuse)
        result["settings"][name] = setting
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")  # after every setting: a partial file is usable
        s = result["settings"][name]
        print(
            f"  {s['minutes']:.1f} min, {s['environment']['cpu_capability']}; pair accuracy: "
            + ", ".join(f"{k} {v['pair_acc']:.3f}" for k, v in s["runs"].items()),
            flush=True,
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
