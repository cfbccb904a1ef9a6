"""lmms-eval hooks of the ``synth`` tasks (``synth_tiny.yaml``, ``synth.yaml``).

lmms-eval executes this file by path for every ``!function utils.<name>`` (it is not imported as a package
module), so everything here imports absolutely. The YAMLs load the one-row ``stub.json`` beside them; the
``process_docs_*`` hooks swap in the real eval split from ``$LFBENCH_DATA/synth/<size>/``, generating it first
when it is missing (tiny: seconds; default: under a minute). Scoring is lmms-eval's own Video-MME scorer
(``videomme_process_results`` / ``videomme_aggregate_results``), imported, not copied: the items carry Video-MME's
fields with Video-MME's vocabulary (``duration``, ``domain``, ``sub_category``, ``task_type``).
"""

from __future__ import annotations

import datasets
from lmms_eval.tasks.videomme.utils import videomme_aggregate_results, videomme_process_results

from liteframe_bench.data import suite_dir
from liteframe_bench.suites.synth import generator

METRIC = "synth_score"
OPEN_METRIC = "synth_open_score"
OPTION_PROMPT = (
    "Select the best answer to the following multiple-choice question based on the video. "
    "Respond with only the letter (A, B, C, or D) of the correct option."
)
DEFAULT_POST_PROMPT = "\nAnswer with the option's letter from the given choices directly."


def _docs(size: str) -> datasets.Dataset:
    folder = generator.make(size)  # a no-op when the folder is complete
    rows = generator.load(size, "eval")
    for row in rows:
        row["video_path"] = str((folder / row["video"]).resolve())
    return datasets.Dataset.from_list(rows)


def process_docs_tiny(dataset: datasets.Dataset) -> datasets.Dataset:
    return _docs("tiny")


def process_docs_default(dataset: datasets.Dataset) -> datasets.Dataset:
    return _docs("default")


def doc_to_visual(doc: dict) -> list[str]:
    if doc.get("video_path"):
        return [doc["video_path"]]
    return [str(suite_dir("synth") / doc["size"] / doc["video"])]


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    """Video-MME's frames-only prompt: instruction, question, the four options, post-prompt."""
    kwargs = lmms_eval_specific_kwargs or {}
    pre = kwargs.get("pre_prompt", "")
    post = kwargs.get("post_prompt", DEFAULT_POST_PROMPT)
    options = "\n".join(doc["options"])
    return f"{pre}{OPTION_PROMPT}\n{doc['question']}\n{options}{post}"


def process_results(doc: dict, results: list[str]) -> dict:
    """Video-MME's per-sample record (letter extraction, 0/1 score, duration/category/task type), as ``synth_score``."""
    return {METRIC: videomme_process_results(doc, results)["videomme_perception_score"]}


aggregate_results = videomme_aggregate_results


# ------------------------------------------------------------------------------------------------------------
# synth_open: the same questions without options, answered in words and judged from the scene


def doc_to_text_open(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    kwargs = lmms_eval_specific_kwargs or {}
    return f"{kwargs.get('pre_prompt', '')}{doc['question']}\n{kwargs.get('post_prompt', generator.OPEN_PROMPT)}"


def doc_to_target_open(doc: dict) -> str:
    return doc["options"][generator.LETTERS.index(doc["answer"])][3:]


def process_results_open(doc: dict, results: list[str]) -> dict:
    """1.0 when the response names the right answer (any flashed object for ``appeared``), else 0.0."""
    return {OPEN_METRIC: float(generator.open_answer_correct(doc, results[0] if results else ""))}
