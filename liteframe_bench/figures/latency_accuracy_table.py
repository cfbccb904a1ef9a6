"""Kind ``latency_accuracy_table`` (Table 3): latency and accuracy of listed ``method@frames`` rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from liteframe_bench import pareto
from liteframe_bench.figures.base import FigureData, pct, strip_boot, write_json, write_table
from liteframe_bench.figures.spec import parse_row


def build(F: FigureData, out: Path) -> dict[str, Any]:
    fig = F.fig
    latency = fig.get("latency", F.spec["latency"])
    suites = F.suites()
    cols = [*suites, *([pareto.AVERAGE] if len(suites) > 1 else [])]
    parsed = [parse_row(r, fig["id"]) for r in fig["rows"]]
    ref = parse_row(fig["reference"], fig["id"]) if fig.get("reference") else None
    data = []
    for m, f in parsed:
        entry: dict[str, Any] = {"method": m, "frames": f}
        lats = []
        for s in suites:
            r = F.cell(m, f, s, latency=latency)
            lats.append(float(r[latency]) if r is not None else None)
            entry[s] = strip_boot(F.acc(m, f, s))
        entry["latency_s"] = float(np.mean(lats)) if lats and all(x is not None for x in lats) else None
        if len(suites) > 1:
            entry[pareto.AVERAGE] = strip_boot(F.avg(m, f, suites))
        data.append(entry)
    ref_lat = next((e["latency_s"] for e in data if ref and (e["method"], e["frames"]) == ref), None)
    header = ["method", "frames", f"{latency} (mean over suites)"]
    if ref:
        header.append(f"vs {ref[0]}@{ref[1]}")
    header += [f"{c} acc %" for c in cols]
    rows = []
    for e in data:
        lat = e["latency_s"]
        row = [e["method"], e["frames"], "—" if lat is None else f"{lat:.3g} s"]
        if ref:
            e["latency_vs_reference"] = (lat / ref_lat - 1) if lat is not None and ref_lat else None
            row.append("—" if e["latency_vs_reference"] is None else f"{100 * e['latency_vs_reference']:+.0f}%")
        row += [pct(e[c]["accuracy"]) if e[c] else "—" for c in cols]
        rows.append(row)
    drawn = any(e["latency_s"] is not None or any(e[c] for c in cols) for e in data)
    title = fig.get("title", "Latency and accuracy")
    files = write_table(out, fig["id"], header, rows, title, fig.get("caption")) if drawn else {}
    files["json"] = write_json(out / f"{fig['id']}.json", data)
    return F.result(drawn, files, data)
