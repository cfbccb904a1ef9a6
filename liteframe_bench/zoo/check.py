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
