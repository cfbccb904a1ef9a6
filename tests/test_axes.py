"""The x axes of the Pareto tools (liteframe_bench.axes): measured TTFT, modelled roofline latency at real size,
FLOPs and visual tokens, through ``pareto.analyze``, the report, the plot, ``lfbench pareto`` and figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from liteframe_bench import axes, cost, figures, pareto, pareto_report
from liteframe_bench.cli import main
from liteframe_bench.errors import SpecError
from liteframe_bench.results import ResultsDir, cell_id

SUITE = "videomme"
#: (method, frames): (hits of 20, measured e2e s, measured ttft s, flops_total, visual tokens) of a tiny-model sweep
CELLS = {
    ("baseline", 8): (10, 0.050, 0.020, 3.4e7, 128),
    ("baseline", 64): (12, 0.120, 0.060, 2.2e8, 1024),
    ("baseline", 512): (13, 0.700, 0.500, 4.1e9, 8192),
    ("wap", 64): (11, 0.110, 0.030, 1.3e8, 64),
    ("wap", 512): (14, 0.280, 0.080, 1.1e9, 512),
    ("random", 64): (9, 0.100, 0.028, 1.2e8, 64),
    ("lowres", 64): (8, 0.090, 0.020, 1.0e7, 64),
    ("liteframe-ctd:checkpoint=random", 64): (7, 0.060, 0.015, None, 64),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("axes") / "res"
    rd = ResultsDir(d)
    rd.write_run("r1", {"run_id": "r1", "device_name": "CPU", "config": {"model": "tiny"}})
    for (m, f), (k, e2e, ttft, flops, tokens) in CELLS.items():
        cid = cell_id(method=m, frames=f, suite=SUITE, model="tiny")
        samples = [
            {"cell_id": cid, "run_id": "r1", "method": m, "frames": f, "suite": SUITE, "doc_id": i,
             "correct": float(i < k), "answer": "A" if i < k else "B"}
            for i in range(20)
        ]
        rd.write_cell(
            {"cell_id": cid, "run_id": "r1", "method": m, "spec": m, "frames": f, "suite": SUITE, "model": "tiny",
             "status": "ok", "n_samples": 20, "n_errors": 0, "timing_samples": 1, "timing_repeats": 3,
             "new_tokens": 16, "accuracy": k / 20, "lat_e2e_s": e2e, "lat_ttft_s": ttft, "lat_ttft_decode_s": 2 * ttft,
             "flops_total": flops, "flops_source": "analytic" if flops else "none: not modelled",
             "visual_tokens": float(tokens)},
            samples,
        )
    return d


def points(analysis):
    return {(p["method"], p["frames"]): p for p in analysis["suites"][SUITE]["points"]}


def test_parse_names_every_axis_and_refuses_the_rest():
    assert axes.parse("ttft").column == "lat_ttft_s" and axes.parse("ttft").kind == "measured"
    assert axes.parse("lat_prefill_s").label == "prefill stage latency, median (s)"
    p = axes.parse("predicted:H100")
    assert (p.kind, p.gpu, p.at_scale, p.unit) == ("modelled", "h100", "internvl3-8b", "s")
    assert "roofline lower bound" in p.note and "modelled" in p.label
    assert axes.parse("flops").unit == "FLOP" and axes.parse("visual_tokens", "internvl3-2b").at_scale == "internvl3-2b"
    with pytest.raises(SpecError, match=r"latency='accuracy' is not an axis; allowed: .*lat_e2e_s.*predicted:GPU"):
        axes.parse("accuracy")
    with pytest.raises(SpecError, match=r"names no GPU; allowed: predicted:GPU with GPU one of h100, .*l40s"):
        axes.parse("predicted")
    with pytest.raises(SpecError, match="unknown GPU 'b300'"):
        axes.parse("predicted:b300")
    with pytest.raises(SpecError, match="at_scale='internvl3-8b' only applies to a modelled or counted axis"):
        axes.parse("ttft", "internvl3-8b")
    with pytest.raises(SpecError, match="unknown|allowed"):
        axes.parse("predicted:h200", "internvl9-99b")
    assert axes.format_value(3.2e12, "FLOP") == "3.2 TFLOP" and axes.format_value(0.0123, "s") == "12.3 ms"
    assert axes.format_value(1024.0, "tokens") == "1,024" and axes.format_value(None, "s") == "—"


def test_ttft_is_a_measured_axis(results):
    a = pareto.analyze(results, latency="ttft", n_boot=100)
    assert a["latency_axis"]["kind"] == "measured" and a["latency"] == "ttft"
    assert points(a)[("wap", 512)]["latency"] == pytest.approx(0.080)
    assert pareto.analyze(results, latency="lat_ttft_s", n_boot=100)["suites"] == a["suites"]


def test_predicted_latency_at_real_size(results):
    a = pareto.analyze(results, latency="predicted:h200", at_scale="internvl3-8b", n_boot=100)
    pts = points(a)
    for m, f in (("baseline", 64), ("wap", 512), ("random", 64), ("lowres", 64)):
        est = cost.estimate("internvl3-8b", m, f, gpu="h200", new_tokens=16, ops=False)
        assert pts[(m, f)]["latency"] == pytest.approx(est["totals"]["predicted_s"]), (m, f)
    assert pts[("lowres", 64)]["latency"] < pts[("random", 64)]["latency"] < pts[("baseline", 64)]["latency"]
    left = {(e["method"], e["frames"]): e["reason"] for e in a["suites"][SUITE]["no_latency"]}
    assert left[("baseline", 512)].startswith("cannot run at internvl3-8b: prompt 13")  # over the 32k context
    assert left[("liteframe-ctd:checkpoint=random", 64)].startswith("not modelled: the cost model takes baseline")
    # measured on the tiny model the frontier differs: 8B's vision cost makes wap@512 slower than baseline@64
    assert pts[("wap", 512)]["latency"] > pts[("baseline", 64)]["latency"]
    first = pareto.analyze(results, latency="predicted_ttft:h200", n_boot=100)
    assert points(first)[("wap", 512)]["latency"] < pts[("wap", 512)]["latency"]
    slower = pareto.analyze(results, latency="predicted:l40s", n_boot=100)
    assert all(points(slower)[k]["latency"] > p["latency"] for k, p in pts.items())


def test_flops_and_visual_tokens_axes(results):
    a = pareto.analyze(results, latency="flops", n_boot=100)
    pts = points(a)
    assert pts[("lowres", 64)]["latency"] == 1.0e7 and a["latency_axis"]["unit"] == "FLOP"
    left = {e["method"]: e["reason"] for e in a["suites"][SUITE]["no_latency"]}
    assert left["liteframe-ctd:checkpoint=random"].startswith("no FLOPs recorded (none: not modelled)")
    big = points(pareto.analyze(results, latency="flops", at_scale="internvl3-8b", n_boot=100))
    assert big[("wap", 64)]["latency"] == cost.estimate("internvl3-8b", "wap", 64, ops=False)["totals"]["flops"]
    tok = points(pareto.analyze(results, latency="visual_tokens", n_boot=100))
    assert tok[("wap", 512)]["latency"] == 512
    tok8b = points(pareto.analyze(results, latency="visual_tokens", at_scale="internvl3-8b", n_boot=100))
    assert tok8b[("wap", 512)]["latency"] == 512 * 16 and tok8b[("lowres", 64)]["latency"] == 64 * 16


def test_report_and_plot_say_which_axis_is_modelled(results, tmp_path):
    import matplotlib.image

    a = pareto_report.write_report(
        results, out=tmp_path / "r", latency="predicted:h200", at_scale="internvl3-8b", n_boot=100
    )
    report = Path(a["written"]["report"]).read_text()
    assert "accuracy: measured in" in report and "latency: MODELLED, not measured" in report
    assert "roofline lower bound" in report and "internvl3-8b on NVIDIA H200" in report
    assert "- `baseline` @ 512 frames: cannot run at internvl3-8b" in report
    svg = Path(a["written"]["plots"][SUITE]["svg"]).read_text()
    assert "latency MODELLED" in svg and "predicted latency on H200 at internvl3-8b" in svg
    assert matplotlib.image.imread(a["written"]["plots"][SUITE]["png"])[..., :3].std() > 0.05
    measured = pareto_report.write_report(results, out=tmp_path / "m", latency="ttft", n_boot=100)
    text = Path(measured["written"]["report"]).read_text()
    assert "latency: measured (time to first token" in text and "MODELLED" not in text


def test_cli_predicted_frontier(results, capsys):
    args = ["pareto", str(results), "--latency", "predicted:h200", "--at-scale", "internvl3-8b", "--n-boot", "50"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["latency_axis"]["kind"] == "modelled" and out["latency_axis"]["at_scale"] == "internvl3-8b"
    front = out["suites"][SUITE]["frontier"]
    assert front and all(np.isfinite(p["latency"]) for p in front)
    assert main(args) == 0
    assert "latency: MODELLED" in capsys.readouterr().out
    assert main(["pareto", str(results), "--latency", "predicted:h200", "--at-scale", "nope"]) == 2
    assert "'nope'" in capsys.readouterr().err


def test_figures_pareto_takes_an_axis(results, tmp_path):
    fig = {"id": "f2", "kind": "pareto", "methods": ["baseline", "wap", "random", "lowres"], "frames": [64, 512],
           "latency": "predicted:h100", "at_scale": "internvl3-8b"}
    res = figures.run_figures(results, spec={"suites": [SUITE], "n_boot": 50, "figures": [fig]}, out=tmp_path)
    (f2,) = res["figures"]
    assert f2["data"]["points"] and "MODELLED" in Path(f2["files"]["svg"]).read_text()
    with pytest.raises(SpecError, match=r"figure 'f2': latency='predicted' names no GPU"):
        figures.load_spec({"suites": [SUITE], "figures": [fig | {"latency": "predicted"}]})
