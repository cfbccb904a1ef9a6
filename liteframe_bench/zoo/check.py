"""A fast, deterministic accuracy check on the synth suite's eval questions, without mp4 files or lmms-eval.

The first ``videos`` scenes of a synth eval split are rendered at the sampled frames only (the same scenes, sampler,
resize and prompt as the suite; no video codec in between), encoded once per scene by a method and asked each of
their questions through the method's own ``generate``; the answer letter is read the way lmms-eval's Video-MME
scorer reads it. For tests and training-time checks: the accuracy of record (model cards, README) always comes
from the real path (mp4 -> PyAV -> lmms-eval).
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


def letter(text: str) -> str:
    from lmms_eval.tasks.videomme.utils import extract_characters_regex

    return extract_characters_regex(text)


def accuracy(method, frames: int = 16, videos: int = 12, size: str = "default") -> dict:
    """{family: accuracy, "overall": ..., "questions": n} of ``method`` (a bound VideoLLM) on the first ``videos``
    scenes of the ``size`` eval split."""
    from liteframe_bench.suites.synth.utils import doc_to_text

    per: dict[str, list[int]] = {}
    for scene, items in g.generate(size, "eval")[:videos]:
        tokens = method.encode(rendered_clip(scene, frames, method.backbone.image_size))
        for it in items:
            answer = method.generate(tokens, doc_to_text(it), max_new_tokens=4).text
            per.setdefault(it["family"], []).append(int(letter(answer) == it["answer"]))
    out: dict = {f: sum(v) / len(v) for f, v in per.items()}
    n = sum(len(v) for v in per.values())
    out["overall"] = sum(sum(v) for v in per.values()) / n
    out["questions"] = n
    return out
