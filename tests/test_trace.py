"""``lfbench profile --trace DIR`` writes traces torch-tb-profiler loads: one worker per cell, one step per run,
the stages as ``lfbench::<stage>`` ranges inside each step (its Trace view), the same file a Chrome trace."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("TORCH_PROFILER_START_METHOD", "fork")  # the plugin's loader; spawn would re-import torch
tb = pytest.importorskip(
    "torch_tb_profiler",
    reason="the trace extra is not installed: pip install 'liteframe-bench[trace]' (torch-tb-profiler, tensorboard)",
)

from liteframe_bench.cli import main  # noqa: E402
from liteframe_bench.profiler import STAGES  # noqa: E402
from liteframe_bench.testing import moving_square_video  # noqa: E402


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    base = tmp_path_factory.mktemp("trace")
    video = moving_square_video(base / "v.mp4", 8, size=224)
    out = base / "traces"
    args = ["profile", "--model", "tiny", "--method", "baseline,wap", "--frames", "4", "--video", str(video),
            "--repeats", "1",
            "--warmup", "0", "--new-tokens", "3", "--trace", str(out), "--json", "--out", str(base / "p.json")]
    assert main(args) == 0
    report = json.loads((base / "p.json").read_text())
    return out, {c["method"]: Path(c["trace"]) for c in report["cells"]}


def test_the_plugins_parser_sees_a_step_per_run_and_the_stage_ranges(traces):
    import tempfile

    from torch_tb_profiler import consts
    from torch_tb_profiler.profiler.data import RunProfileData
    from torch_tb_profiler.profiler.run_generator import RunGenerator

    _, files = traces
    for method, path in files.items():
        match = consts.WORKER_PATTERN.match(path.name)
        assert match and match.group(1) == f"{method}_f4", path.name
        data = RunProfileData.parse(match.group(1), match.group(2), str(path), tempfile.mkdtemp())
        profile = RunGenerator(match.group(1), match.group(2), data).generate_run_profile()
        assert {v.name for v in profile.views} >= {"overall", "operator", "trace"}
        assert data.steps_names == ["1", "2"]  # one profiler step per traced run
        assert [r[0] for r in profile.overview["steps"]["rows"]] == ["1", "2"]
        events = json.loads(Path(data.trace_file_path).read_text())["traceEvents"]  # what the Trace view shows
        steps = [e for e in events if e["name"].startswith("ProfilerStep#")]
        ranges = [e for e in events if e["name"].startswith("lfbench::")]
        expect = [s for s in STAGES if s != "reduce" or method == "wap"]
        assert [e["name"] for e in ranges] == [f"lfbench::{s}" for s in expect] * 2
        for i, step in enumerate(steps):
            inside = ranges[i * len(expect) : (i + 1) * len(expect)]
            assert all(step["ts"] <= e["ts"] and e["ts"] + e["dur"] <= step["ts"] + step["dur"] + 1 for e in inside)
            assert all(e["dur"] > 0 and e["cat"] == "user_annotation" for e in inside)


def test_the_plugins_run_loader_loads_the_folder(traces):
    """What ``tensorboard --logdir DIR`` does: the plugin's RunLoader on the folder, one worker per cell."""
    from torch_tb_profiler.io import Cache
    from torch_tb_profiler.profiler.loader import RunLoader

    out, files = traces
    run = RunLoader(out.name, str(out), Cache()).load()
    assert sorted(run.workers) == sorted(f"{m}_f4" for m in files)
