"""``lfbench sweep``: (method x frames x suite) cells into a results folder, locally or on Ray."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from liteframe_bench import registry
from liteframe_bench.cli.common import JsonOpt, app, int_list, print_json
from liteframe_bench.errors import LfbenchError


class Executor(enum.StrEnum):
    """Where ``lfbench sweep`` runs its cells (``sweep.EXECUTORS``)."""

    local = "local"
    ray = "ray"


@app.command("sweep")
def sweep_cmd(
    ctx: typer.Context,
    methods: Annotated[
        str | None, typer.Option(help="Comma-separated specs (default: baseline, lowres + every reducer).")
    ] = None,
    frames: Annotated[str, typer.Option(help="Comma-separated frame counts.")] = "8,64,512",
    suites: Annotated[str, typer.Option(help="Comma-separated suites (lmms-eval task names).")] = "synth_tiny",
    model: Annotated[
        str, typer.Option(help="mini (the zoo's trained model), tiny (random), random:<preset> or a local "
                          "InternVL3-*-hf folder.")
    ] = "mini",
    out: Annotated[Path, typer.Option(help="Results folder (rerun the same command to resume).")] = Path(
        "results/sweep"
    ),
    device: Annotated[str, typer.Option(help="cpu or cuda[:N].")] = "cpu",
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16, float16.")] = "auto",
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N samples of each suite.")] = None,
    timing_samples: Annotated[int, typer.Option(min=0, help="Videos per cell timed in timing mode.")] = 2,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed runs per timed video.")] = 1,
    repeats: Annotated[int, typer.Option(min=1, help="Timed runs per timed video.")] = 3,
    new_tokens: Annotated[int, typer.Option(min=1, help="Fixed decode length in timing mode.")] = 16,
    shard: Annotated[
        str, typer.Option(help="i/n: run every n-th cell starting at i (merge with `results merge`).")
    ] = "0/1",
    seed: Annotated[int, typer.Option(help="Seed for the tiny model and lmms-eval.")] = 0,
    flops: Annotated[
        bool, typer.Option(help="Also count FLOPs per stage (FlopCounterMode, one untimed run per cell).")
    ] = False,
    executor: Annotated[
        Executor,
        typer.Option(
            case_sensitive=False,
            help="Where cells run: local (one after another in this process) or ray (each cell on a worker of a "
            "Ray cluster; needs the ray extra: pip install 'liteframe-bench\\[ray]'). Same cells, ids and results "
            "folder either way."
        ),
    ] = Executor.local,
    address: Annotated[
        str | None,
        typer.Option(
            help="With --executor ray: the cluster, auto (a running cluster, else an error) or HOST:PORT of its "
            "head (`ray start --head` prints it). Default: $RAY_ADDRESS, else the cluster last started on this "
            "machine, else a new one on this machine."
        ),
    ] = None,
    gpus_per_cell: Annotated[
        float | None,
        typer.Option(
            help="With --executor ray: GPUs each worker (one cell at a time) requests; default 1 with --device "
            "cuda, 0 (one CPU) with --device cpu. A fraction (0.5) shares a GPU between workers, which skews "
            "latency."
        ),
    ] = None,
    retries: Annotated[
        int,
        typer.Option(
            min=0,
            help="With --executor ray: times a cell whose worker died is handed out again before it is recorded "
            "as an error with the reason.",
        ),
    ] = 2,
    json_: JsonOpt = False,
) -> None:
    """Accuracy (lmms-eval) and latency (profiler, timing mode) for every method x frames x suite cell.

    Locally by default; on a Ray cluster with --executor ray (see the README, "Running on a cluster"); or split by
    hand across processes or a job array with --shard i/n and joined with `lfbench results merge`.
    """
    from liteframe_bench import sweep

    executor = executor.value
    ray_only = {"--address": address is not None, "--gpus-per-cell": gpus_per_cell is not None,
                "--retries": retries != 2}
    if executor == "local" and any(ray_only.values()):
        given = ", ".join(k for k, v in ray_only.items() if v)
        raise LfbenchError(f"{given}: only used with --executor ray (this sweep runs with --executor local)")

    cfg = sweep.SweepConfig(
        methods=registry.split_specs(methods) if methods else sweep.default_methods(),
        frames=int_list(frames, "--frames"),
        suites=[s for s in suites.split(",") if s],
        out=str(out),
        model=model,
        device=device,
        dtype=dtype,
        limit=limit,
        timing_samples=timing_samples,
        warmup=warmup,
        repeats=repeats,
        new_tokens=new_tokens,
        shard=sweep.parse_shard(shard),
        seed=seed,
        flops=flops,
    )
    ray_options = None
    if executor == "ray":
        from liteframe_bench.ray_executor import RayOptions

        root = ctx.find_root().params.get("plugins")
        ray_options = RayOptions(
            address=address,
            gpus_per_cell=gpus_per_cell,
            retries=retries,
            plugins=[str(Path(p).resolve()) for p in root or []],
        )
    summary = sweep.run_sweep(cfg, progress=not json_, executor=executor, ray_options=ray_options)
    if json_:
        print_json(summary)
    else:
        typer.echo(
            f"{summary['out']}: {summary['ran']} cells run, {summary['skipped_done']} already done, "
            f"{len(summary['errors'])} could not run"
        )
        for e in summary["errors"]:
            typer.echo(f"  {e['method']} @ {e['frames']} frames on {e['suite']}: {e['reason']}")
        if summary.get("executor") == "ray":
            typer.echo(f"  ran on {len(summary['workers'])} Ray worker(s); {summary['retried']} cell(s) handed out "
                       "again after their worker died")
