"""Bad input gets one clear message and exit status 2; nothing is lost without a record.

``test_bad_input`` runs every case of ``CASES`` through ``python -m vidlib`` (in process) and checks the
exit status, that stderr is one ``error:`` line without a traceback, and that it names the file, key or
value. ``test_skipped_and_missing_videos_are_counted`` checks the reports when two videos of a list are bad.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SMALL, make_tiny_data

import vidlib
from vidlib.data import write_video
from vidlib.engine.checkpoint import atomic_save
from vidlib.engine.cli import main as cli_main
from vidlib.errors import InputError

FAST = [
    "--epochs",
    "1",
    "--batch-size",
    "4",
    "--model-kw",
    "num_frames=4",
    "--amp",
    "off",
    "--backend",
    "pyav",
]
FAST += [x for k, v in SMALL.items() for x in ("--set", f"{k}={v}")]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Data folders and files for every case: good data, broken copies and foreign checkpoints."""
    root = tmp_path_factory.mktemp("bad")
    good = make_tiny_data(root / "good")
    e = {"root": root, "good": good}

    def variant(name: str, change) -> Path:
        d = root / name
        shutil.copytree(good, d)
        change(d)
        return d

    e["no_label_map"] = variant("no_label_map", lambda d: (d / "label_map.txt").unlink())
    e["ten_classes"] = variant(
        "ten_classes", lambda d: (d / "label_map.txt").write_text("".join(f"c{i}\n" for i in range(10)))
    )
    e["empty_video"] = variant("empty_video", lambda d: (d / "videos/train_0_1.mp4").write_bytes(b""))
    e["missing_video"] = variant("missing_video", lambda d: (d / "videos/val_1_0.mp4").unlink())
    e["bad_label"] = variant(
        "bad_label",
        lambda d: (d / "val.txt").write_text((d / "val.txt").read_text() + "videos/val_0_0.mp4 7\n"),
    )

    def truncate(d: Path) -> None:  # an mp4 with its index (moov) at the front, cut in the middle
        frames = np.random.default_rng(0).integers(0, 255, (74, 32, 32, 3), dtype=np.uint8)
        path = d / "videos/train_0_0.mp4"
        _write_faststart(path, frames)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    e["truncated"] = variant("truncated", truncate)

    def model_ckpt(name, n_classes, **extra):
        net = vidlib.create_model("tsn_tiny", num_classes=n_classes, num_frames=4)
        ck = dict(
            format="vidlib-train-2",
            model_name="tsn_tiny",
            model_kwargs=dict(num_classes=n_classes, num_frames=4),
            model=net.state_dict(),
            **extra,
        )
        return atomic_save(ck, root / name)

    e["ck24"] = model_ckpt("ck24.pth", 24)
    e["ck3"] = model_ckpt("ck3.pth", 3)
    ck = torch.load(e["ck3"], weights_only=True)
    del ck["model_name"]
    e["ck_no_name"] = atomic_save(ck, root / "ck_no_name.pth")
    (root / "ck_text.pth").write_text("this is not a checkpoint\n" * 20)
    (root / "ck_random.pth").write_bytes(np.random.default_rng(1).bytes(4096))
    e["ck_text"], e["ck_random"] = root / "ck_text.pth", root / "ck_random.pth"
    e["ck_video"] = good / "videos/val_0_0.mp4"
    return e


def _write_faststart(path: Path, frames: np.ndarray) -> None:
    import av

    with av.open(str(path), mode="w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=8)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def _train(data_key, *extra):
    return lambda e, w: [
        "train",
        "--model",
        "tsn_tiny",
        "--data",
        str(e[data_key]),
        "--work-dir",
        str(w),
        "--results-dir",
        str(w.parent / "runs"),
        "--num-workers",
        "0",
        *FAST,
        *extra,
    ]


def _a_file(path: Path) -> Path:
    path.write_text("not a folder\n")
    return path


def _test(ck_key, data_key="good", *extra):
    return lambda e, w: [
        "test",
        "--checkpoint",
        str(e[ck_key]),
        "--data",
        str(e[data_key]),
        "--num-workers",
        "0",
        "--backend",
        "pyav",
        "--mode",
        "val",
        *extra,
    ]


# (case id, argv builder (env, work dir), substrings the one-line message must contain)
CASES = [
    (
        "test: 24-class checkpoint on 3-class data",
        _test("ck24"),
        ["ck24.pth has 24 classes", "good/label_map.txt has 3"],
    ),
    (
        "test: 3-class checkpoint on 10-class data",
        _test("ck3", "ten_classes"),
        ["ck3.pth has 3 classes", "ten_classes/label_map.txt has 10"],
    ),
    ("train: no label_map.txt", _train("no_label_map"), ["no_label_map/label_map.txt is missing"]),
    ("test: no label_map.txt", _test("ck3", "no_label_map"), ["no_label_map/label_map.txt is missing"]),
    (
        "train: empty video read in a DataLoader worker",
        lambda e, w: _train("empty_video")(e, w)[: -len(FAST) - 2] + ["--num-workers", "2", *FAST],
        ["empty_video/videos/train_0_1.mp4", "empty file"],
    ),
    (
        "train: truncated mp4 with its index at the front (pyav)",
        _train("truncated"),
        ["truncated/videos/train_0_0.mp4", "truncated: header says 74 frames"],
    ),
    (
        "test: a text file as --checkpoint",
        _test("ck_text"),
        ["ck_text.pth is not a PyTorch checkpoint", "text"],
    ),
    (
        "test: random bytes as --checkpoint",
        _test("ck_random"),
        ["ck_random.pth is not a PyTorch checkpoint", "binary data"],
    ),
    (
        "test: an mp4 as --checkpoint",
        _test("ck_video"),
        ["val_0_0.mp4 is not a PyTorch checkpoint", "MP4 video"],
    ),
    (
        "test: a checkpoint without model_name",
        _test("ck_no_name"),
        ["ck_no_name.pth", "without the key(s) 'model_name'", "top-level keys", "model_kwargs"],
    ),
    (
        "train: --set optimizer.lr=abc",
        _train("good", "--set", "optimizer.lr=abc"),
        ["optimizer.lr", "'abc'", "number"],
    ),
    (
        "train: --model-kw dropuot=0.5",
        _train("good", "--model-kw", "dropuot=0.5"),
        ["dropuot", "tsn_tiny", "dropout"],
    ),
    (
        "flops: --shape with 7 frames for an 8-frame model",
        lambda e, w: ["flops", "--model", "tsm_tiny", "--shape", "1", "3", "7", "64", "64"],
        ["(1, 3, 7, 64, 64)"],
    ),
    (
        "train: unknown model",
        _train("good", "--model", "tsm_tinyy"),
        ["unknown model 'tsm_tinyy'", "tsm_tiny"],
    ),
    (
        "train: unknown recipe",
        _train("good", "--recipe", "tanet_r51_k400"),
        ["unknown recipe 'tanet_r51_k400'"],
    ),
    (
        "train: missing data folder",
        lambda e, w: [
            "train",
            "--model",
            "tsn_tiny",
            "--data",
            str(e["root"] / "nodata"),
            "--work-dir",
            str(w),
        ],
        ["nodata"],
    ),
    ("train: a listed video is missing", _train("missing_video"), ["1 of 6 videos", "val.txt", "missing"]),
    ("train: misspelt --set key", _train("good", "--set", "optimizer.lrr=1"), ["no key 'lrr'"]),
    ("train: label out of range", _train("bad_label"), ["bad_label/val.txt", "labels out of range"]),
    (
        "test: checkpoint of another model",
        _test("ck3", "good", "--model", "tsm_tiny"),
        ["ck3.pth", "conv1.conv.net.weight"],
    ),
    (
        "train: --work-dir is an existing file",
        lambda e, w: _train("good")(e, _a_file(w.parent / "a_file")),
        ["a_file exists and is not a folder"],
    ),
    (
        "train: --work-dir under an existing file",
        lambda e, w: _train("good")(e, _a_file(w.parent / "a_file") / "run"),
        ["a_file/run cannot be created", "a_file exists and is not a folder"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, env, tmp_path, capsys):
    _, argv, needles = case
    work = tmp_path / "work"
    rc = cli_main(argv(env, work))
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    lines = err.splitlines()
    assert lines[0].startswith("error: ") and "Traceback" not in err, err
    # one message (+ its key list)
    assert len(lines) == 1 or all(line.startswith("  ") for line in lines[1:]), err
    for needle in needles:
        assert needle in err, (needle, err)
    if argv(env, work)[0] == "train" and work.exists():  # only a failure after the start leaves the work dir,
        # with the error at the end of its log
        assert "ERROR" in (work / "log.txt").read_text().splitlines()[-1]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["benchmark", "--model", "tsm_tiny", "--iters", "0"], "--iters: expected a positive integer, got 0"),
        (
            ["test", "--checkpoint", "x.pth", "--data", "d", "--batch-size", "-1"],
            "--batch-size: expected a positive",
        ),
    ],
)
def test_bad_numbers_are_refused_by_the_parser(argv, needle, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(argv)
    assert e.value.code == 2 and needle in capsys.readouterr().err


def test_an_error_after_the_start_goes_into_the_log(env, tmp_path):
    """A run that fails mid-training keeps its work dir, and log.txt ends with the error."""
    data = tmp_path / "late"
    shutil.copytree(env["good"], data)
    frames = np.zeros((16, 32, 32, 3), dtype=np.uint8)
    write_video(data / "videos/train_2_3.mp4", frames[:4], fps=8)  # readable; broken below after the build
    work = tmp_path / "w"
    argv = _train("good")(dict(env, good=data), work)

    import vidlib.engine.training as T

    real = T.Trainer.build

    def build_then_break(self):
        real(self)
        (data / "videos/train_2_3.mp4").write_bytes(b"")

    T.Trainer.build = build_then_break
    try:
        assert cli_main(argv) == 2
    finally:
        T.Trainer.build = real
    log = (work / "log.txt").read_text().strip().splitlines()
    assert "ERROR (VideoReadError)" in log[-1] and "train_2_3.mp4: empty file" in log[-1]


def test_skipped_and_missing_videos_are_counted(env, tmp_path, capsys):
    """Two bad videos in the lists (one missing, one unreadable): every report counts and lists them."""
    data = tmp_path / "two_bad"
    shutil.copytree(env["good"], data)
    (data / "videos/val_2_1.mp4").unlink()  # missing
    (data / "videos/val_0_1.mp4").write_bytes(b"\x00" * 100)  # unreadable
    work = tmp_path / "w"
    rc = cli_main(_train("good", "--on-error", "skip", "--epochs", "2")(dict(env, good=data), work))
    out = capsys.readouterr().out
    assert rc == 0
    summary = json.loads(Path(work.parent / "runs").glob("*.json").__next__().read_text())
    assert summary["missing"] == {"train": [], "val": [str(data / "videos/val_2_1.mp4")]}
    assert (
        summary["unreadable"]["val"] == [str(data / "videos/val_0_1.mp4")]
        and summary["unreadable"]["train"] == []
    )
    assert (summary["num_missing"], summary["num_unreadable"]) == (1, 1)
    assert summary["val"]["num_unreadable"] == 1 and summary["val"]["num_samples"] == 4  # 6 listed - 1 - 1
    assert "1 unreadable, 1 missing: see" in out
    report = tmp_path / "report.json"
    rc = cli_main(
        _test("ck3", "good", "--on-error", "skip", "--out", str(report))(dict(env, good=data), None)
    )
    out = capsys.readouterr().out
    assert rc == 0 and "6 videos, 1 unreadable, 1 missing: see the report" in out
    rep = json.loads(report.read_text())
    assert rep["unreadable"] == [str(data / "videos/val_0_1.mp4")] and rep["missing"] == [
        str(data / "videos/val_2_1.mp4")
    ]
    # a second evaluation in the same process reports the same (nothing shown "only once")
    rc = cli_main(_test("ck3", "good", "--on-error", "skip")(dict(env, good=data), None))
    assert rc == 0 and "1 unreadable, 1 missing" in capsys.readouterr().out


def test_a_skipped_training_video_is_recorded(env, tmp_path):
    """In training an unreadable video is replaced by another one, and the summary lists it."""
    data = tmp_path / "bad_train"
    shutil.copytree(env["good"], data)
    (data / "videos/train_1_2.mp4").write_bytes(b"garbage" * 50)
    s = vidlib.engine.train(
        "tsn_tiny",
        data,
        work_dir=tmp_path / "w",
        results_dir=None,
        verbose=False,
        on_error="skip",
        epochs=1,
        batch_size=4,
        backend="pyav",
        amp="off",
        overrides=SMALL,
        model_kwargs=dict(num_frames=4),
    )
    assert s["unreadable"]["train"] == [str(data / "videos/train_1_2.mp4")] and s["num_unreadable"] == 1


def test_key_value_flags_take_several_pairs_and_repeat():
    """``--model-kw`` / ``--set`` take one or more KEY=VALUE each and may repeat (the chapters print
    ``--model-kw dataset=sthv1 imagenet_init=...``); a bad pair still fails with exit status 2."""
    from vidlib.engine.cli import build_parser

    parser = build_parser()
    a = parser.parse_args(
        ["test", "--checkpoint", "x.pth", "--data", "d", "--model", "tin_r50"]
        + ["--model-kw", "dataset=sthv1", "num_frames=16", "--model-kw", "dropout=0.5"]
    )
    assert dict(a.model_kwargs) == {"dataset": "sthv1", "num_frames": 16, "dropout": 0.5}
    t = parser.parse_args(["train", "--data", "d", "--set", "optimizer.lr=0.1", "epochs=2", "--set", "x=1"])
    assert dict(t.overrides) == {"optimizer.lr": 0.1, "epochs": 2, "x": 1}
    with pytest.raises(SystemExit) as err:
        parser.parse_args(["train", "--data", "d", "--model-kw", "dropout=0.5", "oops"])
    assert err.value.code == 2


def test_ctrl_c_checkpoints_and_prints_the_resume_command(env, tmp_path, capsys):
    """Ctrl-C in the second epoch: exit 130 and one line naming the checkpoint and the command that resumes
    the run; that command finishes it with the numbers of an uninterrupted run."""
    import os
    import shlex
    import signal

    import vidlib.engine.training as T

    argv = _train("good", "--epochs", "2")(env, tmp_path / "w")
    assert cli_main(_train("good", "--epochs", "2")(env, tmp_path / "whole")) == 0
    whole = json.loads((tmp_path / "whole" / "summary.json").read_text())
    capsys.readouterr()

    real = T.Trainer._step

    def step_then_ctrl_c(self, clips, y):
        out = real(self, clips, y)
        if self.state.epoch == 1 and self.state.iter_in_epoch == 0:  # the 1st step of the 2nd epoch
            os.kill(os.getpid(), signal.SIGINT)  # held back until the step is recorded
        return out

    T.Trainer._step = step_then_ctrl_c
    try:
        rc = cli_main(argv)
    finally:
        T.Trainer._step = real
    err = capsys.readouterr().err.strip()
    assert rc == 130 and "Traceback" not in err and len(err.splitlines()) == 1, err
    last = tmp_path / "w" / "last.pth"
    assert f"the last checkpoint is {last}" in err, err
    state = torch.load(last, weights_only=True)["state"]
    assert (state["epoch"], state["iter_in_epoch"]) == (1, 1)  # written at the interrupt, mid-epoch
    command = shlex.split(err.split("resume with: ", 1)[1])
    assert command[:3] == ["python", "-m", "vidlib"] and command[-1] == "--resume"
    assert cli_main(command[3:]) == 0
    resumed = json.loads((tmp_path / "w" / "summary.json").read_text())

    def numbers(s):
        return [{k: v for k, v in h.items() if not k.endswith("time_s")} for h in s["history"]]

    assert numbers(resumed) == numbers(whole)
    assert "interrupted at epoch 2, iteration 1" in (tmp_path / "w" / "log.txt").read_text()


def test_resume_command_replaces_an_earlier_resume_path():
    from vidlib.engine.cli import resume_command

    argv = ["train", "--data", "d x", "--resume", "old.pth", "--epochs", "2"]
    assert resume_command(argv) == "python -m vidlib train --data 'd x' --epochs 2 --resume"
    assert resume_command(["train", "--resume=old.pth"]) == "python -m vidlib train --resume"


@pytest.mark.parametrize(
    "error", [RuntimeError("boom"), KeyError("boom"), TypeError("boom"), ValueError("boom")]
)
def test_a_bug_is_not_reported_as_bad_input(env, tmp_path, monkeypatch, capsys, error):
    """Only vidlib.errors.InputError (and a missing file) is bad input: any other exception keeps its
    traceback instead of becoming one line and exit status 2."""
    import vidlib.engine.training as T

    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(T, "check_classes", broken)
    with pytest.raises(type(error), match="boom"):
        cli_main(_train("good")(env, tmp_path / "w"))
    assert "error:" not in capsys.readouterr().err
    import vidlib.engine.evaluation as E

    monkeypatch.setattr(E, "evaluate", broken)
    with pytest.raises(type(error), match="boom"):
        cli_main(_test("ck3")(env, None))


def test_the_bad_input_errors_keep_their_builtin_bases():
    """Code that caught the built-in exceptions still catches the input errors."""
    from vidlib.data import VideoReadError
    from vidlib.errors import BadConfigError, UnknownModelError
    from vidlib.weights import CheckpointError

    assert issubclass(VideoReadError, RuntimeError) and issubclass(CheckpointError, RuntimeError)
    with pytest.raises(KeyError) as e:
        vidlib.create_model("no_such_model")
    assert isinstance(e.value, UnknownModelError) and isinstance(e.value, InputError)
    assert str(e.value).startswith("unknown model 'no_such_model'")  # no KeyError quotes
    assert issubclass(BadConfigError, ValueError)
