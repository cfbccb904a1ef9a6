"""Kind ``accuracy_table`` (Table 1): accuracy per suite and on average, with agreement with the baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liteframe_bench import pareto
from liteframe_bench.figures.base import FigureData, pct, strip_boot, write_json, write_table
from liteframe_bench.figures.spec import method_frames


def build(F: FigureData, out: Path) -> dict[str, Any]:
    fig = F.fig
    suites = F.suites()
    cols = [*suites, *([pareto.AVERAGE] if len(suites) > 1 else [])]
    data, rows = [], []
    for m, frames in method_frames(fig, fig["id"]):
        for f in frames:
            entry: dict[str, Any] = {"method": m, "frames": f}
            for s in suites:
                entry[s] = strip_boot(F.acc(m, f, s))
            if len(suites) > 1:
                entry[pareto.AVERAGE] = strip_boot(F.avg(m, f, suites))
            entry["agreement"] = F.agree(m, f, suites)
            data.append(entry)
            a = entry["agreement"]
            agree = "—" if a is None else f"{pct(a['agreement'])} ({pct(a['agree_low'])}–{pct(a['agree_high'])})"
            rows.append([m, f, *[pct(entry[c]["accuracy"]) if entry[c] else "—" for c in cols], agree])
    drawn = any(e[c] for e in data for c in cols)
    title = fig.get("title", "Accuracy (%)")
    agree_col = f"agreement with baseline % ({'mean over suites' if len(suites) > 1 else suites[0]}; 95% CI)"
    header = ["method", "frames", *cols, agree_col]
    files = write_table(out, fig["id"], header, rows, title, fig.get("caption")) if drawn else {}
    files["json"] = write_json(out / f"{fig['id']}.json", data)
    return F.result(drawn, files, data)
