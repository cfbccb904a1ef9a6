"""The lmms-eval model ``lfbench`` through lmms-eval's real evaluator, on a task folder written here."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from liteframe_bench.testing import moving_square_video

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

TASK_UTILS = '''
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
'''


@pytest.fixture(scope="module")
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


def test_entry_point_discovery_by_name():
    from lmms_eval.models import get_model, get_model_manifest

    assert get_model_manifest("lfbench").simple_class_path == "liteframe_bench.lmms_adapter.LfbenchModel"
    from liteframe_bench.lmms_adapter import LfbenchModel

    assert get_model("lfbench") is LfbenchModel


def test_simple_evaluate_records_bad_videos_and_goes_on(probe_task, tmp_path):
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    tasks, _ = probe_task
    sidecar = tmp_path / "s.jsonl"
    # the model_args string path, with a multi-parameter spec separated by ';'
    args = f"method=prumerge:ratio=4;variant=plus,frames=4,model=tiny,sidecar={sidecar}"
    res = simple_evaluate(model="lfbench", model_args=args, tasks=["lfb_adapter_probe"],
                          task_manager=TaskManager(include_path=str(tasks), include_defaults=False), log_samples=True)
    acc = res["results"]["lfb_adapter_probe"]["acc,none"]
    assert 0.0 <= acc <= 0.4  # the three broken samples are wrong whatever the model says
    rows = [json.loads(line) for line in sidecar.read_text().splitlines()]
    assert len(rows) == 5 and {r["method"] for r in rows} == {"prumerge:ratio=4,variant=plus"}
    by_id = {r["doc_id"]: r for r in rows}
    assert by_id[0]["error"] is None and by_id[0]["visual_tokens"] == 4 * 4 and by_id[0]["timings"]["vision"] > 0
    assert "no such file" in by_id[2]["error"] and by_id[2]["prediction"] == ""
    assert "VideoError" in by_id[3]["error"]
    assert "doc_to_visual exited" in by_id[4]["error"]
    logged = res["samples"]["lfb_adapter_probe"]
    assert len(logged) == 5


def test_model_object_is_reusable_after_clean(probe_task, tmp_path):
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    from liteframe_bench.lmms_adapter import LfbenchModel

    tasks, _ = probe_task
    lm = LfbenchModel(method="wap:ratio=16", frames=4, sidecar=str(tmp_path / "s.jsonl"))
    tm = TaskManager(include_path=str(tasks), include_defaults=False)
    first = simple_evaluate(model=lm, tasks=["lfb_adapter_probe"], task_manager=tm, limit=2)
    second = simple_evaluate(model=lm, tasks=["lfb_adapter_probe"], task_manager=tm, limit=2)
    assert first["results"]["lfb_adapter_probe"]["acc,none"] == second["results"]["lfb_adapter_probe"]["acc,none"]
    assert lm.backbone.model is not None and len((tmp_path / "s.jsonl").read_text().splitlines()) == 4


def test_lmms_eval_command_line(probe_task, tmp_path):
    tasks, _ = probe_task
    exe = Path(sys.executable).parent / "lmms-eval"
    cmd = [str(exe), "--model", "lfbench", "--model_args", f"method=baseline,frames=4,sidecar={tmp_path / 's.jsonl'}",
           "--tasks", "lfb_adapter_probe", "--include_path", str(tasks), "--limit", "2",
           "--output_path", str(tmp_path / "out")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert res.returncode == 0, res.stderr[-3000:]
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 2
    assert list((tmp_path / "out").rglob("*results*.json"))


def test_bad_model_args_are_clear():
    from liteframe_bench.errors import LfbenchError, SpecError
    from liteframe_bench.lmms_adapter import LfbenchModel

    with pytest.raises(SpecError, match="unknown method or reducer 'nope'"):
        LfbenchModel(method="nope")
    with pytest.raises(LfbenchError, match="tiles='3' is invalid"):
        LfbenchModel(tiles="3")
    with pytest.raises(LfbenchError, match="frames=0"):
        LfbenchModel(frames=0)


def test_unsupported_request_types():
    from liteframe_bench.lmms_adapter import LfbenchModel

    lm = LfbenchModel()
    with pytest.raises(NotImplementedError, match="generate_until tasks only"):
        lm.loglikelihood([])
