"""Task functions of ``lfb_longvideobench_val_v``.

Prompt, scoring and aggregation are lmms-eval's own (``lmms_eval.tasks.longvideobench.utils``). That module
imports ``decord`` at module level but none of the functions used here touch it (only its frame-loading
helpers for the interleaved ``_i`` variant do), so when decord is not installed it is imported with a
placeholder ``decord`` module present for the duration of the import only (removed from ``sys.modules``
right after; calling its ``VideoReader`` raises ImportError).

One deliberate difference: the official parser answers an unparseable response with a *random* option
(as the LongVideoBench paper does). lfbench's model answers ``""`` when a sample's video is missing or
unreadable; such an empty response is counted wrong here instead of getting a random 20-25 % chance.
The official parser still runs first, so the random state and every other sample's score are unchanged.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

import datasets

from liteframe_bench.data import suite_dir, task_docs
from liteframe_bench.suites.longvideobench import layout

_OFFICIAL = "lmms_eval.tasks.longvideobench.utils"
_official_module: types.ModuleType | None = None


def _placeholder_decord() -> types.ModuleType:
    mod = types.ModuleType("decord")

    def _unavailable(*args: Any, **kwargs: Any):
        raise ImportError("decord is not installed; lfbench's LongVideoBench task never decodes with decord")

    mod.VideoReader = _unavailable
    mod.cpu = _unavailable
    mod.__lfbench_placeholder__ = True
    return mod


def official() -> types.ModuleType:
    """``lmms_eval.tasks.longvideobench.utils``, importable without decord (see module docstring)."""
    global _official_module
    if _official_module is not None:
        return _official_module
    if _OFFICIAL in sys.modules or importlib.util.find_spec("decord") is not None:
        _official_module = importlib.import_module(_OFFICIAL)
        return _official_module
    placeholder = _placeholder_decord()
    sys.modules["decord"] = placeholder
    try:
        _official_module = importlib.import_module(_OFFICIAL)
    finally:
        if sys.modules.get("decord") is placeholder:
            del sys.modules["decord"]
    return _official_module


def process_docs(dataset: datasets.Dataset) -> datasets.Dataset:
    return task_docs("longvideobench")


def doc_to_visual(doc: dict[str, Any]) -> list[str]:
    return [str(layout.video_path(doc, suite_dir("longvideobench")))]


def doc_to_text(doc: dict[str, Any], lmms_eval_specific_kwargs: dict | None = None) -> str:
    return official().longvideobench_doc_to_text(
        doc, lmms_eval_specific_kwargs or {"pre_prompt": "", "post_prompt": ""}
    )


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    out = official().longvideobench_process_results(doc, results)
    if not str(results[0] or "").strip():  # a failed sample (see module docstring): wrong, not a random guess
        out["lvb_acc"]["parsed_pred"] = ""
    return out


def aggregate_results(results: list[dict[str, Any]]) -> float:
    return official().longvideobench_aggregate_results(results)
