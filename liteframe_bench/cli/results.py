"""``lfbench results show|families|export|merge``: inspect, export and merge results folders."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from liteframe_bench.cli.common import JsonOpt, app, print_json

results_app = typer.Typer(help="Inspect, export and merge results folders.", no_args_is_help=True)
app.add_typer(results_app, name="results")


@results_app.command("show")
def results_show_cmd(
    directory: Annotated[Path, typer.Argument(help="A results folder.")],
    samples: Annotated[bool, typer.Option(help="List per-sample rows instead of cells.")] = False,
    json_: JsonOpt = False,
) -> None:
    """List the cells (or samples) of a results folder, each reduced cell with its agreement with the baseline."""
    from liteframe_bench.agreement import COLUMNS, agreement_table
    from liteframe_bench.results import ResultsDir

    cells, rows = ResultsDir(directory).load()
    cells = cells.join(agreement_table(cells, rows)[list(COLUMNS)], on="cell_id")
    df = rows if samples else cells
    if json_:
        sys.stdout.write(df.to_json(orient="records", indent=2) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    cols = (
        ["method", "frames", "suite", "doc_id", "prediction", "target", "correct", "error"]
        if samples
        else [
            "method",
            "frames",
            "suite",
            "status",
            "accuracy",
            "n_samples",
            "n_errors",
            "visual_tokens",
            "lat_vision_s",
            "lat_prefill_s",
            "lat_ttft_s",
            "lat_e2e_s",
            "flops_total",
            "agree w/ baseline",
            "reason",
        ]
    )
    table = Table(title=f"{directory} — {len(df)} {'samples' if samples else 'cells'}")
    for c in cols:
        table.add_column(c, overflow="fold", no_wrap=c in ("method", "suite", "agree w/ baseline"))
    import pandas as pd

    from liteframe_bench.pareto_report import agreement_text

    fmt = lambda v: "" if pd.isna(v) else f"{v:.4g}" if isinstance(v, float) else str(v)
    for _, r in df.sort_values(["suite", "method", "frames"]).iterrows():
        if not samples:
            r["agree w/ baseline"] = agreement_text(r.to_dict()) if pd.notna(r["agreement"]) else ""
        table.add_row(*[fmt(r[c]) for c in cols])
    Console(width=max(Console().width, 180)).print(table)


@results_app.command("families")
def results_families_cmd(
    directory: Annotated[Path, typer.Argument(help="A results folder with synth / synth_tiny cells.")],
    json_: JsonOpt = False,
) -> None:
    """Accuracy per synth question family (count, appeared, order, detail, global) for every cell."""
    from liteframe_bench.zoo.families import family_table, wide

    table = family_table(directory)
    if json_:
        print_json(table.to_dict("records"))
        return
    from rich.console import Console
    from rich.table import Table

    w = wide(table)
    out = Table(title=f"accuracy per synth family (%) — {directory}")
    for col in w.columns:
        out.add_column(str(col))
    for r in w.itertuples(index=False):
        out.add_row(*[f"{100 * v:.1f}" if isinstance(v, float) else str(v) for v in r])
    Console(width=160).print(out)


@results_app.command("export")
def results_export_cmd(
    directory: Annotated[Path, typer.Argument(help="A results folder.")],
    out: Annotated[
        Path | None, typer.Option(help="Folder for cells.csv and samples.csv (default DIR/exports).")
    ] = None,
) -> None:
    """Write the cells and samples tables as CSV."""
    from liteframe_bench.results import ResultsDir

    cells, rows = ResultsDir(directory).load()
    dest = out or directory / "exports"
    dest.mkdir(parents=True, exist_ok=True)
    cells.to_csv(dest / "cells.csv", index=False)
    rows.to_csv(dest / "samples.csv", index=False)
    typer.echo(f"wrote {dest / 'cells.csv'} ({len(cells)} rows) and {dest / 'samples.csv'} ({len(rows)} rows)")


@results_app.command("merge")
def results_merge_cmd(
    sources: Annotated[list[Path], typer.Argument(help="Shard folders to join.")],
    out: Annotated[Path, typer.Option(help="Destination folder.")],
    json_: JsonOpt = False,
) -> None:
    """Join shard results folders into one (finished cells only; duplicates kept once)."""
    from liteframe_bench.results import merge

    counts = merge(sources, out)
    if json_:
        print_json(counts)
    else:
        typer.echo(f"{out}: {counts['copied']} cells copied, {counts['skipped_duplicates']} duplicates skipped")
