"""Video-MME local copy: annotations, videos and subtitles under ``$LFBENCH_DATA/videomme/`` (see README.md).

Imports nothing from lmms-eval, so ``lfbench data check`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liteframe_bench.data import read_records, require_files, require_keys

SUITE = "videomme"
ANNOTATION = "videomme/test-00000-of-00001.parquet"
VIDEOS = "data"
SUBTITLES = "subtitle"
VIDEO_EXTS = (".mp4", ".MP4", ".mkv")  # the official helper's order
KEYS = ("videoID", "question_id", "duration", "domain", "sub_category", "task_type", "question", "options", "answer")


def annotation_files(folder: Path) -> list[Path]:
    """The parquet shard(s) of the hub copy (``videomme/test-*.parquet``); the canonical name when none."""
    found = sorted((Path(folder) / "videomme").glob("test-*.parquet"))
    return found or [Path(folder) / ANNOTATION]


def load_rows(folder: Path, suite: str = SUITE, warnings: list[str] | None = None) -> list[dict[str, Any]]:
    """The docs exactly as the hub parquet holds them (the columns lmms-eval's Video-MME functions read)."""
    folder = Path(folder)
    files = annotation_files(folder)
    require_files(suite, files, folder)
    rows: list[dict[str, Any]] = []
    for path in files:
        part = read_records(suite, path)
        require_keys(suite, path, part, KEYS)
        rows.extend(part)
    return rows


def video_path(doc: dict[str, Any], folder: Path) -> Path:
    """``data/<videoID>.mp4`` (or ``.MP4`` / ``.mkv`` when that exists), as the official helper looks."""
    base = Path(folder) / VIDEOS / str(doc["videoID"])
    for ext in VIDEO_EXTS:
        candidate = base.with_name(base.name + ext)
        if candidate.is_file():
            return candidate
    return base.with_name(base.name + VIDEO_EXTS[0])


def subtitle_path(doc: dict[str, Any], folder: Path) -> Path:
    return Path(folder) / SUBTITLES / f"{doc['videoID']}.srt"
