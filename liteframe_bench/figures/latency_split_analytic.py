"""Kind ``latency_split_analytic`` (Fig. 1(b) at real scale) from the analytic cost model alone: no results, no GPU
(:func:`figures_analytic`, also ``lfbench figures --analytic``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from liteframe_bench import plots
from liteframe_bench.figures.base import FigureData, write_json
from liteframe_bench.figures.spec import frames_list


def figures_analytic(
    out: str | os.PathLike,
    *,
    model: str = "internvl3-8b",
    gpu: str = "h200",
    frames: Sequence[int] = (8, 16, 32, 64, 128, 256, 512),
    methods: Sequence[str] = ("baseline", "wap:ratio=16"),
    new_tokens: int = 16,
    tiles: int = 1,
    stem: str = "fig1b_analytic",
    title: str | None = None,
) -> dict[str, Any]:
    """Fig. 1(b) at real scale from the analytic cost model (:mod:`liteframe_bench.cost`): no results, no GPU.

    Per (method, frames): the roofline lower bounds of the vision side (vision + reduce + project) and the LLM
    side (prefill + generate) on ``gpu``, and the vision share. Cells whose prompt + ``new_tokens`` exceeds the
    LLM's context are still drawn (hatched, annotated "exceeds 32k context") and flagged ``over_context``.
    Writes ``<stem>.png``, ``<stem>.svg``, ``<stem>.json`` under ``out``; returns ``{"png", "svg", "json",
    "cells", "over_context"}``.
    """
    from liteframe_bench import cost

    rep = cost.report(model, list(methods), list(frames), gpu=gpu, new_tokens=new_tokens, tiles=tiles)
    cells = []
    for c in rep["cells"]:
        base = {"method": c["method"], "frames": c["frames"]}
        if "error" in c:
            cells.append(base | {"status": "error", "reason": c["error"], "vision_side_s": None, "llm_side_s": None})
            continue
        st = c["stages"]
        v = sum(st[s]["predicted_s"] for s in cost.VISION_SIDE)
        llm = sum(st[s]["predicted_s"] for s in cost.LLM_SIDE)
        k = c["max_position_embeddings"]
        over = not c["fits_context"]
        cells.append(
            base
            | {
                "status": "over_context" if over else "ok",
                "label": f"exceeds {k // 1024}k context" if over else None,
                "reason": c["context_reason"],
                "vision_side_s": v,
                "llm_side_s": llm,
                "total_s": v + llm,
                "vision_share": v / (v + llm),
                "stages_s": {s: st[s]["predicted_s"] for s in cost.STAGES},
                "visual_tokens": c["tokens"]["visual"],
                "prompt_tokens": c["tokens"]["prompt"],
                "context_end": c["tokens"]["context_end"],
                "max_position_embeddings": k,
                "fits_context": c["fits_context"],
            }
        )
    g = rep["gpu"]
    title = title or (f"Fig. 1(b), analytic: {rep['model']['name']} on {g['label']} (roofline lower bounds)")
    out = Path(out)
    files = plots.latency_split_plot(
        cells,
        out / stem,
        title=title,
        unit="ms",
        note=(
            f"analytic cost model (lfbench cost): bf16, {new_tokens} new tokens, {tiles} tile(s) per frame; "
            "lower bounds, not measurements; decode of the video not included"
        ),
    )
    doc = {
        "model": rep["model"]["name"],
        "gpu": g,
        "settings": rep["settings"],
        "note": "predicted_s are roofline lower bounds (liteframe_bench.cost)",
        "cells": cells,
    }
    files["json"] = write_json(out / f"{stem}.json", doc)
    over = [
        {"method": c["method"], "frames": c["frames"], "reason": c["reason"]}
        for c in cells
        if c["status"] == "over_context"
    ]
    return files | {"cells": cells, "over_context": over}


def build(F: FigureData | None, fig: dict[str, Any], out: Path) -> dict[str, Any]:
    res = figures_analytic(
        out,
        model=fig.get("model", "internvl3-8b"),
        gpu=fig.get("gpu", "h200"),
        frames=frames_list(fig["frames"], fig["id"]),
        methods=[str(m) for m in fig["methods"]],
        new_tokens=int(fig.get("new_tokens", 16)),
        tiles=int(fig.get("tiles", 1)),
        stem=fig["id"],
        title=fig.get("title"),
    )
    notes = [
        f"{o['method']} @ {o['frames']} frames exceeds the LLM context: {o['reason']}" for o in res["over_context"]
    ]
    return {
        "id": fig["id"],
        "kind": fig["kind"],
        "title": fig.get("title", fig["id"]),
        "status": "complete",
        "files": {k: res[k] for k in ("png", "svg", "json")},
        "missing": [],
        "failed": [],
        "no_latency": [],
        "sweeps": [],
        "notes": notes,
        "data": {"cells": res["cells"]},
    }
