"""``lfbench ls``: every registered method and reducer with its parameters."""

from __future__ import annotations

from typing import Annotated

import typer

from liteframe_bench import registry
from liteframe_bench.cli.common import JsonOpt, app, print_json


@app.command("ls")
def ls_cmd(
    json_: JsonOpt = False,
    kind: Annotated[str | None, typer.Option(help="Only this kind: method or reducer.")] = None,
) -> None:
    """List every registered method and reducer (plugins included) with its parameters and reference."""
    found = registry.entries(kind)
    if json_:
        print_json([e.to_json() for e in found])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="lfbench registry", show_lines=True)
    for col in ("kind", "name", "parameters (default)", "needs / at", "summary", "reference"):
        table.add_column(col, overflow="fold")
    for e in found:
        params = "\n".join(
            f"{p.name}={p.default}" + (f" [{'|'.join(map(str, p.choices))}]" if p.choices else "") for p in e.params
        )
        extra = ""
        if e.kind == "reducer":
            extra = (", ".join(sorted(e.cls.needs)) or "—") + f"\nat {e.cls.default_at}"
        table.add_row(e.kind, e.name, params or "—", extra, e.summary, e.reference)
    Console().print(table)
