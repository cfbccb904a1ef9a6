"""MLVU dev local copy: one JSON per task type plus videos under ``$LFBENCH_DATA/mlvu/`` (see README.md).

The MLVU download (hub dataset ``MLVU/MVLU``, folder ``MLVU/``) keeps the multiple-choice dev questions in
``json/<N>_<task>.json`` (a JSON array of ``{video, duration, question, candidates, answer, question_type}``)
and the videos in ``video/<N>_<task>/``. lmms-eval's ``mlvu_dev`` task reads a parquet conversion of the
same questions (``sy1998/MLVU_dev``) whose docs are ``{video_name, duration, question, candidates, answer,
task_type, question_id}``, with the options appended to the question as ``(A) ...`` lines and the answer a
letter; :func:`load_rows` builds exactly those docs so lmms-eval's prompt and scorer apply unchanged.
Records that the official scripts tolerate are kept and scored as they score them (see README.md: an answer
repeated among the candidates takes the last copy's letter; an answer not among them, or a record with no
candidates, can never be matched). Imports nothing from lmms-eval.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from liteframe_bench.data import bad_annotation, read_records, require_files, require_keys

SUITE = "mlvu"
# (file stem / video folder, task_type as lmms-eval's mlvu_aggregate_results_dev names it)
TASKS: tuple[tuple[str, str], ...] = (
    ("1_plotQA", "plotQA"),
    ("2_needle", "needle"),
    ("3_ego", "ego"),
    ("4_count", "count"),
    ("5_order", "order"),
    ("6_anomaly_reco", "anomaly_reco"),
    ("7_topic_reasoning", "topic_reasoning"),
)
KEYS = ("video", "question", "candidates", "answer")
# The answer of a record whose answer is not among its candidates: no extracted letter ever equals it, as the
# official scripts' letter for an answer index of -1 ("@") never matches.
NO_ANSWER = "@"


def annotation_files(folder: Path) -> list[Path]:
    return [Path(folder) / "json" / f"{stem}.json" for stem, _ in TASKS]


def question_text(question: str, candidates: list[str]) -> str:
    """The question with its options appended, as in the lmms-eval MLVU dev parquet."""
    letters = string.ascii_uppercase
    return question + "\n" + "".join(f"({letters[i]}) {c}\n" for i, c in enumerate(candidates))


def answer_letter(answer: str, candidates: list[str]) -> str:
    """The letter of ``answer`` among ``candidates`` as MLVU's official scripts assign it: the last copy's when the
    answer repeats, :data:`NO_ANSWER` when it is not among them (so every response is scored wrong)."""
    positions = [i for i, c in enumerate(candidates) if c == answer]
    return string.ascii_uppercase[positions[-1]] if positions else NO_ANSWER


def record_quirks(rec: dict[str, Any], candidates: list[str]) -> list[str]:
    """What is odd about one record that the official scoring tolerates (empty if nothing)."""
    answer = str(rec["answer"])
    quirks = []
    if not str(rec["question"]).strip() and not candidates:
        quirks.append("empty question and no candidates: kept, scored wrong")
    elif answer not in candidates:
        quirks.append(f"answer {answer!r} is not one of its candidates {candidates}: kept, scored wrong")
    elif candidates.count(answer) > 1:
        letters = [string.ascii_uppercase[i] for i, c in enumerate(candidates) if c == answer]
        quirks.append(
            f"the answer {answer!r} is repeated as candidates {', '.join(letters)}: scored as {letters[-1]} "
            "(the last copy, as the official scripts do)"
        )
    return quirks


def load_rows(folder: Path, suite: str = SUITE, warnings: list[str] | None = None) -> list[dict[str, Any]]:
    """All seven multiple-choice task types (lmms-eval's dev score averages over all seven).

    Every record is kept; the quirks of the real files (an answer that is not among the candidates, an answer
    repeated among them, an empty question without candidates) are appended to ``warnings`` as
    ``<file>: record <i>: ...``.
    """
    folder = Path(folder)
    files = annotation_files(folder)
    require_files(suite, files, folder)
    rows: list[dict[str, Any]] = []
    for (stem, task), path in zip(TASKS, files, strict=True):
        records = read_records(suite, path)
        require_keys(suite, path, records, KEYS)
        for i, rec in enumerate(records):
            if not isinstance(rec["candidates"], list):
                raise bad_annotation(
                    suite, path, f"record {i}: candidates is {type(rec['candidates']).__name__}; expected a list"
                )
            candidates = [str(c) for c in rec["candidates"]]
            if len(candidates) > len(string.ascii_uppercase):
                raise bad_annotation(suite, path, f"record {i} has {len(candidates)} candidates (allowed: at most 26)")
            if warnings is not None:
                warnings.extend(f"{path}: record {i}: {q}" for q in record_quirks(rec, candidates))
            rows.append(
                {
                    "video_name": f"{stem}/{rec['video']}",
                    "duration": float(rec.get("duration") or 0.0),
                    "question": question_text(str(rec["question"]), candidates),
                    "candidates": candidates,
                    "answer": answer_letter(str(rec["answer"]), candidates),
                    "task_type": task,
                    "question_id": f"{task}_{i}",
                }
            )
    return rows


def video_path(doc: dict[str, Any], folder: Path) -> Path:
    return Path(folder) / "video" / doc["video_name"]
