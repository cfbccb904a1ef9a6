"""Where the zoo's ``mini`` loses multiple-choice answers: the numbers of the README's "What the zoo's models can and
cannot do" (the breakdown table and the bullets under the table of runs).

    lfbench eval --model mini --suite synth --method baseline --frames 16 --max-new-tokens 24 --out results/mini-eval
    python examples/zoo_diagnostics.py results/mini-eval [--scenes 60] [--stream-clips 80]

1. The eval's stored predictions, per family (:func:`liteframe_bench.zoo.check.answer_breakdown`).
2. Text only, per option's words: the letter right when the words are given (eval questions of the single-frame
   families, whose options are one colour or shape); then per family on questions of the training distribution.
3. With the video, per question kind: the letter right when the right words are given after it, on the eval scenes
   (rendered without the codec) and on held-out training-stream clips (seed 1, as the training's own evaluation).
4. How alike the LLM's input embeddings of the four non-circle shape words are, against five colours.
"""

import argparse
import json
from collections import defaultdict
from pathlib import Path

import torch

from liteframe_bench.backbone import load_backbone
from liteframe_bench.suites.synth import generator as g
from liteframe_bench.zoo import stream
from liteframe_bench.zoo.check import answer_breakdown, eval_clip, letters_after_true_words, letters_given_words
from liteframe_bench.zoo.teacher import chain_questions, chain_questions_loss


def rate(hits: list[bool]) -> str:
    return f"{sum(hits)}/{len(hits)} ({100 * sum(hits) / max(1, len(hits)):.0f}%)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("eval_dir", type=Path, help="the --out folder of the lfbench eval command above")
    ap.add_argument("--scenes", type=int, default=60, help="eval scenes for parts 2 and 3 (5 questions each)")
    ap.add_argument("--stream-clips", type=int, default=80, help="held-out stream clips for part 3")
    args = ap.parse_args()
    samples = sorted(args.eval_dir.rglob("baseline_f16.samples.jsonl"))
    if not samples:
        raise SystemExit(f"{args.eval_dir}: no baseline_f16.samples.jsonl; run the lfbench eval command first")
    scenes = g.generate("default", "eval")
    items = [it for _scene, its in scenes for it in its]
    bb = load_backbone("mini", dtype="float32")
    bb.model.eval()

    rows = [json.loads(line) for line in samples[0].read_text().splitlines()]
    print(f"1. {samples[0]}")
    for family, c in answer_breakdown(rows, items).items():
        print(f"   {family:9s} {c}")
    for kind in ("background", "What shape", "What colour is the small"):
        c = answer_breakdown([r for r in rows if kind in items[r["doc_id"]]["question"]], items)
        print(f"   questions with {kind!r}: {c}")

    print("2. text only, letter right given each option's words (single-frame families: one or two words)")
    single = [it for it in items[: 5 * args.scenes] if it["family"] in ("detail", "global")]
    for words, hits in sorted(letters_given_words(bb, single).items(),
                              key=lambda kv: sum(kv[1]) / len(kv[1])):
        print(f"   {words[:40]:40s} {rate(hits)}")

    print("2b. text only, on 400 training-distribution questions: letter right given the words, per family")
    per = defaultdict(list)
    with torch.no_grad():
        for question in chain_questions(bb.tokenizer, 400, (5, 99, 0), 16):
            per[question[0]].append(chain_questions_loss(bb, [question])[1])
    print("   " + ", ".join(f"{f} {100 * sum(v) / len(v):.1f}%" for f, v in per.items()))

    print("3. with the video, letter right after the right words (teacher-forced)")
    for name, clips in (
        ("eval scenes", (eval_clip(s, its, 16, bb.image_size) for s, its in scenes[: args.scenes])),
        ("stream clips", (stream.make_clip(i, 16, bb.image_size, seed=1, copies=1, balanced=True)
                          for i in range(args.stream_clips))),
    ):
        kinds = defaultdict(list)
        for clip in clips:
            for kind, hit in letters_after_true_words(bb, clip):
                kinds[kind].append(hit)
        print(f"   {name}: " + ", ".join(f"{k} {rate(v)}" for k, v in kinds.items()))

    print("4. the LLM's (tied) input embeddings: mean pairwise cosine of word groups as the answers write them")
    table = bb.model.model.language_model.get_input_embeddings().weight.detach()
    groups = {"square diamond triangle cross": ["square", "diamond", "triangle", "cross"],
              "the same with circle": ["square", "diamond", "triangle", "cross", "circle"],
              "red blue green yellow orange": ["red", "blue", "green", "yellow", "orange"]}
    for label, group in groups.items():
        print(f"   {label:32s} {mean_cosine(bb.tokenizer, table, group):.3f}")


def mean_cosine(tok, table: torch.Tensor, words: list[str]) -> float:
    """Mean cosine similarity over the pairs of ``words`` (each one token) of their rows of ``table``."""
    ids = [tok(w, add_special_tokens=False).input_ids for w in words]
    if any(len(i) != 1 for i in ids):
        raise ValueError(f"{words}: each must be one token, got {ids}")
    v = torch.nn.functional.normalize(table[[i[0] for i in ids]], dim=-1)
    n = len(words)
    return float(((v @ v.T).sum() - n) / (n * n - n))


if __name__ == "__main__":
    main()
