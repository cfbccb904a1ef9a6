"""The ``lfbench`` command line: each subcommand is a thin front over a plain function."""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Annotated

import click
import typer

from liteframe_bench import registry
from liteframe_bench.errors import LfbenchError

app = typer.Typer(
    help="Benchmark efficient Video LLMs: registered methods and token reducers, latency and accuracy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(
    help="Benchmarks that print numbers (speed goals live here, not in tests).", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]


def _print_json(obj: object) -> None:
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


@app.command("ls")
def ls_cmd(
    json_: JsonOpt = False,
    kind: Annotated[str | None, typer.Option(help="Only this kind: method or reducer.")] = None,
) -> None:
    """List every registered method and reducer (plugins included) with its parameters and reference."""
    found = registry.entries(kind)
    if json_:
        _print_json([e.to_json() for e in found])
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


@bench_app.command("reducers")
def bench_reducers_cmd(
    reducers: Annotated[str | None, typer.Option(help="Comma-separated specs (default: every reducer at 16x).")] = None,
    frames: Annotated[int, typer.Option(min=1, help="Frames per video (InternVL3 real shapes otherwise).")] = 64,
    device: Annotated[str, typer.Option(help="cpu or cuda[:N].")] = "cpu",
    dtype: Annotated[
        str | None, typer.Option(help="float32, bfloat16, float16 (default: float32 on CPU, bfloat16 on GPU).")
    ] = None,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed calls before timing.")] = 1,
    repeats: Annotated[int, typer.Option(min=1, help="Timed calls; the median is reported.")] = 3,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON report to this file.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Time every reducer at InternVL3's real shapes beside one real-size InternViT layer, in one run."""
    from liteframe_bench.bench import reducers as bench

    if dtype is not None and dtype not in ("float32", "bfloat16", "float16"):
        raise click.BadParameter(f"{dtype!r}; allowed: float32, bfloat16, float16", param_hint="--dtype")
    specs = registry.split_specs(reducers) if reducers else None
    report = bench.run(
        specs, frames=frames, device=device, dtype=dtype, warmup=warmup, repeats=repeats, progress=not json_
    )
    _bench_out(report, out, json_, bench.render)


def _int_list(text: str, option: str) -> list[int]:
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


def _bench_out(report: dict, out: Path | None, json_: bool, render) -> None:
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
    if json_:
        _print_json(report)
    else:
        render(report)


@bench_app.command("encoders")
def bench_encoders_cmd(
    frames: Annotated[int, typer.Option(min=1, help="Frames of 448 px (the same for both encoders).")] = 8,
    device: Annotated[str, typer.Option(help="cpu or cuda[:N].")] = "cpu",
    dtype: Annotated[str | None, typer.Option(help="float32, bfloat16 (default: float32 on CPU, bf16 on GPU).")] = None,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed calls.")] = 1,
    repeats: Annotated[int, typer.Option(min=1, help="Timed calls (alternating student/teacher).")] = 3,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON report to this file.")] = None,
    json_: JsonOpt = False,
) -> None:
    """LiteFrame student (default, ~87M) vs InternViT-300M (random weights, real size): params, FLOPs, latency."""
    from liteframe_bench.bench import encoders

    report = encoders.run_encoders(
        frames=frames, device=device, dtype=dtype, warmup=warmup, repeats=repeats, progress=not json_
    )
    _bench_out(report, out, json_, encoders.render_encoders)


@bench_app.command("temporal")
def bench_temporal_cmd(
    frames: Annotated[int, typer.Option(min=1, help="Frames in the clip.")] = 64,
    grid: Annotated[
        str, typer.Option(help="Token grid per frame, HxW (full spatio-temporal attention is quadratic).")
    ] = "8x8",
    device: Annotated[str, typer.Option(help="cpu or cuda[:N].")] = "cpu",
    dtype: Annotated[str | None, typer.Option(help="float32, bfloat16.")] = None,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed calls.")] = 1,
    repeats: Annotated[int, typer.Option(min=1, help="Timed calls.")] = 3,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON report to this file.")] = None,
    json_: JsonOpt = False,
) -> None:
    """The paper's Table 2: depth-wise vs full temporal conv vs temporal attention vs full spatio-temporal attention."""
    from liteframe_bench.bench import encoders
    from liteframe_bench.pipeline import parse_tiles

    report = encoders.run_temporal(
        frames=frames,
        device=device,
        dtype=dtype,
        warmup=warmup,
        repeats=repeats,
        grid=parse_tiles(grid),
        progress=not json_,
    )
    _bench_out(report, out, json_, encoders.render_temporal)


@app.command("profile")
def profile_cmd(
    method: Annotated[str, typer.Option(help="Comma-separated method specs, e.g. baseline,wap:ratio=16.")] = "baseline",
    frames: Annotated[str, typer.Option(help="Comma-separated frame counts.")] = "8,64,512",
    model: Annotated[
        str, typer.Option(help="mini (the zoo's trained model), tiny (random), random:<preset> or a local "
                          "InternVL3-*-hf folder.")
    ] = "mini",
    video: Annotated[Path | None, typer.Option(help="Video to profile on (default: a generated one).")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda[:N].")] = "cpu",
    dtype: Annotated[str, typer.Option(help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16.")] = "auto",
    new_tokens: Annotated[int, typer.Option(min=1, help="Fixed decode length (min = max new tokens).")] = 16,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed runs per cell.")] = 1,
    repeats: Annotated[int, typer.Option(min=1, help="Timed runs per cell; medians reported.")] = 3,
    overhead: Annotated[
        bool, typer.Option(help="Also time uninstrumented runs and report the profiler overhead.")
    ] = False,
    flops: Annotated[bool, typer.Option(help="Count FLOPs per stage (one extra, untimed run per cell).")] = False,
    trace: Annotated[Path | None, typer.Option(help="Write a torch.profiler trace per cell to this folder.")] = None,
    tiles: Annotated[
        str, typer.Option(help="Fixed tiling of each frame, RxC (2x2: four 448 px tiles, each a clip).")
    ] = "1x1",
    out: Annotated[Path | None, typer.Option(help="Also write the JSON report to this file.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Split latency by stage (decode, vision, reduce, project, prefill, generate) across frame counts."""
    from liteframe_bench import profiler
    from liteframe_bench.pipeline import parse_tiles

    report = profiler.run_profile(
        model,
        registry.split_specs(method),
        _int_list(frames, "--frames"),
        video=video,
        device=device,
        dtype=dtype,
        new_tokens=new_tokens,
        warmup=warmup,
        repeats=repeats,
        overhead=overhead,
        flops=flops,
        trace_dir=trace,
        tiles=parse_tiles(tiles),
        progress=not json_,
    )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
    if json_:
        _print_json(report)
    else:
        profiler.render(report)


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
        _int_list(frames, "--frames"),
        gpu,
        dtype_bytes=dtype_bytes,
        tiles=tiles,
        new_tokens=new_tokens,
        **kw,
    )
    if json_:
        _print_json(rep)
    else:
        cost.render(rep)


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
        _int_list(frames, "--frames"),
        [s for s in suite.split(",") if s],
        model=model,
        device=device,
        dtype=dtype,
        limit=limit,
        max_new_tokens=max_new_tokens,
        out=out,
    )
    if json_:
        _print_json(summary)
    else:
        evaluate.render(summary)


results_app = typer.Typer(help="Inspect, export and merge results folders.", no_args_is_help=True)
app.add_typer(results_app, name="results")


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
        frames=_int_list(frames, "--frames"),
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
        _print_json(summary)
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
        _print_json(table.to_dict("records"))
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
        _print_json(counts)
    else:
        typer.echo(f"{out}: {counts['copied']} cells copied, {counts['skipped_duplicates']} duplicates skipped")


@app.command("pareto")
def pareto_cmd(
    directory: Annotated[Path, typer.Argument(help="A results folder (lfbench sweep --out).")],
    out: Annotated[
        Path | None, typer.Option(help="Report folder (default DIR/report; keep it inside DIR/report).")
    ] = None,
    latency: Annotated[
        str,
        typer.Option(
            help="x axis: measured lat_e2e_s (e2e), lat_ttft_s (ttft), ttft_decode, lat_total_s or lat_<stage>_s; "
            "modelled predicted:GPU / predicted_ttft:GPU (roofline at --at-scale, e.g. predicted:h100); "
            "flops; visual_tokens."
        ),
    ] = "lat_e2e_s",
    at_scale: Annotated[
        str | None,
        typer.Option(
            help="Model size for predicted:GPU, flops and visual_tokens: a preset (internvl3-8b, the default for "
            "predicted) or a local model folder."
        ),
    ] = None,
    budgets: Annotated[
        str | None, typer.Option(help="Comma-separated latency budgets in seconds (default: auto).")
    ] = None,
    suites: Annotated[str | None, typer.Option(help="Comma-separated suites (default: all in the folder).")] = None,
    model: Annotated[str | None, typer.Option(help="Which model's cells, when the folder holds several.")] = None,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    n_boot: Annotated[int, typer.Option(min=10, help="Bootstrap resamples.")] = 1000,
    json_: JsonOpt = False,
) -> None:
    """Latency/accuracy frontier per suite and averaged, bootstrap CIs, best-under-budget table, plots and report."""
    from liteframe_bench import pareto_report

    try:
        budget_list = [float(b) for b in budgets.split(",") if b.strip()] if budgets else None
    except ValueError:
        raise click.BadParameter(
            f"{budgets!r}; allowed: comma-separated seconds, e.g. 0.5,1,2", param_hint="--budgets"
        ) from None
    result = pareto_report.write_report(
        directory,
        out=out,
        budgets=budget_list,
        latency=latency,
        suites=[x for x in suites.split(",") if x] if suites else None,
        model=model,
        seed=seed,
        n_boot=n_boot,
        at_scale=at_scale,
    )
    if json_:
        _print_json(result)
    else:
        pareto_report.render(result)
        typer.echo(
            f"report: {result['written']['report']}"
            if isinstance(result.get("written"), dict) and "report" in result["written"]
            else ""
        )


@app.command("figures")
def figures_cmd(
    directory: Annotated[Path | None, typer.Argument(help="A results folder (not needed with --analytic).")] = None,
    spec: Annotated[Path | None, typer.Option(help="Figure spec (default: the paper's, reports/paper.yaml).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default DIR/figures).")] = None,
    only: Annotated[str | None, typer.Option(help="Comma-separated figure ids.")] = None,
    analytic: Annotated[
        bool, typer.Option(help="Draw Fig. 1(b) at real scale from the cost model (no results, no GPU).")
    ] = False,
    model: Annotated[str, typer.Option(help="With --analytic: the model preset.")] = "internvl3-8b",
    gpu: Annotated[str, typer.Option(help="With --analytic: the roofline GPU.")] = "h200",
    json_: JsonOpt = False,
) -> None:
    """Regenerate the paper's figures and tables from results, saying which sweep fills any gap."""
    from liteframe_bench import figures

    if analytic:
        result = figures.figures_analytic(out or Path("results/figures-analytic"), model=model, gpu=gpu)
        if json_:
            _print_json(result)
        else:
            for key in ("png", "svg", "json"):
                typer.echo(f"wrote {result[key]}")
            for c in result["cells"]:
                note = f"  ({c['label']})" if c.get("label") else ""
                typer.echo(
                    f"  {c['method']:>14} @ {c['frames']:>3} frames: total {c['total_s'] * 1e3:8.1f} ms, "
                    f"vision side {100 * c['vision_share']:4.0f}%{note}"
                )
        return
    if directory is None:
        raise click.BadParameter("give a results folder, or --analytic", param_hint="DIRECTORY")
    result = figures.run_figures(
        directory, spec=spec, out=out, only=[x for x in only.split(",") if x] if only else None
    )
    if json_:
        _print_json(result)
    else:
        figures.render_figures(result)


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
        _print_json(res)
    else:
        typer.echo(
            f"CTD: {res['steps']} steps, loss {res['first_loss']:.4g} -> {res['last_loss']:.4g}; "
            f"student saved to {res['student']}"
        )


@train_app.command("lma")
def train_lma_cmd(
    student: Annotated[Path, typer.Argument(help="A CTD out folder (or a student folder).")],
    data: Annotated[
        str, typer.Option(help="synth, synth:<size> (its train split) or a JSONL of video/prompt/answer.")
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
        _print_json(res)
    else:
        typer.echo(
            f"LMA: {res.get('steps')} steps, answer loss {res.get('first_loss', float('nan')):.4g} -> "
            f"{res.get('last_loss', float('nan')):.4g}; saved to {out}"
        )


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
        _print_json({"root": str(zoo.root()), "checkpoints": rows})
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
        _print_json(cards)
    else:
        for name, card in cards.items():
            typer.echo(f"{name}: {card.get('summary', 'not evaluated')} ({out / name})")


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


if __name__ == "__main__":
    console_main()
