"""How well the zoo's ``mini`` reads each method's visual tokens: the teacher-forced loss of every text the teacher was
trained on after a clip (its description, each question open-ended, each multiple-choice question answered in words
then the letter), on held-out training-stream clips (seed 0, indices 6,000,000 on: no stage of ``zoo train`` draws
them). The README's "teacher-forced" numbers of the students (about 2 min on the 2-core development machine):

    python examples/student_text_losses.py baseline wap:ratio=16 liteframe-ctd liteframe [--clips 40]

Each method encodes the clip through the pipeline (``method.encode``); ``liteframe`` is scored with its LoRA adapter
enabled, as its ``generate`` runs. Lower is better; ``letter`` is the share of letters argmax-right after the true
words.
"""

import argparse
import contextlib
import json

import torch

from liteframe_bench.backbone import load_backbone
from liteframe_bench.pipeline import build_method
from liteframe_bench.video import VideoClip
from liteframe_bench.zoo import stream
from liteframe_bench.zoo.teacher import Texts, clip_forward, kind_means

FIRST = 6_000_000
KINDS = ("describe", "open", "chain")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("methods", nargs="+", help="method specs, e.g. baseline wap:ratio=16 liteframe")
    ap.add_argument("--clips", type=int, default=40)
    args = ap.parse_args()
    bb = load_backbone("mini", dtype="float32")
    bb.model.eval()
    for spec in args.methods:
        method = build_method(spec, bb)
        adapter = getattr(method, "_adapter", None)
        per: dict[str, list[float]] = {}
        with torch.no_grad(), (adapter() if adapter else contextlib.nullcontext()):
            for i in range(args.clips):
                clip = stream.make_clip(FIRST + i, 16, bb.image_size, seed=0, copies=1, balanced=True)
                video = VideoClip(clip.pixel_values[None], clip.indices, len(set(clip.indices)), None, (1, 1),
                                  bb.image_size, 0.0)
                enc = method.encode(video)
                visual = (enc.embeds.reshape(-1, enc.embeds.shape[-1]), list(enc.groups))
                losses, hits = clip_forward(bb, clip, Texts(bb.tokenizer, clip, KINDS), visual)
                for kind, value in kind_means(losses).items():
                    per.setdefault(kind, []).append(float(value))
                per.setdefault("letter", []).extend(float(h) for _, h in hits)
        print(spec, json.dumps({k: round(sum(v) / len(v), 3) for k, v in per.items()}), flush=True)


if __name__ == "__main__":
    main()
