"""What every figure kind built from results uses: the results of one model (:class:`ResultsData`, accuracy intervals
through :mod:`liteframe_bench.pareto`'s public API), one figure's view of them (:class:`FigureData`: what is
missing, failed or untimed) and the writers."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liteframe_bench import pareto, pareto_report
from liteframe_bench.agreement import BASELINE, agreement_table
from liteframe_bench.errors import LfbenchError
from liteframe_bench.figures.spec import (
    canonical_method,
    is_registered,
    located,
    written_methods,
)
from liteframe_bench.results import ResultsDir


class ResultsData:
    """The results of one model, indexed by (suite, canonical method, frames), with cached bootstrap draws."""

    def __init__(self, results_dir: str | os.PathLike, *, model: str | None, seed: int, n_boot: int, confidence: float):
        self.rd = ResultsDir(results_dir)
        cells, samples = self.rd.load()
        if cells.empty:
            raise LfbenchError(
                f"no finished cells in {self.rd.path}; run `lfbench sweep ... --out {self.rd.path}` "
                "first (figures_analytic needs no results)"
            )
        cells, self.model = pareto.select_model(cells, model, str(self.rd.path))
        cells = cells.assign(method=[canonical_method(m) for m in cells["method"]])
        pareto.check_duplicates(cells)
        self.cells = cells.reset_index(drop=True)
        self.samples = samples[samples["cell_id"].isin(set(cells["cell_id"]))]
        self.by_cell = {k: g["correct"].to_numpy(float) for k, g in self.samples.groupby("cell_id")}
        self.index = {(r["suite"], r["method"], int(r["frames"])): r for r in self.cells.to_dict("records")}
        self.suites = sorted(self.cells["suite"].unique())
        self.methods = set(self.cells["method"])
        self.seed, self.n_boot, self.confidence = seed, n_boot, confidence
        self._boot: dict[str, np.ndarray] = {}
        self._agreement: pd.DataFrame | None = None
        self.runs = self.rd.runs()
        #: options of the runs behind these cells, repeated in every suggested sweep
        self.sweep_settings = pareto.sweep_settings(self.runs, set(self.cells["run_id"]), self.model)
        #: identity -> the spec its cells ran with, where that names a checkpoint folder (the latest such cell)
        ran = self.cells.sort_values("finished_at") if "finished_at" in self.cells else self.cells
        self.located = {
            r["method"]: r["spec"]
            for r in ran.to_dict("records")
            if isinstance(r.get("spec"), str) and located(r["spec"])
        }

    def sweeps(
        self, missing: Sequence[tuple[str, int, str]], figs: Sequence[dict[str, Any]]
    ) -> tuple[list[str], list[str]]:
        """The sweep commands filling ``missing`` (identity, frames, suite) cells, and notes.

        Each method runs as the figure spec writes it when that names a checkpoint folder, else as its cells in
        the results ran, else as its identity; a note says when a method with a checkpoint parameter gets none.
        """
        from liteframe_bench import registry

        written = {canonical_method(w): w for f in figs for w in written_methods(f) if located(w)}
        runnable, notes = {}, []
        for m in dict.fromkeys(c[0] for c in missing):
            runnable[m] = written.get(m) or self.located.get(m) or m
            if runnable[m] == m and is_registered(m):
                name, given = registry.parse_spec(m)
                for p in registry.get(name).params:
                    if p.locator and p.name not in given:
                        notes.append(
                            f"method {m!r} has no {p.name} in the figure spec or the results: the suggested sweep "
                            f"runs its default (if the model has one); else write {name}:{p.name}=DIR in the spec"
                        )
        cells = [(runnable[m], f, s) for m, f, s in missing]
        return pareto.sweep_commands(cells, self.rd.path, settings=self.sweep_settings), notes

    @property
    def agreement(self) -> pd.DataFrame:
        """:func:`liteframe_bench.agreement.agreement_table` of every cell (computed once, when first needed)."""
        if self._agreement is None:
            self._agreement = agreement_table(
                self.cells, self.samples, seed=self.seed, n_boot=self.n_boot, confidence=self.confidence
            )
        return self._agreement

    def boot(self, row: dict[str, Any]) -> np.ndarray:
        cid = row["cell_id"]
        if cid not in self._boot:
            self._boot[cid] = pareto.cell_bootstrap(
                self.by_cell.get(cid, np.array([])),
                seed=self.seed,
                suite=row["suite"],
                method=row["method"],
                frames=row["frames"],
                n_boot=self.n_boot,
            )
        return self._boot[cid]


class FigureData:
    """What one figure needs from the results, and what it found missing, failed or untimed."""

    def __init__(self, data: ResultsData, fig: dict[str, Any], spec: dict[str, Any]):
        self.data, self.fig, self.spec = data, fig, spec
        self.missing: list[tuple[str, int, str]] = []
        self.failed: list[dict[str, Any]] = []
        self.no_latency: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def cell(self, method: str, frames: int, suite: str, *, latency: str | None = None) -> dict[str, Any] | None:
        """The ok cell, or None (recording why); with ``latency`` it must have that latency column."""
        r = self.data.index.get((suite, method, int(frames)))
        key = {"method": method, "frames": int(frames), "suite": suite}
        if r is None:
            if (method, int(frames), suite) not in self.missing:
                self.missing.append((method, int(frames), suite))
            return None
        if r["status"] != "ok":
            reason = r["reason"] if isinstance(r["reason"], str) else "no reason recorded"
            if key | {"status": r["status"], "reason": reason} not in self.failed:
                self.failed.append(key | {"status": r["status"], "reason": reason})
            return None
        if latency is not None and not (pd.notna(r[latency]) and math.isfinite(r[latency])):
            if key not in self.no_latency:
                self.no_latency.append(key)
            return None
        return r

    def acc(self, method: str, frames: int, suite: str) -> dict[str, Any] | None:
        r = self.cell(method, frames, suite)
        if r is None or pd.isna(r["accuracy"]):
            return None
        boot = self.data.boot(r)
        lo, hi = pareto.percentile_interval(boot, self.data.confidence)
        return {
            "method": method,
            "frames": int(frames),
            "suite": suite,
            "accuracy": float(r["accuracy"]),
            "ci_low": pareto.jsonable(lo),
            "ci_high": pareto.jsonable(hi),
            "n": int(pareto.scores(self.data.by_cell.get(r["cell_id"], np.array([]))).size),
            "boot": boot,
        }

    def avg(self, method: str, frames: int, suites: Sequence[str]) -> dict[str, Any] | None:
        """Mean accuracy over ``suites`` with a stratified bootstrap interval; None unless all are present."""
        pts = [self.acc(method, frames, s) for s in suites]
        if any(p is None for p in pts):
            return None
        acc, lo, hi, boot = pareto.pooled([p["accuracy"] for p in pts], [p["boot"] for p in pts], self.data.confidence)
        return {
            "method": method,
            "frames": int(frames),
            "suite": pareto.AVERAGE,
            "accuracy": acc,
            "ci_low": pareto.jsonable(lo),
            "ci_high": pareto.jsonable(hi),
            "n": sum(p["n"] for p in pts),
            "boot": boot,
        }

    def agree(self, method: str, frames: int, suites: Sequence[str]) -> dict[str, Any] | None:
        """Agreement with the baseline at the same frames, averaged over ``suites`` (stratified interval); None for
        the baseline itself or unless the method's and the baseline's cells exist in every suite (a missing
        baseline cell is reported as missing, so the suggested sweep fills it)."""
        if method == BASELINE:
            return None
        rows = [(self.cell(method, frames, s), self.cell(BASELINE, frames, s)) for s in suites]
        table = self.data.agreement
        both = [r for r, b in rows if r is not None and b is not None]
        got = [table.loc[r["cell_id"]] for r in both if r["cell_id"] in table.index]
        if len(got) < len(suites) or any(not math.isfinite(a["agreement"]) for a in got):
            return None
        agree, lo, hi, _ = pareto.pooled([a["agreement"] for a in got], [a["boot"] for a in got], self.data.confidence)
        return {
            "agreement": agree,
            "agree_low": pareto.jsonable(lo),
            "agree_high": pareto.jsonable(hi),
            "agree_n": int(sum(a["agree_n"] for a in got)),
        }

    def suites(self) -> list[str]:
        s = self.fig.get("suites", self.spec["suites"])
        if isinstance(s, str):
            s = [s]
        return list(s)

    def result(self, status_drawn: bool, files: dict[str, str], data: Any) -> dict[str, Any]:
        sweeps, notes = self.data.sweeps(self.missing, self.spec["figures"])
        self.notes.extend(notes)
        absent = sorted({m for m, _, _ in self.missing} - self.data.methods)
        for m in absent:
            reg = "" if is_registered(m) else " and is not registered in this lfbench (see `lfbench ls`)"
            self.notes.append(f"method {m!r} has no cells in the results{reg}")
        absent_suites = sorted({s for _, _, s in self.missing} - set(self.data.suites))
        for s in absent_suites:
            self.notes.append(f"suite {s!r} has no cells in the results")
        if self.no_latency:
            self.notes.append(
                "cells with accuracy but no timing run (rerun them in timing mode): "
                + ", ".join(f"{c['method']}@{c['frames']} on {c['suite']}" for c in self.no_latency)
            )
        status = (
            "empty" if not status_drawn else ("complete" if not self.missing and not self.no_latency else "partial")
        )
        return {
            "id": self.fig["id"],
            "kind": self.fig["kind"],
            "title": self.fig.get("title", self.fig["id"]),
            "status": status,
            "files": files,
            "missing": [{"method": m, "frames": f, "suite": s} for m, f, s in self.missing],
            "failed": self.failed,
            "no_latency": self.no_latency,
            "sweeps": sweeps,
            "notes": self.notes,
            "data": data,
        }


def strip_boot(p: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if p is None else {k: v for k, v in p.items() if k != "boot"}


def write_json(path: Path, obj: Any) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    return str(path)


def pct(x: Any) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def stage_sum(r: dict[str, Any], stages: Sequence[str]) -> float:
    vals = [r.get(f"lat_{s}_s") for s in stages]
    return float(np.nansum([v if v is not None else np.nan for v in vals]))


def write_table(
    out: Path, stem: str, header: list[str], rows: list[list[Any]], title: str, caption: str | None
) -> dict[str, str]:
    md = out / f"{stem}.md"
    text = f"### {title}\n\n" + pareto_report.md_table(header, rows) + "\n"
    if caption:
        text += f"\n{caption}\n"
    md.write_text(text)
    path = out / f"{stem}.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return {"md": str(md), "csv": str(path)}
