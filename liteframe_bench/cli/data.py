"""``lfbench data check|make``: local benchmark copies and the synthetic suite."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import click
import typer

from liteframe_bench.cli.common import JsonOpt, app

data_app = typer.Typer(
    help="Local benchmark copies under $LFBENCH_DATA: check them, or make the synthetic suite.", no_args_is_help=True
)
app.add_typer(data_app, name="data")


@data_app.command("check")
def data_check_cmd(
    suite: Annotated[str, typer.Argument(help="videomme, videomme_w_subtitle, mlvu, longvideobench, hlvid or synth.")],
    root: Annotated[
        Path | None, typer.Option(help="Data root (default: $LFBENCH_DATA or ~/.cache/lfbench/data).")
    ] = None,
    probe: Annotated[bool, typer.Option(help="Open every present video to find unreadable ones.")] = True,
    json_: JsonOpt = False,
) -> None:
    """Validate a local copy: annotation files, video count, missing and unreadable videos; exit 1 if not ok."""
    from liteframe_bench import data

    report = data.check(suite, root, probe_videos=probe)
    if json_:
        sys.stdout.write(report.to_json() + "\n")
    else:
        from rich.console import Console

        Console().print(data.render_check(report))
    if not report.ok:
        raise typer.Exit(1)


@data_app.command("make")
def data_make_cmd(
    suite: Annotated[str, typer.Argument(help="Only synth can be made (the others are downloaded by you).")],
    size: Annotated[
        str, typer.Option(help="tiny (seconds, for tests) or default (several hundred questions).")
    ] = "default",
    root: Annotated[
        Path | None, typer.Option(help="Data root (default: $LFBENCH_DATA or ~/.cache/lfbench/data).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Regenerate even if a complete copy exists.")] = False,
) -> None:
    """Generate the offline synthetic suite (seeded mp4s + Video-MME-format annotations)."""
    if suite != "synth":
        raise click.BadParameter(
            f"{suite!r}; allowed: synth (real suites come from their own sources: see `lfbench data check {suite}`)",
            param_hint="SUITE",
        )
    from liteframe_bench.suites.synth import generator

    path = generator.make(size, root, force=force, progress=True)
    typer.echo(f"synth ({size}) ready at {path}")
