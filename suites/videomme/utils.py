"""Task functions of ``lfb_videomme`` and ``lfb_videomme_w_subtitle``.

Prompts, scoring and aggregation are lmms-eval's own (``lmms_eval.tasks.videomme.utils``, referenced from the
YAMLs); only where the data comes from is ours: ``process_docs`` reads the local parquet and
``doc_to_visual`` returns the local video path (never ``sys.exit``: a missing video is the model's to report).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import datasets

from liteframe_bench.data import DataError, data_root, suite_dir, task_docs
from liteframe_bench.suites.videomme import layout

log = logging.getLogger(__name__)


def _folder():
    return suite_dir("videomme")


def process_docs(dataset: datasets.Dataset) -> datasets.Dataset:
    """Replace the shipped one-row stub with the local copy's questions."""
    return task_docs("videomme")


def process_docs_w_subtitle(dataset: datasets.Dataset) -> datasets.Dataset:
    return task_docs("videomme_w_subtitle")


def doc_to_visual(doc: dict[str, Any]) -> list[str]:
    return [str(layout.video_path(doc, _folder()))]


@contextmanager
def _official_root(base: str, video: Path | None = None):
    """Point the official module's cache root at ``base`` for one call (it reads ``<base>/videomme/...``).

    The official subtitle selection opens ``data/<videoID>.mp4`` for its frame rate and frame count; ``video``
    (the file that exists, possibly ``.MP4`` or ``.mkv``) is opened instead.
    """
    from lmms_eval.tasks.videomme import utils as official

    if official.cache_name != layout.SUITE:
        raise DataError(
            f"lmms-eval's Video-MME helper reads <root>/{official.cache_name}/, lfbench keeps Video-MME in "
            f"<root>/{layout.SUITE}/: this lmms-eval version is not supported by lfb_videomme_w_subtitle"
        )
    saved = official.base_cache_dir, official.extract_subtitles
    official.base_cache_dir = base
    if video is not None:
        extract = official.extract_subtitles
        official.extract_subtitles = lambda _assumed, subtitle_path: extract(str(video), subtitle_path)
    try:
        yield official
    finally:
        official.base_cache_dir, official.extract_subtitles = saved


def doc_to_text_subtitle(doc: dict[str, Any], lmms_eval_specific_kwargs: dict | None = None) -> str:
    """lmms-eval's ``videomme_doc_to_text_subtitle``, reading ``subtitle/<videoID>.srt`` from the local copy.

    The official function finds the subtitle and video under ``<HF_HOME>/videomme/``; it is called unchanged
    with its root pointed at ``$LFBENCH_DATA`` (same ``videomme/`` sub-folder) and, for the frame timing of the
    subtitles, the video file that exists (``.mp4``, ``.MP4`` or ``.mkv``; it assumes ``.mp4``). If it fails on this doc
    (e.g. a malformed .srt), the failure is logged and the official no-subtitle prompt is used instead, so
    one bad file does not end the run.
    """
    kwargs = lmms_eval_specific_kwargs if lmms_eval_specific_kwargs is not None else {}
    with _official_root(str(data_root()), layout.video_path(doc, _folder())) as official:
        try:
            return official.videomme_doc_to_text_subtitle(doc, kwargs)
        except DataError:
            raise
        except Exception as e:  # anything the official parser trips on
            log.warning(
                "videomme subtitle for %s unusable (%s: %s); prompting without subtitles",
                doc.get("videoID"),
                type(e).__name__,
                e,
            )
    # With a root that has no subtitle folder the official function emits "No subtitles available".
    with _official_root(str(data_root() / ".lfbench-no-subtitles")) as official:
        return official.videomme_doc_to_text_subtitle(doc, kwargs)
