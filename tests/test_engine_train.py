"""End-to-end training: resume after SIGKILL, DDP equivalence (torchrun, gloo), NaN stop, CLI errors.

All runs use a 12-video, 3-class dataset of 32x32 px clips written here and 4-frame tiny models on one
thread, so that every run takes seconds and is bit-for-bit deterministic on CPU.
"""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace

import pytest
import torch
import torch.nn as nn
from conftest import SMALL

import vidlib
from vidlib.engine import NonFiniteLossError, TrainConfig, Trainer, train
from vidlib.engine.checkpoint import load_checkpoint_file
from vidlib.engine.cli import main as cli_main

RUN = dict(
    recipe="synthetic_tiny",
    epochs=3,
    batch_size=4,
    seed=3,
    amp="off",
    num_workers=0,
    verbose=False,
    results_dir=None,
    progress=False,
    model_kwargs=dict(num_frames=4),
    backend="pyav",
)


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _comparable(history):
    return [{k: v for k, v in h.items() if not k.endswith("time_s")} for h in history]


def test_train_summary_contents(tiny_data, tmp_path):
    before = torch.are_deterministic_algorithms_enabled()
    s = train(
        "tsn_tiny",
        tiny_data,
        work_dir=tmp_path / "w",
        overrides=SMALL,
        **{**RUN, "epochs": 1, "results_dir": tmp_path / "runs"},
        name="tsn_run",
    )
    # train() does not leak its determinism flag
    assert torch.are_deterministic_algorithms_enabled() == before
    assert [h["epoch"] for h in s["history"]] == [1]
    h = s["history"][0]
    for k in (
        "train_loss",
        "train_top1",
        "lr",
        "val_top1",
        "val_top5",
        "val_mean_class_acc",
        "val_loss",
        "time_s",
    ):
        assert k in h, k
    assert len(s["val"]["confusion_matrix"]) == 3 and len(s["val"]["preds"]) == len(s["val"]["labels"]) == 6
    assert s["classes"] == ["right", "left", "still"] and s["model_kwargs"]["num_classes"] == 3
    assert any("data.crop_size" in line for line in s["overrides"]) and s["minutes_per_epoch"] > 0
    on_disk = json.loads((tmp_path / "runs" / "tsn_run.json").read_text())
    assert on_disk["history"] == json.loads(json.dumps(s["history"]))
    lines = (tmp_path / "w" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1]
    assert (tmp_path / "w" / "last.pth").is_file() and (tmp_path / "w" / "best.pth").is_file()
    assert isinstance(s.model, nn.Module)


def test_train_many_in_workers_equals_train_here_and_the_frame_cache_changes_nothing(tiny_data, tmp_path):
    """Two runs in two spawned workers (frame cache on) == the same runs one after another here (no cache)."""
    from vidlib.engine import train_many

    runs = [dict(model="tsm_tiny", seed=0), dict(model="tanet_tiny", seed=1)]
    base = TrainConfig(**dict(RUN, data=tiny_data, overrides=SMALL, epochs=2))
    par = train_many(
        [replace(base, **r, work_dir=tmp_path / f"p{i}", frame_cache=True) for i, r in enumerate(runs)],
        processes=2,
        threads=1,
    )
    seq = [train(replace(base, **r, work_dir=tmp_path / f"s{i}")) for i, r in enumerate(runs)]
    for p, q in zip(par, seq):
        assert (
            p["model"] == q["model"]
            and p["seed"] == q["seed"]
            and p["parallel"] == dict(processes=2, threads=1)
        )
        assert _comparable(p["history"]) == _comparable(q["history"])
        assert p["val"]["scores"] == q["val"]["scores"]
        a, b = p.model.state_dict(), q.model.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k].cpu()) for k in a)
    with pytest.raises(TypeError, match="model name"):
        train_many([replace(base, model=None)], processes=2)
    with pytest.raises(TypeError, match="TrainConfig"):
        train_many([dict(model="tsn_tiny")], processes=2)


def _children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (Linux /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_train_many_workers_die_with_their_parent(tiny_data, tmp_path):
    """A killed parent (a chapter kernel, a script) must not leave its workers training as orphans."""
    import time

    script = textwrap.dedent(f"""
        from dataclasses import replace
        from vidlib.engine import TrainConfig, train_many
        base = TrainConfig(data={str(tiny_data)!r}, recipe="synthetic_tiny", epochs=500, batch_size=4,
                           model="tsn_tiny", model_kwargs=dict(num_frames=4), overrides={SMALL!r},
                           verbose=False, progress=False, results_dir=None, backend="pyav")
        if __name__ == "__main__":
            train_many([replace(base, seed=s, work_dir={str(tmp_path)!r} + f"/w{{s}}") for s in (0, 1)],
                       processes=2, threads=1)
    """)
    path = tmp_path / "run.py"
    path.write_text(script)
    proc = subprocess.Popen([sys.executable, str(path)], cwd=tmp_path)
    workers = []
    try:
        deadline = time.time() + 120
        while not all((tmp_path / f"w{s}" / "log.txt").exists() for s in (0, 1)):
            assert proc.poll() is None and time.time() < deadline, "the workers never started"
            time.sleep(0.5)
        workers = [c for c in _children(proc.pid) if c != proc.pid]
        assert len(workers) >= 2, workers  # the two workers (and the resource tracker)
        proc.kill()
        proc.wait()
        deadline = time.time() + 30
        while any(_alive(w) for w in workers) and time.time() < deadline:
            time.sleep(0.2)
        assert not [w for w in workers if _alive(w)], "orphaned workers still running"
    finally:
        if proc.poll() is None:
            proc.kill()
        for w in workers + _children(proc.pid):  # orphans (if the test failed) are not children
            if _alive(w):
                os.kill(w, signal.SIGKILL)


def test_default_processes_cores_gpu_and_memory(monkeypatch):
    from vidlib.engine import parallel

    monkeypatch.setattr(parallel, "_cores", lambda: 2)
    assert parallel.default_processes(1, "cpu") == 1 and parallel.default_processes(4, "cpu") == 2
    # 9 runs on 2 cores: 3 processes of one thread share them (no core idles in the last round)
    assert parallel.default_processes(9, "cpu") == 3 and parallel.default_processes(3, "cpu") == 3
    assert parallel.default_processes(9, "cuda") == 2  # small runs share a GPU, one per core ...
    monkeypatch.setattr(parallel, "_cores", lambda: 16)
    assert parallel.default_processes(9, "cuda") == parallel.MAX_GPU_SHARING  # ... up to 8
    monkeypatch.setattr(parallel, "_cores", lambda: 2)
    monkeypatch.setattr(parallel, "_available_gb", lambda: 11.0)
    assert parallel.default_processes(9, "cpu", gb_per_process=4.0) == 2  # 11 // (4 + 1)
    assert parallel.default_processes(9, "cpu", gb_per_process=20.0) == 1  # never fewer than one


def test_a_memory_cap_lowers_the_processes_but_not_their_thread_count(tiny_data, tmp_path, monkeypatch):
    """The numbers of a run depend on its torch thread count: when memory allows fewer worker processes
    than the cores would, each must keep the thread count of the uncapped layout."""
    from vidlib.engine import parallel

    assert 0 < parallel._available_gb() < 1e4  # Linux MemAvailable (page cache included), in GiB
    monkeypatch.setattr(parallel, "_cores", lambda: 2)
    monkeypatch.setattr(parallel, "_available_gb", lambda: 0.5)  # room for one process only
    base = TrainConfig(**dict(RUN, data=tiny_data, overrides=SMALL, epochs=1, frame_cache=True))
    runs = [replace(base, model="tsn_tiny", seed=s, work_dir=tmp_path / f"s{s}") for s in (0, 1, 2)]
    torch.set_num_threads(2)  # what this process has (the autouse fixture restores it)
    threads_before = torch.get_num_threads()
    out = parallel.train_many(runs)
    assert [r["parallel"] for r in out] == [dict(processes=1, threads=1)] * 3  # 3 runs, 2 cores: 1 thread
    assert torch.get_num_threads() == threads_before  # restored


def test_aux_loss_follows_the_contract():
    """CONTRIBUTING.md: loss = CE(logits, y) + model.aux_loss_weight * CE(aux, y) for models with an aux
    head."""
    import torch.nn.functional as F

    from vidlib.engine import get_recipe
    from vidlib.engine.training import _aux_weight, _loss

    model = vidlib.create_model("tpn_tsm_tiny", num_classes=3, num_frames=8).train()
    weight = _aux_weight(model, get_recipe("tpn_tsm_r50_sthv1"))
    assert weight == 0.5
    x, y = torch.randn(2, 3, 8, 64, 64), torch.tensor([0, 2])
    torch.manual_seed(0)
    loss, _ = _loss(model, x, y, weight)
    torch.manual_seed(0)
    logits, extra = model(x, return_aux=True)
    assert loss.item() == pytest.approx(
        (F.cross_entropy(logits, y) + 0.5 * F.cross_entropy(extra["aux"], y)).item()
    )
    assert _aux_weight(vidlib.create_model("tsn_tiny", num_classes=3), get_recipe("synthetic_tiny")) is None
    # the ablation: aux_loss_weight=None trains on CE(logits) alone, and never under a recipe that wants aux
    off = vidlib.create_model("tpn_tsm_tiny", num_classes=3, num_frames=8, aux_loss_weight=None).train()
    assert _aux_weight(off, get_recipe("synthetic_tiny_3d")) is None
    torch.manual_seed(0)
    loss, logits = _loss(off, x, y, None)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, y).item())
    with pytest.raises(ValueError, match="auxiliary loss.*switched off"):
        _aux_weight(off, get_recipe("tpn_tsm_r50_sthv1"))


def test_ema_weights_are_evaluated_and_checkpointed(tiny_data, tmp_path):
    s = train(
        "tsn_tiny",
        tiny_data,
        work_dir=tmp_path / "w",
        overrides={**SMALL, "ema": 0.5},
        **{**RUN, "epochs": 1},
    )
    ck = load_checkpoint_file(tmp_path / "w" / "last.pth")
    assert ck["ema"] is not None and int(ck["ema"]["n_averaged"]) == 3  # one update per iteration
    ema_weights = {k[len("module.") :]: v for k, v in ck["ema"].items() if k.startswith("module.")}
    for k, v in s.model.state_dict().items():  # the summary's model is the EMA model
        assert torch.equal(v, ema_weights[k]), k
    assert not all(torch.equal(v, ck["model"][k]) for k, v in ema_weights.items())


def test_keep_epoch_weights_writes_the_initial_and_every_epochs_weights(tiny_data, tmp_path):
    s = train(
        "tin_tiny",
        tiny_data,
        work_dir=tmp_path / "w",
        overrides=SMALL,
        keep_epoch_weights=True,
        **{**RUN, "epochs": 2},
    )
    files = sorted(p.name for p in (tmp_path / "w").glob("epoch_*.pth"))
    assert files == ["epoch_0.pth", "epoch_1.pth", "epoch_2.pth"]
    first, last = (load_checkpoint_file(tmp_path / "w" / f) for f in ("epoch_0.pth", "epoch_2.pth"))
    assert (first["epoch"], last["epoch"], last["model_name"]) == (0, 2, "tin_tiny")
    for k, v in s.model.state_dict().items():  # the last one is the final model
        assert torch.equal(v, last["model"][k]), k
    # epoch 0 is the initialisation: the interlace offsets' bias is still the designed 0.5108
    bias = [v for k, v in first["model"].items() if k.endswith("offset_net.fc2.bias")]
    assert bias and all(torch.allclose(b, torch.full_like(b, 0.5108)) for b in bias)
    assert not any(
        torch.equal(first["model"][k], last["model"][k])
        for k in first["model"]
        if k.endswith("offset_net.fc2.weight")
    )


_KILLER = textwrap.dedent("""
    import json, os, signal, sys, torch
    import vidlib.engine.training as T
    torch.set_num_threads(1)
    real_save = T.Trainer.save
    def save_then_maybe_die(self, is_best=False):
        real_save(self, is_best)
        if self.state.global_iter == 5:            # epoch 2, after 2 of its 3 iterations
            os.kill(os.getpid(), signal.SIGKILL)
    T.Trainer.save = save_then_maybe_die
    T.train("tsn_tiny", sys.argv[1], work_dir=sys.argv[2], overrides=json.loads(sys.argv[3]),
            save_every_iters=1, **json.loads(sys.argv[4]))
""")


def test_resume_after_sigkill_matches_an_uninterrupted_run(tiny_data, tmp_path):
    ref = train("tsn_tiny", tiny_data, work_dir=tmp_path / "ref", overrides=SMALL, **RUN)
    work = tmp_path / "killed"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, str(tiny_data), str(work), json.dumps(SMALL), json.dumps(RUN)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    ck = load_checkpoint_file(work / "last.pth")
    st = ck["state"]
    assert (st["epoch"], st["iter_in_epoch"], st["global_iter"]) == (1, 2, 5)  # killed mid-epoch 2
    resumed = train("tsn_tiny", tiny_data, work_dir=work, overrides=SMALL, resume=True, **RUN)
    assert _comparable(resumed["history"]) == _comparable(ref["history"])
    assert resumed["val"]["scores"] == ref["val"]["scores"]
    for k, v in ref.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    lines = (work / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]  # no duplicate epoch lines after the resume


class _NaNAfter(nn.Module):
    """Wraps a model; its training forward returns NaN logits from the ``n``-th call on."""

    def __init__(self, inner: nn.Module, n: int):
        super().__init__()
        self.inner, self.n, self.calls = inner, n, 0
        self.default_cfg = inner.default_cfg

    def forward(self, x):
        out = self.inner(x)
        if self.training:
            self.calls += 1
            if self.calls >= self.n:
                return out * float("nan")
        return out


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_data, tmp_path):
    # 3 iterations per epoch
    net = _NaNAfter(vidlib.create_model("tsn_tiny", num_classes=3, num_frames=4), n=5)
    with pytest.raises(
        NonFiniteLossError, match=r"epoch 2, iteration 2.*last good checkpoint is .*last\.pth"
    ):
        train(net, tiny_data, work_dir=tmp_path / "w", overrides=SMALL, **RUN)
    ck = load_checkpoint_file(tmp_path / "w" / "last.pth")
    assert ck["state"]["epoch"] == 1 and ck["state"]["global_iter"] == 3 and len(ck["state"]["history"]) == 1
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


_DDP = textwrap.dedent("""
    import json, os, sys, torch
    import vidlib.engine as E
    torch.set_num_threads(1)
    s = E.train(sys.argv[1], sys.argv[2], work_dir=sys.argv[3], overrides=json.loads(sys.argv[4]),
                **json.loads(sys.argv[5]))
    if int(os.environ["RANK"]) == 0:
        json.dump({k: s[k] for k in ("history", "world_size", "total_batch_size")}, open(sys.argv[6], "w"))
""")


def test_ddp_two_processes_match_one_process_with_the_same_global_batch(tiny_data, tmp_path):
    """torchrun, gloo, 2 CPU processes x batch 2 vs 1 process x batch 4.

    BatchNorm would see per-rank batch statistics, so the model is ir-CSN-tiny with frozen BN (norm_eval +
    bn_frozen, as the CSN recipes) and no dropout; the data order and augmentations depend only on
    (seed, epoch, index). Tolerance: float32 reduction order only (rtol 1e-4 on losses, atol 1e-5 on weights);
    validation predictions must be identical.
    """
    model_kw = dict(num_frames=4, dropout=0.0, norm_eval=True, bn_frozen=True)
    over = {**SMALL, "optimizer.param_groups": "default"}
    cfg = {**RUN, "model_kwargs": model_kw, "epochs": 2}
    single = train("ircsn_tiny", tiny_data, work_dir=tmp_path / "single", overrides=over, **cfg)
    out = tmp_path / "ddp.json"
    script = tmp_path / "ddp_run.py"
    script.write_text(_DDP)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    args = [
        "ircsn_tiny",
        str(tiny_data),
        str(tmp_path / "ddp"),
        json.dumps(over),
        json.dumps({**cfg, "batch_size": 2}),
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd + args, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = json.loads(out.read_text())
    assert ddp["world_size"] == 2 and ddp["total_batch_size"] == 4
    for a, b in zip(single["history"], ddp["history"]):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
        assert b["val_top1"] == a["val_top1"] and b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-4)
    w_ddp = load_checkpoint_file(tmp_path / "ddp" / "last.pth")["model"]
    for k, v in single.model.state_dict().items():
        torch.testing.assert_close(w_ddp[k], v, rtol=1e-4, atol=1e-5, msg=k)


def test_cli_train_and_test(tiny_data, tmp_path, capsys):
    work = tmp_path / "cli"
    rc = cli_main(
        [
            "train",
            "--model",
            "tsn_tiny",
            "--data",
            str(tiny_data),
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--model-kw",
            "num_frames=4",
            "--set",
            "data.crop_size=32",
            "--set",
            "data.resize_short=32",
            "--set",
            "data.test_crop_size=32",
            "--work-dir",
            str(work),
            "--results-dir",
            str(tmp_path / "r"),
            "--num-workers",
            "0",
            "--backend",
            "pyav",
            "--amp",
            "off",
            "--auto-scale-lr",
            "--name",
            "c",
        ]
    )
    assert rc == 0
    summary = json.loads((tmp_path / "r" / "c.json").read_text())
    # linear scaling rule: the recipe's lr for its base batch 16, run with 1 x 4
    rec = vidlib.engine.get_recipe("synthetic_tiny")
    assert rec["base_batch_size"] == 16
    assert summary["recipe"]["optimizer"]["lr"] == pytest.approx(rec["optimizer"]["lr"] * 4 / 16)
    assert any("auto-scale-lr" in line for line in summary["overrides"])
    rc = cli_main(
        [
            "test",
            "--checkpoint",
            str(work / "last.pth"),
            "--data",
            str(tiny_data),
            "--mode",
            "test",
            "--num-workers",
            "0",
            "--backend",
            "pyav",
            "--out",
            str(tmp_path / "test.json"),
        ]
    )
    assert rc == 0 and "top1" in capsys.readouterr().out
    report = json.loads((tmp_path / "test.json").read_text())
    assert len(report["confusion_matrix"]) == 3 and report["num_samples"] == 6


def test_cli_errors_are_clear(tiny_data, tmp_path, capsys):
    base = [
        "train",
        "--data",
        str(tiny_data),
        "--epochs",
        "1",
        "--work-dir",
        str(tmp_path / "e"),
        "--results-dir",
        str(tmp_path / "r"),
        "--num-workers",
        "0",
    ]
    assert cli_main(base + ["--recipe", "tanet_r51_k400"]) == 2
    err = capsys.readouterr().err
    assert "unknown recipe 'tanet_r51_k400'" in err and "tanet_r50_k400" in err
    assert cli_main(base + ["--model", "tsm_tinyy"]) == 2
    assert "unknown model 'tsm_tinyy'" in capsys.readouterr().err
    assert (
        cli_main(
            [
                "train",
                "--data",
                str(tmp_path / "nodata"),
                "--model",
                "tsn_tiny",
                "--work-dir",
                str(tmp_path / "nd"),
            ]
        )
        == 2
    )
    assert "nodata" in capsys.readouterr().err and not (tmp_path / "nd").exists()
    assert cli_main(base + ["--model", "tsn_tiny", "--model-kw", "num_classes=5"]) == 2
    err = capsys.readouterr().err
    assert "num_classes=5" in err and "3 classes" in err
    assert cli_main(base + ["--model", "tsn_tiny", "--set", "optimizer.lrr=1"]) == 2
    assert "no key 'lrr'" in capsys.readouterr().err


def test_checkpoint_of_another_model_names_the_keys(tiny_data, tmp_path, capsys):
    train("tsn_tiny", tiny_data, work_dir=tmp_path / "w", overrides=SMALL, **{**RUN, "epochs": 1})
    rc = cli_main(
        [
            "test",
            "--checkpoint",
            str(tmp_path / "w" / "last.pth"),
            "--model",
            "tsm_tiny",
            "--data",
            str(tiny_data),
            "--model-kw",
            "num_frames=4",
            "--num-workers",
            "0",
            "--backend",
            "pyav",
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "conv1.conv.net.weight" in err and "last.pth" in err  # tsm's shifted conv key, named with the file


def _as_v1(ck: dict) -> dict:
    """A checkpoint in the layout ``vidlib-train-1`` wrote (up to 17a615d): flat counters, sums in
    ``accum``."""
    st = ck.pop("state")
    ck.update(
        format="vidlib-train-1",
        epoch=st["epoch"],
        iter_in_epoch=st["iter_in_epoch"],
        global_iter=st["global_iter"],
        history=st["history"],
        best=st["best"],
        accum=[st["loss_sum"], float(st["correct"]), float(st["seen"])],
    )
    return ck


def test_a_vidlib_train_1_checkpoint_still_resumes(tiny_data, tmp_path):
    """Checkpoints written before TrainState existed resume exactly (format vidlib-train-1 -> TrainState)."""
    from vidlib.engine.checkpoint import atomic_save

    ref = train("tsn_tiny", tiny_data, work_dir=tmp_path / "ref", overrides=SMALL, **RUN)
    cfg = TrainConfig(model="tsn_tiny", data=tiny_data, work_dir=tmp_path / "old", overrides=SMALL, **RUN)
    first = Trainer(cfg)
    first.build()
    first._epoch()  # one of the three epochs, then "the old version stopped"
    ck = load_checkpoint_file(tmp_path / "old" / "last.pth")
    assert ck["format"] == "vidlib-train-2" and ck["state"]["epoch"] == 1
    atomic_save(_as_v1(ck), tmp_path / "old" / "last.pth")
    resumed = train(replace(cfg, resume=True))
    assert _comparable(resumed["history"]) == _comparable(ref["history"])
    for k, v in ref.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_options_are_typed_and_a_misspelt_one_lists_them(tiny_data):
    with pytest.raises(TypeError, match=r"unknown option 'epoch' \(did you mean 'epochs'.*model_kwargs"):
        train("tsn_tiny", tiny_data, epoch=3)
    with pytest.raises(TypeError, match="num_frames"):
        train("tsn_tiny", tiny_data, num_frames=4)  # a model argument: model_kwargs=dict(num_frames=4)
    with pytest.raises(ValueError, match="amp must be one of auto, off, bf16, fp16; got 'bf15'"):
        TrainConfig(amp="bf15")
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        TrainConfig(epochs=0)
    with pytest.raises(dataclasses_frozen_error()):
        TrainConfig().seed = 1  # frozen: vary a config with dataclasses.replace


def dataclasses_frozen_error():
    import dataclasses

    return dataclasses.FrozenInstanceError


def test_the_cli_is_built_from_the_config_fields():
    """Every TrainConfig field with CLI settings is a `train` option with the field's help; nothing else
    is."""
    from dataclasses import fields

    from vidlib.engine.cli import build_parser
    from vidlib.engine.config import config_from_args

    parser = build_parser()
    train_parser = parser._subparsers._group_actions[0].choices["train"]
    dests = {a.dest: a for a in train_parser._actions if a.dest != "help"}
    on_cli = {f.name: f for f in fields(TrainConfig) if f.metadata["cli"] is not None}
    assert set(dests) == set(on_cli)
    for name, f in on_cli.items():
        assert dests[name].help == f.metadata["help"], name
    args = parser.parse_args(
        [
            "train",
            "--data",
            "d",
            "--set",
            "optimizer.lr=0.1",
            "--model-kw",
            "num_frames=4",
            "--no-deterministic",
            "--resume",
            "--epochs",
            "2",
        ]
    )
    cfg = config_from_args(args)
    assert cfg == TrainConfig(
        data="d",
        overrides={"optimizer.lr": 0.1},
        model_kwargs={"num_frames": 4},
        deterministic=False,
        resume=True,
        epochs=2,
    )
    # one default per option: the CLI takes the dataclass's (num_workers, results_dir ...)
    assert args.num_workers == TrainConfig.num_workers == 0 and args.results_dir is None
    help_text = " ".join(train_parser.format_help().split())  # unwrapped
    assert "--model-kw num_frames=16 dropout=0.5" in help_text and "{'num_frames'" not in help_text
    assert "--set optimizer.weight_decay=5e-4" in help_text


def test_without_a_terminal_training_logs_every_n_iterations(tiny_data, tmp_path, capsys):
    """No tqdm bar (progress=False, as under nohup/slurm): a line every log_interval iterations.

    The same lines go into log.txt.
    """
    run = {**RUN, "epochs": 1, "batch_size": 2, "verbose": True, "progress": False}
    train("tsn_tiny", tiny_data, work_dir=tmp_path / "w", overrides=SMALL, log_interval=2, **run)
    printed = [line for line in capsys.readouterr().out.splitlines() if " iter " in line]
    logged = [line for line in (tmp_path / "w" / "log.txt").read_text().splitlines() if " iter " in line]
    assert len(printed) == len(logged) == 3  # 6 iterations (12 videos / batch 2), every 2nd
    pattern = r"epoch 1/1 iter \d/6 \| loss \d\.\d+ \| lr \S+ \| \d+\.\d+ s/it \| ETA"
    assert all(re.search(pattern, x) for x in logged), logged
    assert "amp off" in (tmp_path / "w" / "log.txt").read_text()


def test_checkpoints_keep_normal_file_permissions(tiny_data, tmp_path):
    train("tsn_tiny", tiny_data, work_dir=tmp_path / "w", overrides=SMALL, **{**RUN, "epochs": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "w" / "last.pth").stat().st_mode & 0o777 == 0o666 & ~mask


def test_the_recipe_and_the_model_name_are_settled_once(tiny_data, tmp_path):
    """auto_scale_lr scales the learning rate in __init__ and build() leaves it; a model other than the
    recipe's keeps only the portable recipe kwargs, and the log names the dropped ones."""
    from vidlib.engine.training import model_kwargs_for

    cfg = TrainConfig("tsn_tiny", tiny_data, work_dir=tmp_path / "w", overrides=SMALL, **{**RUN, "epochs": 1})
    scaled = Trainer(replace(cfg, auto_scale_lr=True))
    plain = Trainer(cfg)
    rec = scaled.recipe
    want = plain.recipe["optimizer"]["lr"] * rec["batch_size"] / rec["base_batch_size"]
    assert rec["optimizer"]["lr"] == pytest.approx(want) and scaled.model_name == "tsn_tiny"
    scaled.build()
    assert scaled.recipe["optimizer"]["lr"] == pytest.approx(want)  # not scaled a second time
    assert sum("auto-scale-lr" in line for line in scaled.override_log) == 1

    recipe = dict(vidlib.engine.get_recipe("synthetic_tiny"), model="tsm_tiny")
    recipe["model_kwargs"] = {"num_frames": 4, "shift_div": 4, "dropout": 0.1}
    kw, dropped = model_kwargs_for("tsn_tiny", recipe, {"dropout": 0.2})
    assert kw == {"num_frames": 4, "dropout": 0.2} and dropped == ["shift_div"]
    t = Trainer(replace(cfg, recipe=recipe, model_kwargs={}, work_dir=tmp_path / "d", verbose=False))
    assert t.dropped_kwargs == ["shift_div"]
    t.build()
    log = (tmp_path / "d" / "log.txt").read_text()
    assert "WARNING: model tsn_tiny is not the recipe's (tsm_tiny)" in log and "shift_div" in log


def test_the_config_holds_plain_data_only(tiny_data, tmp_path):
    """frame_cache is a switch (a FrameCache object goes to Trainer); results_dir is off by default."""
    from vidlib.data import FrameCache
    from vidlib.errors import BadConfigError

    assert TrainConfig().results_dir is None and TrainConfig().frame_cache is False
    with pytest.raises(BadConfigError, match="Trainer"):
        TrainConfig(frame_cache=FrameCache())
    cache = FrameCache()
    t = Trainer(TrainConfig("tsn_tiny", tiny_data, work_dir=tmp_path / "w", **RUN), frame_cache=cache)
    assert t.frame_cache is cache
    s = train(
        "tsn_tiny",
        tiny_data,
        work_dir=tmp_path / "x",
        overrides=SMALL,
        frame_cache=cache,
        **{**RUN, "epochs": 1},
    )
    assert len(cache) > 0 and s["summary_file"] == str(tmp_path / "x" / "summary.json")
