"""``lfbench sweep --executor ray``: a sweep's cells scheduled on a Ray cluster.

The cells, their ids and what runs in each are the local sweep's (``sweep.plan`` and ``sweep.run_cell``); only
where they run changes:

- one Ray actor per worker slot (``--gpus-per-cell`` GPUs, or one CPU, each) loads the model once
  (``sweep.prepare``), then runs the cells it is handed with ``sweep.run_cell`` and returns each cell's row and
  samples instead of writing them;
- this process (the driver) plans on the first worker, hands out cells as workers free up and writes every
  finished cell through the same atomic results store (``results.ResultsDir``), so resume, ``results merge``,
  ``results show``, ``pareto`` and ``figures`` see no difference; workers need no access to the results folder;
- a worker that dies (killed, out of host memory, its node gone) loses only the cell it was running: the cell is
  handed out again, at most ``retries`` times, then recorded as an error with the reason; a fresh worker takes the
  dead one's place. A driver that dies takes its workers with it (Ray ends a job's actors with its driver); the
  same command rerun skips the finished cells and redoes the rest.

Ray is an optional extra (``pip install 'liteframe-bench[ray]'``).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import socket
import sys
import tempfile
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from liteframe_bench.errors import LfbenchError, SpecError
from liteframe_bench.results import ResultsDir

EXTRA = "pip install 'liteframe-bench[ray]'  (from a checkout: pip install -e '.[ray]')"

#: Environment forwarded from the driver to every worker (task folders, data, zoo, plugins, offline mode).
FORWARD_ENV_PREFIXES = ("LFBENCH_", "HF_", "TRANSFORMERS_")

#: Workers that die while loading the model, one after another, before the driver gives up.
MAX_SETUP_DEATHS = 3


def import_ray():
    """The ``ray`` module, or an error naming the extra that provides it."""
    try:
        import ray
    except ImportError as e:
        raise LfbenchError(
            f"--executor ray needs Ray, which is not installed ({e}); install the extra: {EXTRA}"
        ) from None
    return ray


@dataclass
class RayOptions:
    """How a sweep uses a Ray cluster (the sweep itself is ``sweep.SweepConfig``)."""

    address: str | None = None  # None: $RAY_ADDRESS, else the latest local cluster, else start one here
    gpus_per_cell: float | None = None  # None: 1 with --device cuda, 0 with --device cpu
    retries: int = 2  # times a cell whose worker died is handed out again before it is recorded as an error
    plugins: list[str] = field(default_factory=list)  # --plugins folders, loaded on every worker too

    def resources(self, device: str) -> dict[str, float]:
        """The Ray resource request of one worker (one cell at a time), validated against ``device``."""
        kind = device.split(":")[0]
        gpus = self.gpus_per_cell if self.gpus_per_cell is not None else (1.0 if kind == "cuda" else 0.0)
        if self.retries < 0:
            raise SpecError(f"retries={self.retries} is invalid; allowed: 0 or a positive integer")
        if gpus < 0 or (gpus > 1 and gpus != int(gpus)):
            raise SpecError(
                f"gpus_per_cell={gpus:g} is invalid; allowed: 0, a fraction of one GPU (e.g. 0.5) or a whole number"
            )
        if kind == "cuda":
            if gpus == 0:
                raise SpecError(
                    "--gpus-per-cell 0 with --device cuda: Ray hides the GPUs from a worker that requests none; "
                    "allowed: --gpus-per-cell > 0 (default 1) with cuda, or --device cpu"
                )
            if device not in ("cuda", "cuda:0"):
                raise SpecError(
                    f"device={device!r} with --executor ray: Ray gives each worker its own GPU(s) "
                    "(CUDA_VISIBLE_DEVICES); allowed: --device cuda"
                )
        elif gpus > 0:
            raise SpecError(
                f"--gpus-per-cell {gpus:g} with --device {device}: the cells would hold GPUs they do not use; "
                "allowed: --device cuda, or --gpus-per-cell 0"
            )
        return {"num_cpus": 1.0, "num_gpus": float(gpus)}


class _CapturingStore(ResultsDir):
    """A worker's stand-in for the results folder: ``run_cell`` keeps its scratch files in a local temporary
    folder, and the cell it would write is kept for the driver, which writes it to the real store."""

    def write_cell(self, cell: dict[str, Any], samples: list[dict[str, Any]]) -> None:
        self.captured = (cell, samples)


class CellWorker:
    """The body of one Ray actor: loads the model once, then runs the cells it is given, one at a time."""

    def setup(self, cfg, plugins: list[str], run_id: str, argv: list[str] | None) -> dict[str, Any]:
        from liteframe_bench import registry, sweep
        from liteframe_bench.video import ClipCache

        registry.load_plugins(plugins)
        self.cfg, self.run_id = cfg, run_id
        self.tm, self.backbone = sweep.prepare(cfg)
        self.clip_cache = ClipCache()  # accuracy mode only, as in a local sweep: shared by this worker's cells
        self.methods: dict[str, Any] = {}  # spec -> method, built once on this worker
        return {"where": self.where(), "record": sweep.run_record(cfg, self.backbone, run_id, argv)}

    def where(self) -> str:
        import ray

        gpus = ray.get_gpu_ids()
        return f"{socket.gethostname()}:{os.getpid()}" + (f" gpu{','.join(map(str, gpus))}" if gpus else "")

    def plan(self) -> list[dict[str, Any]]:
        from liteframe_bench import sweep

        out = []
        for cid, spec, frames, suite in sweep.plan(self.cfg, self.backbone, self.methods):
            method = self.methods[spec]
            out.append(
                {
                    "cell_id": cid,
                    "spec": spec,
                    "frames": frames,
                    "suite": suite,
                    "method": method.spec,
                    "reducer": method.reducer.name if method.reducer else "none",
                    "model": self.backbone.source,
                }
            )
        return out

    def run_cell(self, cell: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        from liteframe_bench import sweep
        from liteframe_bench.pipeline import build_method

        method = self.methods.get(cell["spec"])
        if method is None:
            method = self.methods[cell["spec"]] = build_method(cell["spec"], self.backbone)

        with tempfile.TemporaryDirectory(prefix=f"lfbench-ray-{os.getpid()}-") as scratch:  # left if killed
            store = _CapturingStore(scratch)
            sweep.run_cell(
                cell["spec"],
                cell["frames"],
                cell["suite"],
                cfg=self.cfg,
                backbone=self.backbone,
                tm=self.tm,
                store=store,
                run_id=self.run_id,
                cid=cell["cell_id"],
                clip_cache=self.clip_cache,
                method=method,
            )
            return store.captured


def _one_line(e: BaseException, limit: int = 300) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _lost_row(cell: dict[str, Any], cfg, run_id: str, tries: int, last: str) -> dict[str, Any]:
    """The row of a cell whose worker died on every try (the columns ``run_cell`` fills for a cell that cannot
    run)."""
    from liteframe_bench.sweep import utc_now

    return {
        "cell_id": cell["cell_id"],
        "run_id": run_id,
        "method": cell["method"],
        "spec": cell["spec"],
        "reducer": cell["reducer"],
        "frames": cell["frames"],
        "suite": cell["suite"],
        "model": cell["model"],
        "status": "error",
        "reason": f"WorkerLost: the Ray worker running this cell died on each of {tries} tries; last: {last}",
        "timing_samples": 0,
        "timing_repeats": cfg.repeats,
        "new_tokens": cfg.new_tokens,
        "n_samples": 0,
        "n_errors": 0,
        "started_at": utc_now(),
        "finished_at": utc_now(),
    }


class _Worker:
    def __init__(self, handle, number: int):
        self.handle, self.number, self.where = handle, number, f"worker {number} (starting)"


def run(cfg, options: RayOptions | None = None, *, progress: bool = True, argv=None) -> dict[str, Any]:
    """The executor entry ``sweep.run_sweep(..., executor="ray")`` calls (``sweep.EXECUTORS``)."""
    return run_sweep_ray(cfg, options or RayOptions(), progress=progress, argv=argv)


def run_sweep_ray(cfg, opts: RayOptions, *, progress: bool = True, argv=None) -> dict[str, Any]:
    """Run (or resume) the sweep ``cfg`` on a Ray cluster; returns the same summary as a local sweep, plus
    ``executor``, ``workers`` (where cells ran) and ``retried`` (cells handed out again after a worker died)."""
    import logging

    from tqdm.auto import tqdm

    from liteframe_bench import sweep

    resources = opts.resources(cfg.device)  # bad options fail before Ray is touched
    ray = import_ray()
    from ray.exceptions import RayActorError, RayTaskError, WorkerCrashedError

    died = (RayActorError, WorkerCrashedError)
    store = ResultsDir(cfg.out)
    if store.path.exists():
        store.load()  # a malformed or foreign file stops us before any work, naming it
    run_id = sweep.new_run_id()
    argv = list(argv if argv is not None else sys.argv)
    env = {k: v for k, v in os.environ.items() if k.startswith(FORWARD_ENV_PREFIXES)}
    env |= {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    # Ray prints the cluster's messages (a worker died, ...) on stdout: they go to stderr, with the progress bar,
    # so that stdout carries only lfbench's own output (`--json`).
    with contextlib.redirect_stdout(sys.stderr):
        try:
            ray.init(
                address=opts.address,
                runtime_env={"env_vars": env},
                logging_level=logging.WARNING,
                log_to_driver=False,  # workers' own logs stay in Ray's session folder (the bar stays readable)
            )
        except ConnectionError as e:
            raise LfbenchError(
                f"--address {opts.address}: no Ray cluster found ({_one_line(e)}); start one with `ray start "
                "--head` (and `ray start --address HEAD:6379` on the other nodes), or omit --address to start one "
                "here"
            ) from None
        try:
            return _drive(ray, died, RayTaskError, cfg, opts, resources, store, run_id, argv, progress, tqdm, sweep)
        finally:
            ray.shutdown()


def _unwrap(e):
    """The error a worker raised (an ``LfbenchError`` is the user's: show its message, not Ray's wrapping)."""
    cause = getattr(e, "cause", None)
    return cause if isinstance(cause, LfbenchError) else e


def _drive(ray, died, task_error, cfg, opts, resources, store, run_id, argv, progress, tqdm, sweep):
    total = ray.cluster_resources()
    need, per = ("GPU", resources["num_gpus"]) if resources["num_gpus"] > 0 else ("CPU", resources["num_cpus"])
    slots = int(total.get(need, 0) // per + 1e-9)
    if slots < 1:
        have = ", ".join(f"{k}={v:g}" for k, v in sorted(total.items()) if k in ("CPU", "GPU")) or "none"
        raise LfbenchError(
            f"the Ray cluster has {have}; a cell needs {per:g} {need}: add nodes with {need}s, or lower "
            "--gpus-per-cell (--gpus-per-cell 0 --device cpu for CPU workers)"
        )
    upper = math.ceil(len(cfg.methods) * len(cfg.frames) * len(cfg.suites) / cfg.shard[1])
    actor_cls = ray.remote(CellWorker).options(max_restarts=0, max_task_retries=0, **resources)
    workers: dict[int, _Worker] = {}
    pending: dict[Any, tuple[str, _Worker, dict | None]] = {}  # object ref -> (setup | cell, worker, cell)

    numbers = itertools.count()

    def spawn() -> None:
        w = _Worker(actor_cls.remote(), next(numbers))
        workers[w.number] = w
        pending[w.handle.setup.remote(cfg, opts.plugins, run_id, argv)] = ("setup", w, None)

    for _ in range(max(1, min(slots, upper))):
        spawn()

    # Plan on the first worker that is up (the cells and ids a local sweep would have).
    idle: deque[_Worker] = deque()
    record = None
    setup_deaths = 0
    while record is None:
        ref = ray.wait(list(pending), num_returns=1)[0][0]
        kind, w, _ = pending.pop(ref)
        try:
            info = ray.get(ref)
        except died as e:
            del workers[w.number]
            ray.kill(w.handle)
            setup_deaths += 1
            if setup_deaths >= MAX_SETUP_DEATHS:
                raise LfbenchError(f"Ray workers die while loading the model ({setup_deaths} so far); last: "
                                   f"{_one_line(e)}") from None
            spawn()
            continue
        except task_error as e:
            raise _unwrap(e) from None
        w.where, record = info["where"], info["record"]
        idle.append(w)
    devices = {w.where: record["machine"]["device_name"]}
    try:
        cells = ray.get(idle[0].handle.plan.remote())
    except task_error as e:
        raise _unwrap(e) from None
    todo = deque(c for c in cells if not store.is_done(c["cell_id"]))
    done_before = len(cells) - len(todo)
    record["executor"] = {
        "kind": "ray",
        "address": opts.address,
        "resources_per_cell": resources,
        "cluster": {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")},
        "planned_on": idle[0].where,
    }
    store.write_run(run_id, record)

    rows: list[dict] = []
    tries: Counter[str] = Counter()
    running: dict[int, dict] = {}  # worker number -> cell
    used: set[str] = set()
    bar = tqdm(total=len(cells), initial=done_before, desc="sweep cells (ray)", disable=not progress,
               dynamic_ncols=True)

    def show() -> None:
        now = "; ".join(
            f"{c['spec']} @ {c['frames']}f on {c['suite']} -> {workers[n].where}" for n, c in sorted(running.items())
        )
        bar.set_postfix_str(now or "waiting for workers")

    def dispatch() -> None:
        while idle and todo:
            w, cell = idle.popleft(), todo.popleft()
            running[w.number] = cell
            used.add(w.where)
            pending[w.handle.run_cell.remote(cell)] = ("cell", w, cell)
        show()

    try:
        while todo or running:
            dispatch()
            ref = ray.wait(list(pending), num_returns=1)[0][0]
            kind, w, cell = pending.pop(ref)
            try:
                result = ray.get(ref)
            except died as e:
                running.pop(w.number, None)
                del workers[w.number]
                ray.kill(w.handle)
                last = _one_line(e)
                if kind == "setup":
                    setup_deaths += 1
                    if setup_deaths >= MAX_SETUP_DEATHS:
                        raise LfbenchError(
                            f"Ray workers die while loading the model ({setup_deaths} so far); last: {last}"
                        ) from None
                else:
                    tries[cell["cell_id"]] += 1
                    label = f"{cell['spec']} @ {cell['frames']}f on {cell['suite']}"
                    if tries[cell["cell_id"]] <= opts.retries:
                        bar.write(f"worker {w.where} died running {label}; handing it out again "
                                  f"(retry {tries[cell['cell_id']]}/{opts.retries})")
                        todo.appendleft(cell)
                    else:
                        bar.write(f"worker {w.where} died running {label}; recorded as an error after "
                                  f"{tries[cell['cell_id']]} tries")
                        row = _lost_row(cell, cfg, run_id, tries[cell["cell_id"]], last)
                        store.write_cell(row, [])
                        rows.append(row)
                        bar.update()
                if todo:
                    spawn()  # a fresh worker takes the dead one's place (where Ray finds room for it)
                continue
            except task_error as e:
                raise _unwrap(e) from None
            if kind == "setup":
                w.where = result["where"]
                devices[w.where] = result["record"]["machine"]["device_name"]
                setup_deaths = 0
            else:
                running.pop(w.number)
                row, samples = result
                store.write_cell(row, samples)
                rows.append(row)
                show()
                bar.update()
            idle.append(w)
    finally:
        bar.close()
        for w in workers.values():
            ray.kill(w.handle)
        # where the cells of this run ran (a row does not say which worker ran it: keep a cluster's GPUs alike)
        record["executor"]["workers"] = [{"where": k, "device_name": devices.get(k)} for k in sorted(used)]
        store.write_run(run_id, record)
    summary = sweep.summarize(run_id, store, cells, done_before, rows)
    return summary | {"executor": "ray", "workers": sorted(used), "retried": sum(min(t, opts.retries) for t in
                                                                                  tries.values())}
