"""Kind ``latency_split`` (Fig. 1(b) from timed cells): the vision side stacked under the LLM side, per frame
count and method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liteframe_bench import pareto, plots
from liteframe_bench.figures.base import FigureData, stage_sum, write_json
from liteframe_bench.figures.spec import method_frames
from liteframe_bench.stages import LLM_SIDE, VISION_SIDE


def build(F: FigureData, out: Path) -> dict[str, Any]:
    fig = F.fig
    suite = fig.get("suite") or F.spec["suites"][0]
    rows = []
    for m, frames in method_frames(fig, fig["id"]):
        for f in frames:
            r = F.cell(m, f, suite, latency="lat_vision_s")
            base = {"method": m, "frames": f, "suite": suite}
            if r is None:
                raw = F.data.index.get((suite, m, f))
                status = "missing" if raw is None else ("error" if raw["status"] != "ok" else "no_latency")
                reason = raw["reason"] if raw is not None and isinstance(raw["reason"], str) else None
                rows.append(base | {"status": status, "reason": reason, "vision_side_s": None, "llm_side_s": None})
                continue
            v, llm = stage_sum(r, VISION_SIDE), stage_sum(r, LLM_SIDE)
            rows.append(
                base
                | {
                    "status": "ok",
                    "vision_side_s": v,
                    "llm_side_s": llm,
                    "vision_share": v / (v + llm) if v + llm > 0 else None,
                    "decode_s": pareto.jsonable(r.get("lat_decode_s")),
                    "stages_s": {s: pareto.jsonable(r.get(f"lat_{s}_s")) for s in (*VISION_SIDE, *LLM_SIDE)},
                    "e2e_s": pareto.jsonable(r.get("lat_e2e_s")),
                    "visual_tokens": pareto.jsonable(r.get("visual_tokens")),
                }
            )
    drawn = any(r["status"] == "ok" for r in rows)
    files: dict[str, str] = {}
    if drawn:
        files = plots.latency_split_plot(
            rows,
            out / fig["id"],
            unit=fig.get("unit", "s"),
            title=fig.get("title", f"Latency split on {suite}"),
            note=f"timed cells of {suite}; stage medians; video decoding not included",
        )
    files["json"] = write_json(out / f"{fig['id']}.json", {"suite": suite, "rows": rows})
    return F.result(drawn, files, {"suite": suite, "rows": rows})
