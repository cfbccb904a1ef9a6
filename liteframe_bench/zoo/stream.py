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

from dataclasses import dataclass

import numpy as np
import torch

from liteframe_bench.suites.synth import generator as g

FPS = 8
RENDER_SIZE = 448  # the suite's resolution; frames are resized to the model's like a decoded video
DESCRIBE = "Describe the video."
OPEN_POST = "Answer with a word or a short phrase."
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


def make_train_scene(rng: np.random.Generator, index: int, frames: int = 16):
    seconds = scene_seconds(frames)
    s = seconds[int(rng.integers(len(seconds)))]
    return g.make_scene(rng, train_spec(s), f"train-stream-{index}", s)


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


def make_clip(index: int, frames: int, image_size: int, seed: int = 0, copies: int = 2) -> Clip:
    """Clip ``index`` of the stream with seed ``seed``: pixels at ``image_size``, questions, description."""
    from liteframe_bench.video import preprocess, sample_indices

    rng = np.random.default_rng([TRAIN_SEED, seed, 7, index])
    scene, plan = make_train_scene(rng, index, frames)
    indices = sample_indices(scene.num_frames, frames)
    px = preprocess(g.render_frames(scene, indices), image_size=image_size)[0]
    return Clip(index, px, scene, indices, mc_questions(rng, scene, plan, copies), describe(scene, indices))
