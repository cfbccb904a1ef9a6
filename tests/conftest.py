import os

import pytest
import torch

from liteframe_bench.testing import moving_square_video

# Determinism and a small thread count: the suite runs on 2 cores.
torch.manual_seed(0)
torch.set_num_threads(min(2, os.cpu_count() or 1))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# A small lmms-eval task written by the tests: 2 good samples, a missing video, a corrupt one, and a
# doc_to_visual that calls sys.exit() like some built-in helpers. Used through $LFBENCH_TASKS / include_path.
TASK_YAML = """
task: lfb_adapter_probe
dataset_path: json
dataset_kwargs:
  data_files:
    test: stub.json
test_split: test
output_type: generate_until
process_docs: !function utils.process_docs
doc_to_visual: !function utils.doc_to_visual
doc_to_text: !function utils.doc_to_text
doc_to_target: answer
generation_kwargs:
  max_new_tokens: 3
process_results: !function utils.process_results
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""

TASK_UTILS = """
import os
import sys

import datasets


def process_docs(ds):
    root = os.environ["PROBE_ROOT"]
    rows = [{"id": "ok0", "video": f"{root}/ok.mp4", "answer": "A"},
            {"id": "ok1", "video": f"{root}/ok.mp4", "answer": "B"},
            {"id": "missing", "video": f"{root}/missing.mp4", "answer": "A"},
            {"id": "corrupt", "video": f"{root}/corrupt.mp4", "answer": "A"},
            {"id": "exits", "video": "EXIT", "answer": "A"}]
    return datasets.Dataset.from_list(rows)


def doc_to_visual(doc):
    if doc["video"] == "EXIT":  # like some built-in helpers on a missing video
        sys.exit(-1)
    return [doc["video"]]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return "Which one?\\nA. left\\nB. right\\nAnswer with the option's letter."


def process_results(doc, results):
    return {"acc": float(results[0].strip()[:1] == doc["answer"])}
"""


@pytest.fixture(scope="session")
def probe_task(tmp_path_factory):
    base = tmp_path_factory.mktemp("lmms")
    tasks, data = base / "tasks", base / "data"
    (tasks / "probe").mkdir(parents=True)
    data.mkdir()
    (tasks / "probe" / "probe.yaml").write_text(TASK_YAML)
    (tasks / "probe" / "utils.py").write_text(TASK_UTILS)
    (tasks / "probe" / "stub.json").write_text('[{"id": "stub"}]')
    moving_square_video(data / "ok.mp4", 12, size=224)
    (data / "corrupt.mp4").write_text("not a video")
    os.environ["PROBE_ROOT"] = str(data)
    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
    return tasks, data
