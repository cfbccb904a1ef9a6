"""Profiling one (method, frames) cell in timing mode, and ``lfbench profile`` over a grid of cells.

Stage names and the :class:`StageClock` live in :mod:`liteframe_bench.stages` (re-exported here for existing
imports); this module runs a method through them: warm-up, repeats, medians, TTFT, overhead, FLOPs, traces.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import torch

from liteframe_bench.errors import LfbenchError
from liteframe_bench.stages import (  # noqa: F401  (re-exported: profiler.STAGES, profiler.StageClock, ...)
    STAGES,
    TTFT_STAGES,
    StageClock,
    flop_counter,
    stage_overhead,
)
from liteframe_bench.timing import summarize

# ------------------------------------------------------------------------------------------------ runner


def _e2e(method, video, frames: int, prompt: str, new_tokens: int, clock: StageClock):
    """One full run; returns (wall seconds, tokens, generation). Wall time ends after a device synchronise."""
    dev = method.backbone.device
    t0 = time.perf_counter()
    tokens = method.encode(video, frames, clock=clock)
    gen = method.generate(tokens, prompt, new_tokens, min_new_tokens=new_tokens, clock=clock)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return time.perf_counter() - t0, tokens, gen


def ttft(stage_seconds: dict[str, float], with_decode: bool = False) -> float:
    """Time to first token of one run from its per-stage seconds (stages that did not run count 0)."""
    names = ("decode", *TTFT_STAGES) if with_decode else TTFT_STAGES
    return sum(stage_seconds.get(s, 0.0) for s in names)


def count_flops(method, video, frames: int, *, prompt: str = "Describe the video.", new_tokens: int = 16):
    """FLOPs per stage of one untimed run, counted by ``FlopCounterMode`` (:func:`flop_counter`)."""
    clock = StageClock(method.backbone.device, "flops")
    _e2e(method, video, frames, prompt, new_tokens, clock)
    return dict(clock.flops)


def analytic_flops(method, frames: int, *, prompt_tokens: int, new_tokens: int):
    """``({stage: flops}, None)`` from the cost model for this method on its backbone's config at the run's real
    prompt length, or ``(None, reason)`` when the cost model cannot model the method."""
    from liteframe_bench import cost

    rows, cols = getattr(method, "tiles", (1, 1))
    return cost.stage_flops(
        method.backbone,
        method.full_spec,
        frames,
        tiles=rows * cols,
        prompt_tokens=prompt_tokens,
        new_tokens=new_tokens,
    )


def profile_cell(
    method,
    video: str | Path,
    frames: int,
    *,
    prompt: str = "Describe the video.",
    new_tokens: int = 16,
    warmup: int = 1,
    repeats: int = 3,
    overhead: bool = False,
    flops: bool = False,
    trace_dir: str | Path | None = None,
) -> dict:
    """Profile one (method, frames) cell in timing mode: fixed decode length, warm-up, repeats, medians.

    ``overhead``: also time ``repeats`` uninstrumented runs, interleaved with the instrumented ones, and report
    the profiler's overhead on end-to-end time. ``flops`` and ``trace_dir`` each add one separate, untimed run.
    """
    dev = method.backbone.device
    for _ in range(warmup):
        _e2e(method, video, frames, prompt, new_tokens, StageClock(dev, "off"))
    stage_runs: dict[str, list[float]] = defaultdict(list)
    wall, plain, peaks, first, first_decoded = [], [], {}, [], []
    tokens = gen = None
    for _ in range(repeats):
        clock = StageClock(dev, "time")
        seconds, tokens, gen = _e2e(method, video, frames, prompt, new_tokens, clock)
        wall.append(seconds)
        per_stage = clock.results()
        for name, sec in per_stage.items():
            stage_runs[name].append(sec)
        first.append(ttft(per_stage))
        first_decoded.append(ttft(per_stage, with_decode=True))
        for name, b in clock.peak_bytes.items():
            peaks[name] = max(peaks.get(name, 0), b)
        if overhead:
            plain.append(_e2e(method, video, frames, prompt, new_tokens, StageClock(dev, "off"))[0])
    stages = {}
    for name in STAGES:
        if name not in stage_runs:
            continue
        t = summarize(stage_runs[name], warmup, "cuda-events" if dev.type == "cuda" else "perf_counter")
        stages[name] = {
            "median_s": t.median,
            "q25_s": t.q25,
            "q75_s": t.q75,
            "min_s": t.min,
            "max_s": t.max,
            "peak_bytes": peaks.get(name),
        }
    if "generate" in stages and gen.new_tokens > 1:
        stages["generate"]["per_token_s"] = stages["generate"]["median_s"] / (gen.new_tokens - 1)
    e2e = summarize(wall, warmup, "perf_counter")
    spread = lambda t: {"median_s": t.median, "q25_s": t.q25, "q75_s": t.q75}
    clock_name = "cuda-events" if dev.type == "cuda" else "perf_counter"
    cell = {
        "frames": frames,
        "distinct_frames": tokens.distinct_frames,
        "visual_tokens": tokens.num_tokens,
        "tokens_before": tokens.tokens_before,
        "prompt_tokens": gen.prompt_tokens,
        "new_tokens": gen.new_tokens,
        "stages": stages,
        "ttft": spread(summarize(first, warmup, clock_name)),
        "ttft_with_decode": spread(summarize(first_decoded, warmup, clock_name)),
        "end_to_end": spread(e2e),
        "stage_sum_s": sum(v["median_s"] for v in stages.values()),
    }
    modelled, why = analytic_flops(method, frames, prompt_tokens=gen.prompt_tokens, new_tokens=gen.new_tokens)
    if modelled is None:
        cell["flops_analytic_error"] = why
    else:
        for name, st in stages.items():
            if name in modelled:
                st["flops_analytic"] = modelled[name]
    if overhead:
        # Direct: what the clock costs per stage entry x entries per run, over the run's end-to-end time.
        # A/B: instrumented vs uninstrumented runs interleaved (noisier: run-to-run spread dominates on a CPU).
        per_entry = stage_overhead(dev)
        entries = len(stages)
        base = statistics.median(plain)
        cell["overhead"] = {
            "per_stage_entry_s": per_entry,
            "stage_entries_per_run": entries,
            "overhead_pct": 100 * per_entry * entries / e2e.median,
            "ab_plain_median_s": base,
            "ab_instrumented_median_s": e2e.median,
            "ab_overhead_pct": 100 * (e2e.median - base) / base,
        }
    if flops:
        for name, n in count_flops(method, video, frames, prompt=prompt, new_tokens=new_tokens).items():
            stages.setdefault(name, {})["flops"] = n
    if trace_dir is not None:
        cell["trace"] = write_trace(method, video, frames, trace_dir, prompt=prompt, new_tokens=new_tokens)
        cell["trace_dir"] = str(trace_dir)
    return cell


def trace_name(spec: str, frames: int) -> str:
    """The worker name of a cell's trace file: ``wap_f64``, ``prumerge_variant-plus_f8`` (no dots or colons)."""
    return f"{spec.replace(':', '_').replace(',', '_').replace('=', '-').replace('.', 'p')}_f{frames}"


def write_trace(method, video, frames: int, trace_dir, *, prompt="Describe the video.", new_tokens=16, steps=2):
    """A ``torch.profiler`` trace of ``steps`` untimed runs (after one untraced warm-up run), one profiler step per
    run, each stage a ``lfbench::<stage>`` range inside its step; returns the file's path.

    ``tensorboard_trace_handler`` writes ``DIR/<method>_f<frames>.<timestamp>.pt.trace.json``: torch-tb-profiler
    (``tensorboard --logdir DIR``, PyTorch Profiler tab: one worker per cell, a step per run in the Overview, the
    stage ranges in the Trace view) and Perfetto / ``chrome://tracing`` (the same Chrome trace JSON) open it.
    """
    from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

    dev = method.backbone.device
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    out = Path(trace_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = trace_name(method.spec, frames)
    before = set(out.glob(f"{name}.*.pt.trace.json"))
    plan = schedule(wait=0, warmup=1, active=steps, repeat=1)
    handler = tensorboard_trace_handler(str(out), worker_name=name)
    with profile(activities=acts, schedule=plan, on_trace_ready=handler) as prof:
        for _ in range(1 + steps):
            _e2e(method, video, frames, prompt, new_tokens, StageClock(dev, "time"))
            prof.step()
    (path,) = set(out.glob(f"{name}.*.pt.trace.json")) - before
    return str(path)


def run_profile(
    model: str,
    methods: Sequence[str],
    frames: Sequence[int],
    *,
    video: str | Path | None = None,
    device: str = "cpu",
    dtype: str = "auto",
    new_tokens: int = 16,
    warmup: int = 1,
    repeats: int = 3,
    overhead: bool = False,
    flops: bool = False,
    trace_dir: str | Path | None = None,
    workdir: str | Path | None = None,
    tiles: tuple[int, int] = (1, 1),
    progress: bool = True,
) -> dict:
    """Profile every (method, frames) cell on one backbone. A cell that cannot run is recorded with its error."""
    import tempfile

    from tqdm.auto import tqdm

    from liteframe_bench.backbone import load_backbone
    from liteframe_bench.pipeline import build_method
    from liteframe_bench.provenance import machine
    from liteframe_bench.video import decoder_name, probe

    if not frames or any(f < 1 for f in frames):
        raise LfbenchError(f"frames={list(frames)} is invalid; allowed: positive integers, e.g. 8,64,512")
    backbone = load_backbone(model, device=device, dtype=dtype)
    built = [(spec, build_method(spec, backbone, tiles=tiles)) for spec in methods]  # fail fast on a bad spec
    if video is None:
        from liteframe_bench.testing import moving_square_video

        folder = Path(workdir or tempfile.mkdtemp(prefix="lfbench-profile-"))
        folder.mkdir(parents=True, exist_ok=True)
        video = folder / f"moving_square_{max(frames)}f_{max(tiles)}x.mp4"
        if not video.exists():
            moving_square_video(video, max(frames), size=2 * backbone.image_size * max(tiles))
    info = probe(video)
    cells = []
    bar = tqdm(total=len(built) * len(frames), desc="profile", disable=not progress, leave=False)
    for spec, method in built:
        for n in frames:
            bar.set_postfix_str(f"{method.spec} @ {n} frames")
            row = {"method": method.spec, "spec": spec}
            try:
                row |= profile_cell(
                    method,
                    video,
                    n,
                    new_tokens=new_tokens,
                    warmup=warmup,
                    repeats=repeats,
                    overhead=overhead,
                    flops=flops,
                    trace_dir=trace_dir,
                )
            except (LfbenchError, torch.OutOfMemoryError) as e:
                row |= {"frames": n, "error": f"{type(e).__name__}: {e}"}
            cells.append(row)
            bar.update()
    bar.close()
    return {
        "benchmark": "profile",
        "model": backbone.describe(),
        "video": {
            "path": str(video),
            "frames": info.num_frames,
            "size": [info.width, info.height],
            "decoder": decoder_name(),
        },
        "settings": {
            "warmup": warmup,
            "repeats": repeats,
            "new_tokens": new_tokens,
            "min_new_tokens": new_tokens,
            "tiles": list(tiles),
            "caches": "none (timing mode)",
        },
        "cells": cells,
        "machine": machine(device),
    }


def render(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    m = report["model"]
    table = Table(
        title=f"Stage latency (median ms) — {m['source']}, {m['dtype']} on {report['machine']['device_name']}"
    )
    cols = ("method", "frames", "vis. tokens", "prompt", *STAGES, "per tok", "TTFT", "TTFT+decode", "end-to-end")
    for col in (*cols, "vision %"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for c in report["cells"]:
        if "error" in c:
            table.add_row(c["method"], str(c["frames"]), f"[red]{c['error']}[/red]", *[""] * (len(STAGES) + 6))
            continue
        st = c["stages"]
        ms = lambda k, st=st: f"{st[k]['median_s'] * 1e3:.1f}" if "median_s" in st.get(k, {}) else "—"
        per = st.get("generate", {}).get("per_token_s")
        e2e = c["end_to_end"]["median_s"]
        vis = st.get("vision", {}).get("median_s", 0.0)
        table.add_row(
            c["method"],
            str(c["frames"]),
            str(c["visual_tokens"]),
            str(c["prompt_tokens"]),
            *[ms(k) for k in STAGES],
            f"{per * 1e3:.2f}" if per else "—",
            f"{c['ttft']['median_s'] * 1e3:.1f}",
            f"{c['ttft_with_decode']['median_s'] * 1e3:.1f}",
            f"{e2e * 1e3:.1f}",
            f"{100 * vis / e2e:.0f}",
        )
    Console(width=max(Console().width, 160)).print(table)
    over = [c["overhead"]["overhead_pct"] for c in report["cells"] if "overhead" in c]
    ab = [c["overhead"]["ab_overhead_pct"] for c in report["cells"] if "overhead" in c]
    if over:
        Console().print(
            f"profiler overhead, direct (clock cost per stage x stages / end-to-end): max {max(over):.3f}% over "
            f"{len(over)} cells; A/B instrumented vs not: median {statistics.median(ab):+.2f}% "
            f"(range {min(ab):+.2f}% .. {max(ab):+.2f}%, run-to-run noise)"
        )
