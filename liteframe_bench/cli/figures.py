"""``lfbench figures``: the paper's figures from results, or analytically."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer

from liteframe_bench.cli.common import JsonOpt, app, print_json


@app.command("figures")
def figures_cmd(
    directory: Annotated[Path | None, typer.Argument(help="A results folder (not needed with --analytic).")] = None,
    spec: Annotated[Path | None, typer.Option(help="Figure spec (default: the paper's, reports/paper.yaml).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default DIR/figures).")] = None,
    only: Annotated[str | None, typer.Option(help="Comma-separated figure ids.")] = None,
    analytic: Annotated[
        bool, typer.Option(help="Draw Fig. 1(b) at real scale from the cost model (no results, no GPU).")
    ] = False,
    model: Annotated[str, typer.Option(help="With --analytic: the model preset.")] = "internvl3-8b",
    gpu: Annotated[str, typer.Option(help="With --analytic: the roofline GPU.")] = "h200",
    json_: JsonOpt = False,
) -> None:
    """Regenerate the paper's figures and tables from results, saying which sweep fills any gap."""
    from liteframe_bench import figures

    if analytic:
        result = figures.figures_analytic(out or Path("results/figures-analytic"), model=model, gpu=gpu)
        if json_:
            print_json(result)
        else:
            for key in ("png", "svg", "json"):
                typer.echo(f"wrote {result[key]}")
            for c in result["cells"]:
                note = f"  ({c['label']})" if c.get("label") else ""
                typer.echo(
                    f"  {c['method']:>14} @ {c['frames']:>3} frames: total {c['total_s'] * 1e3:8.1f} ms, "
                    f"vision side {100 * c['vision_share']:4.0f}%{note}"
                )
        return
    if directory is None:
        raise click.BadParameter("give a results folder, or --analytic", param_hint="DIRECTORY")
    result = figures.run_figures(
        directory, spec=spec, out=out, only=[x for x in only.split(",") if x] if only else None
    )
    if json_:
        print_json(result)
    else:
        figures.render_figures(result)
