"""``lfbench train ctd|lma``: train LiteFrame."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer

from liteframe_bench.cli.common import JsonOpt, app, print_json

train_app = typer.Typer(
    help="Train LiteFrame: CTD (student distils WAP-compressed teacher tokens), then LMA.", no_args_is_help=True
)
app.add_typer(train_app, name="train")

SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="KEY=VALUE", help="Any other config field (repeatable), e.g. --set lr=3e-4."),
]


def _config(cls, explicit: dict, sets: list[str] | None):
    """Build a training config from explicit options plus --set KEY=VALUE (typed by the dataclass field)."""
    import dataclasses
    import typing

    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {k: v for k, v in explicit.items() if v is not None}
    for item in sets or []:
        key, eq, raw = item.partition("=")
        if not eq or key not in fields:
            raise click.BadParameter(f"{item!r}; allowed keys: {', '.join(fields)}", param_hint="--set")
        tp = str(hints[key])
        try:
            if "bool" in tp and raw.lower() in ("true", "false", "1", "0", "yes", "no"):
                values[key] = raw.lower() in ("true", "1", "yes")
            elif tp.startswith("<class 'int'>") or tp == "int":
                values[key] = int(raw)
            elif tp.startswith("<class 'float'>") or tp == "float":
                values[key] = float(raw)
            else:
                values[key] = raw
        except ValueError:
            raise click.BadParameter(f"{item!r}: {raw!r} is not a valid {tp}", param_hint="--set") from None
    return cls(**values)


@train_app.command("ctd")
def train_ctd_cmd(
    videos: Annotated[Path, typer.Argument(help="A folder of videos (no labels needed).")],
    out: Annotated[
        Path, typer.Option(help="Output folder: student/, checkpoints/, targets/ (rerun to resume).")
    ] = Path("runs/ctd"),
    teacher: Annotated[str | None, typer.Option(help="tiny, random:<preset> or a local InternVL3-*-hf folder.")] = None,
    student: Annotated[str | None, typer.Option(help="default (ViT-B/14, ~87M) or tiny.")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Optimizer steps.")] = None,
    frames: Annotated[int | None, typer.Option(min=1, help="Frames per clip.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Clips per step.")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (AdamW, warm-up + cosine).")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda[:N].")] = None,
    sets: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Compressed Token Distillation: the student learns WAP(teacher ViT features) with an MSE loss."""
    from liteframe_bench.methods.liteframe.ctd import CTDConfig, train_ctd

    cfg = _config(
        CTDConfig,
        {
            "videos": str(videos),
            "out": str(out),
            "teacher": teacher,
            "student": student,
            "steps": steps,
            "frames": frames,
            "batch_size": batch_size,
            "lr": lr,
            "device": device,
        },
        sets,
    )
    res = train_ctd(cfg, progress=not json_)
    if json_:
        print_json(res)
    else:
        typer.echo(
            f"CTD: {res['steps']} steps, loss {res['first_loss']:.4g} -> {res['last_loss']:.4g}; "
            f"student saved to {res['student']}"
        )


@train_app.command("lma")
def train_lma_cmd(
    student: Annotated[Path, typer.Argument(help="A CTD out folder (or a student folder).")],
    data: Annotated[
        str,
        typer.Option(help="synth, synth:<size> (its train split), a JSONL of video/prompt/answer, or synth-stream "
                     "(scenes rendered on the fly; --set answers=letter|words|open|clip)."),
    ] = ("synth"),
    out: Annotated[
        Path, typer.Option(help="Output folder: student/, adapter/, checkpoints/ (rerun to resume).")
    ] = Path("runs/lma"),
    backbone: Annotated[
        str | None, typer.Option(help="tiny, random:<preset> or a local InternVL3-*-hf folder.")
    ] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Optimizer steps.")] = None,
    frames: Annotated[int | None, typer.Option(min=1, help="Frames per clip.")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda[:N].")] = None,
    sets: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Language Model Adaptation: LoRA on the LLM + fine-tuning the student on video-question-answer pairs."""
    from liteframe_bench.methods.liteframe.lma import LMAConfig, train_lma

    cfg = _config(
        LMAConfig,
        {
            "student": str(student),
            "data": data,
            "out": str(out),
            "backbone": backbone,
            "steps": steps,
            "frames": frames,
            "lr": lr,
            "device": device,
        },
        sets,
    )
    res = train_lma(cfg, progress=not json_)
    if json_:
        print_json(res)
    else:
        typer.echo(
            f"LMA: {res.get('steps')} steps, answer loss {res.get('first_loss', float('nan')):.4g} -> "
            f"{res.get('last_loss', float('nan')):.4g}; saved to {out}"
        )
