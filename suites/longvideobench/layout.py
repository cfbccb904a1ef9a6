"""LongVideoBench validation local copy: ``lvb_val.json`` plus ``videos/`` under ``$LFBENCH_DATA/longvideobench/``.

``lvb_val.json`` (hub dataset ``longvideobench/LongVideoBench``) lists each question with its options as
``candidates`` and the answer index ``correct_choice``; lmms-eval's LongVideoBench functions read the hub
parquet's columns ``option0``..``option4`` (``"N/A"`` past the last option) instead, so :func:`load_rows`
adds them. Imports nothing from lmms-eval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liteframe_bench.data import bad_annotation, read_records, require_files, require_keys

SUITE = "longvideobench"
ANNOTATION = "lvb_val.json"
VIDEOS = "videos"
MAX_OPTIONS = 5
KEYS = ("id", "video_path", "question", "candidates", "correct_choice", "duration_group", "question_category")


def annotation_files(folder: Path) -> list[Path]:
    return [Path(folder) / ANNOTATION]


def load_rows(folder: Path, suite: str = SUITE, warnings: list[str] | None = None) -> list[dict[str, Any]]:
    folder = Path(folder)
    (path,) = annotation_files(folder)
    require_files(suite, [path], folder)
    records = read_records(suite, path)
    require_keys(suite, path, records, KEYS)
    rows = []
    for i, rec in enumerate(records):
        candidates = [str(c) for c in rec["candidates"]]
        if not 2 <= len(candidates) <= MAX_OPTIONS:
            raise bad_annotation(suite, path, f"record {i} has {len(candidates)} candidates (allowed: 2-5)")
        choice = int(rec["correct_choice"])
        if not 0 <= choice < len(candidates):
            raise bad_annotation(suite, path, f"record {i}: correct_choice {choice} is out of range")
        row = {
            "id": str(rec["id"]),
            "video_id": str(rec.get("video_id", "")),
            "video_path": str(rec["video_path"]),
            "question": str(rec["question"]),
            "correct_choice": choice,
            "duration_group": int(rec["duration_group"]),
            "question_category": str(rec["question_category"]),
            "topic_category": str(rec.get("topic_category", "")),
            "level": str(rec.get("level", "")),
            "duration": float(rec.get("duration") or 0.0),
            "subtitle_path": str(rec.get("subtitle_path") or ""),
            "starting_timestamp_for_subtitles": float(rec.get("starting_timestamp_for_subtitles") or 0.0),
        }
        for k in range(MAX_OPTIONS):
            row[f"option{k}"] = candidates[k] if k < len(candidates) else "N/A"
        rows.append(row)
    return rows


def video_path(doc: dict[str, Any], folder: Path) -> Path:
    return Path(folder) / VIDEOS / doc["video_path"]
