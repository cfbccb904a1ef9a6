"""``lfbench cost``: a grid of cells (:func:`.estimate.estimate`) as JSON and as a console table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from liteframe_bench.cost.estimate import (
    DEFAULT_FIXED_TEXT_TOKENS,
    FRAME_TEXT_BASE,
    estimate,
    model_geometry,
    parse_method,
    vision_gflops_per_frame,
)
from liteframe_bench.cost.roofline import GPUSpec, get_gpu
from liteframe_bench.errors import SpecError
from liteframe_bench.stages import MODELLED_STAGES as STAGES


def report(
    model: Any,
    methods: Sequence[str],
    frames: Sequence[int],
    gpu: str | GPUSpec | None = None,
    *,
    dtype_bytes: float = 2,
    tiles: int = 1,
    frame_text_tokens: int | None = None,
    fixed_text_tokens: int = DEFAULT_FIXED_TEXT_TOKENS,
    new_tokens: int = 16,
    ops: bool = False,
) -> dict[str, Any]:
    """Every (method, frames) cell for one model and GPU as a JSON-ready dict (bad specs fail fast)."""
    if not methods or not frames:
        raise SpecError("report needs at least one method and one frame count")
    for m in methods:
        parse_method(m)  # fail fast on a bad spec before computing anything
    g_spec = get_gpu(gpu) if gpu is not None else None
    name, cfg, geo = model_geometry(model)
    kw = dict(
        gpu=g_spec,
        dtype_bytes=dtype_bytes,
        tiles=tiles,
        frame_text_tokens=frame_text_tokens,
        fixed_text_tokens=fixed_text_tokens,
        new_tokens=new_tokens,
        ops=ops,
    )
    cells = [estimate(geo, m, f, **kw) | {"model": name} for m in methods for f in frames]
    return {
        "benchmark": "cost",
        "model": {"name": name, "family": getattr(geo, "family", "internvl"), "geometry": asdict(geo),
                  "vision_gflops_per_frame": vision_gflops_per_frame(geo)},
        "gpu": g_spec.to_json() if g_spec else None,
        "settings": {
            "dtype_bytes": dtype_bytes,
            "tiles": tiles,
            "frame_text_tokens": frame_text_tokens
            if frame_text_tokens is not None
            else f"{FRAME_TEXT_BASE} + digits(i)",
            "fixed_text_tokens": fixed_text_tokens,
            "new_tokens": new_tokens,
        },
        "conventions": {
            "flops": "FlopCounterMode: 2*M*N*K per matmul, conv 2*out*Cin*k^2, sdpa 4*B*h*Sq*Sk*d (full square); "
            "elementwise ops not counted",
            "flops_useful": "causal attention counted as the lower triangle (i+1 keys for query i); "
            "used by the roofline",
            "bytes": "lower bound: weights once per pass (per decode step for generate), matmul inputs/outputs once, "
            "fused flash attention, elementwise ops fused, KV cache read by every decode step",
            "predicted_s": "lower bound: sum over op groups of max(flops_useful/peak_bf16_dense, bytes/bandwidth)",
            "generate": "new_tokens - 1 decode steps (the first token comes from prefill)",
        },
        "cells": cells,
    }


def _fmt_s(s: float) -> str:
    ms = s * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:,.0f}"


def render(rep: dict[str, Any], console: Any = None) -> None:
    """Print a report as a rich table: one row per cell, one column per stage, totals and vision share.

    With a GPU the stages are roofline milliseconds (lower bounds), else causal-aware GFLOPs. Cells that
    cannot run are listed under the table with their reason.
    """
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if console.width < 130:
        console.width = 130
    gpu = rep.get("gpu")
    unit = "ms (lower bound)" if gpu else "GFLOP (causal-aware)"
    title = f"lfbench cost: {rep['model']['name']}"
    title += (
        (f" on {gpu['label']} (bf16 {gpu['peak_flops'] / 1e12:.0f} TFLOP/s dense, {gpu['bandwidth'] / 1e12:.2f} TB/s)")
        if gpu
        else " (FLOPs only; give a GPU for latency)"
    )
    caption = (
        f"stages in {unit}; generate = {max(rep['settings']['new_tokens'] - 1, 0)} decode steps; "
        f"ViT+projector {rep['model']['vision_gflops_per_frame']:.1f} GFLOP per frame; "
        f"vision side = vision+reduce+project share of the total"
    )
    table = Table(title=title, caption=caption)
    for col in ("method", "frames", "visual/frame", "prompt", *STAGES, "total", "vision side", "context"):
        table.add_column(col, justify="left" if col in ("method", "context") else "right", no_wrap=col == "method")
    notes = []
    for c in rep["cells"]:
        if "error" in c:
            notes.append(f"[{len(notes) + 1}] {c['method']} @ {c['frames']} frames: {c['error']}")
            dashes = ["—"] * (len(STAGES) + 4)
            table.add_row(c["method"], str(c["frames"]), *dashes, f"[red]cannot run [{len(notes)}][/red]")
            continue
        st, t = c["stages"], c["tokens"]
        if gpu:
            vals = [_fmt_s(st[s]["predicted_s"]) for s in STAGES]
            total = _fmt_s(c["totals"]["predicted_s"])
        else:
            vals = [f"{st[s]['flops_useful'] / 1e9:,.1f}" for s in STAGES]
            total = f"{c['totals']['flops_useful'] / 1e9:,.1f}"
        ctx = "ok" if c["fits_context"] else f"[red]> {c['max_position_embeddings']:,}[/red]"
        table.add_row(
            c["method"],
            str(c["frames"]),
            f"{t['visual_per_frame']:g}",
            f"{t['prompt']:,}",
            *vals,
            total,
            f"{c['share']['vision_side']:.0%}",
            ctx,
        )
    console.print(table)
    for n in notes:
        console.print(n, style="red", highlight=False)
