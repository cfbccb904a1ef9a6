"""``lfbench profile``: stage latency of (method, frames) cells in timing mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from liteframe_bench import registry
from liteframe_bench.cli.common import JsonOpt, app, int_list, print_json


@app.command("profile")
def profile_cmd(
    method: Annotated[str, typer.Option(help="Comma-separated method specs, e.g. baseline,wap:ratio=16.")] = "baseline",
    frames: Annotated[str, typer.Option(help="Comma-separated frame counts.")] = "8,64,512",
    model: Annotated[
        str, typer.Option(help="mini (the zoo's trained model), tiny (random), random:<preset> or a local "
                          "InternVL3-*-hf folder.")
    ] = "mini",
    video: Annotated[Path | None, typer.Option(help="Video to profile on (default: a generated one).")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda[:N].")] = "cpu",
    dtype: Annotated[str, typer.Option(help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16.")] = "auto",
    new_tokens: Annotated[int, typer.Option(min=1, help="Fixed decode length (min = max new tokens).")] = 16,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed runs per cell.")] = 1,
    repeats: Annotated[int, typer.Option(min=1, help="Timed runs per cell; medians reported.")] = 3,
    overhead: Annotated[
        bool, typer.Option(help="Also time uninstrumented runs and report the profiler overhead.")
    ] = False,
    flops: Annotated[bool, typer.Option(help="Count FLOPs per stage (one extra, untimed run per cell).")] = False,
    trace: Annotated[Path | None, typer.Option(help="Write a torch.profiler trace per cell to this folder.")] = None,
    tiles: Annotated[
        str, typer.Option(help="Fixed tiling of each frame, RxC (2x2: four 448 px tiles, each a clip).")
    ] = "1x1",
    out: Annotated[Path | None, typer.Option(help="Also write the JSON report to this file.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Split latency by stage (decode, vision, reduce, project, prefill, generate) across frame counts."""
    from liteframe_bench import profiler
    from liteframe_bench.pipeline import parse_tiles

    report = profiler.run_profile(
        model,
        registry.split_specs(method),
        int_list(frames, "--frames"),
        video=video,
        device=device,
        dtype=dtype,
        new_tokens=new_tokens,
        warmup=warmup,
        repeats=repeats,
        overhead=overhead,
        flops=flops,
        trace_dir=trace,
        tiles=parse_tiles(tiles),
        progress=not json_,
    )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
    if json_:
        print_json(report)
    else:
        profiler.render(report)
