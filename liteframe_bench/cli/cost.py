"""``lfbench cost``: the analytic cost model's FLOPs, bytes and roofline seconds per stage."""

from __future__ import annotations

from typing import Annotated

import typer

from liteframe_bench import registry
from liteframe_bench.cli.common import JsonOpt, app, int_list, print_json


@app.command("cost")
def cost_cmd(
    model: Annotated[
        str, typer.Option(help="Preset (internvl3-1b/2b/8b, qwen2.5-vl-3b/7b, tiny, tiny-qwen) or a local model folder "
                          "(InternVL3-*-hf or Qwen2.5-VL-*-Instruct).")
    ] = "internvl3-8b",
    method: Annotated[str, typer.Option(help="Comma-separated method specs, e.g. baseline,wap:ratio=16.")] = "baseline",
    frames: Annotated[str, typer.Option(help="Comma-separated frame counts.")] = "8,64,512",
    gpu: Annotated[
        str | None, typer.Option(help="Roofline GPU: h100, h100-pcie, h200, a100, a100-40gb, l40s.")
    ] = "h200",
    dtype_bytes: Annotated[float, typer.Option(help="Bytes per weight/activation element (2 = bf16).")] = 2,
    tiles: Annotated[int, typer.Option(min=1, help="448 px tiles per frame.")] = 1,
    new_tokens: Annotated[int, typer.Option(min=1, help="Decoded tokens.")] = 16,
    fixed_text_tokens: Annotated[
        int | None, typer.Option(help="Chat template + question tokens (default 128).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """FLOPs, bytes and roofline latency per stage from the analytic cost model (no GPU, no weights)."""
    from liteframe_bench import cost

    kw = {} if fixed_text_tokens is None else {"fixed_text_tokens": fixed_text_tokens}
    rep = cost.report(
        model,
        registry.split_specs(method),
        int_list(frames, "--frames"),
        gpu,
        dtype_bytes=dtype_bytes,
        tiles=tiles,
        new_tokens=new_tokens,
        **kw,
    )
    if json_:
        print_json(rep)
    else:
        cost.render(rep)
