"""``lfbench eval``: accuracy through lmms-eval."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from liteframe_bench import registry
from liteframe_bench.cli.common import JsonOpt, app, int_list, print_json


@app.command("eval")
def eval_cmd(
    suite: Annotated[str, typer.Option(help="Comma-separated lmms-eval task names (lfbench's suites).")] = "synth_tiny",
    method: Annotated[str, typer.Option(help="Comma-separated method specs.")] = "baseline",
    frames: Annotated[str, typer.Option(help="Comma-separated frame counts.")] = "8",
    model: Annotated[
        str, typer.Option(help="mini (the zoo's trained model), tiny (random), random:<preset> or a local "
                          "InternVL3-*-hf folder.")
    ] = "mini",
    device: Annotated[str, typer.Option(help="cpu or cuda[:N].")] = "cpu",
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16, float16.")] = "auto",
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N samples of each suite.")] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Decode budget per answer.")] = 16,
    out: Annotated[Path, typer.Option(help="Folder for lmms-eval results and per-sample sidecars.")] = Path(
        "results/eval"
    ),
    json_: JsonOpt = False,
) -> None:
    """Accuracy through lmms-eval's simple_evaluate, offline, for any method (data under $LFBENCH_DATA)."""
    from liteframe_bench import evaluate

    summary = evaluate.run_eval(
        registry.split_specs(method),
        int_list(frames, "--frames"),
        [s for s in suite.split(",") if s],
        model=model,
        device=device,
        dtype=dtype,
        limit=limit,
        max_new_tokens=max_new_tokens,
        out=out,
    )
    if json_:
        print_json(summary)
    else:
        evaluate.render(summary)
