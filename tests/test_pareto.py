"""Pareto analysis (liteframe_bench.pareto) and its report (pareto_report.write_report) over fixtures written
through the real results store: frontier, bootstrap intervals, stratified average, budget tables, errors, plots."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liteframe_bench import pareto, pareto_report, plots
from liteframe_bench.errors import LfbenchError, SpecError
from liteframe_bench.results import ResultsDir, cell_id


def write(
    rd: ResultsDir,
    method: str,
    frames: int,
    suite: str,
    correct,
    *,
    lat: float | None = None,
    status: str = "ok",
    reason: str | None = None,
    model: str = "tiny",
    run_id: str = "r1",
    accuracy: float | None = None,
    stages: dict[str, float] | None = None,
) -> str:
    """One cell and its samples, as the sweep writes them (errored samples: correct 0.0 and an error string)."""
    cid = cell_id(method=method, frames=frames, suite=suite, model=model)
    correct = [float(c) for c in correct]
    samples = [
        {
            "cell_id": cid,
            "run_id": run_id,
            "method": method,
            "frames": frames,
            "suite": suite,
            "doc_id": i,
            "correct": c,
            "error": None if c == c else "unscorable",
        }
        for i, c in enumerate(correct)
    ]
    if accuracy is None and correct:
        accuracy = float(np.nanmean(correct))  # as the sweep: unscorable (NaN) samples left out
    cell = {
        "cell_id": cid,
        "run_id": run_id,
        "method": method,
        "spec": method,
        "frames": frames,
        "suite": suite,
        "model": model,
        "status": status,
        "reason": reason,
        "n_samples": len(correct),
        "n_errors": 0,
        "timing_samples": 4,
        "timing_repeats": 3,
        "new_tokens": 16,
        "accuracy": accuracy if status == "ok" else None,
        "lat_e2e_s": lat,
        "lat_total_s": None if lat is None else 0.9 * lat,
    }
    for k, v in (stages or {}).items():
        cell[f"lat_{k}_s"] = v
    rd.write_cell(cell, samples if status == "ok" else [])
    return cid


def hits(n: int, k: int) -> list[float]:
    """``k`` correct out of ``n``: an exact accuracy of k/n."""
    return [1.0] * k + [0.0] * (n - k)


# -------------------------------------------------------------------------------------------- frontier


def brute_dominated(lat, acc):
    n = len(lat)
    return [
        any(lat[j] <= lat[i] and acc[j] >= acc[i] and (lat[j] < lat[i] or acc[j] > acc[i]) for j in range(n))
        for i in range(n)
    ]


def test_frontier_on_hand_made_points():
    import pandas as pd

    pts = pd.DataFrame(
        [
            ("a", 8, 1.0, 0.50),
            ("b", 8, 2.0, 0.60),
            ("c", 8, 2.0, 0.55),  # same latency as b, less accurate: dominated
            ("d", 8, 3.0, 0.55),  # slower and less accurate than b: dominated
            ("e", 8, 0.5, 0.30),
            ("f", 8, 3.0, 0.70),
            ("g", 8, 1.0, 0.50),  # exact tie with a: neither dominates the other
            ("h", 8, 1.5, 0.50),  # as accurate as a but slower: dominated
        ],
        columns=["method", "frames", "latency", "accuracy"],
    )
    out = pareto.frontier(pts)
    front = out[~out["dominated"]]
    assert list(front["method"]) == ["e", "a", "g", "b", "f"]  # latency up, ties by name
    assert set(out[out["dominated"]]["method"]) == {"c", "d", "h"}
    assert list(out["method"]) == ["e", "a", "g", "h", "b", "c", "f", "d"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.integers(0, 6)), min_size=1, max_size=25))
def test_frontier_properties(points):
    lat = [float(p[0]) for p in points]
    acc = [p[1] / 6 for p in points]
    dom = pareto.dominated_mask(lat, acc)
    assert list(dom) == brute_dominated(lat, acc)
    front = [i for i in range(len(lat)) if not dom[i]]
    assert front, "a non-empty set always has a non-dominated point"
    for i in front:  # nobody dominates a frontier point
        assert not any(
            lat[j] <= lat[i] and acc[j] >= acc[i] and (lat[j] < lat[i] or acc[j] > acc[i]) for j in range(len(lat))
        )
    for i in np.flatnonzero(dom):  # every dominated point is dominated by a frontier point
        assert any(lat[j] <= lat[i] and acc[j] >= acc[i] and (lat[j] < lat[i] or acc[j] > acc[i]) for j in front)


def test_dominated_mask_rejects_nan():
    with pytest.raises(ValueError, match="NaN"):
        pareto.dominated_mask([1.0, math.nan], [0.5, 0.5])


# ------------------------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_contains_accuracy_shrinks_and_is_reproducible():
    rng = np.random.default_rng(3)
    small = (rng.random(50) < 0.6).astype(float)
    large = (rng.random(2000) < 0.6).astype(float)
    lo_s, hi_s = pareto.bootstrap_ci(small, seed=1)
    lo_l, hi_l = pareto.bootstrap_ci(large, seed=1)
    assert lo_s <= small.mean() <= hi_s and lo_l <= large.mean() <= hi_l
    assert hi_l - lo_l < 0.5 * (hi_s - lo_s)  # ~ 1/sqrt(40) of the width
    # binomial standard error check: a 95% interval is ~ +-1.96 SE
    se = math.sqrt(0.6 * 0.4 / 2000)
    assert hi_l - lo_l == pytest.approx(2 * 1.96 * se, rel=0.2)
    assert pareto.bootstrap_ci(small, seed=1) == (lo_s, hi_s)
    assert np.array_equal(pareto.bootstrap_means(large, seed=7), pareto.bootstrap_means(large, seed=7))
    assert not np.array_equal(pareto.bootstrap_means(large, seed=7), pareto.bootstrap_means(large, seed=8))
    assert pareto.bootstrap_ci(large, seed=2) != (lo_l, hi_l)
    assert pareto.bootstrap_ci([1.0] * 10) == (1.0, 1.0)
    assert all(math.isnan(x) for x in pareto.bootstrap_ci([]))


def test_unscorable_samples_are_left_out_errored_ones_count_as_wrong():
    x = [1.0, math.nan, 1.0, 0.0]  # the 0.0 may be an errored sample: the sweep stores those as wrong
    assert pareto.scores(x).tolist() == [1.0, 1.0, 0.0]
    assert pareto.bootstrap_ci(x, seed=5) == pareto.bootstrap_ci([1.0, 1.0, 0.0], seed=5)
    assert all(math.isnan(v) for v in pareto.bootstrap_ci([math.nan, math.nan]))


def test_stratified_bootstrap_resamples_within_suites():
    a = [1.0] * 100  # a suite with no variance contributes none
    b = hits(100, 50)
    lo, hi = pareto.stratified_bootstrap_ci([a, b], n_boot=4000, seed=0)
    blo, bhi = pareto.bootstrap_ci(b, n_boot=4000, seed=0)
    assert lo <= 0.75 <= hi
    assert hi - lo == pytest.approx(0.5 * (bhi - blo), rel=0.15)
    plo, phi = pareto.bootstrap_ci(a + b, n_boot=4000, seed=0)  # pooling would be wider
    assert hi - lo < 0.9 * (phi - plo)


def test_auto_budgets_cover_every_point():
    assert pareto.auto_budgets([0.082, 0.69]) == [0.1, 0.2, 0.5, 1.0]
    assert pareto.auto_budgets([1.0, 1.0]) == [1.0]
    assert pareto.auto_budgets([3.0, 40.0]) == [5.0, 10.0, 20.0, 50.0]
    assert pareto.auto_budgets([]) == []


# ----------------------------------------------------------------------------------------- the analysis


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """Two suites; accuracies k/n exactly; wap@8 is dominated by baseline@8 on both suites."""
    d = tmp_path_factory.mktemp("res")
    rd = ResultsDir(d)
    rd.write_run("r1", {"run_id": "r1", "device_name": "NVIDIA H200", "git_sha": "abc"})
    grid = {  # (method, frames): (latency, hits out of 100) per suite
        ("baseline", 8): (0.10, {"videomme": 55, "mlvu": 60}),
        ("baseline", 64): (0.80, {"videomme": 64, "mlvu": 66}),
        ("wap", 8): (0.12, {"videomme": 50, "mlvu": 52}),  # slower and worse than baseline@8
        ("wap", 64): (0.20, {"videomme": 62, "mlvu": 64}),
        ("wap", 256): (0.60, {"videomme": 70, "mlvu": 72}),
        ("tome", 64): (0.25, {"videomme": 58, "mlvu": 59}),
    }
    for (m, f), (lat, acc) in grid.items():
        for s, k in acc.items():
            write(rd, m, f, s, hits(100, k), lat=lat * (1.1 if s == "mlvu" else 1.0))
    write(rd, "fastvid", 64, "videomme", hits(100, 57), lat=0.3)  # only on one suite
    write(rd, "baseline", 512, "videomme", [], status="error", reason="context: 135700 tokens > 32768")
    write(rd, "avgpool", 64, "videomme", hits(100, 40), lat=None)  # accuracy-only run
    return d


def test_points_frontier_and_dominated_flags(results):
    a = pareto.analyze(results)
    assert set(a["suites"]) == {"mlvu", "videomme"} and a["model"] == "tiny"
    vm = a["suites"]["videomme"]
    by = {(p["method"], p["frames"]): p for p in vm["points"]}
    assert by[("wap", 8)]["dominated"] and by[("tome", 64)]["dominated"] and by[("fastvid", 64)]["dominated"]
    assert by[("wap", 64)]["accuracy"] == pytest.approx(0.62) and by[("wap", 64)]["n"] == 100
    assert [(p["method"], p["frames"]) for p in vm["frontier"]] == [("baseline", 8), ("wap", 64), ("wap", 256)]
    assert by[("baseline", 64)]["dominated"]  # slower and less accurate than wap@256
    for p in vm["points"]:
        assert p["ci_low"] <= p["accuracy"] <= p["ci_high"]
    assert vm["errors"] == [
        {"method": "baseline", "frames": 512, "status": "error", "reason": "context: 135700 tokens > 32768"}
    ]
    assert vm["no_latency"] == [
        {"method": "avgpool", "frames": 64, "accuracy": 0.4, "reason": "no latency (accuracy-only run)"}
    ]
    assert ("baseline", 512) not in by and ("avgpool", 64) not in by
    json.dumps(a, allow_nan=False)  # JSON-ready: no NaN, no numpy types


def test_average_is_stratified_and_reports_missing_cells(results):
    a = pareto.analyze(results, n_boot=2000)
    avg = a["average"]
    assert avg["suites"] == ["mlvu", "videomme"]
    by = {(p["method"], p["frames"]): p for p in avg["points"]}
    assert set(by) == {("baseline", 8), ("baseline", 64), ("wap", 8), ("wap", 64), ("wap", 256), ("tome", 64)}
    p = by[("wap", 256)]
    assert p["accuracy"] == pytest.approx((0.70 + 0.72) / 2)
    assert p["latency"] == pytest.approx((0.60 + 0.66) / 2)
    assert p["n"] == 200 and p["ci_low"] <= p["accuracy"] <= p["ci_high"]
    single = next(q for q in a["suites"]["videomme"]["points"] if (q["method"], q["frames"]) == ("wap", 256))
    assert p["ci_high"] - p["ci_low"] == pytest.approx((single["ci_high"] - single["ci_low"]) / math.sqrt(2), rel=0.2)
    # exactly the stratified bootstrap: each suite's cell resampled with its own seeded Generator, then averaged
    draws = [
        pareto.bootstrap_means(hits(100, k), n_boot=2000, rng=np.random.default_rng(pareto.cell_seed(0, s, "wap", 256)))
        for s, k in (("mlvu", 72), ("videomme", 70))
    ]
    assert (p["ci_low"], p["ci_high"]) == pytest.approx(pareto.percentile_interval((draws[0] + draws[1]) / 2))
    missing = {(m["method"], m["frames"]): m for m in avg["missing"]}
    assert missing[("fastvid", 64)]["reasons"] == {"mlvu": "no cell"}
    assert missing[("baseline", 512)]["reasons"]["videomme"].startswith("error: context")
    assert missing[("avgpool", 64)]["reasons"]["videomme"] == "no latency (accuracy-only run)"
    assert f"lfbench sweep --methods fastvid --frames 64 --suites mlvu --model tiny --out {results}" in avg["sweeps"]


def test_budget_table_picks_the_most_accurate_within_budget(results):
    a = pareto.analyze(results, budgets=[0.05, 0.15, 0.3, 1.0], suites=["videomme"])
    assert a["average"] is None
    rows = {r["budget_s"]: r for r in a["suites"]["videomme"]["budget_table"]}
    assert rows[0.05]["method"] is None
    assert (rows[0.15]["method"], rows[0.15]["frames"]) == ("baseline", 8)
    assert (rows[0.3]["method"], rows[0.3]["frames"]) == ("wap", 64)  # not tome@64 nor fastvid@64
    assert (rows[1.0]["method"], rows[1.0]["frames"]) == ("wap", 256)  # more accurate than baseline@64
    auto = pareto.analyze(results)
    assert auto["budgets"] == [0.1, 0.2, 0.5, 1.0]
    avg_rows = {r["budget_s"]: r for r in auto["average"]["budget_table"]}
    assert (avg_rows[0.2]["method"], avg_rows[0.2]["frames"]) == ("baseline", 8)  # wap@64 averages 0.21 s


def test_latency_column_is_a_parameter(results):
    a = pareto.analyze(results, latency="lat_total_s", suites=["videomme"])
    p = next(p for p in a["suites"]["videomme"]["points"] if p["method"] == "wap" and p["frames"] == 64)
    assert p["latency"] == pytest.approx(0.9 * 0.20)
    with pytest.raises(SpecError, match="allowed: .*lat_e2e_s"):
        pareto.analyze(results, latency="accuracy")


def test_clear_errors(tmp_path, results):
    with pytest.raises(LfbenchError, match="does not exist"):
        pareto.analyze(tmp_path / "nope")
    with pytest.raises(LfbenchError, match="no finished cells"):
        pareto.analyze(tmp_path)
    with pytest.raises(LfbenchError, match=r"unknown suite 'egoschema'.*allowed: mlvu, videomme"):
        pareto.analyze(results, suites=["egoschema"])
    bad = tmp_path / "bad"
    write(ResultsDir(bad), "baseline", 512, "videomme", [], status="error", reason="context too long")
    with pytest.raises(LfbenchError, match="no cell with status ok.*context too long"):
        pareto.analyze(bad)


def test_unscored_samples_and_inconsistent_accuracy_warn(tmp_path):
    rd = ResultsDir(tmp_path)
    write(rd, "wap", 8, "synth", [1.0, math.nan, 1.0, 0.0], lat=0.1)
    write(rd, "wap", 16, "synth", [1.0, math.nan, 1.0, 0.0], lat=0.2, accuracy=0.5)  # NaN counted as 0: inconsistent
    write(rd, "wap", 32, "synth", [math.nan, math.nan], lat=0.3, accuracy=0.0)
    a = pareto.analyze(tmp_path)
    pts = {p["frames"]: p for p in a["suites"]["synth"]["points"]}
    assert pts[8]["accuracy"] == pytest.approx(2 / 3) and pts[8]["n"] == 3 and pts[8]["n_unscored"] == 1
    assert pts[8]["ci_low"] <= 2 / 3 <= pts[8]["ci_high"]
    assert any("wap @ 16 frames on synth" in w and "differs" in w for w in a["warnings"])
    assert any("wap @ 32 frames on synth: no scored sample" in w for w in a["warnings"])
    assert pts[32]["ci_low"] is None and pts[32]["n"] == 0
    assert not any("@ 8 frames" in w for w in a["warnings"])


def test_several_models_or_devices(tmp_path):
    rd = ResultsDir(tmp_path)
    write(rd, "wap", 8, "synth", hits(10, 5), lat=0.1, model="tiny", run_id="a")
    write(rd, "wap", 8, "synth", hits(10, 6), lat=0.1, model="random:internvl3-1b", run_id="b")
    rd.write_run("a", {"run_id": "a", "device_name": "cpu"})
    rd.write_run("b", {"run_id": "b", "device_name": "NVIDIA H200"})
    with pytest.raises(LfbenchError, match="several models"):
        pareto.analyze(tmp_path)
    a = pareto.analyze(tmp_path, model="random:internvl3-1b")
    assert a["suites"]["synth"]["points"][0]["accuracy"] == 0.6
    assert a["provenance"]["devices"] == ["NVIDIA H200", "cpu"]
    assert any("different devices" in w for w in a["warnings"])


# ------------------------------------------------------------------------------------ plots and report


def test_run_pareto_writes_plots_and_report(results, tmp_path):
    import matplotlib.image

    out = tmp_path / "rep"
    a = pareto_report.write_report(results, out=out, n_boot=200)
    w = a["written"]
    assert set(w["plots"]) == {"videomme", "mlvu", "average"}
    for files in w["plots"].values():
        png, svg = Path(files["png"]), Path(files["svg"])
        assert png.stat().st_size > 10_000 and svg.stat().st_size > 10_000
        img = matplotlib.image.imread(png)
        assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 500
        assert img[..., :3].std() > 0.05  # not a blank canvas
        assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()
    md = (out / "report.md").read_text()
    for name in ("videomme", "mlvu", "average"):
        assert f"](pareto_{name}.png)" in md and (out / f"pareto_{name}.png").exists()
    assert "| `wap` | 256 |" in md and "Best under a latency budget" in md
    assert "context: 135700 tokens > 32768" in md and "lfbench sweep --methods fastvid" in md
    assert json.loads((out / "analysis.json").read_text())["latency"] == "lat_e2e_s"


def test_run_pareto_default_out_is_inside_the_results_folder(results):
    a = pareto_report.write_report(results, n_boot=50, suites=["mlvu"])
    assert Path(a["written"]["report"]) == results / "report" / "report.md"
    pareto.analyze(results)  # the report folder is allowed inside a results folder


def test_pareto_plot_marks_dominated_and_frontier(tmp_path):
    section = {
        "name": "s",
        "points": [
            {
                "method": "baseline",
                "frames": 8,
                "latency": 0.1,
                "accuracy": 0.5,
                "ci_low": 0.4,
                "ci_high": 0.6,
                "dominated": False,
            },
            {
                "method": "wap",
                "frames": 8,
                "latency": 0.2,
                "accuracy": 0.45,
                "ci_low": 0.4,
                "ci_high": 0.5,
                "dominated": True,
            },
            {
                "method": "wap",
                "frames": 64,
                "latency": 0.3,
                "accuracy": 0.65,
                "ci_low": None,
                "ci_high": None,
                "dominated": False,
            },
        ],
    }
    res = plots.pareto_plot(section, tmp_path / "p")
    assert res["points"] == 3 and res["frontier"] == 2
    svg = Path(res["svg"]).read_text()
    assert "Pareto frontier" in svg and "wap" in svg and "64 frames" in svg


def test_render_prints_frontier_and_budgets(results):
    from rich.console import Console

    buf = io.StringIO()
    pareto_report.render(pareto.analyze(results, n_boot=50), Console(file=buf, width=140))
    text = buf.getvalue()
    assert "videomme: Pareto frontier (3 of 7 points)" in text
    assert "best under a latency budget" in text and "cannot run: baseline @ 512" in text
    assert "to fill: lfbench sweep --methods fastvid" in text


def test_sweep_commands_repeat_the_settings_of_the_runs():
    runs = [
        {"run_id": "a", "config": {"model": "random:internvl3-8b", "device": "cuda", "limit": 50, "new_tokens": 16}},
        {"run_id": "b", "config": {"model": "random:internvl3-8b", "device": "cuda", "limit": 20, "new_tokens": 16}},
        {"run_id": "c", "config": {"model": "tiny", "device": "cpu"}},
    ]
    settings = pareto.sweep_settings(runs, {"a", "b"})
    assert settings == {"model": "random:internvl3-8b", "device": "cuda", "new_tokens": 16}  # limits disagree
    cmds = pareto.sweep_commands(
        [("wap:ratio=64", 512, "videomme"), ("wap:ratio=64", 512, "mlvu"), ("tome", 8, "mlvu")],
        "out",
        settings=settings,
    )
    assert cmds == [
        "lfbench sweep --methods tome --frames 8 --suites mlvu --model random:internvl3-8b --device cuda --out out",
        "lfbench sweep --methods wap:ratio=64 --frames 512 --suites mlvu,videomme --model random:internvl3-8b "
        "--device cuda --out out",
    ]
    assert pareto.sweep_settings([], None, "tiny") == {"model": "tiny"}
    assert pareto.sweep_command("prumerge:variant=plus", [8], ["x"], "d") == (
        "lfbench sweep --methods prumerge:variant=plus --frames 8 --suites x --out d"
    )
