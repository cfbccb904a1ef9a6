"""The ``lfbench`` command line: each subcommand is a thin front over a plain function.

One module per command group (``lfbench X`` is ``liteframe_bench/cli/X.py``); :mod:`.common` holds the root app.
``main`` is the console script's entry (``[project.scripts] lfbench = "liteframe_bench.cli:console_main"``).
"""

from __future__ import annotations

import sys

import click
import typer

from liteframe_bench.cli.common import app
from liteframe_bench.errors import LfbenchError

# isort: off
# Each import registers a command group on ``app``; the order is the order of ``lfbench --help``.
from liteframe_bench.cli import bench, ls, profile, cost, eval, results, sweep  # noqa: E402, F401
from liteframe_bench.cli import pareto, figures, train, data, zoo  # noqa: E402, F401

# isort: on


def main(argv: list[str] | None = None) -> int:
    """Console-script entry: lfbench errors and usage errors (unknown command or option, missing argument)
    become click's short message on stderr and exit code 2, never a traceback."""
    try:
        rc = app(args=argv, prog_name="lfbench", standalone_mode=False)  # click returns Exit codes here
        if isinstance(rc, int) and rc:
            return rc
    except LfbenchError as e:
        typer.echo(f"error: {e}", err=True)
        return 2
    except click.exceptions.Exit as e:
        return e.exit_code
    except (click.ClickException, typer.TyperException) as e:  # typer raises its own vendored click's exceptions
        e.show()
        return e.exit_code
    except (click.exceptions.Abort, typer.Abort):
        typer.echo("aborted", err=True)
        return 130
    return 0


def console_main() -> None:
    sys.exit(main())


__all__ = ["app", "console_main", "main"]
