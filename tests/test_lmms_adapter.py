"""The lmms-eval model ``lfbench`` through lmms-eval's real evaluator, on a task folder written here."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


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
    res = simple_evaluate(
        model="lfbench",
        model_args=args,
        tasks=["lfb_adapter_probe"],
        task_manager=TaskManager(include_path=str(tasks), include_defaults=False),
        log_samples=True,
    )
    acc = res["results"]["lfb_adapter_probe"]["acc,none"]
    assert 0.0 <= acc <= 0.4  # the three broken samples are wrong whatever the model says
    rows = [json.loads(line) for line in sidecar.read_text().splitlines()]
    assert len(rows) == 5 and {r["method"] for r in rows} == {"prumerge:ratio=4,variant=plus"}
    by_id = {r["doc_id"]: r for r in rows}
    assert by_id[0]["error"] is None and by_id[0]["visual_tokens"] == 4 * 4 and by_id[0]["timings"]["vision"] > 0
    # same video: decoded and encoded once, the second question reuses its visual tokens (no decode, no vision)
    assert by_id[0]["clip_cached"] is False and (by_id[0]["tokens_cached"], by_id[1]["tokens_cached"]) == (False, True)
    assert "vision" not in by_id[1]["timings"] and by_id[1]["visual_tokens"] == by_id[0]["visual_tokens"]
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
    lm = LfbenchModel(method="wap:ratio=16", frames=4, model="tiny", sidecar=str(tmp_path / "s.jsonl"))
    tm = TaskManager(include_path=str(tasks), include_defaults=False)
    first = simple_evaluate(model=lm, tasks=["lfb_adapter_probe"], task_manager=tm, limit=2)
    second = simple_evaluate(model=lm, tasks=["lfb_adapter_probe"], task_manager=tm, limit=2)
    assert first["results"]["lfb_adapter_probe"]["acc,none"] == second["results"]["lfb_adapter_probe"]["acc,none"]
    assert lm.backbone.model is not None and len((tmp_path / "s.jsonl").read_text().splitlines()) == 4


def test_lmms_eval_command_line(probe_task, tmp_path):
    tasks, _ = probe_task
    exe = Path(sys.executable).parent / "lmms-eval"
    cmd = [
        str(exe),
        "--model",
        "lfbench",
        "--model_args",
        f"method=baseline,frames=4,model=tiny,sidecar={tmp_path / 's.jsonl'}",
        "--tasks",
        "lfb_adapter_probe",
        "--include_path",
        str(tasks),
        "--limit",
        "2",
        "--output_path",
        str(tmp_path / "out"),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert res.returncode == 0, res.stderr[-3000:]
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 2
    assert list((tmp_path / "out").rglob("*results*.json"))


def test_bad_model_args_are_clear():
    from liteframe_bench.errors import LfbenchError, SpecError
    from liteframe_bench.lmms_adapter import LfbenchModel

    with pytest.raises(SpecError, match="unknown method or reducer 'nope'"):
        LfbenchModel(method="nope", model="tiny")
    with pytest.raises(SpecError, match="tiles=.3. is invalid"):
        LfbenchModel(tiles="3", model="tiny")
    with pytest.raises(LfbenchError, match="frames=0"):
        LfbenchModel(frames=0, model="tiny")


def test_unsupported_request_types():
    from liteframe_bench.lmms_adapter import LfbenchModel

    lm = LfbenchModel(model="tiny")
    with pytest.raises(NotImplementedError, match="generate_until tasks only"):
        lm.loglikelihood([])


def test_lfbench_eval_cli(probe_task, tmp_path, capsys, monkeypatch):
    from liteframe_bench.cli import main

    tasks, _ = probe_task
    monkeypatch.setenv("LFBENCH_TASKS", str(tasks))
    out = tmp_path / "eval"
    assert main(["eval", "--model", "tiny", "--suite", "lfb_adapter_probe", "--method", "baseline,wap:ratio=16",
                 "--frames", "4",
                 "--limit", "3", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in summary["runs"]] == ["baseline", "wap"]
    for run in summary["runs"]:
        assert "acc,none" in run["results"]["lfb_adapter_probe"] and run["errors"] == 1  # the missing video
        assert len(Path(run["files"]["sidecar"]).read_text().splitlines()) == 3
    assert (out / "summary.json").is_file()
    assert main(["eval", "--suite", "nosuch", "--out", str(out)]) == 2
    assert "unknown suite(s) ['nosuch']" in capsys.readouterr().err


def test_default_sidecar_is_beside_lmms_eval_output_never_the_cwd(probe_task, tmp_path):
    tasks, _ = probe_task
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "LFBENCH_SIDECAR"}
    cmd = [
        str(Path(sys.executable).parent / "lmms-eval"),
        "--model",
        "lfbench",
        "--model_args",
        "method=baseline,frames=4,model=tiny",
        "--tasks",
        "lfb_adapter_probe",
        "--include_path",
        str(tasks),
        "--limit",
        "2",
        "--output_path",
        str(out),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=cwd)
    assert res.returncode == 0, res.stderr[-3000:]
    assert list(cwd.iterdir()) == []
    (sidecar,) = out.glob("lfbench_samples_*.jsonl")
    assert len(sidecar.read_text().splitlines()) == 2
    assert str(sidecar) in res.stderr  # the warning says where it went


def test_default_sidecar_without_output_path_goes_to_a_temp_folder(tmp_path, monkeypatch, caplog):
    import tempfile

    from liteframe_bench import lmms_adapter

    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.delenv("LFBENCH_SIDECAR", raising=False)
    with caplog.at_level("WARNING", logger="liteframe_bench.lmms_adapter"):
        lm = lmms_adapter.LfbenchModel(method="baseline", frames=2, model="tiny")
    assert lm.sidecar.parent == tmp / "lfbench" and lm.sidecar.name.startswith("lfbench_samples_")
    assert str(lm.sidecar) in caplog.text
    assert list(cwd.iterdir()) == []

    assert lmms_adapter.default_sidecar(["lmms-eval", "--output_path=runs/a"]).parent == Path("runs/a")
    assert lmms_adapter.default_sidecar(["/x/lmms_eval/__main__.py", "--output_path", "r/res.json"]).parent == Path("r")
    assert lmms_adapter.default_sidecar(["myscript.py", "--output_path", "r"]).parent == tmp / "lfbench"
