"""Stage clock, the profiler runner and ``lfbench profile`` on the tiny model."""

import json
from pathlib import Path

import pytest
import torch

import liteframe_bench as lfb
from liteframe_bench.backends.internvl import InternVL3
from liteframe_bench.cli import main
from liteframe_bench.errors import ContextError
from liteframe_bench.pipeline import build_method
from liteframe_bench.profiler import STAGES, StageClock, run_profile
from liteframe_bench.testing import moving_square_video
from liteframe_bench.timing import time_fn


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return moving_square_video(tmp_path_factory.mktemp("vid") / "v.mp4", 24, size=224)


def test_stage_clock_modes():
    clock = StageClock("cpu", "time")
    with clock.stage("vision"):
        torch.ones(64, 64) @ torch.ones(64, 64)
    with clock.stage("vision"):
        pass
    assert set(clock.results()) == {"vision"} and clock.results()["vision"] > 0
    off = StageClock("cpu", "off")
    with off.stage("vision"):
        pass
    assert off.results() == {}
    flops = StageClock("cpu", "flops")
    with flops.stage("project"):
        torch.ones(8, 16) @ torch.ones(16, 4)
    assert flops.flops == {"project": 2 * 8 * 16 * 4}
    with pytest.raises(ValueError, match="mode='fast'"):
        StageClock("cpu", "fast")


def test_time_fn_reports_median_and_spread():
    t = time_fn(lambda: sum(range(1000)), warmup=1, repeats=5)
    assert t.repeats == 5 and t.min <= t.q25 <= t.median <= t.q75 <= t.max and t.clock == "perf_counter"


def test_profile_cells_stages_flops_trace_and_errors(video, tmp_path):
    report = run_profile(
        "tiny",
        ["baseline", "wap:ratio=16"],
        [4, 6],
        video=video,
        warmup=0,
        repeats=2,
        new_tokens=4,
        flops=True,
        overhead=True,
        trace_dir=tmp_path / "trace",
        progress=False,
    )
    cells = {(c["method"], c["frames"]): c for c in report["cells"]}
    base = cells[("baseline", 4)]
    assert set(base["stages"]) == set(STAGES) - {"reduce"}
    assert set(cells[("wap", 4)]["stages"]) == set(STAGES)
    for name, st in base["stages"].items():
        assert st["median_s"] > 0 and st["min_s"] <= st["median_s"] <= st["max_s"], name
    assert base["visual_tokens"] == 4 * 16 and cells[("wap", 4)]["visual_tokens"] == 4
    assert base["new_tokens"] == 4 and base["stages"]["generate"]["per_token_s"] > 0
    assert base["stages"]["vision"]["flops"] > 0 and base["stages"]["prefill"]["flops"] > 0
    assert base["stage_sum_s"] <= base["end_to_end"]["median_s"] * 1.05 + 0.05
    for c in (base, cells[("wap", 4)]):  # time to first token next to end to end, from the same runs
        first, with_decode, e2e = c["ttft"]["median_s"], c["ttft_with_decode"]["median_s"], c["end_to_end"]["median_s"]
        assert 0 < first < with_decode <= e2e
        assert c["ttft"]["q25_s"] <= first <= c["ttft"]["q75_s"]
    for stage in ("vision", "project", "prefill", "generate"):  # analytic next to counted, equal for the baseline
        assert base["stages"][stage]["flops_analytic"] == base["stages"][stage]["flops"] > 0, stage
    assert cells[("wap", 4)]["stages"]["reduce"]["flops_analytic"] > 0
    assert base["overhead"]["overhead_pct"] >= 0 and "ab_overhead_pct" in base["overhead"]
    assert cells[("wap", 6)]["error"].startswith("ReducerError: ratio=16 uses a 4x2x2")  # recorded, run went on
    assert cells[("baseline", 6)]["visual_tokens"] == 6 * 16
    traces = list((tmp_path / "trace").glob("*.json"))
    assert traces and "lfbench::vision" in traces[0].read_text()
    assert report["settings"]["min_new_tokens"] == 4 and report["machine"]["versions"]["torch"]


def test_context_limit_is_a_clear_error(video):
    bb = InternVL3.load("tiny")
    bb.config.text_config.max_position_embeddings = 100
    method = build_method("baseline", bb)
    tokens = method.encode(video, 8)
    with pytest.raises(ContextError, match=r"exceeds the LLM context of 100 \(max_position_embeddings\)"):
        method.generate(tokens, "Q?", 4)


def test_repeated_frames_are_recorded(video):
    tokens = build_method("baseline", InternVL3.load("tiny")).encode(video, 48)  # the video has 24 frames
    assert tokens.frames == 48 and tokens.distinct_frames == 24


def test_profile_cli_json(video, capsys):
    rc = main(
        [
            "profile",
            "--method",
            "baseline,avgpool:ratio=4",
            "--frames",
            "4",
            "--video",
            str(video),
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--new-tokens",
            "2",
            "--json",
        ]
    )
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert [c["method"] for c in report["cells"]] == ["baseline", "avgpool:ratio=4"]
    assert report["cells"][1]["visual_tokens"] == 16
    assert Path(report["video"]["path"]) == video


@pytest.mark.parametrize(
    "args, message",
    [
        (["--frames", "8,x"], "comma-separated positive integers"),
        (["--frames", "0"], "comma-separated positive integers"),
        (["--method", "nosuch"], "unknown method or reducer 'nosuch'"),
        (["--model", "internvl3-8b"], "size preset for counting on the meta device"),
    ],
)
def test_profile_cli_errors(args, message, capsys):
    assert main(["profile", *args]) == 2
    assert message in capsys.readouterr().err


def test_profiler_flops_match_the_cost_model(video):
    """Counted FLOPs per stage on the real tiny graph equal the analytic model's (same conventions)."""
    from liteframe_bench import cost

    report = run_profile(
        "tiny", ["baseline"], [4], video=video, warmup=0, repeats=1, new_tokens=3, flops=True, progress=False
    )
    cell = report["cells"][0]
    est = cost.estimate("tiny", "baseline", 4, new_tokens=3, fixed_text_tokens=0)
    for stage in ("vision", "project"):
        assert cell["stages"][stage]["flops"] == est["stages"][stage]["flops"], stage
    assert cell["stages"]["prefill"]["flops"] > 0


def test_cost_cli(capsys):
    assert (
        main(
            [
                "cost",
                "--model",
                "internvl3-8b",
                "--method",
                "baseline,wap:ratio=16",
                "--frames",
                "8,64,512",
                "--gpu",
                "h200",
                "--json",
            ]
        )
        == 0
    )
    rep = json.loads(capsys.readouterr().out)
    cells = {(c["method"], c["frames"]): c for c in rep["cells"]}
    assert abs(rep["model"]["vision_gflops_per_frame"] - 738) / 738 < 0.02
    assert cells[("baseline", 512)]["fits_context"] is False and cells[("baseline", 64)]["fits_context"] is True
    assert cells[("wap:ratio=16", 64)]["tokens"]["visual"] == 64 * 16
    for c in rep["cells"]:
        assert set(c["stages"]) >= {"vision", "project", "prefill", "generate"}
        assert all(st["predicted_s"] > 0 for name, st in c["stages"].items() if name != "reduce")
    assert main(["cost", "--gpu", "b200"]) == 2
    assert "unknown GPU 'b200'" in capsys.readouterr().err


def test_fixed_tiling_gives_each_tile_its_tokens(video):
    from liteframe_bench.pipeline import parse_tiles

    bb = InternVL3.load("tiny")
    tokens = build_method("baseline", bb, tiles=parse_tiles("2x2")).encode(video, 4)
    assert tokens.num_tokens == 4 * 4 * 16 and tokens.groups[0] == ("Frame1", 64)
    assert sorted(set(tokens.tile.tolist())) == [0, 1, 2, 3]
    assert tokens.tile[:64].tolist() == [0] * 16 + [1] * 16 + [2] * 16 + [3] * 16  # tiles in order within a frame
    wap = build_method("wap:ratio=16", bb, tiles=(2, 2)).encode(video, 4)
    assert wap.num_tokens == 4 * 4  # each tile is a clip: 4 frames -> one 2x2 token grid per tile
    with pytest.raises(lfb.SpecError, match="tiles='2' is invalid"):
        parse_tiles("2")


def test_profile_cli_tiles(video, capsys):
    assert (
        main(
            [
                "profile",
                "--frames",
                "4",
                "--video",
                str(video),
                "--tiles",
                "2x2",
                "--repeats",
                "1",
                "--warmup",
                "0",
                "--new-tokens",
                "2",
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["settings"]["tiles"] == [2, 2] and report["cells"][0]["visual_tokens"] == 4 * 4 * 16
