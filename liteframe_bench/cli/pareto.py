"""``lfbench pareto``: the latency/accuracy analysis of a results folder (:mod:`liteframe_bench.pareto_report`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer

from liteframe_bench.cli.common import JsonOpt, app, print_json


@app.command("pareto")
def pareto_cmd(
    directory: Annotated[Path, typer.Argument(help="A results folder (lfbench sweep --out).")],
    out: Annotated[
        Path | None, typer.Option(help="Report folder (default DIR/report; keep it inside DIR/report).")
    ] = None,
    latency: Annotated[
        str,
        typer.Option(
            help="x axis: measured lat_e2e_s (e2e), lat_ttft_s (ttft), ttft_decode, lat_total_s or lat_<stage>_s; "
            "modelled predicted:GPU / predicted_ttft:GPU (roofline at --at-scale, e.g. predicted:h100); "
            "flops; visual_tokens."
        ),
    ] = "lat_e2e_s",
    at_scale: Annotated[
        str | None,
        typer.Option(
            help="Model size for predicted:GPU, flops and visual_tokens: a preset (internvl3-8b, the default for "
            "predicted) or a local model folder."
        ),
    ] = None,
    budgets: Annotated[
        str | None, typer.Option(help="Comma-separated latency budgets in seconds (default: auto).")
    ] = None,
    suites: Annotated[str | None, typer.Option(help="Comma-separated suites (default: all in the folder).")] = None,
    model: Annotated[str | None, typer.Option(help="Which model's cells, when the folder holds several.")] = None,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    n_boot: Annotated[int, typer.Option(min=10, help="Bootstrap resamples.")] = 1000,
    json_: JsonOpt = False,
) -> None:
    """Latency/accuracy frontier per suite and averaged, bootstrap CIs, best-under-budget table, plots and report."""
    from liteframe_bench import pareto_report

    try:
        budget_list = [float(b) for b in budgets.split(",") if b.strip()] if budgets else None
    except ValueError:
        raise click.BadParameter(
            f"{budgets!r}; allowed: comma-separated seconds, e.g. 0.5,1,2", param_hint="--budgets"
        ) from None
    result = pareto_report.write_report(
        directory,
        out=out,
        budgets=budget_list,
        latency=latency,
        suites=[x for x in suites.split(",") if x] if suites else None,
        model=model,
        seed=seed,
        n_boot=n_boot,
        at_scale=at_scale,
    )
    if json_:
        print_json(result)
    else:
        pareto_report.render(result)
        typer.echo(
            f"report: {result['written']['report']}"
            if isinstance(result.get("written"), dict) and "report" in result["written"]
            else ""
        )
