"""HLVid local copy: the hub parquet plus ``videos/`` under ``$LFBENCH_DATA/hlvid/`` (see README.md).

Hub dataset ``bfshi/HLVid`` (AutoGaze, NVlabs): ``data/test-00000-of-00001.parquet`` with 268 rows
``{question_id, category, video_path, question, answer}`` where ``question`` already holds the four options
(``A. ...`` to ``D. ...`` lines) and the instruction ``Please answer directly with the letter of the correct
answer.``, and ``answer`` is the letter; the 5-minute 4K videos come as ``videos_part_NNNN.tar`` archives
whose entries start with ``videos/``, extracted in the suite folder. A JSON / JSON-lines file with the same
fields (``data/test.json``) is accepted too, optionally with an ``options`` list when the question does not
include them. Imports nothing from lmms-eval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liteframe_bench.data import bad_annotation, read_records, require_files, require_keys

SUITE = "hlvid"
ANNOTATION = "data/test-00000-of-00001.parquet"
VIDEOS = "videos"
KEYS = ("question_id", "video_path", "question", "answer")
LETTERS = ("A", "B", "C", "D")


def annotation_files(folder: Path) -> list[Path]:
    data = Path(folder) / "data"
    found = sorted(data.glob("test-*.parquet"))
    if not found:
        found = [p for p in (data / "test.json", data / "test.jsonl") if p.is_file()][:1]
    return found or [Path(folder) / ANNOTATION]


def answer_letter(value: Any) -> str:
    """``"B"``, ``"B."``, ``"(B)"``, ``"b"`` -> ``"B"``; ``""`` when no single option letter is there."""
    text = str(value).strip().strip("().:").strip().upper()
    return text if text in LETTERS else (text[:1] if text[:1] in LETTERS and not text[1:2].isalpha() else "")


def load_rows(folder: Path, suite: str = SUITE, warnings: list[str] | None = None) -> list[dict[str, Any]]:
    folder = Path(folder)
    files = annotation_files(folder)
    require_files(suite, files, folder)
    rows: list[dict[str, Any]] = []
    for path in files:
        records = read_records(suite, path)
        require_keys(suite, path, records, KEYS)
        for i, rec in enumerate(records):
            letter = answer_letter(rec["answer"])
            if not letter:
                raise bad_annotation(suite, path, f"record {i}: answer {rec['answer']!r} is not one of A-D")
            options = rec.get("options")
            rows.append(
                {
                    "question_id": str(rec["question_id"]),
                    "category": str(rec.get("category") or ""),
                    "video_path": str(rec["video_path"]),
                    "question": str(rec["question"]),
                    "options": [str(o) for o in options] if options is not None else [],
                    "answer": letter,
                }
            )
    return rows


def video_path(doc: dict[str, Any], folder: Path) -> Path:
    """``videos/<video_path>`` (a ``video_path`` that already starts with ``videos/`` is taken as is)."""
    rel = Path(doc["video_path"])
    if rel.is_absolute():
        return rel
    if rel.parts[:1] == (VIDEOS,):
        return Path(folder) / rel
    return Path(folder) / VIDEOS / rel
