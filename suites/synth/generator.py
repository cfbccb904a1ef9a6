"""The offline generated suite ``synth``: seeded scenes, real mp4 files, Video-MME-style multiple choice.

Every video is a *scene* (:class:`Scene`): a plain background, one large object in the middle that drifts slowly,
a few tiny objects in the corners (static) and a sequence of brief *events*: a medium-sized coloured shape that
flashes on the screen for 2-3 frames (a quarter to three eighths of a second at 8 fps) somewhere away from the
other objects. Scenes are drawn from seeded ``numpy`` Generators, rendered to uint8 frames with boolean shape
masks (no Python loop over pixels) and written to mp4 with :func:`liteframe_bench.video.write_video`.

Each video gets one question of each family (multiple choice A-D, exactly one option true):

============  =====================  ==============  =========================================================
family        Video-MME task_type    needs           question
============  =====================  ==============  =========================================================
``count``     Counting Problem       many frames     How many times does a red circle briefly flash ...?
``appeared``  Object Recognition     many frames     Which of these objects briefly flashed ...?
``order``     Temporal Reasoning     many frames     In what order did the X, the Y and the Z flash ...?
``detail``    Attribute Perception   fine detail     What colour/shape is the small object in the <corner>?
``global``    Information Synopsis   single frame    What colour is the background / the large object ...?
============  =====================  ==============  =========================================================

``task_type`` must be one of Video-MME's twelve task categories (and ``domain``/``sub_category``/``duration``
Video-MME values too): lmms-eval's Video-MME aggregation indexes a fixed table by them and fails on anything else.
The suite's own family name is in ``family``; the mapping above is one-to-one, so Video-MME's per-task-category
log lines are per-family numbers.

Answers are correct by construction (the generator builds each scene around the answer it wants) and are checked
independently: :func:`check_answer` re-derives the true option from the scene description stored in the item
(``scene``, a JSON string) and the question/option text alone.

Files, under ``$LFBENCH_DATA/synth/<size>/``: ``videos/<videoID>.mp4``, ``train.json`` and ``eval.json``
(lists of items) and ``manifest.json`` (written last; the completion marker).
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from liteframe_bench.data import suite_dir
from liteframe_bench.errors import LfbenchError

#: Bump when scenes, rendering, questions or the file layout change: a folder made by another version is remade.
GENERATOR_VERSION = "1"
SUITE = "synth"
SPLITS = ("train", "eval")
LETTERS = "ABCD"

#: Bright object colours (events, the large object, the small objects) ...
OBJECT_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 30, 30),
    "green": (40, 190, 60),
    "blue": (40, 90, 240),
    "yellow": (250, 225, 40),
    "magenta": (225, 50, 210),
    "cyan": (40, 220, 230),
    "orange": (250, 140, 20),
    "white": (245, 245, 245),
}
#: ... and dark backgrounds, disjoint from them so every object stands out.
BACKGROUND_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (12, 12, 12),
    "grey": (105, 105, 105),
    "navy": (20, 28, 95),
    "dark green": (18, 80, 35),
    "brown": (105, 62, 25),
    "maroon": (110, 18, 40),
    "purple": (75, 30, 115),
    "teal": (15, 100, 100),
}
SHAPES = ("circle", "square", "triangle", "diamond", "cross")
#: The instruction of the open-ended task ``synth_open`` (the same questions, answered in words).
OPEN_PROMPT = "Answer with a word or a short phrase."
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")

#: family -> (Video-MME task_type, what it needs)
FAMILIES: dict[str, tuple[str, str]] = {
    "count": ("Counting Problem", "many_frames"),
    "appeared": ("Object Recognition", "many_frames"),
    "order": ("Temporal Reasoning", "many_frames"),
    "detail": ("Attribute Perception", "fine_detail"),
    "global": ("Information Synopsis", "single_frame"),
}
DOMAIN = "Film & Television"  # Video-MME values (its aggregation only accepts those)
SUB_CATEGORY = "Animation"

# Geometry, as fractions of the frame's shorter side S.
DOMINANT_RADIUS = (0.10, 0.14)  # half-size of the large object
DOMINANT_CENTRE = (0.40, 0.60)  # its centre stays in this square (start and end points drawn here)
EVENT_RADIUS = (0.05, 0.07)
SMALL_RADIUS = (0.012, 0.018)  # 11-16 px objects at 448 px: inside one 28 px InternVL token
SMALL_MIN_RADIUS = 3  # pixels
CORNER_ZONE = 0.20  # small objects live in [0, 0.2 S] squares at the corners; nothing else goes there
SMALL_CENTRE = (0.05, 0.15)
CLEARANCE = 0.02


@dataclass(frozen=True)
class SizeSpec:
    """How much to generate: resolution, frame rate, video lengths (cycled, balanced) and videos per split."""

    name: str
    width: int
    height: int
    fps: int
    seconds: tuple[int, ...]
    videos: dict[str, int]
    seeds: dict[str, int]
    event_frames: tuple[int, int] = (2, 3)  # each event lasts this many frames (inclusive range)
    event_gap: int = 4  # at least this many empty frames between two events
    margin: int = 4  # no event in the first/last frames

    def as_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


SIZES: dict[str, SizeSpec] = {
    "tiny": SizeSpec(
        name="tiny", width=128, height=128, fps=8, seconds=(4,), videos={"train": 2, "eval": 4},
        seeds={"train": 1101, "eval": 1202}, event_gap=2, margin=2,
    ),
    "default": SizeSpec(
        name="default", width=448, height=448, fps=8, seconds=(10, 30, 60), videos={"train": 30, "eval": 60},
        seeds={"train": 2101, "eval": 2202},
    ),
}


def size_spec(size: str) -> SizeSpec:
    if size not in SIZES:
        raise LfbenchError(f"unknown synth size {size!r}; allowed: {', '.join(SIZES)}")
    return SIZES[size]


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise LfbenchError(f"unknown synth split {split!r}; allowed: {', '.join(SPLITS)}")
    return split


# ----------------------------------------------------------------------------------------------------------
# Scene description


@dataclass
class Obj:
    """A persistent object, on screen in every frame; its centre moves linearly from (x0, y0) to (x1, y1)."""

    role: str  # "dominant" (the large object) or "small" (a tiny object in a corner)
    shape: str
    colour: str
    radius: int  # half-size in pixels; the shape fits in a (2r+1)^2 box around the centre
    x0: int
    y0: int
    x1: int
    y1: int
    corner: str | None = None

    def centre(self, t: int | np.ndarray, num_frames: int):
        """Integer centre at frame(s) ``t`` (the renderer and the checks use this one definition)."""
        f = np.asarray(t, dtype=np.float64) / max(num_frames - 1, 1)
        x = np.rint(self.x0 + (self.x1 - self.x0) * f).astype(np.int64)
        y = np.rint(self.y0 + (self.y1 - self.y0) * f).astype(np.int64)
        return x, y


@dataclass
class Event:
    """A brief appearance: the shape is on screen in frames ``start <= t < end``."""

    shape: str
    colour: str
    radius: int
    x: int
    y: int
    start: int
    end: int


@dataclass
class Scene:
    video_id: str
    width: int
    height: int
    fps: int
    num_frames: int
    background: str
    objects: list[Obj] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | dict) -> Scene:
        d = json.loads(text) if isinstance(text, str) else dict(text)
        d["objects"] = [Obj(**o) for o in d["objects"]]
        d["events"] = [Event(**e) for e in d["events"]]
        return cls(**d)

    @property
    def seconds(self) -> float:
        return self.num_frames / self.fps


# ----------------------------------------------------------------------------------------------------------
# Rendering


def shape_mask(shape: str, r: int) -> np.ndarray:
    """Boolean ``[2r+1, 2r+1]`` mask of ``shape`` with half-size ``r``, centred on pixel (r, r)."""
    d = np.arange(-r, r + 1)
    dy, dx = d[:, None], d[None, :]
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == "circle":
        return dx * dx + dy * dy <= r * r + r
    if shape == "square":
        h = max(1, round(0.8 * r))
        return (ax <= h) & (ay <= h)
    if shape == "diamond":
        return ax + ay <= r
    if shape == "triangle":  # apex up, base at 0.75 r below the centre, base as wide as the box
        return (dy <= round(0.75 * r)) & (ax <= (dy + r) / 1.75)
    if shape == "cross":
        w = max(1, round(r / 3))
        return ((ax <= w) & (ay <= r)) | ((ay <= w) & (ax <= r))
    raise ValueError(f"unknown shape {shape!r}; allowed: {', '.join(SHAPES)}")


def _paste(frames: np.ndarray, t0: int, t1: int, x: int, y: int, r: int, mask: np.ndarray, rgb) -> None:
    """Colour ``mask`` centred at (x, y) in frames ``t0:t1`` (one vectorised assignment)."""
    view = frames[t0:t1, y - r : y + r + 1, x - r : x + r + 1]
    if view.shape[1:3] != mask.shape:
        raise ValueError(f"object at ({x}, {y}) radius {r} leaves the {frames.shape[2]}x{frames.shape[1]} frame")
    view[:, mask] = np.asarray(rgb, dtype=np.uint8)


def render(scene: Scene, out: np.ndarray | None = None) -> np.ndarray:
    """The scene's frames, uint8 ``[T, H, W, 3]``: background, small objects, large object, events (in that order).

    ``out``: an optional uint8 buffer of at least ``T`` frames of the right size to draw into (reusing one saves
    the page faults of a fresh few-hundred-MB array per video); the result is its first ``T`` frames.
    """
    T = scene.num_frames
    shape = (scene.height, scene.width, 3)
    if out is not None and (out.dtype != np.uint8 or out.shape[1:] != shape or len(out) < T):
        raise ValueError(f"out buffer {out.shape} {out.dtype} cannot hold {T} frames of {shape}")
    frames = out[:T] if out is not None else np.empty((T, *shape), dtype=np.uint8)
    one = np.empty((scene.height, scene.width, 3), dtype=np.uint8)
    one[:] = np.asarray(BACKGROUND_COLOURS[scene.background], dtype=np.uint8)
    frames[:] = one  # whole-frame copies: several times faster than broadcasting a 3-byte colour
    for obj in sorted(scene.objects, key=lambda o: o.role != "small"):
        mask = shape_mask(obj.shape, obj.radius)
        xs, ys = obj.centre(np.arange(T), T)
        # one paste per run of frames at the same integer position (a static object: one paste in all)
        change = np.flatnonzero((np.diff(xs) != 0) | (np.diff(ys) != 0)) + 1
        bounds = np.concatenate([[0], change, [T]])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            _paste(frames, int(a), int(b), int(xs[a]), int(ys[a]), obj.radius, mask, OBJECT_COLOURS[obj.colour])
    for ev in scene.events:
        _paste(frames, ev.start, ev.end, ev.x, ev.y, ev.radius, shape_mask(ev.shape, ev.radius),
               OBJECT_COLOURS[ev.colour])
    return frames


def render_frames(scene: Scene, indices) -> np.ndarray:
    """Only the frames ``indices`` of the scene, uint8 ``[len(indices), H, W, 3]``; equal to ``render(scene)[indices]``.

    For training streams that sample a few frames of a long scene: nothing else is drawn or encoded.
    """
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= scene.num_frames):
        raise ValueError(f"frame indices must lie in [0, {scene.num_frames - 1}], got {idx.min()}..{idx.max()}")
    frames = np.empty((idx.size, scene.height, scene.width, 3), dtype=np.uint8)
    frames[:] = np.asarray(BACKGROUND_COLOURS[scene.background], dtype=np.uint8)
    for obj in sorted(scene.objects, key=lambda o: o.role != "small"):
        mask = shape_mask(obj.shape, obj.radius)
        xs, ys = obj.centre(idx, scene.num_frames)
        for j in range(idx.size):
            _paste(frames, j, j + 1, int(xs[j]), int(ys[j]), obj.radius, mask, OBJECT_COLOURS[obj.colour])
    for ev in scene.events:
        on = np.flatnonzero((idx >= ev.start) & (idx < ev.end))
        mask = shape_mask(ev.shape, ev.radius)
        for j in on.tolist():
            _paste(frames, j, j + 1, ev.x, ev.y, ev.radius, mask, OBJECT_COLOURS[ev.colour])
    return frames


# ----------------------------------------------------------------------------------------------------------
# Scene and question generation


Kind = tuple[str, str]  # (colour, shape)
ALL_KINDS: list[Kind] = [(c, s) for c in OBJECT_COLOURS for s in SHAPES]


def kind_name(kind: Kind) -> str:
    return f"{kind[0]} {kind[1]}"


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _duration_label(seconds: float) -> str:
    """Video-MME's duration classes, relative to this suite: <= 15 s short, <= 40 s medium, longer long."""
    return "short" if seconds <= 15 else "medium" if seconds <= 40 else "long"


def _options(correct: str, distractors: list[str], pos: int) -> tuple[list[str], str]:
    if len(distractors) != 3 or len({correct, *distractors}) != 4:
        raise AssertionError(f"need 3 distinct distractors for {correct!r}, got {distractors!r}")
    texts = list(distractors)
    texts.insert(pos, correct)
    return [f"{LETTERS[i]}. {t}" for i, t in enumerate(texts)], LETTERS[pos]


def _pick(rng: np.random.Generator, seq, n: int) -> list:
    idx = rng.choice(len(seq), size=n, replace=False)
    return [seq[int(i)] for i in idx]


def _box_overlap(a, b) -> bool:
    """Axis-aligned boxes (x0, y0, x1, y1), inclusive."""
    return not (a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1])


def _corner_boxes(W: int, H: int, S: int) -> dict[str, tuple[int, int, int, int]]:
    z = int(round(CORNER_ZONE * S))
    return {
        "top-left": (0, 0, z, z),
        "top-right": (W - 1 - z, 0, W - 1, z),
        "bottom-left": (0, H - 1 - z, z, H - 1),
        "bottom-right": (W - 1 - z, H - 1 - z, W - 1, H - 1),
    }


def _event_times(rng: np.random.Generator, spec: SizeSpec, T: int, n: int) -> list[tuple[int, int]]:
    """``n`` non-overlapping [start, end) intervals with at least ``event_gap`` empty frames between them."""
    lo, hi = spec.event_frames
    lengths = rng.integers(lo, hi + 1, size=n)
    free = T - 2 * spec.margin - int(lengths.sum()) - (n - 1) * spec.event_gap
    if free < 0:
        raise AssertionError(f"{n} events do not fit in {T} frames")
    # stars and bars: split the free frames into n + 1 random gaps
    cuts = np.sort(rng.integers(0, free + 1, size=n))
    extra = np.diff(np.concatenate([[0], cuts]))
    out, t = [], spec.margin
    for i in range(n):
        t += int(extra[i]) + (spec.event_gap if i else 0)
        out.append((t, t + int(lengths[i])))
        t += int(lengths[i])
    return out


def event_budget(spec: SizeSpec, T: int) -> int:
    """The most events that fit in ``T`` frames."""
    return (T - 2 * spec.margin + spec.event_gap) // (spec.event_frames[1] + spec.event_gap)


def make_scene(rng: np.random.Generator, spec: SizeSpec, video_id: str, seconds: int,
               k: int | None = None) -> tuple[Scene, dict]:
    """A random scene and the plan it was built around (which kinds the many-frame questions ask about).

    ``k``: how many times the counted kind flashes (default: drawn from 1 to ``min(5, event budget - 3)``)."""
    W, H, S, T = spec.width, spec.height, min(spec.width, spec.height), spec.fps * seconds
    background = str(rng.choice(list(BACKGROUND_COLOURS)))

    # persistent objects: the large one and 2-4 small ones in distinct corners, all of distinct kinds
    dominant_kind = ALL_KINDS[int(rng.integers(len(ALL_KINDS)))]
    r_dom = int(round(rng.uniform(*DOMINANT_RADIUS) * S))
    (x0, y0), (x1, y1) = (np.rint(rng.uniform(*DOMINANT_CENTRE, size=(2, 2)) * S).astype(int)).tolist()
    objects = [Obj("dominant", dominant_kind[1], dominant_kind[0], r_dom, x0, y0, x1, y1)]
    corners = _pick(rng, CORNERS, int(rng.integers(2, 5)))
    small_colours = _pick(rng, [c for c in OBJECT_COLOURS if c != dominant_kind[0]], len(corners))
    for corner, colour in zip(corners, small_colours, strict=True):
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        r = max(SMALL_MIN_RADIUS, int(round(rng.uniform(*SMALL_RADIUS) * S)))
        dx, dy = (np.rint(rng.uniform(*SMALL_CENTRE, size=2) * S)).astype(int).tolist()
        x = dx if corner.endswith("left") else W - 1 - dx
        y = dy if corner.startswith("top") else H - 1 - dy
        objects.append(Obj("small", shape, colour, r, x, y, x, y, corner))
    persistent = {(o.colour, o.shape) for o in objects}

    # events: one counted kind k times, three ordered kinds once each, fillers of other kinds
    budget = event_budget(spec, T)
    if k is None:
        k = int(rng.integers(1, min(5, budget - 3) + 1))
    elif not 1 <= k <= budget - 3:
        raise ValueError(f"k={k}: {budget} events fit in {T} frames; allowed: 1 to {budget - 3}")
    n_fill = int(rng.integers(0, max(0, min(budget - 3 - k, 2 + seconds // 10)) + 1))
    pool = [kd for kd in ALL_KINDS if kd not in persistent]
    chosen = _pick(rng, pool, 4)
    count_kind, order_kinds = chosen[0], chosen[1:]
    filler_pool = [kd for kd in pool if kd not in chosen]
    fillers = [filler_pool[int(i)] for i in rng.integers(len(filler_pool), size=n_fill)]
    kinds = [count_kind] * k + list(order_kinds) + fillers
    kinds = [kinds[int(i)] for i in rng.permutation(len(kinds))]
    times = _event_times(rng, spec, T, len(kinds))

    boxes = list(_corner_boxes(W, H, S).values())
    clear = int(round(CLEARANCE * S))
    dom = objects[0]
    events = []
    for (colour, shape), (start, end) in zip(kinds, times, strict=True):
        r = int(round(rng.uniform(*EVENT_RADIUS) * S))
        xs, ys = dom.centre(np.array([start, end - 1]), T)
        dom_box = (int(xs.min()) - dom.radius - clear, int(ys.min()) - dom.radius - clear,
                   int(xs.max()) + dom.radius + clear, int(ys.max()) + dom.radius + clear)
        for _ in range(1000):
            x, y = (int(v) for v in rng.integers(r + clear, np.array([W, H]) - r - clear))
            box = (x - r, y - r, x + r, y + r)
            if not _box_overlap(box, dom_box) and not any(_box_overlap(box, c) for c in boxes):
                break
        else:  # pragma: no cover - the free area is far larger than an event
            raise AssertionError(f"{video_id}: no room for an event")
        events.append(Event(shape, colour, r, x, y, start, end))

    scene = Scene(video_id, W, H, spec.fps, T, background, objects, events)
    plan = {"count_kind": count_kind, "k": k, "order_kinds": list(order_kinds)}
    return scene, plan


def _questions(rng: np.random.Generator, scene: Scene, plan: dict, pos: dict[str, int]) -> dict[str, tuple]:
    """family -> (question, options, answer letter, query) for one scene, the answer at position ``pos[family]``."""
    out: dict[str, tuple] = {}
    dom = next(o for o in scene.objects if o.role == "dominant")
    smalls = [o for o in scene.objects if o.role == "small"]
    event_kinds = sorted({(e.colour, e.shape) for e in scene.events})
    persistent = {(o.colour, o.shape) for o in scene.objects}

    # count
    ck, k = tuple(plan["count_kind"]), plan["k"]
    # four consecutive counts with k anywhere among them (not always the middle value), never below 0
    low = int(rng.integers(max(0, k - 3), k + 1))
    near = [n for n in range(low, low + 4) if n != k]
    near = [near[int(i)] for i in rng.permutation(3)]
    q = f"How many times does {_a(kind_name(ck))} briefly flash on the screen?"
    out["count"] = (q, *_options(str(k), [str(n) for n in near], pos["count"]), {"kind": list(ck)})

    # appeared: distractors never appear at all, and share a colour or a shape with something that did
    correct = event_kinds[int(rng.integers(len(event_kinds)))]
    absent = [kd for kd in ALL_KINDS if kd not in event_kinds and kd not in persistent]
    close = [kd for kd in absent if any(kd[0] == e[0] or kd[1] == e[1] for e in event_kinds)]
    distractors = _pick(rng, close if len(close) >= 3 else absent, 3)
    q = "Which of these objects briefly flashed on the screen at some point in the video?"
    out["appeared"] = (q, *_options(kind_name(correct), [kind_name(d) for d in distractors], pos["appeared"]),
                       {"kind": list(correct)})

    # order: the true order of the three once-only kinds against three other permutations
    ok = [tuple(kd) for kd in plan["order_kinds"]]
    first = {kd: min(e.start for e in scene.events if (e.colour, e.shape) == kd) for kd in ok}
    true = sorted(ok, key=first.__getitem__)
    perms = [[true[i] for i in p] for p in
             ((0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))]

    def seq(kds):
        return ", then ".join(f"the {kind_name(kd)}" for kd in kds)

    listed = [ok[int(i)] for i in rng.permutation(3)]
    q = (f"In what order did the {kind_name(listed[0])}, the {kind_name(listed[1])} and the "
         f"{kind_name(listed[2])} flash on the screen?")
    out["order"] = (q, *_options(seq(true), [seq(p) for p in _pick(rng, perms, 3)], pos["order"]),
                    {"kinds": [list(kd) for kd in listed]})

    # detail: the colour or the shape of one small corner object
    obj = smalls[int(rng.integers(len(smalls)))]
    if rng.random() < 0.5:
        others = [o.colour for o in smalls if o is not obj]
        rest = [c for c in OBJECT_COLOURS if c != obj.colour and c not in others]
        pool = others + _pick(rng, rest, max(0, 3 - len(others)))
        q = f"What colour is the small object in the {obj.corner} corner of the video?"
        out["detail"] = (q, *_options(obj.colour, _pick(rng, pool, 3), pos["detail"]),
                         {"corner": obj.corner, "attribute": "colour"})
    else:
        q = f"What shape is the small object in the {obj.corner} corner of the video?"
        others = _pick(rng, [s for s in SHAPES if s != obj.shape], 3)
        out["detail"] = (q, *_options(obj.shape, others, pos["detail"]), {"corner": obj.corner, "attribute": "shape"})

    # global: answerable from any single frame
    what = ("background", "large colour", "large shape")[int(rng.integers(3))]
    if what == "background":
        q = "What colour is the background of the video?"
        rest = [b for b in BACKGROUND_COLOURS if b != scene.background]
        out["global"] = (q, *_options(scene.background, _pick(rng, rest, 3), pos["global"]), {"what": what})
    elif what == "large colour":
        q = "What colour is the large object in the middle of the video?"
        rest = [c for c in OBJECT_COLOURS if c != dom.colour]
        out["global"] = (q, *_options(dom.colour, _pick(rng, rest, 3), pos["global"]), {"what": what})
    else:
        q = "What shape is the large object in the middle of the video?"
        rest = [s for s in SHAPES if s != dom.shape]
        out["global"] = (q, *_options(dom.shape, _pick(rng, rest, 3), pos["global"]), {"what": what})
    return out


def _split_plan(spec: SizeSpec, split: str) -> tuple[list[int], dict[str, list[int]]]:
    """Per-video lengths and per-family answer positions, balanced over the split and shuffled."""
    n = spec.videos[split]
    rng = np.random.default_rng([spec.seeds[split], 0])
    seconds = [spec.seconds[i % len(spec.seconds)] for i in range(n)]
    seconds = [seconds[int(i)] for i in rng.permutation(n)]
    positions = {f: [int(p) for p in rng.permutation(np.resize(np.arange(4), n))] for f in FAMILIES}
    return seconds, positions


def video_name(size: str, split: str, index: int) -> str:
    return f"synth-{size}-{split}-{index:04d}"


def generate(size: str = "default", split: str = "eval") -> list[tuple[Scene, list[dict]]]:
    """Scenes and items of one split, without rendering anything (fast: annotations only).

    Deterministic: the same (size, split) always gives the same scenes and items. Each video draws from its own
    Generator, seeded by (split seed, 1, video index), so scenes do not depend on how many other videos there are.
    """
    spec, split = size_spec(size), _check_split(split)
    seconds, positions = _split_plan(spec, split)
    out = []
    for i, secs in enumerate(seconds):
        rng = np.random.default_rng([spec.seeds[split], 1, i])
        vid = video_name(size, split, i)
        scene, plan = make_scene(rng, spec, vid, secs)
        qs = _questions(rng, scene, plan, {f: positions[f][i] for f in FAMILIES})
        scene_json = scene.to_json()
        items = []
        for j, family in enumerate(FAMILIES, start=1):
            question, options, answer, query = qs[family]
            task_type, needs = FAMILIES[family]
            items.append({
                "video_id": f"{split}-{i:04d}",
                "videoID": vid,
                "video": f"videos/{vid}.mp4",
                "duration": _duration_label(scene.seconds),
                "domain": DOMAIN,
                "sub_category": SUB_CATEGORY,
                "task_type": task_type,
                "family": family,
                "needs": needs,
                "question_id": f"{vid}-{j}",
                "question": question,
                "options": options,
                "answer": answer,
                "query": json.dumps(query),
                "scene": scene_json,
                "split": split,
                "size": size,
                "seconds": scene.seconds,
            })
        out.append((scene, items))
    return out


def items(size: str = "default", split: str = "eval") -> list[dict]:
    """The items of one split, generated in memory without videos (see :func:`generate`)."""
    return [it for _, its in generate(size, split) for it in its]


# ----------------------------------------------------------------------------------------------------------
# Independent answer checker


_KIND_RE = r"(\w+) (\w+)"


def _kind(text: str) -> Kind:
    m = re.fullmatch(_KIND_RE, text.strip())
    if not m or m.group(1) not in OBJECT_COLOURS or m.group(2) not in SHAPES:
        raise ValueError(f"not an object kind: {text!r}")
    return m.group(1), m.group(2)


def _option_texts(item: dict) -> list[str]:
    opts = list(item["options"])
    if len(opts) != 4:
        raise ValueError(f"{item.get('question_id')}: expected 4 options, got {len(opts)}")
    out = []
    for letter, opt in zip(LETTERS, opts, strict=True):
        if not opt.startswith(f"{letter}. "):
            raise ValueError(f"{item.get('question_id')}: option {opt!r} does not start with '{letter}. '")
        out.append(opt[3:])
    if len(set(out)) != 4:
        raise ValueError(f"{item.get('question_id')}: repeated options {out!r}")
    return out


def check_answer(item: dict) -> str:
    """The correct letter, recomputed from the item's ``scene`` and its question/option text only.

    Uses nothing the generator decided besides the scene itself: it parses what the question asks, evaluates
    every option against the scene and returns the letter of the one true option. Raises ``ValueError`` when no
    option or more than one is true, or when the question is ambiguous for the scene (e.g. an object kind it
    asks about is also a persistent object, or an ordered kind flashes more than once).
    """
    scene = Scene.from_json(item["scene"])
    family, question, texts = item["family"], item["question"], _option_texts(item)
    event_kinds = [(e.colour, e.shape) for e in scene.events]
    persistent = {(o.colour, o.shape) for o in scene.objects}
    qid = item.get("question_id")

    if family == "count":
        m = re.fullmatch(r"How many times does an? " + _KIND_RE + r" briefly flash on the screen\?", question)
        if not m:
            raise ValueError(f"{qid}: unexpected count question {question!r}")
        kd = _kind(f"{m.group(1)} {m.group(2)}")
        if kd in persistent:
            raise ValueError(f"{qid}: {kd} is also a persistent object")
        # events of one kind never touch: each is a separate flash
        truth = [int(t) == sum(e == kd for e in event_kinds) for t in texts]
    elif family == "appeared":
        kinds = [_kind(t) for t in texts]
        if any(kd in persistent for kd in kinds):
            raise ValueError(f"{qid}: an option is a persistent object")
        truth = [kd in event_kinds for kd in kinds]
    elif family == "order":
        seqs = [[_kind(part.removeprefix("the ")) for part in t.split(", then ")] for t in texts]
        wanted = {kd for s in seqs for kd in s}
        for kd in wanted:
            if event_kinds.count(kd) != 1 or kd in persistent:
                raise ValueError(f"{qid}: {kd} does not flash exactly once")
        start = {(e.colour, e.shape): e.start for e in scene.events}
        true_order = sorted(wanted, key=start.__getitem__)
        truth = [s == true_order for s in seqs]
    elif family == "detail":
        m = re.fullmatch(r"What (colour|shape) is the small object in the ([\w-]+) corner of the video\?", question)
        if not m:
            raise ValueError(f"{qid}: unexpected detail question {question!r}")
        objs = [o for o in scene.objects if o.role == "small" and o.corner == m.group(2)]
        if len(objs) != 1:
            raise ValueError(f"{qid}: {len(objs)} small objects in the {m.group(2)} corner")
        value = objs[0].colour if m.group(1) == "colour" else objs[0].shape
        truth = [t == value for t in texts]
    elif family == "global":
        dom = [o for o in scene.objects if o.role == "dominant"]
        if question == "What colour is the background of the video?":
            value = scene.background
        elif question == "What colour is the large object in the middle of the video?":
            value = dom[0].colour
        elif question == "What shape is the large object in the middle of the video?":
            value = dom[0].shape
        else:
            raise ValueError(f"{qid}: unexpected global question {question!r}")
        truth = [t == value for t in texts]
    else:
        raise ValueError(f"{qid}: unknown family {family!r}; allowed: {', '.join(FAMILIES)}")

    if sum(truth) != 1:
        raise ValueError(f"{qid}: {sum(truth)} options are true for {question!r}: {texts!r}")
    return LETTERS[truth.index(True)]


def open_answer_correct(item: dict, response: str) -> bool:
    """Whether a free-text ``response`` answers ``item``'s question (task ``synth_open``), judged from the scene.

    The response is compared after lower-casing, dropping a trailing full stop and collapsing spaces. ``appeared``
    asks which object flashed: any kind that flashed (and is not a persistent object) is right. Every other family
    has one right answer, the correct option's text (a count, a colour, a shape, or ``the X, then the Y, then the
    Z``).
    """
    text = " ".join(response.strip().lower().rstrip(".").split())
    if item["family"] == "appeared":
        scene = Scene.from_json(item["scene"])
        persistent = {(o.colour, o.shape) for o in scene.objects}
        flashed = {(e.colour, e.shape) for e in scene.events} - persistent
        try:
            return _kind(text) in flashed
        except ValueError:
            return False
    return text == _option_texts(item)[LETTERS.index(item["answer"])]


# ----------------------------------------------------------------------------------------------------------
# Files


_buffers = threading.local()


def _render_and_write(job: tuple[str, str]) -> int:
    """Render one scene (JSON) and write it to ``path``; returns the file size in bytes.

    Each thread draws into one reused buffer, grown when a longer or larger video comes.
    """
    from liteframe_bench.video import write_video

    scene_json, path = job
    scene = Scene.from_json(scene_json)
    buf = getattr(_buffers, "frames", None)
    shape = (scene.height, scene.width, 3)
    if buf is None or buf.shape[1:] != shape or len(buf) < scene.num_frames:
        buf = _buffers.frames = None  # free the old one first
        buf = _buffers.frames = np.empty((scene.num_frames, *shape), dtype=np.uint8)
    write_video(path, render(scene, out=buf), fps=scene.fps)
    return os.path.getsize(path)


def _render_all(jobs: list[tuple[str, str]], workers: int) -> list[int]:
    """Render and write every job (longest first, so each thread allocates its buffer once); file sizes."""

    def run(batch):
        try:
            return [_render_and_write(job) for job in batch]
        finally:
            _buffers.frames = None

    order = sorted(range(len(jobs)), key=lambda i: -Scene.from_json(jobs[i][0]).num_frames)
    if workers <= 1:
        return [size for _, size in sorted(zip(order, run([jobs[i] for i in order]), strict=True))]
    # threads, not processes: numpy's copies and FFmpeg's encoder release the GIL (~1.8x on 2 cores), and nothing
    # re-imports the caller's main module (a spawned pool would, and deadlock on the lock)
    # (a pool thread's buffer goes when the thread ends, at the pool's shutdown)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        sizes = list(pool.map(lambda i: _render_and_write(jobs[i]), order))
    return [size for _, size in sorted(zip(order, sizes, strict=True))]


def _manifest_core(spec: SizeSpec) -> dict[str, Any]:
    from liteframe_bench.video import DEFAULT_CODEC

    return {"suite": SUITE, "size": spec.name, "generator_version": GENERATOR_VERSION, "spec": spec.as_json(),
            "codec": DEFAULT_CODEC}


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_complete(folder: Path, spec: SizeSpec) -> bool:
    """The folder holds a finished generation of ``spec`` by this generator version, every file present."""
    manifest = _read_json(folder / "manifest.json")
    if not isinstance(manifest, dict) or any(manifest.get(k) != v for k, v in _manifest_core(spec).items()):
        return False
    total = 0
    try:
        for split in SPLITS:
            rows = _read_json(folder / f"{split}.json")
            if not isinstance(rows, list) or len(rows) != manifest["splits"][split]["questions"]:
                return False
            for video in sorted({r["video"] for r in rows}):
                p = folder / video
                if not p.is_file():
                    return False
                total += p.stat().st_size
        return total == manifest["video_bytes"]
    except (KeyError, TypeError):  # a manifest or annotation file of another shape
        return False


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(f"[lfbench synth] {msg}", file=sys.stderr, flush=True)


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def make(
    size: str = "default",
    root: str | os.PathLike | None = None,
    *,
    force: bool = False,
    progress: bool = True,
    workers: int | None = None,
) -> Path:
    """Generate the suite's videos and annotations under ``<data root>/synth/<size>/``; returns that folder.

    Idempotent: a complete folder whose manifest matches this generator and size is left untouched (unless
    ``force``). Concurrent calls (e.g. lmms-eval data-parallel ranks) serialise on a lock file; the second finds
    the folder complete. ``workers``: threads rendering/encoding videos (default: the CPU count, at most 4; one for
    small jobs). ``root``: the data root (default ``$LFBENCH_DATA``).
    """
    from filelock import FileLock

    spec = size_spec(size)
    folder = suite_dir(SUITE, root) / size
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder.parent / f".{size}.lock")):
        if not force and is_complete(folder, spec):
            return folder
        t0 = time.perf_counter()
        (folder / "manifest.json").unlink(missing_ok=True)
        videos = folder / "videos"
        videos.mkdir(parents=True, exist_ok=True)
        for stale in videos.glob("*.mp4"):
            stale.unlink()
        per_split = {split: generate(size, split) for split in SPLITS}
        jobs = [(scene.to_json(), str(folder / its[0]["video"])) for split in SPLITS for scene, its in per_split[split]]
        frames = sum(scene.num_frames for split in SPLITS for scene, _ in per_split[split])
        _log(progress, f"generating size {size!r} into {folder}: {len(jobs)} videos, {frames} frames of "
                       f"{spec.width}x{spec.height} at {spec.fps} fps")
        if workers is None:
            workers = 1 if frames < 2000 else min(len(jobs), os.cpu_count() or 1, 4)
        sizes = _render_all(jobs, workers)
        manifest = _manifest_core(spec)
        counts = {}
        for split in SPLITS:
            rows = [it for _, its in per_split[split] for it in its]
            _write_json(folder / f"{split}.json", rows)
            counts[split] = {
                "seed": spec.seeds[split],
                "videos": len(per_split[split]),
                "questions": len(rows),
                "families": {f: sum(r["family"] == f for r in rows) for f in FAMILIES},
                "answers": {L: sum(r["answer"] == L for r in rows) for L in LETTERS},
                "seconds_of_video": sum(scene.seconds for scene, _ in per_split[split]),
            }
        manifest |= {
            "splits": counts,
            "video_bytes": int(sum(sizes)),
            "frames": int(frames),
            "generation_s": round(time.perf_counter() - t0, 3),
            "workers": workers,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        _write_json(folder / "manifest.json", manifest)
        _log(progress, f"wrote {len(jobs)} videos and {sum(c['questions'] for c in counts.values())} questions "
                       f"in {manifest['generation_s']:.1f} s")
        return folder


def load(size: str = "default", split: str = "eval", root: str | os.PathLike | None = None) -> list[dict]:
    """The items of one split from ``<data root>/synth/<size>/<split>.json`` (generate first with :func:`make`)."""
    size_spec(size)
    _check_split(split)
    folder = suite_dir(SUITE, root) / size
    path = folder / f"{split}.json"
    if not (folder / "manifest.json").is_file() or not path.is_file():
        raise LfbenchError(f"synth size {size!r} is not generated under {folder}; run `lfbench data make synth "
                           f"--size {size}` (or liteframe_bench.suites.synth.generator.make({size!r}))")
    return json.loads(path.read_text())


def check(root: str | os.PathLike | None = None, *, probe_videos: bool = True):
    """``lfbench data check synth``: a :class:`liteframe_bench.data.CheckReport` over every generated size.

    For each size whose folder exists: the manifest matches this generator, the annotations parse, every answer
    agrees with :func:`check_answer`, every video is present and (``probe_videos``) opens with the scene's frame
    count and resolution. ``ok`` when at least one size is generated and nothing is wrong.
    """
    from liteframe_bench.data import CheckReport
    from liteframe_bench.video import VideoError, probe

    base = suite_dir(SUITE, root)
    report = CheckReport(suite=SUITE, root=str(base), annotation=[], annotation_found=False, probed=probe_videos)
    expected, found, questions = 0, 0, 0
    for size, spec in SIZES.items():
        folder = base / size
        if not folder.is_dir():
            continue
        if not is_complete(folder, spec):
            report.problems.append(f"{folder}: incomplete or made by another generator version; run "
                                   f"`lfbench data make synth --size {size} --force`")
            continue
        for split in SPLITS:
            path = folder / f"{split}.json"
            report.annotation.append(str(path))
            rows = json.loads(path.read_text())
            questions += len(rows)
            for r in rows:
                try:
                    if check_answer(r) != r["answer"]:
                        raise ValueError(f"answer {r['answer']} but the scene says {check_answer(r)}")
                except ValueError as e:
                    report.problems.append(f"{r['question_id']}: {e}")
            scenes = {r["video"]: r["scene"] for r in rows}
            for video, scene_json in sorted(scenes.items()):
                expected += 1
                vpath = folder / video
                if not vpath.is_file():
                    report.missing_count += 1
                    report.missing_videos.append(str(vpath))
                    continue
                found += 1
                if probe_videos:
                    scene = Scene.from_json(scene_json)
                    try:
                        info = probe(vpath)
                        got = (info.num_frames, info.width, info.height)
                        if got != (scene.num_frames, scene.width, scene.height):
                            raise VideoError(f"{vpath}: frames/width/height {got}, expected "
                                             f"{(scene.num_frames, scene.width, scene.height)}")
                    except VideoError as e:
                        report.unreadable_count += 1
                        report.unreadable_videos.append({"video": str(vpath), "reason": str(e)})
        report.notes.append(f"size {size}: complete ({spec.videos} videos, {spec.width}x{spec.height})")
    report.annotation_found = bool(report.annotation)
    if not report.annotation_found and not report.problems:
        report.problems.append(f"nothing generated under {base}; run `lfbench data make synth --size default` "
                               f"(or --size tiny)")
    report.questions, report.expected_videos, report.found_videos = questions, expected, found
    report.ok = report.annotation_found and not (report.problems or report.missing_count or report.unreadable_count)
    return report


__all__ = [
    "BACKGROUND_COLOURS",
    "FAMILIES",
    "GENERATOR_VERSION",
    "OBJECT_COLOURS",
    "OPEN_PROMPT",
    "SHAPES",
    "SIZES",
    "Event",
    "Obj",
    "Scene",
    "SizeSpec",
    "check",
    "check_answer",
    "generate",
    "is_complete",
    "items",
    "load",
    "make",
    "open_answer_correct",
    "render",
    "render_frames",
    "shape_mask",
]
