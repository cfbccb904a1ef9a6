"""Task functions of ``lfb_hlvid``: HLVid has no lmms-eval task, so prompt and scorer are lfbench's.

Prompt: the question as the dataset gives it (stem, ``A.``-``D.`` option lines and the instruction
``Please answer directly with the letter of the correct answer.``), as NVILA-HD-Video is prompted in the
AutoGaze release; options given separately are appended as ``A. ...`` lines and the instruction is added
when absent (never when the question already lists them). Scorer (``lfb_hlvid``): the option letter is
extracted with lmms-eval's shared multiple-choice extractor
(``lmms_eval.tasks._task_utils.mcq_extract.extract_mcq_answer`` over A-D, as Video-MME and MLVU use) and
compared with the answer letter; an empty or letter-less response is wrong. That extractor falls back to any
capital A-D anywhere in the text, inside words too ("Hampden Blvd" reads as B). ``lfb_hlvid_strict`` scores
with :func:`extract_letter_strict` instead, which accepts only a letter at the start of the response.
``hlvid_acc`` is the percentage of questions answered correctly (per-category accuracies are logged).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from typing import Any

import datasets

from liteframe_bench.data import suite_dir, task_docs
from liteframe_bench.suites.hlvid import layout

log = logging.getLogger(__name__)

INSTRUCTION = "Please answer directly with the letter of the correct answer."
_LETTERS = "".join(layout.LETTERS)
# A line of the question that starts with an option label: "A. ...", "(A) ...", "A) ...".
_OPTION_LINE = re.compile(rf"^\s*\(?([{_LETTERS}])[.)]", re.MULTILINE)
# A response that starts with a letter standing alone: "A", "A.", "A)", "(A)", or "A" ending its first line.
_STRICT = re.compile(rf"\s*(?:\(([{_LETTERS}])\)|([{_LETTERS}])(?:[.)]|\s*$|\s*\n))")


def process_docs(dataset: datasets.Dataset) -> datasets.Dataset:
    return task_docs("hlvid")


def doc_to_visual(doc: dict[str, Any]) -> list[str]:
    return [str(layout.video_path(doc, suite_dir("hlvid")))]


def lists_options(question: str) -> bool:
    """Whether ``question`` already holds its options as lines labelled A to D (``A. ...`` or ``(A) ...``)."""
    return set(_OPTION_LINE.findall(question)) == set(layout.LETTERS)


def doc_to_text(doc: dict[str, Any], lmms_eval_specific_kwargs: dict | None = None) -> str:
    kwargs = lmms_eval_specific_kwargs or {}
    text = str(doc["question"]).rstrip()
    options = list(doc.get("options") or [])
    if options and not lists_options(text):
        text += "\n" + "\n".join(
            o if o[:2] == f"{letter}." else f"{letter}. {o}" for letter, o in zip(layout.LETTERS, options, strict=False)
        )
    if INSTRUCTION not in text:
        text += "\n" + INSTRUCTION
    return f"{kwargs.get('pre_prompt', '')}{text}{kwargs.get('post_prompt', '')}"


def extract_letter(response: str) -> str:
    """The option letter (A-D) in a model response, ``""`` when there is none."""
    from lmms_eval.tasks._task_utils.mcq_extract import extract_mcq_answer

    return extract_mcq_answer(str(response or ""), choices=list(layout.LETTERS))


def extract_letter_strict(response: str) -> str:
    """The option letter only when the response starts with it standing alone: ``"B"``, ``"B."``, ``"B)"``,
    ``"(B)"`` (each optionally followed by text) or ``"B"`` alone on the first line; ``""`` otherwise, so
    ``"Hampden Blvd"`` or ``"Both"`` never count as B."""
    match = _STRICT.match(str(response or ""))
    return (match.group(1) or match.group(2)) if match else ""


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    return _score(doc, extract_letter(results[0] if results else ""))


def process_results_strict(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    return _score(doc, extract_letter_strict(results[0] if results else ""))


def _score(doc: dict[str, Any], pred: str) -> dict[str, Any]:
    score = 1.0 if pred and pred == doc["answer"] else 0.0
    return {
        "hlvid_acc": {
            "question_id": doc["question_id"],
            "category": doc.get("category", ""),
            "pred_answer": pred,
            "answer": doc["answer"],
            "score": score,
        }
    }


def aggregate_results(results: list[dict[str, Any]]) -> float:
    """Percent correct over all questions (0 when there are none)."""
    if not results:
        return 0.0
    by_cat: dict[str, list[float]] = defaultdict(list)
    for r in results:
        by_cat[r["category"]].append(r["score"])
    for cat, scores in sorted(by_cat.items()):
        log.info("HLVid %s: %.1f%% of %d", cat or "(no category)", 100 * sum(scores) / len(scores), len(scores))
    return 100.0 * sum(r["score"] for r in results) / len(results)
