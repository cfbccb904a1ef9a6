"""Sweep runner and results store: cells, resume after kill -9, shards + merge, bad folders."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from liteframe_bench.cli import main
from liteframe_bench.errors import LfbenchError, SpecError
from liteframe_bench.results import ResultsDir
from liteframe_bench.sweep import SweepConfig, correctness, parse_shard, parsed_answer

LFBENCH = Path(sys.executable).parent / "lfbench"
ARGS = [
    "--model",
    "tiny",
    "--methods",
    "baseline,wap:ratio=16,avgpool:ratio=4",
    "--frames",
    "4,8",
    "--suites",
    "lfb_adapter_probe",
    "--timing-samples",
    "1",
    "--warmup",
    "0",
    "--repeats",
    "1",
    "--new-tokens",
    "2",
]
KEY = ["method", "frames", "suite"]


@pytest.fixture(scope="module")
def env(probe_task):
    tasks, _ = probe_task
    return dict(os.environ, LFBENCH_TASKS=str(tasks))


def sweep(out, env, *extra):
    return subprocess.run(
        [str(LFBENCH), "sweep", *ARGS, "--out", str(out), *extra], env=env, capture_output=True, text=True, timeout=600
    )


def deterministic(directory):
    cells, samples = ResultsDir(directory).load()
    c = cells[KEY + ["status", "accuracy", "n_samples", "n_errors", "visual_tokens", "reason"]]
    s = samples[KEY + ["doc_id", "prediction", "correct", "error", "visual_tokens"]]
    return (
        c.sort_values(KEY).reset_index(drop=True),
        s.sort_values(KEY + ["doc_id"]).reset_index(drop=True),
        cells,
        samples,
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env):
    out = tmp_path_factory.mktemp("ref") / "sweep"
    res = sweep(out, env)
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def test_cells_and_samples(reference):
    cells, samples = ResultsDir(reference).load()
    assert len(cells) == 6 and set(cells["status"]) == {"ok"}
    assert len(samples) == 6 * 5 and not samples.duplicated(["cell_id", "doc_id"]).any()
    wap4 = cells[(cells["method"] == "wap") & (cells["frames"] == 4)].iloc[0]
    assert wap4["visual_tokens"] == 4 and wap4["timing_samples"] == 1 and wap4["lat_vision_s"] > 0
    assert wap4["lat_e2e_s"] >= wap4["lat_vision_s"] and wap4["reducer"] == "wap"
    assert wap4["n_errors"] == 3  # missing, corrupt, sys.exit
    broken = samples[samples["error"].notna()]
    assert set(broken["correct"]) == {0.0} and len(broken) == 6 * 3
    for _, c in cells.iterrows():  # time to first token: the stages before the first new token, with/without decode
        assert 0 < c["lat_ttft_s"] < c["lat_ttft_decode_s"] <= c["lat_e2e_s"] * 1.05 + 0.01
        assert c["lat_ttft_s"] >= c["lat_vision_s"] + c["lat_prefill_s"] - 1e-3
    (run,) = ResultsDir(reference).runs()
    assert run["command"].startswith(str(LFBENCH)) and run["machine"]["versions"]["torch"]
    assert run["model"]["attn_implementation"] == "sdpa" and run["machine"]["video_decoder"]


def test_every_row_carries_the_cost_models_flops_per_stage(reference):
    from liteframe_bench import cost
    from liteframe_bench.presets import build_config
    from liteframe_bench.profiler import STAGES

    cells, _ = ResultsDir(reference).load()
    assert set(cells["flops_source"]) == {"analytic"} and cells["flops_decode"].isna().all()
    for _, c in cells.iterrows():
        est = cost.estimate(build_config("tiny"), c["spec"], int(c["frames"]), new_tokens=2, ops=False)
        assert c["flops_vision"] == est["stages"]["vision"]["flops"] > 0
        assert c["flops_reduce"] == est["stages"]["reduce"]["flops"]
        assert c["flops_total"] == sum(c[f"flops_{s}"] for s in STAGES if s != "decode")
        assert c["flops_generate"] > 0 and c["flops_prefill"] > 0  # at the timed prompt's length
    by = {(r["method"], r["frames"]): r for _, r in cells.iterrows()}
    assert by[("baseline", 8)]["flops_prefill"] > by[("wap", 8)]["flops_prefill"] > 0
    assert by[("baseline", 8)]["flops_vision"] == 2 * by[("baseline", 4)]["flops_vision"]


def test_measured_flops_equal_the_analytic_ones_for_the_baseline(env, tmp_path):
    res = sweep(tmp_path / "f", env, "--methods", "baseline", "--frames", "4", "--flops")
    assert res.returncode == 0, res.stderr[-3000:]
    (c,) = ResultsDir(tmp_path / "f").load()[0].to_dict("records")
    assert c["flops_source"] == "analytic+measured"
    for stage in ("vision", "project", "prefill", "generate"):  # the real prompt length: exact, not estimated
        assert c[f"flops_measured_{stage}"] == c[f"flops_{stage}"] > 0, stage


def test_results_of_schema_v1_still_read(reference, tmp_path):
    """Folders written before TTFT/FLOPs/answers existed load with those columns missing, and merge."""
    import shutil

    from liteframe_bench.results import CELL_COLUMNS, SAMPLE_COLUMNS

    old = tmp_path / "v1"
    shutil.copytree(reference, old)
    for kind, new in (("cells", ["lat_ttft_s", "lat_ttft_decode_s", "flops_total", "flops_source"]),
                      ("samples", [c for c in SAMPLE_COLUMNS if c == "answer"])):
        for f in (old / kind).glob("*.parquet"):
            t = pq.read_table(f)
            t = t.drop([c for c in t.column_names if c in new or c.startswith("flops_measured")])
            meta = dict(t.schema.metadata) | {b"lfbench_schema": b"1"}
            pq.write_table(t.replace_schema_metadata(meta), f)
    cells, samples = ResultsDir(old).load()
    assert list(cells.columns) == list(CELL_COLUMNS) and list(samples.columns) == list(SAMPLE_COLUMNS)
    assert cells["lat_ttft_s"].isna().all() and cells["lat_e2e_s"].notna().all()
    assert main(["results", "merge", str(old), str(reference), "--out", str(tmp_path / "m")]) == 0
    assert len(ResultsDir(tmp_path / "m").load()[0]) == 6
    meta = dict(pq.read_table(next((old / "cells").glob("*.parquet"))).schema.metadata)
    pq.write_table(pa.table({"x": [1]}).replace_schema_metadata(meta | {b"lfbench_schema": b"9"}),
                   old / "cells" / "future.parquet")
    with pytest.raises(LfbenchError, match=r"future.parquet: results schema v9; this lfbench reads v1, v2"):
        ResultsDir(old).load()


def test_rerun_skips_finished_cells(reference, env):
    before = deterministic(reference)
    res = sweep(reference, env, "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout)
    assert summary["ran"] == 0 and summary["skipped_done"] == 6
    after = deterministic(reference)
    pd.testing.assert_frame_equal(before[0], after[0])
    pd.testing.assert_frame_equal(before[1], after[1])


def test_kill_9_then_resume_gives_the_same_rows(reference, env, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [str(LFBENCH), "sweep", *ARGS, "--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while time.time() < deadline and len(list((out / "cells").glob("*.parquet"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list((out / "cells").glob("*.parquet")))
    assert 2 <= done < 6
    res = sweep(out, env, "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout)["skipped_done"] == done
    ref, got = deterministic(reference), deterministic(out)
    pd.testing.assert_frame_equal(ref[0], got[0])
    pd.testing.assert_frame_equal(ref[1], got[1])
    assert not got[3].duplicated(["cell_id", "doc_id"]).any()
    assert len(ResultsDir(out).runs()) == 2


def test_partial_cell_is_redone(reference, env, tmp_path):
    import shutil

    out = tmp_path / "partial"
    shutil.copytree(reference, out)
    victim = sorted((out / "cells").glob("*.parquet"))[0]
    victim.unlink()  # samples written, cell row missing: an interrupted cell
    assert len(ResultsDir(out).load()[1]) == 5 * 5
    res = sweep(out, env, "--json")
    assert json.loads(res.stdout)["ran"] == 1
    pd.testing.assert_frame_equal(deterministic(reference)[1], deterministic(out)[1])


def test_shards_merge_to_the_whole(reference, env, tmp_path):
    for i in (0, 1):
        res = sweep(tmp_path / f"s{i}", env, "--shard", f"{i}/2")
        assert res.returncode == 0, res.stderr[-3000:]
    counts = [len(ResultsDir(tmp_path / f"s{i}").load()[0]) for i in (0, 1)]
    assert sorted(counts) == [3, 3]
    assert (
        main(
            [
                "results",
                "merge",
                str(tmp_path / "s0"),
                str(tmp_path / "s1"),
                str(tmp_path / "s0"),
                "--out",
                str(tmp_path / "all"),
            ]
        )
        == 0
    )
    ref, got = deterministic(reference), deterministic(tmp_path / "all")
    pd.testing.assert_frame_equal(ref[0], got[0])
    pd.testing.assert_frame_equal(ref[1], got[1])


def test_show_export_json(reference, capsys, tmp_path):
    assert main(["results", "show", str(reference), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 6 and {"accuracy", "lat_e2e_s", "lat_ttft_s", "cell_id", "agreement"} <= set(rows[0])
    for r in rows:  # 2 samples ran in both cells; the 3 that errored in both are left out
        assert (r["agree_n"], r["agree_excluded"]) == ((None, None) if r["method"] == "baseline" else (2, 3))
    assert main(["results", "export", str(reference), "--out", str(tmp_path / "csv")]) == 0
    assert len(pd.read_csv(tmp_path / "csv" / "samples.csv")) == 30


def test_impossible_cells_are_recorded(env, tmp_path):
    res = sweep(tmp_path / "bad", env, "--frames", "6", "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    cells, samples = ResultsDir(tmp_path / "bad").load()
    by = {r["method"]: r for _, r in cells.iterrows()}
    assert by["baseline"]["status"] == "ok"
    assert by["wap"]["status"] == "error" and "does not tile the 6x8x8 grid" in by["wap"]["reason"]
    assert by["avgpool:ratio=4"]["status"] == "ok"


def test_malformed_and_foreign_files_are_named(reference, tmp_path):
    import shutil

    out = tmp_path / "r"
    shutil.copytree(reference, out)
    (out / "cells" / "notes.txt").write_text("hello")
    with pytest.raises(LfbenchError, match=r"cells/notes.txt: not a results file"):
        ResultsDir(out).load()
    (out / "cells" / "notes.txt").unlink()
    pq.write_table(pa.table({"x": [1]}), out / "cells" / "foreign.parquet")
    with pytest.raises(LfbenchError, match=r"foreign.parquet: not an lfbench cells table"):
        ResultsDir(out).load()
    (out / "cells" / "foreign.parquet").write_text("garbage")
    with pytest.raises(LfbenchError, match=r"foreign.parquet: unreadable parquet"):
        ResultsDir(out).load()
    (out / "cells" / "foreign.parquet").unlink()
    (out / "stray.csv").write_text("a,b")
    with pytest.raises(LfbenchError, match=r"stray.csv: unexpected entry in a results folder"):
        ResultsDir(out).load()
    with pytest.raises(LfbenchError, match="does not exist"):
        ResultsDir(tmp_path / "nope").load()


def test_config_and_cli_errors(capsys, env, monkeypatch):
    with pytest.raises(SpecError, match="shard=2/2 is invalid"):
        SweepConfig(shard=(2, 2))
    with pytest.raises(SpecError, match="shard='x' is invalid"):
        parse_shard("x")
    with pytest.raises(SpecError, match="frames="):
        SweepConfig(frames=[0])
    assert main(["sweep", "--suites", "nosuch", "--frames", "4", "--out", "/tmp/unused"]) == 2
    assert "unknown suite(s) ['nosuch']" in capsys.readouterr().err


def test_correctness_extraction():
    assert correctness({"acc": 1.0}) == (1.0, None)
    assert correctness({"videomme_perception_score": {"pred_answer": "b", "answer": "B"}}) == (1.0, "B")
    assert correctness({"lvb_acc": {"parsed_pred": "A", "answer": "C"}}) == (0.0, "C")
    assert parsed_answer({"videomme_perception_score": {"pred_answer": " b", "answer": "B"}}) == "b"
    assert parsed_answer({"acc": 1.0}) is None
    value, target = correctness({"other": "text"})
    assert value != value and target is None


def test_each_cells_method_is_built_once_and_answers_lmms_eval(env, tmp_path, monkeypatch):
    """One build per spec for the whole sweep: plan builds it, the cell times it and lmms-eval's model answers
    with it (the real build_method, counted; nothing stands in for it)."""
    from liteframe_bench import lmms_adapter, pipeline
    from liteframe_bench.sweep import run_sweep

    for name in ("LFBENCH_TASKS", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):  # restored afterwards
        monkeypatch.setenv(name, env.get(name, "1"))
    built, answered = [], set()
    real_build, real_answer = pipeline.build_method, lmms_adapter.LfbenchModel.answer

    def counted_build(spec, backbone, **kw):
        built.append(spec)
        return real_build(spec, backbone, **kw)

    def noted_answer(self, *a, **kw):
        answered.add(id(self.method))
        return real_answer(self, *a, **kw)

    monkeypatch.setattr(pipeline, "build_method", counted_build)
    monkeypatch.setattr(lmms_adapter.LfbenchModel, "answer", noted_answer)
    cfg = SweepConfig(
        out=str(tmp_path / "once"), model="tiny", methods=["baseline", "wap:ratio=16"], frames=[4, 8],
        suites=["lfb_adapter_probe"], limit=2, timing_samples=1, warmup=0, repeats=1, new_tokens=2,
    )
    summary = run_sweep(cfg, progress=False)
    assert summary["ran"] == 4 and not summary["errors"], summary
    assert built == ["baseline", "wap:ratio=16"]  # was three builds per cell: plan, run_cell, the lmms-eval model
    assert len(answered) == 2  # two method objects answered the four cells' requests
