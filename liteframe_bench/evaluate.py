"""``lfbench eval``: accuracy through lmms-eval's own ``simple_evaluate``, offline, with lfbench's task folders.

A thin front: it sets the include path to ``liteframe_bench.suites`` plus the folders in ``$LFBENCH_TASKS`` (built-in
lmms-eval tasks are not indexed: offline they cannot load),
forces offline mode (``HF_HUB_OFFLINE=1``, ``HF_DATASETS_OFFLINE=1``), builds the ``lfbench`` lmms-eval model
for each (method, frames) and writes lmms-eval's results plus the per-sample sidecar to ``out``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from liteframe_bench.data import TaskDataExit
from liteframe_bench.errors import LfbenchError


def suites_path() -> Path:
    """The folder lmms-eval indexes for lfbench's tasks (``--include_path``)."""
    import liteframe_bench.suites as suites

    return Path(suites.__file__).parent


TASKS_ENV = "LFBENCH_TASKS"


def include_paths() -> list[str]:
    """lfbench's suites plus any task folders in ``$LFBENCH_TASKS`` (``os.pathsep``-separated)."""
    extra = [p for p in os.environ.get(TASKS_ENV, "").split(os.pathsep) if p]
    for p in extra:
        if not Path(p).is_dir():
            raise LfbenchError(f"${TASKS_ENV} entry {p!r} is not a folder of lmms-eval task YAMLs")
    return [str(suites_path()), *extra]


def task_manager():
    from lmms_eval.tasks import TaskManager

    return TaskManager(include_path=include_paths(), include_defaults=False, verbosity="WARNING")


def list_tasks() -> list[str]:
    return sorted(task_manager().all_tasks)


def _offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"


def _metrics(task_results: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in task_results.items()
        if k != "alias" and not k.endswith("_stderr,none") and isinstance(v, (int, float)) and "stderr" not in k
    }


def run_eval(
    methods: Sequence[str],
    frames: Sequence[int],
    suites: Sequence[str],
    *,
    model: str = "mini",
    device: str = "cpu",
    dtype: str = "auto",
    limit: int | None = None,
    max_new_tokens: int = 16,
    out: str | Path = "results/eval",
    backbone: Any = None,
) -> dict:
    """Evaluate every (method, frames) on ``suites``; returns a summary and writes files under ``out``."""
    _offline()
    from lmms_eval.evaluator import simple_evaluate

    from liteframe_bench.backbone import load_backbone
    from liteframe_bench.lmms_adapter import LfbenchModel
    from liteframe_bench.provenance import machine

    tm = task_manager()
    unknown = [s for s in suites if s not in tm.all_tasks]
    if unknown:
        raise LfbenchError(f"unknown suite(s) {unknown}; allowed: {', '.join(sorted(tm.all_tasks))}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    backbone = backbone or load_backbone(model, device=device, dtype=dtype)
    runs = []
    for spec in methods:
        for n in frames:
            tag = f"{spec.replace(':', '_').replace(',', '_').replace('=', '-').replace(';', '_')}_f{n}"
            sidecar = out / f"{tag}.samples.jsonl"
            sidecar.unlink(missing_ok=True)
            lm = LfbenchModel(
                method=spec,
                frames=n,
                max_new_tokens=max_new_tokens,
                sidecar=str(sidecar),
                backbone=backbone,
                run_id=tag,
            )
            t0 = time.perf_counter()
            try:
                res = simple_evaluate(model=lm, tasks=list(suites), task_manager=tm, limit=limit, log_samples=True)
            except TaskDataExit as e:  # a suite's local copy is missing: one clear error, not lmms-eval's exit
                raise e.error from None
            wall = time.perf_counter() - t0
            samples = res.pop("samples", {})
            with (out / f"{tag}.lmms_samples.jsonl").open("w") as f:
                for task, rows in samples.items():
                    for row in rows:
                        f.write(json.dumps({"task": task, **row}, default=str) + "\n")
            (out / f"{tag}.results.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
            errors = sum(1 for line in sidecar.read_text().splitlines() if json.loads(line).get("error"))
            runs.append(
                {
                    "method": lm.method.spec,
                    "spec": spec,
                    "frames": n,
                    "wall_s": wall,
                    "errors": errors,
                    "results": {t: _metrics(v) for t, v in res["results"].items()},
                    "files": {"results": str(out / f"{tag}.results.json"), "sidecar": str(sidecar)},
                }
            )
    summary = {
        "benchmark": "eval",
        "model": backbone.describe(),
        "suites": list(suites),
        "limit": limit,
        "runs": runs,
        "machine": machine(device),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def render(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"lfbench eval — {summary['model']['source']}")
    for col in ("method", "frames", "suite", "metrics", "errors", "wall s"):
        table.add_column(col)
    for r in summary["runs"]:
        for task, metrics in r["results"].items():
            shown = ", ".join(f"{k.removesuffix(',none')}={v:.4g}" for k, v in metrics.items())
            table.add_row(r["method"], str(r["frames"]), task, shown, str(r["errors"]), f"{r['wall_s']:.1f}")
    Console().print(table)
