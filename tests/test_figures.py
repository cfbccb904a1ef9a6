"""Paper figures from results (liteframe_bench.figures, reports/paper.yaml) and the analytic Fig. 1(b)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from liteframe_bench import figures
from liteframe_bench.errors import LfbenchError, SpecError
from liteframe_bench.results import ResultsDir, cell_id

SUITES = ["lfb_videomme", "lfb_mlvu_dev"]

#: A spec with every results-based kind, small enough for a quick test.
SPEC = {
    "name": "mini-paper",
    "suites": SUITES,
    "n_boot": 200,
    "figures": [
        {
            "id": "split",
            "kind": "latency_split",
            "suite": "lfb_videomme",
            "methods": ["baseline", "wap:ratio=16"],
            "frames": [8, 64, 512],
        },
        {"id": "front", "kind": "pareto", "methods": ["baseline", "wap", "tome"], "frames": [8, 64]},
        {
            "id": "scale",
            "kind": "accuracy_vs_frames",
            "methods": [{"method": "baseline", "frames": [8, 64]}, "wap"],
            "frames": [8, 64, 128],
        },
        {"id": "budget", "kind": "token_budget", "visual_tokens": 2048, "ratios": [4, 16, 64]},
        {"id": "t1", "kind": "accuracy_table", "methods": ["tome", "wap:ratio=16.0"], "frames": 64},
        {"id": "t3", "kind": "latency_accuracy_table", "rows": ["baseline@8", "wap@64"], "reference": "baseline@8"},
    ],
}

#: (method, frames): (vision, reduce, project, prefill, generate) stage medians in seconds, accuracy hits of 40.
CELLS = {
    ("baseline", 8): ((0.020, 0.0, 0.001, 0.030, 0.040), 22),
    ("baseline", 64): ((0.160, 0.0, 0.008, 0.300, 0.045), 26),
    ("wap", 8): ((0.020, 0.001, 0.0005, 0.004, 0.040), 20),
    ("wap", 64): ((0.160, 0.002, 0.001, 0.020, 0.041), 27),
    ("wap", 128): ((0.320, 0.003, 0.002, 0.035, 0.041), 29),
    ("wap", 512): ((1.280, 0.010, 0.008, 0.140, 0.046), 31),
    ("wap:ratio=4", 32): ((0.080, 0.001, 0.002, 0.040, 0.042), 25),
    ("wap:ratio=64", 512): ((1.280, 0.010, 0.002, 0.040, 0.042), 30),
    ("tome", 64): ((0.160, 0.020, 0.001, 0.020, 0.041), 24),
    ("tome", 8): ((0.020, 0.003, 0.0005, 0.004, 0.040), 18),
}
STAGES = ("vision", "reduce", "project", "prefill", "generate")


def write(
    rd: ResultsDir,
    method: str,
    frames: int,
    suite: str,
    correct,
    *,
    stages=None,
    status="ok",
    reason=None,
    model="tiny",
    spec=None,
) -> None:
    cid = cell_id(method=spec or method, frames=frames, suite=suite, model=model)
    samples = [
        {
            "cell_id": cid,
            "run_id": "r1",
            "method": method,
            "frames": frames,
            "suite": suite,
            "doc_id": i,
            "correct": float(c),
        }
        for i, c in enumerate(correct)
    ]
    cell = {
        "cell_id": cid,
        "run_id": "r1",
        "method": method,
        "spec": spec or method,
        "frames": frames,
        "suite": suite,
        "model": model,
        "status": status,
        "reason": reason,
        "n_samples": len(samples),
        "n_errors": 0,
        "timing_samples": 4,
        "timing_repeats": 3,
        "new_tokens": 16,
        "accuracy": float(np.mean(correct)) if status == "ok" else None,
    }
    if stages:
        cell |= {f"lat_{s}_s": v for s, v in zip(STAGES, stages, strict=True)}
        cell["lat_total_s"] = sum(stages)
        cell["lat_e2e_s"] = 1.05 * sum(stages)
    rd.write_cell(cell, samples if status == "ok" else [])


@pytest.fixture(scope="module")
def complete(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("figs") / "res"
    rd = ResultsDir(d)
    rd.write_run("r1", {"run_id": "r1", "config": {"model": "tiny", "limit": 40, "timing_samples": 2}})
    for (m, f), (stages, k) in CELLS.items():
        for j, s in enumerate(SUITES):
            write(rd, m, f, s, [1.0] * (k + j) + [0.0] * (40 - k - j), stages=stages)
    write(
        rd,
        "baseline",
        512,
        "lfb_videomme",
        [],
        status="error",
        reason="prompt 135700 tokens > the LLM's max_position_embeddings 32768",
    )
    return d


def test_canonical_method_names():
    assert figures.canonical_method("wap:ratio=16") == "wap"
    assert figures.canonical_method(" wap:ratio=16.0 ") == "wap"
    assert figures.canonical_method("wap:ratio=4") == "wap:ratio=4"
    assert figures.canonical_method("fastvid:retain=0.1") == "fastvid"
    assert figures.canonical_method("baseline") == "baseline"
    assert figures.canonical_method("liteframe") == "liteframe"
    # a checkpoint folder is where the method's weights live, not what the method is; an untrained student is
    assert figures.canonical_method("liteframe:checkpoint=/ckpt/lma") == "liteframe"
    assert figures.canonical_method("liteframe-ctd:checkpoint=runs/ctd") == "liteframe-ctd"
    assert figures.canonical_method("liteframe:checkpoint=random") == "liteframe:checkpoint=random"


def test_complete_results_draw_every_figure(complete, tmp_path):
    import matplotlib.image

    res = figures.run_figures(complete, spec=SPEC, out=tmp_path)
    by = {f["id"]: f for f in res["figures"]}
    assert [f["status"] for f in res["figures"]] == ["complete"] * 6, [(f["id"], f["missing"]) for f in res["figures"]]
    assert res["sweeps"] == []
    for fid in ("split", "front", "scale", "budget"):
        png, svg = Path(by[fid]["files"]["png"]), Path(by[fid]["files"]["svg"])
        assert png.stat().st_size > 10_000 and "<svg" in svg.read_text()
        assert matplotlib.image.imread(png)[..., :3].std() > 0.05
    for fid in ("t1", "t3"):
        assert Path(by[fid]["files"]["md"]).exists() and Path(by[fid]["files"]["csv"]).exists()
    index = Path(res["index"]).read_text()
    assert "![split](split.png)" in index and "![front](front.png)" in index

    # Fig. 1(b) numbers are the stage sums; the context failure is reported with its reason
    rows = {(r["method"], r["frames"]): r for r in by["split"]["data"]["rows"]}
    r = rows[("wap", 64)]
    assert r["vision_side_s"] == pytest.approx(0.160 + 0.002 + 0.001)
    assert r["llm_side_s"] == pytest.approx(0.020 + 0.041)
    assert rows[("baseline", 512)]["status"] == "error"
    assert by["split"]["failed"] == [
        {
            "method": "baseline",
            "frames": 512,
            "suite": "lfb_videomme",
            "status": "error",
            "reason": "prompt 135700 tokens > the LLM's max_position_embeddings 32768",
        }
    ]
    # token budget: baseline at 8 frames vs WAP 4x/16x/64x at 32/128/512
    assert [(v["method"], v["frames"]) for v in by["budget"]["data"]["variants"]] == [
        ("baseline", 8),
        ("wap:ratio=4", 32),
        ("wap", 128),
        ("wap:ratio=64", 512),
    ]
    avg = {v["method"]: v for v in by["budget"]["data"]["groups"]["average"]}
    assert avg["wap:ratio=64"]["accuracy"] == pytest.approx((30 / 40 + 31 / 40) / 2)
    # Table 1 matched wap:ratio=16.0 to the canonical wap
    t1 = {e["method"]: e for e in by["t1"]["data"]}
    assert t1["wap"]["lfb_videomme"]["accuracy"] == pytest.approx(27 / 40)
    assert "| wap | 64 | 67.5 | 70.0 | 68.8 |" in Path(by["t1"]["files"]["md"]).read_text()
    t3 = {e["method"]: e for e in by["t3"]["data"]}
    assert t3["wap"]["latency_vs_reference"] < 0 or t3["wap"]["latency_s"] > t3["baseline"]["latency_s"]
    front = by["front"]["data"]
    assert front["name"] == "average" and len(front["points"]) == 6
    json.loads(Path(res["json"]).read_text())


def test_a_missing_cell_names_the_exact_sweep(complete, tmp_path):
    d = tmp_path / "res"
    shutil.copytree(complete, d)
    victim = cell_id(method="wap:ratio=64", frames=512, suite="lfb_videomme", model="tiny")
    (d / "cells" / f"{victim}.parquet").unlink()
    res = figures.run_figures(d, spec=SPEC, out=tmp_path / "out")
    by = {f["id"]: f for f in res["figures"]}
    assert by["budget"]["status"] == "partial"
    assert by["budget"]["missing"] == [{"method": "wap:ratio=64", "frames": 512, "suite": "lfb_videomme"}]
    cmd = f"lfbench sweep --methods wap:ratio=64 --frames 512 --suites lfb_videomme --model tiny --limit 40 --out {d}"
    assert by["budget"]["sweeps"] == [cmd] and res["sweeps"] == [cmd]
    assert all(f["status"] == "complete" for f in res["figures"] if f["id"] != "budget")
    assert cmd in Path(res["index"]).read_text()
    from rich.console import Console

    buf = io.StringIO()
    figures.render_figures(res, Console(file=buf, width=160))
    assert cmd in buf.getvalue() and "partial" in buf.getvalue()


def test_paper_spec_reports_liteframe_missing(complete, tmp_path):
    spec = figures.load_spec(figures.DEFAULT_SPEC)
    assert [f["id"] for f in spec["figures"]] == [
        "fig1b",
        "fig1b_analytic",
        "fig2",
        "fig3_left",
        "fig3_right",
        "table1",
        "table3",
    ]
    res = figures.run_figures(complete, spec=figures.DEFAULT_SPEC, out=tmp_path, only=["fig1b", "fig3_right", "table3"])
    by = {f["id"]: f for f in res["figures"]}
    assert {(m["method"], m["frames"]) for m in by["fig1b"]["missing"]} >= {("liteframe", 8), ("liteframe", 512)}
    assert any("'liteframe' has no cells" in n for n in by["fig1b"]["notes"])
    assert (
        "lfbench sweep --methods liteframe --frames 8,16,32,64,128,256,512 --suites lfb_videomme --model tiny "
        f"--limit 40 --out {complete}"
    ) in by["fig1b"]["sweeps"]
    assert any("'liteframe' has no checkpoint in the figure spec or the results" in n for n in by["fig1b"]["notes"])
    # LongVideoBench is in the paper's suites but not in these results
    assert any("'lfb_longvideobench_val_v' has no cells" in n for n in by["fig3_right"]["notes"])
    assert by["table3"]["status"] == "partial"
    with pytest.raises(SpecError, match="unknown figure id 'fig9'"):
        figures.run_figures(complete, spec=figures.DEFAULT_SPEC, out=tmp_path, only=["fig9"])


def test_spec_validation():
    with pytest.raises(SpecError, match="kind 'violin' is unknown; allowed: latency_split"):
        figures.load_spec({"suites": ["a"], "figures": [{"id": "x", "kind": "violin"}]})
    with pytest.raises(SpecError, match="missing key.*frames"):
        figures.load_spec({"suites": ["a"], "figures": [{"id": "x", "kind": "pareto", "methods": ["wap"]}]})
    with pytest.raises(SpecError, match="unknown key.*colour"):
        figures.load_spec(
            {
                "suites": ["a"],
                "figures": [{"id": "x", "kind": "pareto", "methods": ["wap"], "frames": [8], "colour": "red"}],
            }
        )
    with pytest.raises(SpecError, match="latency='fast'"):
        figures.load_spec({"suites": ["a"], "latency": "fast", "figures": [{"id": "x", "kind": "pareto"}]})
    with pytest.raises(LfbenchError, match="does not exist"):
        figures.load_spec("/nonexistent/paper.yaml")


def test_no_results_is_a_clear_error(tmp_path):
    with pytest.raises(LfbenchError, match="no finished cells.*figures_analytic"):
        figures.run_figures(tmp_path, spec=SPEC, out=tmp_path / "o")


def test_analytic_fig1b_vision_share_rises_and_context_is_marked(tmp_path):
    res = figures.figures_analytic(tmp_path)
    cells = {(c["method"], c["frames"]): c for c in res["cells"]}
    frames = (8, 16, 32, 64, 128, 256, 512)
    share = [cells[("wap:ratio=16", f)]["vision_share"] for f in frames]
    assert all(b > a for a, b in zip(share, share[1:], strict=False)), share
    assert share[0] < 0.3 and share[-1] > 0.5  # the vision encoder becomes the bottleneck
    base = cells[("baseline", 512)]
    assert base["status"] == "over_context" and base["label"] == "exceeds 32k context"
    assert base["vision_side_s"] > 0 and base["prompt_tokens"] > 32768  # drawn, not dropped
    assert {"method": "baseline", "frames": 512} in [
        {k: o[k] for k in ("method", "frames")} for o in res["over_context"]
    ]
    assert cells[("wap:ratio=16", 512)]["status"] == "ok" and cells[("baseline", 64)]["status"] == "ok"
    assert Path(res["png"]).stat().st_size > 10_000 and "exceeds 32k context" in Path(res["svg"]).read_text()
    doc = json.loads(Path(res["json"]).read_text())
    assert doc["gpu"]["name"] == "h200" and len(doc["cells"]) == 14


# ------------------------------------------------------------------------------- the paper's settings


@pytest.fixture(scope="module")
def tiny_bb():
    from liteframe_bench.backends.internvl import InternVL3

    return InternVL3.load("tiny", seed=0)


def test_table1_rows_keep_the_same_token_count(tiny_bb):
    """A 16x table compares methods at one budget: every row keeps the same number of visual tokens."""
    from types import SimpleNamespace

    import torch

    from liteframe_bench import cost
    from liteframe_bench.pipeline import build_method

    spec = figures.load_spec(figures.DEFAULT_SPEC)
    methods = next(f for f in spec["figures"] if f["id"] == "table1")["methods"]
    T = 8
    clip = SimpleNamespace(
        pixel_values=torch.randn(1, T, 3, 112, 112, generator=torch.Generator().manual_seed(0)),
        distinct_frames=T,
    )
    counts = {m: build_method(m, tiny_bb).encode(clip).num_tokens for m in methods}
    assert set(counts.values()) == {T * 16 // 16}, counts  # 16 tokens per frame on the tiny model, 1/16 kept
    real = {m: cost.estimate("internvl3-8b", m, 64, ops=False)["tokens"]["visual"] for m in methods}
    assert set(real.values()) == {64 * 256 // 16}, real  # and at InternVL3-8B's 256 tokens per frame


def test_liteframe_cells_match_without_their_folder_and_the_sweep_runs_as_printed(tiny_bb, tmp_path, monkeypatch):
    import shlex

    from liteframe_bench import sweep
    from liteframe_bench.cli import main
    from liteframe_bench.methods.liteframe.student import LiteFrameStudent, StudentConfig, save_student
    from liteframe_bench.pipeline import build_method

    ckpt = save_student(LiteFrameStudent(StudentConfig.tiny()), tmp_path / "ctd")
    spec = f"liteframe-ctd:checkpoint={ckpt}"
    method = build_method(spec, tiny_bb)
    assert method.spec == "liteframe-ctd" and method.full_spec == spec  # identity vs what rebuilds it
    assert build_method("liteframe-ctd:checkpoint=random", tiny_bb).spec == "liteframe-ctd:checkpoint=random"

    rd = ResultsDir(tmp_path / "res")
    rd.write_run("r1", {"run_id": "r1", "config": {"model": "tiny", "limit": 4}})
    for suite in SUITES:  # as a sweep writes cells: the identity in `method`, the spec as run in `spec`
        write(rd, "baseline", 8, suite, [1, 0, 1, 1], stages=CELLS[("baseline", 8)][0])
        write(rd, method.spec, 8, suite, [1, 1, 0, 1], stages=CELLS[("wap", 8)][0], spec=spec)
    fig = {"id": "t", "kind": "accuracy_table", "methods": ["baseline", "liteframe-ctd"], "frames": [8, 16]}
    res = figures.run_figures(rd.path, spec={"suites": SUITES, "n_boot": 50, "figures": [fig]}, out=tmp_path / "o")
    t = res["figures"][0]
    assert {(m["method"], m["frames"]) for m in t["missing"]} == {("baseline", 16), ("liteframe-ctd", 16)}
    assert next(e for e in t["data"] if e["method"] == "liteframe-ctd" and e["frames"] == 8)["lfb_videomme"]
    assert any(f"--methods {spec} " in c for c in res["sweeps"]), res["sweeps"]

    seen = []

    def plan_only(cfg, progress=True, **executor):  # the CLI parses the printed command; plan builds every method
        from liteframe_bench.backbone import load_backbone

        seen.extend(sweep.plan(cfg, load_backbone(cfg.model, seed=cfg.seed)))
        return {"out": cfg.out, "ran": 0, "skipped_done": 0, "errors": []}

    monkeypatch.setattr(sweep, "run_sweep", plan_only)
    for cmd in res["sweeps"]:
        argv = shlex.split(cmd)
        assert argv[:2] == ["lfbench", "sweep"]
        assert main(argv[1:]) == 0, cmd
    assert {(s, f) for _, s, f, _ in seen} == {("baseline", 16), (spec, 16)}


# ---------------------------------------------------------------------------------------------------------------
# Conformance: every figure kind, each in its own module (liteframe_bench/figures/<kind>.py)

ONE_OF_EACH = {f["kind"]: f for f in SPEC["figures"]} | {
    "latency_split_analytic": {
        "id": "analytic",
        "kind": "latency_split_analytic",
        "model": "tiny",
        "gpu": "h100",
        "methods": ["baseline", "wap"],
        "frames": [4, 8],
    }
}
RESULT_KEYS = {"id", "kind", "title", "status", "files", "missing", "failed", "no_latency", "sweeps", "notes", "data"}


def test_every_kind_has_its_module_and_a_test_figure():
    import importlib

    builders = figures.KINDS | figures.ANALYTIC_KINDS
    assert set(builders) == set(figures.KIND_KEYS) == set(ONE_OF_EACH)
    for kind, build in builders.items():
        assert importlib.import_module(f"liteframe_bench.figures.{kind}").build is build


@pytest.mark.parametrize("kind", sorted(figures.KIND_KEYS))
def test_every_kind_draws_complete_results(kind, complete, tmp_path):
    fig = ONE_OF_EACH[kind]
    (out,) = figures.run_figures(complete, spec=SPEC | {"figures": [fig]}, out=tmp_path)["figures"]
    assert set(out) == RESULT_KEYS and (out["id"], out["kind"], out["status"]) == (fig["id"], kind, "complete")
    assert out["files"] and all(Path(p).stat().st_size > 0 for p in out["files"].values())
    assert json.loads(Path(out["files"]["json"]).read_text()) is not None
    assert out["missing"] == [] and out["sweeps"] == []


@pytest.fixture(scope="module")
def without_wap(tmp_path_factory) -> Path:
    """The complete results less every cell of ``wap`` (its default ratio), a method every test figure draws."""
    rd = ResultsDir(tmp_path_factory.mktemp("figs") / "res")
    rd.write_run("r1", {"run_id": "r1", "config": {"model": "tiny", "limit": 40, "timing_samples": 2}})
    for (m, f), (stages, k) in CELLS.items():
        if m != "wap":
            for j, s in enumerate(SUITES):
                write(rd, m, f, s, [1.0] * (k + j) + [0.0] * (40 - k - j), stages=stages)
    return rd.path


@pytest.mark.parametrize("kind", sorted(figures.KINDS))
def test_every_kind_names_what_it_misses_and_the_sweep_that_fills_it(kind, without_wap, tmp_path):
    """A figure whose cells are partly missing is partial or empty, never an exception; the missing cells are
    listed and the suggested ``lfbench sweep`` fills them."""
    fig = ONE_OF_EACH[kind]
    res = figures.run_figures(without_wap, spec=SPEC | {"figures": [fig]}, out=tmp_path)
    (out,) = res["figures"]
    assert out["status"] in ("partial", "empty") and out["missing"], out
    assert "wap" in {c["method"] for c in out["missing"]}
    assert res["sweeps"] and all(c.startswith("lfbench sweep ") for c in res["sweeps"])
    assert any("--methods wap " in c for c in res["sweeps"]), res["sweeps"]
