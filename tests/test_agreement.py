"""Agreement with the baseline (liteframe_bench.agreement) and where it shows: the Pareto analysis and report,
``lfbench results show`` and Table 1 of ``lfbench figures``; fixtures written through the real results store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liteframe_bench import figures, pareto_report
from liteframe_bench.agreement import agreement_table, matched_agreement
from liteframe_bench.cli import main
from liteframe_bench.results import ResultsDir, cell_id

SUITES = ["lfb_videomme", "lfb_mlvu_dev"]
#: The baseline's answers to 20 questions; each reduced cell changes some of them.
BASE = list("ABCDABCDABCDABCDABCD")
GOLD = list("ABCDABCDABCDDDDDDDDD")


def changed(k: int, offset: int = 0) -> list[str]:
    """The baseline's answers with ``k`` of them changed (to another letter), starting at ``offset``."""
    out = BASE.copy()
    for i in range(offset, offset + k):
        out[i % len(out)] = "A" if out[i % len(out)] != "A" else "B"
    return out


def write(rd, method, frames, suite, answers, *, model="tiny", errors=(), parsed=True):
    cid = cell_id(method=method, frames=frames, suite=suite, model=model)
    samples = [
        {
            "cell_id": cid,
            "run_id": "r1",
            "method": method,
            "frames": frames,
            "suite": suite,
            "doc_id": i,
            "prediction": None if i in errors else f"  The answer is {a}.",
            "answer": (a if parsed else None) if i not in errors else None,
            "target": GOLD[i],
            "correct": 0.0 if i in errors else float(a == GOLD[i]),
            "error": "VideoError: missing" if i in errors else None,
        }
        for i, a in enumerate(answers)
    ]
    correct = [s["correct"] for s in samples]
    rd.write_cell(
        {
            "cell_id": cid,
            "run_id": "r1",
            "method": method,
            "spec": method,
            "frames": frames,
            "suite": suite,
            "model": model,
            "status": "ok",
            "n_samples": len(samples),
            "n_errors": len(errors),
            "timing_samples": 1,
            "timing_repeats": 1,
            "new_tokens": 4,
            "accuracy": float(np.mean(correct)),
            "lat_e2e_s": 0.1 * frames / (8 if method == "baseline" else 64),
            "lat_total_s": 0.1,
        },
        samples,
    )
    return cid


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("agree") / "res"
    rd = ResultsDir(d)
    rd.write_run("r1", {"run_id": "r1", "config": {"model": "tiny"}})
    for j, s in enumerate(SUITES):
        write(rd, "baseline", 64, s, BASE)
        write(rd, "wap", 64, s, changed(2 + 2 * j))  # agrees on 18/20 and 16/20
        write(rd, "tome", 64, s, changed(10, offset=j))  # 10/20
        write(rd, "random", 64, s, BASE)  # the same answers, some other accuracy story: 20/20
        write(rd, "wap", 8, s, changed(1))  # no baseline at 8 frames
    return d


def test_matched_agreement_rules():
    def frame(answers, errors=(), parsed=True, docs=None):
        docs = docs if docs is not None else range(len(answers))
        return pd.DataFrame(
            {
                "doc_id": list(docs),
                "prediction": [f" Answer: {a} " for a in answers],
                "answer": [a if parsed else None for a in answers],
                "error": ["boom" if i in errors else None for i in range(len(answers))],
            }
        )

    agree, excluded = matched_agreement(frame("ABCD"), frame("ABDD"))
    assert agree.tolist() == [1, 1, 0, 1] and excluded == 0
    agree, excluded = matched_agreement(frame("ABCD", errors={0, 1}), frame("ABCD", errors={0}))
    assert agree.tolist() == [0, 1, 1] and excluded == 1  # both errored: left out; one errored: disagrees
    agree, _ = matched_agreement(frame("ABCD", docs=[0, 1, 2, 3]), frame("ABC", docs=[1, 2, 3]))
    assert agree.tolist() == [0, 0, 0]  # matched by doc_id, not by position
    # no parsed answer: the prediction text, whitespace collapsed and case folded
    agree, _ = matched_agreement(frame(["a", "B"], parsed=False), frame(["A", "B"], parsed=True))
    assert agree.tolist() == [1, 1]


def test_agreement_table(results):
    cells, samples = ResultsDir(results).load()
    table = agreement_table(cells, samples, n_boot=500)
    by = {(c["method"], int(c["frames"]), c["suite"]): table.loc[c["cell_id"]] for c in cells.to_dict("records")
          if c["cell_id"] in table.index}
    assert ("baseline", 64, SUITES[0]) not in by
    wap = by[("wap", 64, SUITES[0])]
    assert wap["agreement"] == pytest.approx(18 / 20) and wap["agree_n"] == 20
    assert wap["agree_low"] < 18 / 20 <= wap["agree_high"] <= 1
    assert by[("wap", 64, SUITES[1])]["agreement"] == pytest.approx(16 / 20)
    assert by[("tome", 64, SUITES[0])]["agreement"] == pytest.approx(10 / 20)
    assert by[("random", 64, SUITES[0])]["agreement"] == 1.0 == by[("random", 64, SUITES[0])]["agree_low"]
    no_base = by[("wap", 8, SUITES[0])]
    assert np.isnan(no_base["agreement"]) and no_base["agree_note"] == "no baseline cell at 8 frames on lfb_videomme"
    again = agreement_table(cells, samples, n_boot=500)
    assert again.loc[wap.name, "agree_low"] == wap["agree_low"]  # seeded per cell
    other = cells.assign(model=np.where(cells["method"] == "baseline", "other", cells["model"]))
    assert agreement_table(other, samples)["agreement"].isna().all()  # never across models


def test_pareto_reports_agreement(results, tmp_path):
    analysis = pareto_report.write_report(results, out=tmp_path / "report", n_boot=300)
    pts = {(p["method"], p["frames"]): p for p in analysis["suites"][SUITES[0]]["points"]}
    assert pts[("wap", 64)]["agreement"] == pytest.approx(0.9) and pts[("wap", 64)]["agree_n"] == 20
    assert pts[("baseline", 64)]["agreement"] is None and pts[("wap", 8)]["agreement"] is None
    avg = {(p["method"], p["frames"]): p for p in analysis["average"]["points"]}
    assert avg[("wap", 64)]["agreement"] == pytest.approx((18 / 20 + 16 / 20) / 2)
    assert avg[("wap", 64)]["agree_low"] < avg[("wap", 64)]["agreement"] < avg[("wap", 64)]["agree_high"]
    report = (tmp_path / "report" / "report.md").read_text()
    assert "agreement with baseline % (95% CI)" in report and "EffiVLM-Bench" in report
    assert f"| `tome` | 64 | {100 * np.mean([g == b for g, b in zip(GOLD, changed(10), strict=True)]):.1f}" in report
    json.loads((tmp_path / "report" / "analysis.json").read_text())


def test_results_show_lists_agreement(results, capsys):
    assert main(["results", "show", str(results), "--json"]) == 0
    rows = {(r["method"], r["frames"], r["suite"]): r for r in json.loads(capsys.readouterr().out)}
    assert rows[("wap", 64, SUITES[0])]["agreement"] == pytest.approx(0.9)
    assert rows[("wap", 8, SUITES[0])]["agree_note"].startswith("no baseline cell")
    assert main(["results", "show", str(results)]) == 0
    assert "90.0 (" in capsys.readouterr().out


def test_table1_has_an_agreement_column(results, tmp_path):
    fig = {"id": "t1", "kind": "accuracy_table", "methods": ["wap", "tome", "random"], "frames": 64}
    res = figures.run_figures(results, spec={"suites": SUITES, "n_boot": 200, "figures": [fig]}, out=tmp_path)
    (t1,) = res["figures"]
    by = {e["method"]: e for e in t1["data"]}
    assert by["wap"]["agreement"]["agreement"] == pytest.approx(0.85)
    assert by["random"]["agreement"]["agreement"] == 1.0 and t1["status"] == "complete"
    md = Path(t1["files"]["md"]).read_text()
    assert "agreement with baseline % (mean over suites; 95% CI)" in md and "| tome | 64 |" in md
    # a Table 1 at a frame count without the baseline names the sweep that fills it
    fig8 = fig | {"frames": 8, "methods": ["wap"]}
    res = figures.run_figures(results, spec={"suites": SUITES, "n_boot": 50, "figures": [fig8]}, out=tmp_path / "8")
    (t8,) = res["figures"]
    assert t8["data"][0]["agreement"] is None and t8["status"] == "partial"
    assert {(m["method"], m["frames"]) for m in t8["missing"]} == {("baseline", 8)}
    assert any("--methods baseline --frames 8" in c for c in res["sweeps"]), res["sweeps"]
