"""An unlimited stream of training clips from the synth generator's scenes, rendered straight to tensors.

Every clip is drawn from its own seeded Generator (``(seed, 7, index)``), so clip ``i`` of a stream is the same
on every run and a resumed run continues the stream exactly. Seeds here are the zoo's *training* seeds, disjoint
from the synth suite's eval seeds (the suite's eval split is only ever read through mp4 files and lmms-eval).

A clip is a short scene (``frames`` to ``2 * frames`` frames at 8 fps, so every 2-3-frame flash is caught by
InternVL's frame sampler) rendered at the suite's 448 px only at the sampled frames
(:func:`~liteframe_bench.suites.synth.generator.render_frames`) and resized/normalised exactly as
:func:`liteframe_bench.video.preprocess` does for a decoded video. With it come:

- multiple-choice questions in the suite's own prompt format (the generator's question families, with fresh
  distractors and answer positions each copy), answered by a letter;
- the same questions asked open-ended (answer: the correct option's text);
- a description of what the sampled frames show (background, the large object, each corner object, each flash
  with the first sampled frame that shows it), for a language-modelling loss on every token.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from liteframe_bench.suites.synth import generator as g

FPS = 8
RENDER_SIZE = 448  # the suite's resolution; frames are resized to the model's like a decoded video
DESCRIBE = "Describe the video."
OPEN_POST = g.OPEN_PROMPT  # the instruction of the open-ended task synth_open
TRAIN_SEED = 31_337  # disjoint from the suite's seeds (SizeSpec.seeds: 1101/1202, 2101/2202)


def train_spec(seconds: int) -> g.SizeSpec:
    return g.SizeSpec(
        name="train-stream", width=RENDER_SIZE, height=RENDER_SIZE, fps=FPS, seconds=(seconds,),
        videos={"train": 1, "eval": 0}, seeds={"train": TRAIN_SEED, "eval": 0}, event_gap=2, margin=2,
    )


def scene_seconds(frames: int) -> list[int]:
    """Scene lengths (s) for clips of ``frames`` frames: at most 2 source frames per sampled frame, room for the
    4 events every scene needs."""
    out = []
    for s in range(1, 64):
        spec = train_spec(s)
        if frames <= FPS * s <= 2 * frames and g.event_budget(spec, FPS * s) >= 4:
            out.append(s)
    if not out:
        raise ValueError(f"frames={frames}: no scene length fits; allowed: 12 or more frames")
    return out


def balanced_spec(seconds: int) -> g.SizeSpec:
    """:func:`train_spec` with every flash 3 frames long: caught by any sampling of at most 3 source frames per
    sampled frame, so a clip's scene can be long enough for 5 counted flashes and its 3 ordered ones."""
    return replace(train_spec(seconds), event_frames=(3, 3))


COUNTS = (1, 2, 3, 4, 5)  # the counts the eval split asks about, each as often


def balanced_seconds(frames: int, k: int) -> list[int]:
    """Scene lengths (s) of :func:`balanced_spec` for clips of ``frames`` frames that fit ``k`` counted flashes."""
    return [s for s in range(1, 64) if frames <= FPS * s <= 3 * frames
            and g.event_budget(balanced_spec(s), FPS * s) >= k + 3]


def make_train_scene(rng: np.random.Generator, index: int, frames: int = 16, balanced: bool = False):
    """A training scene for clips of ``frames`` frames. ``balanced``: the count answer drawn uniformly from
    :data:`COUNTS`, as in the eval split (otherwise short scenes make 1 the answer of most count questions)."""
    if not balanced:
        seconds = scene_seconds(frames)
        s = seconds[int(rng.integers(len(seconds)))]
        return g.make_scene(rng, train_spec(s), f"train-stream-{index}", s)
    k = COUNTS[int(rng.integers(len(COUNTS)))]
    seconds = balanced_seconds(frames, k)
    if not seconds:
        raise ValueError(f"frames={frames}: no scene fits {k} counted flashes; allowed: 16 or more frames")
    s = seconds[int(rng.integers(len(seconds)))]
    return g.make_scene(rng, balanced_spec(s), f"train-stream-{index}", s, k=k)


def mc_questions(rng: np.random.Generator, scene, plan, copies: int = 2) -> list[tuple[str, str, list[str], str]]:
    """``copies`` questions per family: (family, question, options, answer letter), answers at random positions."""
    out = []
    for _ in range(copies):
        pos = {f: int(rng.integers(4)) for f in g.FAMILIES}
        for family, (question, options, answer, _) in g._questions(rng, scene, plan, pos).items():
            out.append((family, question, options, answer))
    return out


def describe(scene, indices: list[int]) -> str:
    """What the frames ``indices`` of ``scene`` show, in words (frame numbers count the sampled frames from 1)."""
    dom = next(o for o in scene.objects if o.role == "dominant")
    parts = [f"background {scene.background}.", f"large {dom.colour} {dom.shape}."]
    smalls = sorted((o for o in scene.objects if o.role == "small"), key=lambda o: g.CORNERS.index(o.corner))
    parts.append("corners: " + ", ".join(f"{o.corner} {o.colour} {o.shape}" for o in smalls) + ".")
    idx = np.asarray(indices)
    seen = []
    for ev in scene.events:
        on = np.flatnonzero((idx >= ev.start) & (idx < ev.end))
        if on.size:
            seen.append((int(on[0]) + 1, f"{ev.colour} {ev.shape}"))
    seen.sort()
    parts.append("flashes: " + (", ".join(f"Frame{j} {kind}" for j, kind in seen) if seen else "none") + ".")
    return " ".join(parts)


ROLES = ("background", "large", "corners", "flashes")


def token_labels(scene, indices: list[int], grid: int) -> dict[str, np.ndarray]:
    """What lies under each cell of a ``grid x grid`` split of the sampled frames: ``role`` (index into
    :data:`ROLES`), ``colour`` and ``shape`` (names; ``""`` for the background's shape), each ``[T, grid, grid]``.

    A cell is labelled with the object covering most of its pixels (flashes drawn over the large object, the
    large object over corner objects, as :func:`~liteframe_bench.suites.synth.generator.render` draws them),
    or the background when no object touches it.
    """
    things = [("background", scene.background, "")]
    paint = []
    for obj in sorted(scene.objects, key=lambda o: o.role != "small"):
        things.append(("corners" if obj.role == "small" else "large", obj.colour, obj.shape))
        paint.append((len(things) - 1, obj, None))
    for ev in scene.events:
        things.append(("flashes", ev.colour, ev.shape))
        paint.append((len(things) - 1, None, ev))
    idx = np.asarray(indices)
    ids = np.zeros((idx.size, scene.height, scene.width), dtype=np.int16)
    for k, obj, ev in paint:
        if obj is not None:
            mask, r = g.shape_mask(obj.shape, obj.radius), obj.radius
            xs, ys = obj.centre(idx, scene.num_frames)
            for j in range(idx.size):
                ids[j, ys[j] - r : ys[j] + r + 1, xs[j] - r : xs[j] + r + 1][mask] = k
        else:
            mask, r = g.shape_mask(ev.shape, ev.radius), ev.radius
            for j in np.flatnonzero((idx >= ev.start) & (idx < ev.end)).tolist():
                ids[j, ev.y - r : ev.y + r + 1, ev.x - r : ev.x + r + 1][mask] = k
    ch, cw = scene.height // grid, scene.width // grid
    cells = ids[:, : ch * grid, : cw * grid].reshape(idx.size, grid, ch, grid, cw).transpose(0, 1, 3, 2, 4)
    counts = np.stack([(cells == k).sum(axis=(3, 4)) for k in range(len(things))], axis=-1)
    counts[..., 0] = 0  # any object pixel beats the background
    best = np.where(counts.max(axis=-1) > 0, counts.argmax(axis=-1), 0)
    role = np.vectorize(lambda k: ROLES.index(things[k][0]))(best)
    colour = np.vectorize(lambda k: things[k][1])(best)
    shape = np.vectorize(lambda k: things[k][2])(best)
    return {"role": role.astype(np.int64), "colour": colour, "shape": shape}


def option_text(options: list[str], letter: str) -> str:
    return options[g.LETTERS.index(letter)][3:]


@dataclass
class Clip:
    index: int
    pixel_values: torch.Tensor  # [T, 3, S, S] float32, ImageNet-normalised
    scene: g.Scene
    indices: list[int]
    mc: list[tuple[str, str, list[str], str]]
    description: str
    labels: dict[str, np.ndarray] | None = None  # token_labels on the projected grid (when asked)


def make_clip(index: int, frames: int, image_size: int, seed: int = 0, copies: int = 2, grid: int = 0,
              balanced: bool = False) -> Clip:
    """Clip ``index`` of the stream with seed ``seed``: pixels at ``image_size``, questions, description, and
    (``grid > 0``) :func:`token_labels` on a ``grid x grid`` split of each frame. ``balanced``: see
    :func:`make_train_scene` (a stream of its own: clip ``i`` differs from the unbalanced stream's)."""
    from liteframe_bench.video import preprocess, sample_indices

    rng = np.random.default_rng([TRAIN_SEED, seed, 7, index] + ([1] if balanced else []))
    scene, plan = make_train_scene(rng, index, frames, balanced)
    indices = sample_indices(scene.num_frames, frames)
    px = preprocess(g.render_frames(scene, indices), image_size=image_size)[0]
    labels = token_labels(scene, indices, grid) if grid else None
    return Clip(index, px, scene, indices, mc_questions(rng, scene, plan, copies), describe(scene, indices), labels)
