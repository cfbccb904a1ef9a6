"""``lfbench bench reducers|encoders|temporal``: benchmarks that print numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import click
import typer

from liteframe_bench import registry
from liteframe_bench.cli.common import JsonOpt, app, print_json

bench_app = typer.Typer(
    help="Benchmarks that print numbers (speed goals live here, not in tests).", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")


@bench_app.command("reducers")
def bench_reducers_cmd(
    reducers: Annotated[str | None, typer.Option(help="Comma-separated specs (default: every reducer at 16x).")] = None,
    frames: Annotated[int, typer.Option(min=1, help="Frames per video (InternVL3 real shapes otherwise).")] = 64,
    device: Annotated[str, typer.Option(help="cpu or cuda[:N].")] = "cpu",
    dtype: Annotated[
        str | None, typer.Option(help="float32, bfloat16, float16 (default: float32 on CPU, bfloat16 on GPU).")
    ] = None,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed calls before timing.")] = 1,
    repeats: Annotated[int, typer.Option(min=1, help="Timed calls; the median is reported.")] = 3,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON report to this file.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Time every reducer at InternVL3's real shapes beside one real-size InternViT layer, in one run."""
    from liteframe_bench.bench import reducers as bench

    if dtype is not None and dtype not in ("float32", "bfloat16", "float16"):
        raise click.BadParameter(f"{dtype!r}; allowed: float32, bfloat16, float16", param_hint="--dtype")
    specs = registry.split_specs(reducers) if reducers else None
    report = bench.run(
        specs, frames=frames, device=device, dtype=dtype, warmup=warmup, repeats=repeats, progress=not json_
    )
    _bench_out(report, out, json_, bench.render)


def _bench_out(report: dict, out: Path | None, json_: bool, render) -> None:
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
    if json_:
        print_json(report)
    else:
        render(report)


@bench_app.command("encoders")
def bench_encoders_cmd(
    frames: Annotated[int, typer.Option(min=1, help="Frames of 448 px (the same for both encoders).")] = 8,
    device: Annotated[str, typer.Option(help="cpu or cuda[:N].")] = "cpu",
    dtype: Annotated[str | None, typer.Option(help="float32, bfloat16 (default: float32 on CPU, bf16 on GPU).")] = None,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed calls.")] = 1,
    repeats: Annotated[int, typer.Option(min=1, help="Timed calls (alternating student/teacher).")] = 3,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON report to this file.")] = None,
    json_: JsonOpt = False,
) -> None:
    """LiteFrame student (default, ~87M) vs InternViT-300M (random weights, real size): params, FLOPs, latency."""
    from liteframe_bench.bench import encoders

    report = encoders.run_encoders(
        frames=frames, device=device, dtype=dtype, warmup=warmup, repeats=repeats, progress=not json_
    )
    _bench_out(report, out, json_, encoders.render_encoders)


@bench_app.command("temporal")
def bench_temporal_cmd(
    frames: Annotated[int, typer.Option(min=1, help="Frames in the clip.")] = 64,
    grid: Annotated[
        str, typer.Option(help="Token grid per frame, HxW (full spatio-temporal attention is quadratic).")
    ] = "8x8",
    device: Annotated[str, typer.Option(help="cpu or cuda[:N].")] = "cpu",
    dtype: Annotated[str | None, typer.Option(help="float32, bfloat16.")] = None,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed calls.")] = 1,
    repeats: Annotated[int, typer.Option(min=1, help="Timed calls.")] = 3,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON report to this file.")] = None,
    json_: JsonOpt = False,
) -> None:
    """The paper's Table 2: depth-wise vs full temporal conv vs temporal attention vs full spatio-temporal attention."""
    from liteframe_bench.bench import encoders
    from liteframe_bench.pipeline import parse_tiles

    report = encoders.run_temporal(
        frames=frames,
        device=device,
        dtype=dtype,
        warmup=warmup,
        repeats=repeats,
        grid=parse_tiles(grid),
        progress=not json_,
    )
    _bench_out(report, out, json_, encoders.render_temporal)
