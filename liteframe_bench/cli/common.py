"""What every command module shares: the root ``app``, the ``--plugins`` callback, ``--json`` and list parsing.

Each command group is a module of this package (``lfbench sweep`` -> ``cli/sweep.py``); each registers its
commands on :data:`app` from here. Imports go one way: ``cli/__init__`` imports the command modules, they import
this module and the library; nothing in the library imports ``cli``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import click
import typer

from liteframe_bench import registry

app = typer.Typer(
    help="Benchmark efficient Video LLMs: registered methods and token reducers, latency and accuracy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]


def print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


@app.callback()
def _root(
    plugins: Annotated[
        list[Path] | None,
        typer.Option(
            "--plugins",
            metavar="DIR",
            help="Folder of .py files that register methods/reducers (repeatable). Also read from $LFBENCH_PLUGINS.",
        ),
    ] = None,
) -> None:
    registry.load_plugins(plugins or [])


def int_list(text: str, option: str) -> list[int]:
    """``"8,64,512"`` -> [8, 64, 512]; click's usage error naming ``option`` for anything but positive integers."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(
            f"{text!r}; allowed: comma-separated positive integers, e.g. 8,64,512", param_hint=option
        ) from None
    if not values or min(values) < 1:
        raise click.BadParameter(
            f"{text!r}; allowed: comma-separated positive integers, e.g. 8,64,512", param_hint=option
        )
    return values

