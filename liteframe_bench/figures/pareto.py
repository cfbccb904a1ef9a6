"""Kind ``pareto`` (Fig. 2): the latency/accuracy Pareto plot of the listed methods x frames, averaged over the suites
(:func:`liteframe_bench.pareto.analyze_tables`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from liteframe_bench import axes, pareto, pareto_report, plots
from liteframe_bench.errors import LfbenchError
from liteframe_bench.figures.base import FigureData, write_json
from liteframe_bench.figures.spec import method_frames


def build(F: FigureData, out: Path) -> dict[str, Any]:
    fig = F.fig
    latency = fig.get("latency", F.spec["latency"])
    axis = axes.parse(latency, fig.get("at_scale"))
    mf = method_frames(fig, fig["id"])
    suites = F.suites()
    for m, frames in mf:
        for f in frames:
            for s in suites:
                F.cell(m, f, s, latency=axis.column if axis.kind == "measured" else None)
    present = [s for s in suites if s in F.data.suites]
    keep = np.zeros(len(F.data.cells), dtype=bool)
    for m, frames in mf:
        keep |= ((F.data.cells["method"] == m) & F.data.cells["frames"].isin(frames)).to_numpy()
    cells = F.data.cells[keep]
    files: dict[str, str] = {}
    section = None
    try:
        if not present:
            raise LfbenchError("none of the figure's suites has results")
        analysis = pareto.analyze_tables(
            cells,
            F.data.samples,
            latency=latency,
            suites=present,
            model=F.data.model,
            seed=F.data.seed,
            n_boot=F.data.n_boot,
            confidence=F.data.confidence,
            where=str(F.data.rd.path),
            out_hint=F.data.rd.path,
            runs=F.data.runs,
            agreement=F.data.agreement,
            at_scale=fig.get("at_scale"),
        )
        section = analysis["average"] or analysis["suites"][present[0]]
        if len(present) < len(suites):
            F.notes.append(
                f"averaged over {', '.join(present)} only: "
                f"{', '.join(s for s in suites if s not in present)} has no results"
            )
    except LfbenchError as e:
        F.notes.append(f"nothing to draw: {e}")
    drawn = bool(section and section["points"])
    if drawn:
        files = plots.pareto_plot(
            section,
            out / fig["id"],
            title=fig.get("title"),
            latency=latency,
            confidence=F.data.confidence,
            axis=analysis["latency_axis"],
            note=pareto_report.axis_sentence(analysis),
        )
        files = {k: v for k, v in files.items() if k in ("png", "svg")}
    files["json"] = write_json(out / f"{fig['id']}.json", section)
    return F.result(drawn, files, section)
