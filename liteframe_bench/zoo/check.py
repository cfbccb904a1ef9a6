"""Synth eval scenes as decoded clips without mp4 files: fast, deterministic checks of a trained model.

A scene is rendered at the sampled frames only (the suite's scenes, sampler, resize; no video codec in between).
For tests and training-time checks: the accuracy of record (model cards, README) always comes from the real path
(mp4 -> PyAV -> lmms-eval).
"""

from __future__ import annotations

from pathlib import Path

from liteframe_bench.suites.synth import generator as g


def rendered_clip(scene: g.Scene, frames: int, image_size: int):
    """A :class:`~liteframe_bench.video.VideoClip` of ``scene`` as ``load_video`` would give it, minus the codec."""
    import time

    from liteframe_bench.video import VideoClip, VideoInfo, preprocess, sample_indices

    t0 = time.perf_counter()
    idx = sample_indices(scene.num_frames, frames)
    px = preprocess(g.render_frames(scene, idx), image_size=image_size)
    info = VideoInfo(path=Path(f"<rendered {scene.video_id}>"), num_frames=scene.num_frames, fps=float(scene.fps),
                     duration_s=scene.seconds, width=scene.width, height=scene.height, codec="none",
                     frames_from="scene")
    return VideoClip(px, idx, len(set(idx)), info, (1, 1), image_size, time.perf_counter() - t0)


def answer_breakdown(rows, items: list[dict]) -> dict[str, dict[str, int]]:
    """Where multiple-choice answers in the zoo's format (``"grey. C"``: words, then a letter) go wrong, per family.

    ``rows``: an lfbench ``*.samples.jsonl``'s rows (``doc_id``, ``prediction``) on the synth suite; ``items``: that
    suite's documents in doc order. Counts per family: ``questions``; ``words_in_options`` (the words before the final
    letter are one option's words); ``words_right`` (the right option's); ``letter_follows`` (the letter is the one of
    the option whose words were written); ``correct`` (the letter is the answer)."""
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        item = items[row["doc_id"]]
        words, _, letter = (row.get("prediction") or "").strip().rpartition(". ")
        options = {o[0]: o[3:] for o in item["options"]}  # "C. grey" -> {"C": "grey"}
        named = [L for L, text in options.items() if text == words.strip()]
        c = out.setdefault(item["family"], dict.fromkeys(
            ("questions", "words_in_options", "words_right", "letter_follows", "correct"), 0))
        c["questions"] += 1
        c["words_in_options"] += bool(named)
        c["words_right"] += item["answer"] in named
        c["letter_follows"] += letter in named
        c["correct"] += letter.strip() == item["answer"]
    return out


def question_kind(family: str, question: str) -> str:
    """``background`` for the background-colour questions (a kind of the ``global`` family), else the family."""
    return "background" if "background" in question else family


def letters_given_words(bb, items: list[dict]) -> dict[str, list[bool]]:
    """Text only (no video): for each option of each item (a synth document: ``question``, ``options``), is the
    letter right when that option's words are given as the start of the answer? Per option words."""
    import torch

    from liteframe_bench.zoo.teacher import chain_question, chain_questions_loss

    out: dict[str, list[bool]] = {}
    with torch.no_grad():
        for it in items:
            prompt, conts = chain_question(bb.tokenizer, it["question"], it["options"])
            for option, cont in zip(it["options"], conts, strict=True):
                _, acc = chain_questions_loss(bb, [(it["family"], prompt, [cont])])
                out.setdefault(option[3:], []).append(acc == 1.0)
    return out


def letters_after_true_words(bb, clip) -> list[tuple[str, bool]]:
    """With the video: for each question of a zoo stream ``Clip``, is the letter right when the right option's words
    are given after the video (teacher-forced)? (question kind, hit) per question."""
    from dataclasses import replace

    import torch

    from liteframe_bench.zoo.teacher import Texts, clip_forward

    clip = replace(clip, mc=[(question_kind(f, q), q, o, a) for f, q, o, a in clip.mc])
    with torch.no_grad():
        return clip_forward(bb, clip, Texts(bb.tokenizer, clip, ("chain",)))[1]


def eval_clip(scene: g.Scene, items: list[dict], frames: int, image_size: int):
    """A synth eval scene and its documents as a zoo stream ``Clip`` (rendered without the codec), for the
    training-side checks above."""
    from liteframe_bench.zoo import stream

    video = rendered_clip(scene, frames, image_size)
    mc = [(it["family"], it["question"], it["options"], it["answer"]) for it in items]
    return stream.Clip(0, video.pixel_values[0], scene, list(video.indices), mc, "")
