"""Something-Synthetic: a small video benchmark that needs temporal modelling, written as real mp4 files.

24 Something-Something-style classes over textured objects on a textured, drifting, jittering
background (``CLASSES``):

- 9 **time-reversal pairs** (left/right, down/up, clockwise/counter-clockwise turning, approaching/
  receding, appearing/disappearing, opening/closing, circling cw/ccw, covering/uncovering, move-then-stop/
  stop-then-move). The second class of a pair is *exactly* the first one played backwards: the generator
  renders the forward clip and reverses the frame order. Every frame of a pair's videos therefore comes
  from the same distribution, so per-frame features averaged over time (TSN) cannot tell the two apart.
- 2 **tempo** pairs (spinning, pulsing: slow vs fast) and the **multi-phase** pair back-and-forth vs
  one-way (move-then-stop vs stop-then-move is multi-phase too). These classes are time-symmetric, so
  each video is reversed with probability 1/2.

Per video: object shape, colour, texture, size, position, start time, speed within the class range,
background texture and drift, camera jitter, and length (24-96 frames at 12 fps). Everything is drawn
from ``numpy.random.default_rng([seed, split, label, index])``, so the same seed gives the same frames
whatever the number of worker processes.

Layout written (``meta.json`` last, it marks the dataset complete)::

    <out>/videos/{train,val}/NNNNN.mp4   H.264, GOP 8, no B-frames
    <out>/train.txt, val.txt               mmaction2 video lists "videos/train/00000.mp4 17"
    <out>/label_map.txt                    class names, one per line
    <out>/meta.json                        classes, reversal_pairs, tempo_groups, multiphase_groups,
                                           flip_label_map (horizontal flip), resolution, fps, seed, counts

CLI: ``python -m vidlib.data.synthetic --out data/synthetic --seed 0 [--quick]``.
Explained in: the book chapter "From video to tensor" (``book/data.md``).
"""

from __future__ import annotations

import argparse
import colorsys
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .annotations import write_label_map, write_video_list
from .video import write_video

__all__ = [
    "CLASSES",
    "CLASS_IDS",
    "REVERSAL_PAIRS",
    "TEMPO_GROUPS",
    "MULTIPHASE_GROUPS",
    "FLIP_LABEL_MAP",
    "render_clip",
    "STATE_NAMES",
    "render_frames",
    "generate",
    "ensure",
    "content_hash",
    "data_identity",
    "main",
]

# (id, label-map name); pairs are adjacent. The first member of a reversal pair is the rendered one.
_CLASSES = [
    ("left_to_right", "Moving [something] from left to right"),
    ("right_to_left", "Moving [something] from right to left"),
    ("down", "Moving [something] down"),
    ("up", "Moving [something] up"),
    ("turn_cw", "Turning [something] clockwise"),
    ("turn_ccw", "Turning [something] counter-clockwise"),
    ("approach", "[Something] approaching the camera"),
    ("recede", "[Something] moving away from the camera"),
    ("appear", "[Something] appearing"),
    ("disappear", "[Something] disappearing"),
    ("open", "Opening [something]"),
    ("close", "Closing [something]"),
    ("circle_cw", "[Something] circling clockwise"),
    ("circle_ccw", "[Something] circling counter-clockwise"),
    ("cover", "Covering [something]"),
    ("uncover", "Uncovering [something]"),
    ("move_then_stop", "Moving [something] and then stopping"),
    ("stop_then_move", "[Something] standing still and then moving"),
    ("spin_slow", "Spinning [something] slowly"),
    ("spin_fast", "Spinning [something] fast"),
    ("pulse_slow", "Pulsing [something] slowly"),
    ("pulse_fast", "Pulsing [something] fast"),
    ("back_and_forth", "Moving [something] back and forth"),
    ("one_way", "Moving [something] one way"),
]
CLASS_IDS = [c for c, _ in _CLASSES]
CLASSES = [n for _, n in _CLASSES]
_ID = {c: i for i, c in enumerate(CLASS_IDS)}
REVERSAL_PAIRS = [
    [_ID[a], _ID[b]]
    for a, b in [
        ("left_to_right", "right_to_left"),
        ("down", "up"),
        ("turn_cw", "turn_ccw"),
        ("approach", "recede"),
        ("appear", "disappear"),
        ("open", "close"),
        ("circle_cw", "circle_ccw"),
        ("cover", "uncover"),
        ("move_then_stop", "stop_then_move"),
    ]
]
TEMPO_GROUPS = [[_ID["spin_slow"], _ID["spin_fast"]], [_ID["pulse_slow"], _ID["pulse_fast"]]]
MULTIPHASE_GROUPS = [[_ID["move_then_stop"], _ID["stop_then_move"]], [_ID["back_and_forth"], _ID["one_way"]]]
# A horizontal flip swaps left/right and clockwise/counter-clockwise; every other class keeps its label.
FLIP_LABEL_MAP = {
    a: b
    for x, y in [("left_to_right", "right_to_left"), ("turn_cw", "turn_ccw"), ("circle_cw", "circle_ccw")]
    for a, b in ((_ID[x], _ID[y]), (_ID[y], _ID[x]))
}
_REVERSED_OF = {b: a for a, b in REVERSAL_PAIRS}  # label -> the class it is rendered from
_TIME_SYMMETRIC = {c for g in TEMPO_GROUPS for c in g} | {_ID["back_and_forth"], _ID["one_way"]}

FPS = 12
LENGTH_RANGE = (24, 96)
_SYMMETRIC_SHAPES = ("circle", "square", "triangle", "pentagon", "hexagon")
_ASYMMETRIC_SHAPES = ("key", "arrow", "ell")


# ---------------------------------------------------------------------------------------------- shapes
def _box(u, v, cu, cv, hu, hv):
    return np.maximum(np.abs(u - cu) - hu, np.abs(v - cv) - hv)


def _polygon(u, v, n, apothem):
    angles = 2 * np.pi * np.arange(n) / n - np.pi / 2
    return np.max([u * np.cos(a) + v * np.sin(a) for a in angles], axis=0) - apothem


def _sdf(shape: str, u, v, mouth: float = 0.0):
    """Signed distance (in object radii, negative inside) of a shape of radius ~1 at local (u, v)."""
    r = np.hypot(u, v)
    if shape == "circle":
        d = r - 1.0
    elif shape == "square":
        d = _box(u, v, 0, 0, 0.8, 0.8)
    elif shape in ("triangle", "pentagon", "hexagon"):
        n = {"triangle": 3, "pentagon": 5, "hexagon": 6}[shape]
        d = _polygon(u, v, n, 0.55 if n == 3 else 0.85)
    elif shape == "key":  # a bar with a disc at one end: its orientation is unambiguous
        d = np.minimum(_box(u, v, -0.2, 0, 0.8, 0.2), np.hypot(u - 0.62, v) - 0.38)
    elif shape == "arrow":
        head = np.maximum(0.3 - u, np.abs(v) - 0.55 * (1.0 - u) / 0.7)  # triangle from u=0.3 to the tip u=1
        d = np.minimum(_box(u, v, -0.35, 0, 0.65, 0.18), head)
    elif shape == "ell":
        d = np.minimum(_box(u, v, 0, 0.6, 0.9, 0.25), _box(u, v, -0.65, 0, 0.25, 0.85))
    else:
        raise ValueError(f"unknown shape {shape!r}")
    if np.any(mouth > 0):  # cut a wedge of half-angle `mouth` around +u (opening / closing)
        wedge = r * np.sin(np.clip(np.abs(np.arctan2(v, u)) - mouth, -np.pi / 2, np.pi / 2))
        d = np.maximum(d, -wedge)
    return d


# ----------------------------------------------------------------------------------------- rendering
def _random_colour(rng, sat=(0.55, 1.0), val=(0.6, 1.0)):
    return np.array(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(*sat), rng.uniform(*val)))


def _texture_fn(rng):
    """A texture in object coordinates (it moves and turns with the object), values in [0.55, 1]."""
    kind, k, ph = rng.integers(3), rng.uniform(2.5, 5.0), rng.uniform(0, 2 * np.pi)
    if kind == 0:
        return lambda u, v: 0.775 + 0.225 * np.sin(k * np.pi * u + ph)
    if kind == 1:
        return lambda u, v: 0.775 + 0.225 * np.sin(k * np.pi * u + ph) * np.sin(k * np.pi * v)
    return lambda u, v: 0.775 + 0.225 * np.clip(u, -1, 1)


def _background(rng, size: int, margin: int) -> np.ndarray:
    """A smooth two-colour noise texture [S + 2m, S + 2m, 3] in [0, 1], plus fine grain."""
    big = size + 2 * margin
    coarse = torch.from_numpy(rng.uniform(size=(1, 1, 7, 7))).float()
    fine = torch.from_numpy(rng.uniform(size=(1, 1, 24, 24))).float()
    # [big, big]
    mix = (
        0.65 * F.interpolate(coarse, (big, big), mode="bicubic", align_corners=False)
        + 0.35 * F.interpolate(fine, (big, big), mode="bilinear", align_corners=False)
    )[0, 0].numpy()
    mix = np.clip(mix, 0, 1)[..., None]  # [big, big, 1]
    a, b = _random_colour(rng, (0.1, 0.5), (0.2, 0.6)), _random_colour(rng, (0.1, 0.5), (0.3, 0.8))
    grain = rng.normal(0, 0.03, size=(big, big, 1))
    return np.clip(a * (1 - mix) + b * mix + grain, 0, 1)


def _paint(canvas, X, Y, obj):
    """Alpha-composite object ``obj`` (a dict of per-frame arrays) onto all frames of ``canvas [L, S, S, 3]``.

    ``X``, ``Y`` are the pixel coordinates of every frame ``[L, S, S]`` (camera jitter included).
    """
    col = lambda a: np.asarray(a, dtype=np.float32)[:, None, None]  # noqa: E731  [L] -> [L, 1, 1]
    R = np.maximum(col(obj["radius"]), 0.05)
    c, s = np.cos(col(obj["angle"])), np.sin(col(obj["angle"]))
    dx, dy = X - col(obj["x"]), Y - col(obj["y"])  # [L, S, S]
    u, v = (c * dx + s * dy) / R, (-s * dx + c * dy) / R  # object coordinates (radius 1)
    d = _sdf(obj["shape"], u, v, col(obj["mouth"])) * R  # signed distance in pixels
    m = (np.clip(0.5 - d, 0, 1) * col(obj["alpha"]))[..., None]  # [L, S, S, 1] soft coverage
    colour = obj["colour"].astype(np.float32) * obj["texture"](u, v)[..., None]  # [L, S, S, 3]
    canvas *= 1 - m
    canvas += m * colour


def _progress(rng, L, lo=0.0, hi=0.15):
    """Linear 0 -> 1 over an event window that starts and ends at random times (symmetric in time)."""
    t0, t1 = rng.uniform(lo, hi) * L, L - 1 - rng.uniform(lo, hi) * L
    return np.clip((np.arange(L) - t0) / max(t1 - t0, 1.0), 0, 1)


def _object(rng, L, S, shapes=None, radius=(0.12, 0.19)):
    """A static object somewhere in the frame; the class program then animates its arrays."""
    shapes = shapes or _SYMMETRIC_SHAPES + _ASYMMETRIC_SHAPES
    R = rng.uniform(*radius) * S
    full = lambda v: np.full(L, float(v))  # noqa: E731
    return dict(
        shape=shapes[rng.integers(len(shapes))],
        colour=_random_colour(rng),
        texture=_texture_fn(rng),
        x=full(rng.uniform(R, S - R)),
        y=full(rng.uniform(R, S - R)),
        angle=full(rng.uniform(0, 2 * np.pi)),
        radius=full(R),
        alpha=full(1.0),
        mouth=full(0.0),
    )


def _translate(rng, o, S, p, direction, dist):
    """Move ``o`` by ``dist`` pixels along ``direction`` following progress ``p``; the path stays inside."""
    dx, dy = np.cos(direction) * dist, np.sin(direction) * dist
    R = o["radius"][0]
    x0 = rng.uniform(R + max(0, -dx), max(R + max(0, -dx), S - R - max(0, dx)) + 1e-6)
    y0 = rng.uniform(R + max(0, -dy), max(R + max(0, -dy), S - R - max(0, dy)) + 1e-6)
    o["x"], o["y"] = x0 + p * dx, y0 + p * dy


def _program(cid: str, rng, L: int, S: int) -> list[dict]:
    """Per-frame object parameters of a forward clip of class ``cid``: a list of
    objects, drawn in order."""
    o = _object(rng, L, S)
    p = _progress(rng, L)
    if cid in ("left_to_right", "down"):
        base = 0.0 if cid == "left_to_right" else np.pi / 2
        angle = base + rng.uniform(-0.15, 0.15)
        _translate(rng, o, S, p, angle, rng.uniform(0.45, 0.7) * S)
    elif cid in ("turn_cw", "spin_slow", "spin_fast"):
        o = _object(rng, L, S, _ASYMMETRIC_SHAPES, (0.28, 0.36))
        o["x"] = np.full(L, S / 2 + rng.uniform(-3, 3))  # centred
        o["y"] = np.full(L, S / 2 + rng.uniform(-3, 3))
        sweep = {
            "turn_cw": (150, 270),
            "spin_slow": (60, 120),
            "spin_fast": (420, 600),
        }[cid]
        # +angle is clockwise (y points down)
        sign = 1.0 if cid == "turn_cw" else rng.choice([-1.0, 1.0])
        o["angle"] = o["angle"] + sign * np.deg2rad(rng.uniform(*sweep)) * p
    elif cid == "approach":
        o = _object(rng, L, S, radius=(0.08, 0.11))
        o["x"][:], o["y"][:] = S / 2 + rng.uniform(-6, 6), S / 2 + rng.uniform(-6, 6)
        o["radius"] = o["radius"] * (1 + rng.uniform(1.4, 2.2) * p)
    elif cid == "appear":
        o["alpha"] = p
    elif cid == "open":
        o = _object(rng, L, S, ("circle",), (0.2, 0.28))
        o["mouth"] = np.deg2rad(2 + rng.uniform(55, 80) * p)  # half-angle of the mouth
    elif cid == "circle_cw":
        centre, rho = S / 2 + rng.uniform(-4, 4, size=2), rng.uniform(0.18, 0.26) * S
        o = _object(rng, L, S, radius=(0.1, 0.14))
        phi = rng.uniform(0, 2 * np.pi) + np.deg2rad(rng.uniform(180, 300)) * p
        o["x"], o["y"] = centre[0] + rho * np.cos(phi), centre[1] + rho * np.sin(phi)
    elif cid == "cover":
        o = _object(rng, L, S, radius=(0.12, 0.16))
        lid = _object(rng, L, S, ("square",), (0.4, 0.45))
        side = rng.integers(4) * np.pi / 2
        lid["angle"][:] = 0.0
        lid["x"] = o["x"] + np.cos(side) * 1.4 * S * (1 - p)  # starts outside the frame
        lid["y"] = o["y"] + np.sin(side) * 1.4 * S * (1 - p)
        return [o, lid]
    elif cid == "move_then_stop":
        t0, t1 = rng.uniform(0, 0.1) * L, rng.uniform(0.4, 0.55) * L
        p = np.clip((np.arange(L) - t0) / (t1 - t0), 0, 1)
        _translate(rng, o, S, p, rng.uniform(0, 2 * np.pi), rng.uniform(0.35, 0.55) * S)
    elif cid in ("pulse_slow", "pulse_fast"):
        slow = cid == "pulse_slow"
        cycles = rng.uniform(0.5, 0.75) if slow else rng.uniform(2.0, 2.5)
        phase = rng.uniform(0, 2 * np.pi)
        o["radius"] = o["radius"] * (1 + 0.35 * np.sin(2 * np.pi * cycles * p + phase))
    elif cid in ("back_and_forth", "one_way"):
        path = 1 - np.abs(1 - 2 * p) if cid == "back_and_forth" else p
        angle = rng.uniform(0, 2 * np.pi)
        _translate(rng, o, S, path, angle, rng.uniform(0.4, 0.6) * S)
    else:
        raise ValueError(f"no program for class {cid!r}")
    return [o]


#: What :func:`render_clip` reports of the main object in every frame (``return_states=True``): its
#: centre where it appears in the frame (camera jitter included) and its radius, as fractions of the frame
#: size, its opacity, the sine and cosine of its rotation, and the half-angle of its mouth (radians).
STATE_NAMES = ("x", "y", "radius", "alpha", "sin_angle", "cos_angle", "mouth")


def render_clip(
    label: int, rng: np.random.Generator, size: int = 64, length: int | None = None, *, return_states=False
):
    """Render one video of class ``label`` as uint8 ``[L, size, size, 3]`` (reversed classes reversed).

    With ``return_states=True``, also the main object's :data:`STATE_NAMES` in every frame, float32
    ``[L, 7]`` in the frames' order (the frames are the same either way).
    """
    L = int(length or rng.integers(LENGTH_RANGE[0], LENGTH_RANGE[1] + 1))
    source = _REVERSED_OF.get(label, label)
    objects = _program(CLASS_IDS[source], rng, L, size)
    margin = size // 2
    bg = _background(rng, size, margin)
    drift = rng.uniform(0.1, 0.4) * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])
    start = rng.uniform(margin * 0.3, margin * 1.7, size=2) - drift * L / 2
    jitter = np.cumsum(rng.normal(0, 0.35, size=(L, 2)), axis=0)
    jitter = np.clip(jitter - jitter.mean(0), -2, 2)  # camera shake, +-2 px
    # [L, 2]
    offsets = np.clip(np.round(start + drift * np.arange(L)[:, None] + jitter).astype(int), 0, 2 * margin)
    # [L, S, S, 3]
    canvas = np.stack([bg[oy : oy + size, ox : ox + size] for ox, oy in offsets]).astype(np.float32)
    Y, X = np.mgrid[0:size, 0:size].astype(np.float32)  # [S, S]
    X = X[None] + jitter[:, 0, None, None].astype(np.float32)  # [L, S, S]
    Y = Y[None] + jitter[:, 1, None, None].astype(np.float32)
    for o in objects:
        _paint(canvas, X, Y, o)
    frames = np.clip(canvas * 255 + 0.5, 0, 255).astype(np.uint8)  # [L, S, S, 3]
    reverse = label in _REVERSED_OF or (label in _TIME_SYMMETRIC and rng.uniform() < 0.5)
    frames = np.ascontiguousarray(frames[::-1]) if reverse else frames
    if not return_states:
        return frames
    o = objects[0]
    states = np.stack(  # [L, 7]: where and how the main object appears in each frame
        [(o["x"] - jitter[:, 0]) / size, (o["y"] - jitter[:, 1]) / size, o["radius"] / size, o["alpha"],
         np.sin(o["angle"]), np.cos(o["angle"]), o["mouth"]], axis=1).astype(np.float32)  # fmt: skip
    return frames, np.ascontiguousarray(states[::-1]) if reverse else states


def render_frames(num_clips: int, *, seed: int = 0, size: int = 64, frames_per_clip: int = 8):
    """Single frames of Something-Synthetic's world with the state of their main object: an image
    dataset for pre-training a frame encoder (the analogue of an image-pretrained backbone).

    Clip ``i`` is of class ``i % 24``, drawn from ``default_rng([seed, 2, label, i])`` (the train and
    val splits use 0 and 1 in that place, so these clips are not the benchmark's videos);
    ``frames_per_clip`` frames evenly spaced over it are kept.

    Returns ``(frames uint8 [N, size, size, 3], states float32 [N, 7] (STATE_NAMES), labels [N])``
    with ``N = num_clips * frames_per_clip``.
    """
    frames, states, labels = [], [], []
    for i in range(num_clips):
        label = i % len(_CLASSES)
        clip, st = render_clip(label, np.random.default_rng([seed, 2, label, i]), size, return_states=True)
        keep = np.linspace(0, len(clip) - 1, frames_per_clip).round().astype(int)
        frames.append(clip[keep]), states.append(st[keep]), labels.append(np.full(len(keep), label))
    return np.concatenate(frames), np.concatenate(states), np.concatenate(labels)


# ---------------------------------------------------------------------------------------- generation
_SPLIT_CODE = {"train": 0, "val": 1}


def _make_one(task) -> tuple[str, int, int]:
    out, split, label, index, vid, seed, size = task
    rng = np.random.default_rng([seed, _SPLIT_CODE[split], label, index])
    frames = render_clip(label, rng, size)
    rel = f"videos/{split}/{vid:05d}.mp4"
    write_video(Path(out) / rel, frames, FPS, gop=8, threads=1)
    return rel, label, len(frames)


def _codec_name() -> str:
    import av

    return "libx264 crf 17" if "libx264" in av.codecs_available else "mpeg4 4 Mbit/s"


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker processes)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def generate(
    out,
    seed: int = 0,
    quick: bool = False,
    size: int = 64,
    per_class: dict | None = None,
    workers: int | None = None,
    verbose: bool = True,
) -> Path:
    """Write the benchmark to ``out`` (see the module docstring) and return its path.

    Args:
        seed: the dataset seed.
        quick: the small split (16 train / 6 val videos per class) instead of 100 / 25.
        size: frame side in pixels (64).
        per_class: e.g. ``{"train": 100, "val": 25}``, overrides ``quick``.
        workers: processes (default: all CPU cores).
    """
    out = Path(out)
    per_class = per_class or ({"train": 16, "val": 6} if quick else {"train": 100, "val": 25})
    (out / "meta.json").unlink(missing_ok=True)
    t0, cpu0 = time.time(), _cpu_seconds()
    tasks, lists = [], {}
    for split, n in per_class.items():
        order = np.random.default_rng([seed, _SPLIT_CODE[split], 999]).permutation(n * len(CLASSES))
        tasks += [
            (str(out), split, k // n, k % n, int(order[k]), seed, size) for k in range(n * len(CLASSES))
        ]
    workers = workers or os.cpu_count() or 1
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            results = list(ex.map(_make_one, tasks, chunksize=8))
    else:
        results = [_make_one(t) for t in tasks]
    for split in per_class:
        lists[split] = sorted((r for r in results if r[0].startswith(f"videos/{split}/")), key=lambda r: r[0])
        write_video_list(out / f"{split}.txt", [(r[0], r[1]) for r in lists[split]])
    write_label_map(out / "label_map.txt", CLASSES)
    lengths = [r[2] for r in results]
    meta = dict(
        name="Something-Synthetic",
        generator="vidlib.data.synthetic",
        seed=seed,
        quick=quick,
        classes=CLASSES,
        class_ids=CLASS_IDS,
        num_classes=len(CLASSES),
        reversal_pairs=REVERSAL_PAIRS,
        tempo_groups=TEMPO_GROUPS,
        multiphase_groups=MULTIPHASE_GROUPS,
        flip_label_map={str(k): v for k, v in FLIP_LABEL_MAP.items()},
        resolution=[size, size],
        fps=FPS,
        length_range=list(LENGTH_RANGE),
        codec=_codec_name() + ", GOP 8, no B-frames",
        counts={s: len(v) for s, v in lists.items()},
        per_class=per_class,
        total_frames=int(sum(lengths)),
        generation_seconds=round(time.time() - t0, 1),
        generation_cpu_seconds=round(_cpu_seconds() - cpu0, 1),
        workers=workers,
        content_sha256=content_hash(out),
    )
    (out / "meta.json").write_text(json.dumps(meta, indent=1))  # last: marks the dataset complete
    if verbose:
        print(
            f"Something-Synthetic: {len(results)} videos ({meta['counts']}), {meta['total_frames']} frames "
            f"-> {out} in {meta['generation_seconds']} s ({meta['generation_cpu_seconds']} CPU s) "
            f"with {workers} workers"
        )
    return out


def content_hash(root) -> str:
    """SHA-256 over the lists, the label map and every video's bytes (sorted paths): the data's identity.

    Two folders with the same hash hold the same videos bit for bit, so training results can be compared
    across machines; ``meta.json`` records it (``content_sha256``).
    """
    import hashlib

    root = Path(root)
    h = hashlib.sha256()
    # the lists, the label map, videos
    files = sorted(root.glob("*.txt")) + sorted((root / "videos").rglob("*.mp4"))
    for f in files:
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


def data_identity(root) -> dict:
    """What identifies a generated data folder in a results file: name, seed, quick, counts and content hash
    (computed now when ``meta.json`` predates the hash)."""
    root = Path(root)
    meta = json.loads((root / "meta.json").read_text())
    return dict(
        root=str(root),
        seed=meta["seed"],
        quick=meta["quick"],
        counts=meta["counts"],
        codec=meta["codec"],
        content_sha256=meta.get("content_sha256") or content_hash(root),
    )


def ensure(root="data/synthetic", quick: bool = False, seed: int = 0, **kw) -> Path:
    """Generate the benchmark into ``root`` unless ``root/meta.json`` exists; return ``root``."""
    root = Path(root)
    if (root / "meta.json").is_file():
        return root
    return generate(root, seed=seed, quick=quick, **kw)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m vidlib.data.synthetic", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder, e.g. data/synthetic")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="16 train / 6 val videos per class")
    ap.add_argument("--size", type=int, default=64, help="frame side in pixels")
    ap.add_argument("--train-per-class", type=int)
    ap.add_argument("--val-per-class", type=int)
    ap.add_argument("--workers", type=int, default=None)
    a = ap.parse_args(argv)
    per_class = None
    if a.train_per_class or a.val_per_class:
        d = {"train": 16, "val": 6} if a.quick else {"train": 100, "val": 25}
        per_class = {"train": a.train_per_class or d["train"], "val": a.val_per_class or d["val"]}
    generate(a.out, seed=a.seed, quick=a.quick, size=a.size, per_class=per_class, workers=a.workers)


if __name__ == "__main__":
    main()
