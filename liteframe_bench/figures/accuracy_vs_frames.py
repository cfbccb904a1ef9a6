"""Kind ``accuracy_vs_frames`` (Fig. 3, left): accuracy against frames, a panel per suite and one for the average."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liteframe_bench import pareto, plots
from liteframe_bench.figures.base import FigureData, strip_boot, write_json
from liteframe_bench.figures.spec import method_frames


def build(F: FigureData, out: Path) -> dict[str, Any]:
    fig = F.fig
    suites = F.suites()
    mf = method_frames(fig, fig["id"])
    panels: dict[str, list[dict[str, Any]]] = {s: [] for s in suites}
    if len(suites) > 1:
        panels[pareto.AVERAGE] = []
    for m, frames in mf:
        for f in frames:
            for s in suites:
                p = F.acc(m, f, s)
                if p:
                    panels[s].append(strip_boot(p))
            if len(suites) > 1:
                a = F.avg(m, f, suites)
                if a:
                    panels[pareto.AVERAGE].append(strip_boot(a))
    drawn = any(panels.values())
    files: dict[str, str] = {}
    if drawn:
        files = plots.accuracy_frames_plot(panels, out / fig["id"], title=fig.get("title", "Accuracy against frames"))
    files["json"] = write_json(out / f"{fig['id']}.json", panels)
    return F.result(drawn, files, panels)
