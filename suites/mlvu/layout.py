"""MLVU dev local copy: one JSON per task type plus videos under ``$LFBENCH_DATA/mlvu/`` (see README.md).

The MLVU download (hub dataset ``MLVU/MVLU``, folder ``MLVU/``) keeps the multiple-choice dev questions in
``json/<N>_<task>.json`` (a JSON array of ``{video, duration, question, candidates, answer, question_type}``)
and the videos in ``video/<N>_<task>/``. lmms-eval's ``mlvu_dev`` task reads a parquet conversion of the
same questions (``sy1998/MLVU_dev``) whose docs are ``{video_name, duration, question, candidates, answer,
task_type, question_id}``, with the options appended to the question as ``(A) ...`` lines and the answer a
letter; :func:`load_rows` builds exactly those docs so lmms-eval's prompt and scorer apply unchanged.
Imports nothing from lmms-eval.
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


def annotation_files(folder: Path) -> list[Path]:
    return [Path(folder) / "json" / f"{stem}.json" for stem, _ in TASKS]


def question_text(question: str, candidates: list[str]) -> str:
    """The question with its options appended, as in the lmms-eval MLVU dev parquet."""
    letters = string.ascii_uppercase
    return question + "\n" + "".join(f"({letters[i]}) {c}\n" for i, c in enumerate(candidates))


def load_rows(folder: Path, suite: str = SUITE) -> list[dict[str, Any]]:
    """All seven multiple-choice task types (lmms-eval's dev score averages over all seven)."""
    folder = Path(folder)
    files = annotation_files(folder)
    require_files(suite, files, folder)
    rows: list[dict[str, Any]] = []
    for (stem, task), path in zip(TASKS, files, strict=True):
        records = read_records(suite, path)
        require_keys(suite, path, records, KEYS)
        for i, rec in enumerate(records):
            candidates = [str(c) for c in rec["candidates"]]
            if not 2 <= len(candidates) <= 26:
                raise bad_annotation(suite, path, f"record {i} has {len(candidates)} candidates")
            if str(rec["answer"]) not in candidates:
                raise bad_annotation(suite, path, f"record {i}: answer {rec['answer']!r} is not one of its candidates")
            rows.append(
                {
                    "video_name": f"{stem}/{rec['video']}",
                    "duration": float(rec.get("duration") or 0.0),
                    "question": question_text(str(rec["question"]), candidates),
                    "candidates": candidates,
                    "answer": string.ascii_uppercase[candidates.index(str(rec["answer"]))],
                    "task_type": task,
                    "question_id": f"{task}_{i}",
                }
            )
    return rows


def video_path(doc: dict[str, Any], folder: Path) -> Path:
    return Path(folder) / "video" / doc["video_name"]
