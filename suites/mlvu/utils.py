"""Task functions of ``lfb_mlvu_dev``: local docs and video paths; prompt, scoring and aggregation are
lmms-eval's own (``lmms_eval.tasks.mlvu.utils``, referenced from the YAML)."""

from __future__ import annotations

from typing import Any

import datasets

from liteframe_bench.data import suite_dir, task_docs
from liteframe_bench.suites.mlvu import layout


def process_docs(dataset: datasets.Dataset) -> datasets.Dataset:
    return task_docs("mlvu")


def doc_to_visual(doc: dict[str, Any]) -> list[str]:
    return [str(layout.video_path(doc, suite_dir("mlvu")))]
