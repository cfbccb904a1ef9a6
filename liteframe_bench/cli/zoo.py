"""``lfbench zoo ls|train``: the model zoo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from liteframe_bench.cli.common import JsonOpt, app, print_json

zoo_app = typer.Typer(
    help="The model zoo: the trained mini InternVL3 and its LiteFrame students shipped in the package.",
    no_args_is_help=True,
)
app.add_typer(zoo_app, name="zoo")


@zoo_app.command("ls")
def zoo_ls_cmd(json_: JsonOpt = False) -> None:
    """Each zoo checkpoint with its model card (config, parameters, data, steps, wall time, machine, accuracy)."""
    from liteframe_bench import zoo

    rows = zoo.entries()
    if json_:
        print_json({"root": str(zoo.root()), "checkpoints": rows})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"lfbench zoo — {zoo.root()}")
    for col in ("name", "what", "params", "MB", "steps", "train s", "eval (synth, per family)"):
        table.add_column(col)
    for r in rows:
        c = r["card"]
        params = c.get("parameters", {})
        total = params.get("total") or sum(v for v in params.values() if isinstance(v, int))
        fam = c.get("eval", {}).get("families", {})
        shown = ", ".join(f"{k} {v['accuracy']:.0%}" for k, v in fam.items()) or "not evaluated"
        table.add_row(r["name"], c.get("what", ""), f"{total / 1e6:.2f}M", f"{r['bytes'] / 1e6:.1f}",
                      str(c.get("steps", "")), str(c.get("wall_s", "")), shown)
    Console().print(table)
    if not rows:
        typer.echo(f"no checkpoints under {zoo.root()}; run `lfbench zoo train --out DIR`", err=True)
        raise typer.Exit(1)


@zoo_app.command("train")
def zoo_train_cmd(
    out: Annotated[
        Path, typer.Option(help="Output folder (rerun to resume); point $LFBENCH_ZOO at it to use it.")
    ] = Path("runs/zoo"),
    budget_min: Annotated[
        float | None,
        typer.Option(min=0.01, help="Scale every stage's steps to about this many minutes (default: the full "
                     "recipe that made the shipped checkpoints)."),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of initialisation and of the training stream.")] = 0,
    evaluate: Annotated[
        bool, typer.Option(help="Evaluate each checkpoint on the synth eval split for its card.")
    ] = True,
    json_: JsonOpt = False,
) -> None:
    """Reproduce the zoo from a seed on the CPU: teacher, CTD student, LMA student, then their cards."""
    from liteframe_bench.zoo.train import train_zoo

    cards = train_zoo(out, budget_min, seed=seed, progress=not json_, evaluate=evaluate)
    if json_:
        print_json(cards)
    else:
        for name, card in cards.items():
            typer.echo(f"{name}: {card.get('summary', 'not evaluated')} ({out / name})")
