"""``lfbench sweep``: every (method, frames, suite) cell, accuracy and latency, written cell by cell.

For each cell:

1. accuracy through the lmms-eval path (``simple_evaluate`` with the ``lfbench`` model, the same code as
   ``lfbench eval`` and the ``lmms-eval`` CLI), every sample logged with its prediction, correctness, tokens,
   accuracy-mode stage timings and error;
2. latency through the profiler in timing mode on a documented subset: the first ``timing_samples`` distinct
   videos of the cell (in document order) that ran without error, each with ``warmup`` untimed runs, ``repeats``
   timed runs and a fixed decode length of ``new_tokens``; no caches. Per stage, end to end and for the time to
   first token (``lat_ttft_s``: vision + reduce + project + prefill of each run; ``lat_ttft_decode_s`` with the
   video decode): median over videos of the per-video medians;
3. FLOPs per stage of one such run from the analytic cost model (``cost.stage_flops``: the cell's model config,
   method, frames, the timed prompt length and decode length), and with ``flops=True`` (``--flops``) also
   counted by ``FlopCounterMode`` on one untimed run (``flops_measured_*``).

Nothing is lost: a cell's samples then its row are written atomically (``results.ResultsDir``), a rerun of the
same command skips finished cells and redoes partial ones, and a cell that cannot run (reducer target impossible
at that frame count, prompt over the context, out of memory) is recorded with its reason while the sweep goes on.
``shard=(i, n)`` runs every n-th cell (by cell id) so processes or nodes can split a sweep; ``executor="ray"`` runs
the cells on a Ray cluster instead of one after another here (``ray_executor``: same plan, same ``run_cell``, the
same store written by this process).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import statistics
import sys
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from liteframe_bench import registry
from liteframe_bench.data import TaskDataExit
from liteframe_bench.errors import LfbenchError, SpecError
from liteframe_bench.profiler import profile_cell
from liteframe_bench.results import ResultsDir, cell_id
from liteframe_bench.stages import STAGES

DEFAULT_SUITES = ("synth_tiny",)


def default_methods() -> list[str]:
    """``baseline``, the ``lowres`` baseline (16x) and every registered post-hoc reducer at its default (16x-class)
    setting, identity excluded."""
    return ["baseline", "lowres"] + [e.name for e in registry.entries("reducer") if e.name != "identity"]


@dataclass
class SweepConfig:
    """Everything that defines a sweep; validated once, at the edge."""

    methods: list[str] = field(default_factory=default_methods)
    frames: list[int] = field(default_factory=lambda: [8, 64, 512])
    suites: list[str] = field(default_factory=lambda: list(DEFAULT_SUITES))
    out: str = "results/sweep"
    model: str = "mini"
    device: str = "cpu"
    dtype: str = "auto"
    limit: int | None = None
    max_new_tokens: int = 16
    timing_samples: int = 2
    warmup: int = 1
    repeats: int = 3
    new_tokens: int = 16
    shard: tuple[int, int] = (0, 1)
    seed: int = 0
    flops: bool = False  # also count FLOPs per stage with FlopCounterMode on one run per cell (untimed)

    def __post_init__(self) -> None:
        if not self.methods or not self.frames or not self.suites:
            raise SpecError("a sweep needs at least one method, one frame count and one suite")
        if min(self.frames) < 1:
            raise SpecError(f"frames={self.frames}: allowed: positive integers, e.g. 8,64,512")
        i, n = self.shard
        if not (n >= 1 and 0 <= i < n):
            raise SpecError(f"shard={i}/{n} is invalid; allowed: i/n with 0 <= i < n, e.g. 0/4")
        for name in ("timing_samples", "repeats", "new_tokens", "max_new_tokens"):
            if getattr(self, name) < (0 if name == "timing_samples" else 1):
                raise SpecError(f"{name}={getattr(self, name)} is invalid; allowed: a positive integer")
        if self.limit is not None and self.limit < 1:
            raise SpecError(f"limit={self.limit} is invalid; allowed: a positive integer")


def parse_shard(text: str) -> tuple[int, int]:
    i, sep, n = text.partition("/")
    if not sep or not i.strip().isdigit() or not n.strip().isdigit():
        raise SpecError(f"shard={text!r} is invalid; allowed: i/n, e.g. 0/4")
    return int(i), int(n)


# ---------------------------------------------------------------------------------------------- samples

_PRED_KEYS = ("pred_answer", "parsed_pred", "pred")
_GOLD_KEYS = ("answer", "gt_answer", "gt", "target")


def correctness(metrics: dict[str, Any]) -> tuple[float, str | None]:
    """(correct in [0, 1], target) from one lmms-eval sample's metric values.

    Works for the scorers lfbench's suites use: a number per sample (``acc``), or a dict carrying the predicted
    and gold letters (Video-MME ``pred_answer``/``answer``, LongVideoBench ``parsed_pred``/``answer``, MLVU).
    """
    for value in metrics.values():
        if isinstance(value, dict):
            pred = next((value[k] for k in _PRED_KEYS if k in value), None)
            gold = next((value[k] for k in _GOLD_KEYS if k in value), None)
            if gold is not None:
                hit = pred is not None and str(pred).strip().upper() == str(gold).strip().upper()
                return float(hit), str(gold)
        elif isinstance(value, (int, float)):  # bool is an int: a per-sample 0/1 (or [0, 1]) score
            return float(value), None
    return float("nan"), None


def parsed_answer(metrics: dict[str, Any]) -> str | None:
    """The answer a suite's scorer extracted from the prediction (``pred_answer``, ``parsed_pred``, ...), if any."""
    for value in metrics.values():
        if isinstance(value, dict):
            pred = next((value[k] for k in _PRED_KEYS if k in value), None)
            if pred is not None:
                return str(pred).strip()
    return None


def _sample_rows(sidecar: Path, logged: list[dict], metric_names: list[str], base: dict[str, Any]) -> list[dict]:
    side = {}
    for line in sidecar.read_text().splitlines() if sidecar.exists() else []:
        rec = json.loads(line)
        side[rec["doc_id"]] = rec
    rows = []
    for s in sorted(logged, key=lambda r: r["doc_id"]):
        rec = side.get(s["doc_id"], {})
        metrics = {m: s[m] for m in metric_names if m in s}
        correct, target = correctness(metrics)
        if target is None and s.get("target") is not None:
            target = str(s["target"])
        if rec.get("error"):
            correct = 0.0  # a sample that could not run counts as wrong
        t = rec.get("timings", {})
        rows.append(
            base
            | {
                "doc_id": int(s["doc_id"]),
                "video": rec.get("video"),
                "prediction": rec.get("prediction"),
                "answer": parsed_answer(metrics),
                "target": target,
                "correct": correct,
                "error": rec.get("error"),
                "visual_tokens": rec.get("visual_tokens"),
                "tokens_before": rec.get("tokens_before"),
                "prompt_tokens": rec.get("prompt_tokens"),
                "new_tokens": rec.get("new_tokens"),
                **{f"t_{st}_s": t.get(st) for st in STAGES},
                "wall_s": rec.get("wall_s"),
            }
        )
    return rows


# ------------------------------------------------------------------------------------------------- cells


def utc_now() -> str:
    """The timestamp of results rows and run records (UTC, seconds)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _check_feasible(method, frames: int, backbone) -> None:
    """Raise the reducer's own error when its target is impossible at this frame count."""
    if method.reducer is None:
        return
    method.reducer.target_tokens(*backbone.reducer_grid(frames, method.at))


def _timing(method, videos: list[str], frames: int, cfg: SweepConfig) -> tuple[dict[str, Any], float | None]:
    """Latency columns of the cell, and the median prompt length of its timed runs."""
    per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
    e2e, first, first_decoded, prompts = [], [], [], []
    for video in videos:
        cell = profile_cell(method, video, frames, new_tokens=cfg.new_tokens, warmup=cfg.warmup, repeats=cfg.repeats)
        for s, st in cell["stages"].items():
            per_stage[s].append(st["median_s"])
        e2e.append(cell["end_to_end"])
        first.append(cell["ttft"]["median_s"])
        first_decoded.append(cell["ttft_with_decode"]["median_s"])
        prompts.append(cell["prompt_tokens"])
    med = lambda xs: statistics.median(xs) if xs else None
    out = {f"lat_{s}_s": med(v) for s, v in per_stage.items()}
    out["lat_total_s"] = sum(v for v in out.values() if v is not None) if e2e else None
    out["lat_e2e_s"] = med([e["median_s"] for e in e2e])
    out["lat_e2e_q25_s"] = med([e["q25_s"] for e in e2e])
    out["lat_e2e_q75_s"] = med([e["q75_s"] for e in e2e])
    out["lat_ttft_s"] = med(first)
    out["lat_ttft_decode_s"] = med(first_decoded)
    return out, med(prompts)


def _flops(method, frames: int, prompt_tokens: float | None, measured_on: str | None, cfg: SweepConfig):
    """The ``flops_*`` columns: the cost model's per-stage FLOPs of one timing-mode run (its prompt length, the
    fixed decode length), plus FlopCounterMode's count of one run on ``measured_on`` (``--flops``)."""
    from liteframe_bench.profiler import analytic_flops, count_flops

    out: dict[str, Any] = {}
    modelled, why = (None, "no prompt length (no sample ran)")
    if prompt_tokens is not None:
        modelled, why = analytic_flops(method, frames, prompt_tokens=round(prompt_tokens), new_tokens=cfg.new_tokens)
    if modelled is not None:
        out |= {f"flops_{s}": v for s, v in modelled.items()} | {"flops_total": sum(modelled.values())}
    sources = ["analytic"] if modelled is not None else []
    if measured_on is not None:
        counted = count_flops(method, measured_on, frames, new_tokens=cfg.new_tokens)
        out |= {f"flops_measured_{s}": float(counted.get(s, 0)) for s in STAGES if s != "decode"}
        sources.append("measured")
    out["flops_source"] = "+".join(sources) if sources else f"none: {why}"
    return out


def run_cell(
    spec: str,
    frames: int,
    suite: str,
    *,
    cfg: SweepConfig,
    backbone,
    tm,
    store: ResultsDir,
    run_id: str,
    cid: str,
    clip_cache=None,
    method=None,
) -> dict[str, Any]:
    """Run one cell and write it; returns the cell row.

    ``method``: the cell's method already built from ``spec`` on ``backbone`` (``plan(..., built=)`` builds each
    spec once); else it is built here. The same object answers lmms-eval's requests and is timed.
    """
    from lmms_eval.evaluator import simple_evaluate

    from liteframe_bench.lmms_adapter import LfbenchModel
    from liteframe_bench.pipeline import build_method

    if method is None:
        method = build_method(spec, backbone)
    elif method.backbone is not backbone:
        raise SpecError(f"the method given for spec {spec!r} is bound to another backbone than the sweep's")
    row: dict[str, Any] = {
        "cell_id": cid,
        "run_id": run_id,
        "method": method.spec,
        "spec": spec,
        "reducer": method.reducer.name if method.reducer else "none",
        "frames": frames,
        "suite": suite,
        "model": backbone.source,
        "timing_samples": 0,
        "timing_repeats": cfg.repeats,
        "new_tokens": cfg.new_tokens,
        "n_samples": 0,
        "n_errors": 0,
        "started_at": utc_now(),
    }
    base = {"cell_id": cid, "run_id": run_id, "method": method.spec, "frames": frames, "suite": suite}
    samples: list[dict] = []
    try:
        _check_feasible(method, frames, backbone)
        work = store.path / ".work"
        work.mkdir(parents=True, exist_ok=True)
        sidecar = work / f"{cid}.samples.jsonl"
        sidecar.unlink(missing_ok=True)
        lm = LfbenchModel(
            method=method,
            frames=frames,
            max_new_tokens=cfg.max_new_tokens,
            sidecar=str(sidecar),
            backbone=backbone,
            run_id=run_id,
            clip_cache=clip_cache,
        )
        res = simple_evaluate(
            model=lm,
            tasks=[suite],
            task_manager=tm,
            limit=cfg.limit,
            log_samples=True,
            random_seed=cfg.seed,
            numpy_random_seed=cfg.seed,
            torch_random_seed=cfg.seed,
            verbosity="WARNING",
        )
        metric_keys = [k for k in res["results"][suite] if k.endswith(",none") and "stderr" not in k]
        metric_names = [k.removesuffix(",none") for k in metric_keys]
        samples = _sample_rows(sidecar, res["samples"][suite], metric_names, base)
        errors = [s["error"] for s in samples if s["error"]]
        row |= {"n_samples": len(samples), "n_errors": len(errors)}
        if samples and len(errors) == len(samples):
            row |= {"status": "error", "reason": f"every sample failed, e.g. {errors[0]}"}
        else:
            official = metric_keys[0] if metric_keys else None
            score = res["results"][suite].get(official) if official else None
            scored = [s["correct"] for s in samples if s["correct"] == s["correct"]]
            row |= {
                "status": "ok",
                "accuracy": sum(scored) / len(scored) if scored else None,
                "official_metric": official.removesuffix(",none") if official else None,
                "official_score": float(score) if isinstance(score, (int, float)) else None,
            }
            ok = [s for s in samples if not s["error"]]
            row["visual_tokens"] = statistics.median(s["visual_tokens"] for s in ok) if ok else None
            row["prompt_tokens"] = statistics.median(s["prompt_tokens"] for s in ok) if ok else None
            videos = list(dict.fromkeys(s["video"] for s in ok))[: cfg.timing_samples]
            timed, prompt = _timing(method, videos, frames, cfg)
            row |= timed | {"timing_samples": len(videos)}
            measured_on = (videos or [s["video"] for s in ok] or [None])[0] if cfg.flops else None
            row |= _flops(method, frames, prompt if prompt is not None else row["prompt_tokens"], measured_on, cfg)
        sidecar.unlink(missing_ok=True)
    except (LfbenchError, torch.OutOfMemoryError) as e:
        if isinstance(e, torch.OutOfMemoryError) and torch.cuda.is_available():
            torch.cuda.empty_cache()
        row |= {"status": "error", "reason": f"{type(e).__name__}: {e}"}
    except TaskDataExit as e:  # the suite's local copy is missing or malformed (raised through lmms-eval)
        row |= {"status": "error", "reason": f"{type(e.error).__name__}: {e.error}"}
    row["finished_at"] = utc_now()
    store.write_cell(row, samples)
    return row


def plan(cfg: SweepConfig, backbone, built: dict | None = None) -> list[tuple[str, str, int, str]]:
    """(cell_id, spec, frames, suite) of this shard's cells, in a stable order.

    Each spec's method is built once (its canonical spec is part of the cell id); ``built``, when given, receives
    them (spec -> method) so the runner hands each cell its method instead of building it again.
    """
    from liteframe_bench.pipeline import build_method

    key = {
        "model": backbone.source,
        "device": str(torch.device(cfg.device)),
        "dtype": str(backbone.dtype),
        "limit": cfg.limit,
        "max_new_tokens": cfg.max_new_tokens,
        "timing_samples": cfg.timing_samples,
        "warmup": cfg.warmup,
        "repeats": cfg.repeats,
        "new_tokens": cfg.new_tokens,
        "seed": cfg.seed,
    }
    cells = []
    for spec in cfg.methods:
        method = build_method(spec, backbone)  # fails fast on a bad spec
        if built is not None:
            built[spec] = method
        canonical = method.full_spec  # equal specs share a cell
        for n in cfg.frames:
            for suite in cfg.suites:
                cells.append((cell_id(method=canonical, frames=n, suite=suite, **key), spec, n, suite))
    unique = sorted({c[0]: c for c in cells}.values())
    i, n = cfg.shard
    return [c for k, c in enumerate(unique) if k % n == i]


def prepare(cfg: SweepConfig):
    """(task manager, backbone) of a sweep: what the local runner and each Ray worker set up once."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    from liteframe_bench.backbone import load_backbone
    from liteframe_bench.evaluate import task_manager

    torch.manual_seed(cfg.seed)
    tm = task_manager()
    unknown = [s for s in cfg.suites if s not in tm.all_tasks]
    if unknown:
        raise SpecError(f"unknown suite(s) {unknown}; allowed: {', '.join(sorted(tm.all_tasks))}")
    backbone = load_backbone(cfg.model, device=cfg.device, dtype=cfg.dtype, seed=cfg.seed)
    return tm, backbone


def new_run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def run_record(cfg: SweepConfig, backbone, run_id: str, argv: Sequence[str] | None) -> dict[str, Any]:
    """The provenance record of one invocation (``runs/<run_id>.json``), taken where the cells run."""
    from liteframe_bench.provenance import machine

    return {
        "run_id": run_id,
        "started_at": utc_now(),
        "command": shlex.join(argv if argv is not None else sys.argv),
        "config": asdict(cfg),
        "model": backbone.describe(),
        "machine": machine(cfg.device),
        "seed": cfg.seed,
        "timing": {
            "mode": "fixed decode length, warm-up + repeats, medians, no caches",
            "clock": "cuda events" if backbone.device.type == "cuda" else "perf_counter",
        },
    }


def summarize(run_id: str, store: ResultsDir, cells: list, done_before: int, rows: list[dict]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "out": str(store.path),
        "cells": len(cells),
        "skipped_done": done_before,
        "ran": len(rows),
        "errors": [
            {"method": r["method"], "frames": r["frames"], "suite": r["suite"], "reason": r.get("reason")}
            for r in rows
            if r["status"] == "error"
        ],
    }


#: Executors by name: ``local`` runs the cells here (below); any other is a module, imported by name when chosen,
#: whose ``run(cfg, options, *, progress, argv)`` runs the same ``plan``/``prepare``/``run_cell`` elsewhere and
#: writes the same store. An executor imports this module, never the other way round.
EXECUTORS = {"local": None, "ray": "liteframe_bench.ray_executor"}


def run_sweep(
    cfg: SweepConfig,
    *,
    progress: bool = True,
    argv: Sequence[str] | None = None,
    executor: str = "local",
    ray_options=None,
) -> dict[str, Any]:
    """Run (or resume) a sweep; returns a summary of this invocation.

    ``executor="ray"`` hands the cells to a Ray cluster (``liteframe_bench.ray_executor``, options in
    ``ray_options``); ``"local"`` runs them one after another in this process.
    """
    if executor not in EXECUTORS:
        raise SpecError(f"executor={executor!r} is invalid; allowed: {', '.join(EXECUTORS)}")
    if EXECUTORS[executor] is not None:
        import importlib

        return importlib.import_module(EXECUTORS[executor]).run(cfg, ray_options, progress=progress, argv=argv)
    from tqdm.auto import tqdm

    tm, backbone = prepare(cfg)
    built: dict[str, Any] = {}
    cells = plan(cfg, backbone, built)
    store = ResultsDir(cfg.out)
    if store.path.exists():
        store.load()  # a malformed or foreign file stops us before any work, naming it
    run_id = new_run_id()
    store.write_run(run_id, run_record(cfg, backbone, run_id, argv))
    todo = [c for c in cells if not store.is_done(c[0])]
    done_before = len(cells) - len(todo)
    rows = []
    from liteframe_bench.video import ClipCache

    clip_cache = ClipCache()  # accuracy mode only: shared by every cell of this run
    bar = tqdm(total=len(cells), initial=done_before, desc="sweep cells", disable=not progress)
    for cid, spec, n, suite in todo:
        bar.set_postfix_str(f"{spec} @ {n}f on {suite}")
        rows.append(
            run_cell(
                spec,
                n,
                suite,
                cfg=cfg,
                backbone=backbone,
                tm=tm,
                store=store,
                run_id=run_id,
                cid=cid,
                clip_cache=clip_cache,
                method=built[spec],
            )
        )
        bar.update()
    bar.close()
    return summarize(run_id, store, cells, done_before, rows)
