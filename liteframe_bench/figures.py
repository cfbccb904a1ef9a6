"""``lfbench figures DIR --spec reports/paper.yaml``: the LiteFrame paper's figures and tables from a results folder.

A spec (YAML, see ``reports/paper.yaml``) names the suites and lists figures, each with a ``kind``:

``latency_split``            Fig. 1(b) from timed cells: per frame count and method, the vision side
                             (vision + reduce + project stage medians) stacked under the LLM side (prefill +
                             generate), and the vision-side share against frames. Uses one ``suite``.
``latency_split_analytic``   Fig. 1(b) at real scale from the analytic cost model alone (no results, no GPU):
                             :func:`figures_analytic`. Cells over the LLM context are drawn hatched and marked.
``pareto``                   Fig. 2: the latency/accuracy Pareto plot of the listed methods x frames, averaged
                             over the suites (stratified bootstrap CIs; :mod:`liteframe_bench.pareto`); its
                             ``latency`` may be any axis of :mod:`liteframe_bench.axes` (``predicted:h100`` with
                             ``at_scale``, ``ttft``, ``flops``, ``visual_tokens``).
``accuracy_vs_frames``       Fig. 3 (left): accuracy against frames (log x), one line per method, a panel per
                             suite and one for the average.
``token_budget``             Fig. 3 (right): a fixed visual-token budget ``visual_tokens``: ``baseline`` at
                             ``N = visual_tokens / tokens_per_frame`` frames against ``<reducer>:ratio=R`` at
                             ``R * N`` frames for each of ``ratios``.
``accuracy_table``           Table 1: accuracy per suite and on average, one row per method (at ``frames``), and
                             its agreement with ``baseline`` at the same frames (:mod:`liteframe_bench.agreement`).
``latency_accuracy_table``   Table 3: latency and accuracy of listed ``rows`` (``method@frames``).

Methods are matched on their identity: the canonical spec (``wap:ratio=16`` -> ``wap``; registry defaults
omitted) without checkpoint folders (``liteframe:checkpoint=DIR`` -> ``liteframe``), so a spec may write any
form. Every figure reports what it could not draw: ``missing`` cells (no cell in the results; the ``sweeps``
say exactly which ``lfbench sweep`` to run, naming a method's checkpoint as the figure spec or the results
give it), ``failed`` cells (the cell ran and could not: its reason, e.g. over the LLM context) and
``no_latency`` cells (accuracy-only runs). Figures with something to show are drawn; the rest are ``empty``.
Outputs go to ``DIR/figures`` (``out=`` to change): per figure PNG + SVG (plots) or MD + CSV (tables) and a
JSON of its numbers; ``figures.json`` and ``figures.md`` index them.
"""

from __future__ import annotations

import csv
import importlib.resources
import json
import math
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liteframe_bench import axes, pareto, pareto_report, plots
from liteframe_bench.agreement import BASELINE, agreement_table
from liteframe_bench.errors import LfbenchError, SpecError
from liteframe_bench.results import ResultsDir
from liteframe_bench.stages import LLM_SIDE, VISION_SIDE

#: The spec shipped with the repository (an editable install finds it; else pass ``spec=``).
# reports/ installs as liteframe_bench.reports (editable installs map it to the repository's reports/ folder)
DEFAULT_SPEC = Path(str(importlib.resources.files("liteframe_bench.reports") / "paper.yaml"))


TOP_KEYS = {"name", "description", "model", "latency", "suites", "seed", "n_boot", "confidence", "figures"}
KIND_KEYS: dict[str, tuple[set[str], set[str]]] = {  # kind -> (required keys, optional keys)
    "latency_split": ({"methods", "frames"}, {"suite", "unit"}),
    "latency_split_analytic": ({"methods", "frames"}, {"model", "gpu", "new_tokens", "tiles"}),
    "pareto": ({"methods", "frames"}, {"suites", "latency", "at_scale"}),
    "accuracy_vs_frames": ({"methods", "frames"}, {"suites"}),
    "token_budget": ({"visual_tokens", "ratios"}, {"baseline", "reducer", "tokens_per_frame", "suites"}),
    "accuracy_table": ({"methods", "frames"}, {"suites"}),
    "latency_accuracy_table": ({"rows"}, {"suites", "latency", "reference"}),
}
COMMON_KEYS = {"id", "kind", "title", "caption"}


# ------------------------------------------------------------------------------------------------ spec


@lru_cache(maxsize=256)
def canonical_method(spec: str) -> str:
    """The method identity the results store uses: ``wap:ratio=16`` -> ``wap``, ``fastvid:retain=0.1`` ->
    ``fastvid``, ``liteframe:checkpoint=DIR`` -> ``liteframe`` (``checkpoint=random`` is kept: an untrained
    student is another method). Names the registry does not know (e.g. an unloaded plugin) stay as written."""
    from liteframe_bench import registry

    s = str(spec).strip()
    try:
        ms = registry.parse_method_spec(s)
        if ms.name == "baseline" and not ms.params:
            base = "baseline"
        else:
            if ms.entry.kind == "method":
                return registry.identity_spec(s) if ms.at is None else s
            base = registry.canonical_spec(registry.create(ms.base))
        return base + (("," if ":" in base else ":") + f"at={ms.at}" if ms.at else "")
    except (LfbenchError, TypeError, ValueError):
        return s


def is_registered(method: str) -> bool:
    from liteframe_bench import registry

    try:
        name, _ = registry.parse_spec(method)
        registry.get(name)
        return True
    except LfbenchError:
        return False


def _located(spec: str) -> bool:
    """Whether a spec names a checkpoint folder (a locator parameter such as ``checkpoint=DIR``)."""
    from liteframe_bench import registry

    try:
        return bool(registry.locators(spec))
    except LfbenchError:
        return False


def _written_methods(fig: dict[str, Any]) -> list[str]:
    """Every method spec a figure entry writes (``methods``, ``rows``, ``baseline``), as written."""
    out = [m if isinstance(m, str) else m.get("method") for m in fig.get("methods") or []]
    out += [r.rpartition("@")[0] if isinstance(r, str) else r.get("method") for r in fig.get("rows") or []]
    out.append(fig.get("baseline"))
    return [str(m).strip() for m in out if isinstance(m, str)]


def _frames_list(value: Any, where: str) -> list[int]:
    vals = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0 or not float(v).is_integer():
            raise SpecError(f"{where}: frames {v!r} is invalid; allowed: positive integers")
        out.append(int(v))
    if not out:
        raise SpecError(f"{where}: frames is empty")
    return out


def _method_frames(fig: dict[str, Any], where: str) -> list[tuple[str, list[int]]]:
    """``methods`` (strings, or ``{method, frames}`` mappings overriding the figure's frames) with frames."""
    frames = _frames_list(fig["frames"], where)
    out = []
    for item in fig["methods"] or []:
        if isinstance(item, str):
            out.append((canonical_method(item), frames))
        elif isinstance(item, dict) and "method" in item and set(item) <= {"method", "frames"}:
            out.append((canonical_method(item["method"]), _frames_list(item.get("frames", frames), where)))
        else:
            raise SpecError(
                f"{where}: methods entry {item!r} is invalid; allowed: a spec string or "
                "{method: SPEC, frames: [N, ...]}"
            )
    if not out:
        raise SpecError(f"{where}: methods is empty")
    return out


def _parse_row(item: Any, where: str) -> tuple[str, int]:
    if isinstance(item, str) and "@" in item:
        m, _, f = item.rpartition("@")
        return canonical_method(m), _frames_list(int(f) if f.strip().isdigit() else f, where)[0]
    if isinstance(item, dict) and set(item) == {"method", "frames"}:
        return canonical_method(item["method"]), _frames_list(item["frames"], where)[0]
    raise SpecError(f"{where}: row {item!r} is invalid; allowed: 'METHOD@FRAMES' or {{method: M, frames: N}}")


def load_spec(spec: str | os.PathLike | dict[str, Any] | None) -> dict[str, Any]:
    """Read and validate a figure spec (a YAML path or an already parsed dict)."""
    if spec is None:
        spec = DEFAULT_SPEC
    if isinstance(spec, dict):
        data, src = spec, "<dict>"
    else:
        import yaml

        path = Path(spec)
        if not path.is_file():
            raise LfbenchError(f"figure spec {path} does not exist (the paper's is reports/paper.yaml)")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise SpecError(f"{path}: not valid YAML ({e})") from None
        src = str(path)
    if not isinstance(data, dict):
        raise SpecError(f"{src}: a figure spec is a mapping with keys {', '.join(sorted(TOP_KEYS))}")
    extra = set(data) - TOP_KEYS
    if extra:
        raise SpecError(f"{src}: unknown key(s) {', '.join(sorted(extra))}; allowed: {', '.join(sorted(TOP_KEYS))}")
    suites = data.get("suites") or []
    if not isinstance(suites, list) or not suites or not all(isinstance(s, str) for s in suites):
        raise SpecError(f"{src}: suites must be a non-empty list of suite names")
    lat = data.get("latency", "lat_e2e_s")
    if lat not in pareto.LATENCY_COLUMNS:
        raise SpecError(f"{src}: latency={lat!r}; allowed: {', '.join(pareto.LATENCY_COLUMNS)}")
    figs = data.get("figures")
    if not isinstance(figs, list) or not figs:
        raise SpecError(f"{src}: figures must be a non-empty list")
    seen = set()
    for i, f in enumerate(figs):
        where = f"{src}: figures[{i}]"
        if not isinstance(f, dict) or "id" not in f or "kind" not in f:
            raise SpecError(f"{where}: each figure needs an id and a kind")
        where = f"{src}: figure {f['id']!r}"
        if f["id"] in seen:
            raise SpecError(f"{where}: id given twice")
        seen.add(f["id"])
        if f["kind"] not in KIND_KEYS:
            raise SpecError(f"{where}: kind {f['kind']!r} is unknown; allowed: {', '.join(KIND_KEYS)}")
        req, opt = KIND_KEYS[f["kind"]]
        if req - set(f):
            raise SpecError(f"{where}: missing key(s) {', '.join(sorted(req - set(f)))} for kind {f['kind']}")
        extra = set(f) - req - opt - COMMON_KEYS
        if extra:
            raise SpecError(
                f"{where}: unknown key(s) {', '.join(sorted(extra))}; allowed for {f['kind']}: "
                f"{', '.join(sorted(req | opt | COMMON_KEYS))}"
            )
        if f["kind"] == "pareto" and ("latency" in f or "at_scale" in f):
            try:
                axes.parse(f.get("latency", lat), f.get("at_scale"))
            except SpecError as e:
                raise SpecError(f"{where}: {e}") from None
    return {
        "source": src,
        "name": data.get("name", Path(src).stem),
        "model": data.get("model"),
        "latency": lat,
        "suites": list(suites),
        "seed": int(data.get("seed", 0)),
        "n_boot": int(data.get("n_boot", 1000)),
        "confidence": float(data.get("confidence", 0.95)),
        "figures": figs,
    }


# ------------------------------------------------------------------------------------------ the results


class _Data:
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
            if isinstance(r.get("spec"), str) and _located(r["spec"])
        }

    def sweeps(
        self, missing: Sequence[tuple[str, int, str]], figs: Sequence[dict[str, Any]]
    ) -> tuple[list[str], list[str]]:
        """The sweep commands filling ``missing`` (identity, frames, suite) cells, and notes.

        Each method runs as the figure spec writes it when that names a checkpoint folder, else as its cells in
        the results ran, else as its identity; a note says when a method with a checkpoint parameter gets none.
        """
        from liteframe_bench import registry

        written = {canonical_method(w): w for f in figs for w in _written_methods(f) if _located(w)}
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


class _Figure:
    """What one figure needs from the results, and what it found missing, failed or untimed."""

    def __init__(self, data: _Data, fig: dict[str, Any], spec: dict[str, Any]):
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


def _strip(p: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if p is None else {k: v for k, v in p.items() if k != "boot"}


def _write_json(path: Path, obj: Any) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    return str(path)


def _pct(x: Any) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


# ------------------------------------------------------------------------------------------ the figures


def _stage_sum(r: dict[str, Any], stages: Sequence[str]) -> float:
    vals = [r.get(f"lat_{s}_s") for s in stages]
    return float(np.nansum([v if v is not None else np.nan for v in vals]))


def _latency_split(F: _Figure, out: Path) -> dict[str, Any]:
    fig = F.fig
    suite = fig.get("suite") or F.spec["suites"][0]
    rows = []
    for m, frames in _method_frames(fig, fig["id"]):
        for f in frames:
            r = F.cell(m, f, suite, latency="lat_vision_s")
            base = {"method": m, "frames": f, "suite": suite}
            if r is None:
                raw = F.data.index.get((suite, m, f))
                status = "missing" if raw is None else ("error" if raw["status"] != "ok" else "no_latency")
                reason = raw["reason"] if raw is not None and isinstance(raw["reason"], str) else None
                rows.append(base | {"status": status, "reason": reason, "vision_side_s": None, "llm_side_s": None})
                continue
            v, llm = _stage_sum(r, VISION_SIDE), _stage_sum(r, LLM_SIDE)
            rows.append(
                base
                | {
                    "status": "ok",
                    "vision_side_s": v,
                    "llm_side_s": llm,
                    "vision_share": v / (v + llm) if v + llm > 0 else None,
                    "decode_s": pareto.jsonable(r.get("lat_decode_s")),
                    "stages_s": {s: pareto.jsonable(r.get(f"lat_{s}_s")) for s in (*VISION_SIDE, *LLM_SIDE)},
                    "e2e_s": pareto.jsonable(r.get("lat_e2e_s")),
                    "visual_tokens": pareto.jsonable(r.get("visual_tokens")),
                }
            )
    drawn = any(r["status"] == "ok" for r in rows)
    files: dict[str, str] = {}
    if drawn:
        files = plots.latency_split_plot(
            rows,
            out / fig["id"],
            unit=fig.get("unit", "s"),
            title=fig.get("title", f"Latency split on {suite}"),
            note=f"timed cells of {suite}; stage medians; video decoding not included",
        )
    files["json"] = _write_json(out / f"{fig['id']}.json", {"suite": suite, "rows": rows})
    return F.result(drawn, files, {"suite": suite, "rows": rows})


def _pareto(F: _Figure, out: Path) -> dict[str, Any]:
    fig = F.fig
    latency = fig.get("latency", F.spec["latency"])
    axis = axes.parse(latency, fig.get("at_scale"))
    mf = _method_frames(fig, fig["id"])
    suites = F.suites()
    for m, frames in mf:
        for f in frames:
            for s in suites:
                F.cell(m, f, s, latency=axis.column if axis.kind == "measured" else None)
    present = [s for s in suites if s in F.data.suites]
    keep = np.zeros(len(F.data.cells), dtype=bool)
    for m, frames in mf:
        keep |= ((F.data.cells["method"] == m) & F.data.cells["frames"].isin(frames)).to_numpy()
    cells = F.data.cells[keep]
    files: dict[str, str] = {}
    section = None
    try:
        if not present:
            raise LfbenchError("none of the figure's suites has results")
        analysis = pareto.analyze_tables(
            cells,
            F.data.samples,
            latency=latency,
            suites=present,
            model=F.data.model,
            seed=F.data.seed,
            n_boot=F.data.n_boot,
            confidence=F.data.confidence,
            where=str(F.data.rd.path),
            out_hint=F.data.rd.path,
            runs=F.data.runs,
            agreement=F.data.agreement,
            at_scale=fig.get("at_scale"),
        )
        section = analysis["average"] or analysis["suites"][present[0]]
        if len(present) < len(suites):
            F.notes.append(
                f"averaged over {', '.join(present)} only: "
                f"{', '.join(s for s in suites if s not in present)} has no results"
            )
    except LfbenchError as e:
        F.notes.append(f"nothing to draw: {e}")
    drawn = bool(section and section["points"])
    if drawn:
        files = plots.pareto_plot(
            section,
            out / fig["id"],
            title=fig.get("title"),
            latency=latency,
            confidence=F.data.confidence,
            axis=analysis["latency_axis"],
            note=pareto_report.axis_sentence(analysis),
        )
        files = {k: v for k, v in files.items() if k in ("png", "svg")}
    files["json"] = _write_json(out / f"{fig['id']}.json", section)
    return F.result(drawn, files, section)


def _accuracy_vs_frames(F: _Figure, out: Path) -> dict[str, Any]:
    fig = F.fig
    suites = F.suites()
    mf = _method_frames(fig, fig["id"])
    panels: dict[str, list[dict[str, Any]]] = {s: [] for s in suites}
    if len(suites) > 1:
        panels[pareto.AVERAGE] = []
    for m, frames in mf:
        for f in frames:
            for s in suites:
                p = F.acc(m, f, s)
                if p:
                    panels[s].append(_strip(p))
            if len(suites) > 1:
                a = F.avg(m, f, suites)
                if a:
                    panels[pareto.AVERAGE].append(_strip(a))
    drawn = any(panels.values())
    files: dict[str, str] = {}
    if drawn:
        files = plots.accuracy_frames_plot(panels, out / fig["id"], title=fig.get("title", "Accuracy against frames"))
    files["json"] = _write_json(out / f"{fig['id']}.json", panels)
    return F.result(drawn, files, panels)


def _token_budget(F: _Figure, out: Path) -> dict[str, Any]:
    fig = F.fig
    tokens, per_frame = int(fig["visual_tokens"]), int(fig.get("tokens_per_frame", 256))
    if tokens <= 0 or per_frame <= 0 or tokens % per_frame:
        raise SpecError(
            f"figure {fig['id']!r}: visual_tokens={tokens} must be a positive multiple of tokens_per_frame={per_frame}"
        )
    n = tokens // per_frame
    base = canonical_method(fig.get("baseline", "baseline"))
    reducer = fig.get("reducer", "wap")
    variants = [(f"{base}, {n} frames", base, n)]
    for r in fig["ratios"]:
        r = int(r)
        variants.append((f"{reducer} {r}x, {r * n} frames", canonical_method(f"{reducer}:ratio={r}"), r * n))
    suites = F.suites()
    groups: dict[str, list[dict[str, Any]]] = {}
    for s in [*suites, *([pareto.AVERAGE] if len(suites) > 1 else [])]:
        groups[s] = []
        for label, m, f in variants:
            p = F.avg(m, f, suites) if s == pareto.AVERAGE else F.acc(m, f, s)
            groups[s].append(
                {"label": label, "method": m, "frames": f, **({"accuracy": None} if p is None else _strip(p))}
            )
            groups[s][-1]["label"] = label
    drawn = any(v.get("accuracy") is not None for vs in groups.values() for v in vs)
    files: dict[str, str] = {}
    title = fig.get("title", f"Fixed visual-token budget: {tokens} tokens")
    if drawn:
        files = plots.grouped_bars_plot(groups, out / fig["id"], title=title)
    data = {
        "visual_tokens": tokens,
        "tokens_per_frame": per_frame,
        "variants": [{"label": lab, "method": m, "frames": f} for lab, m, f in variants],
        "groups": groups,
    }
    files["json"] = _write_json(out / f"{fig['id']}.json", data)
    return F.result(drawn, files, data)


def _write_table(
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


def _accuracy_table(F: _Figure, out: Path) -> dict[str, Any]:
    fig = F.fig
    suites = F.suites()
    cols = [*suites, *([pareto.AVERAGE] if len(suites) > 1 else [])]
    data, rows = [], []
    for m, frames in _method_frames(fig, fig["id"]):
        for f in frames:
            entry: dict[str, Any] = {"method": m, "frames": f}
            for s in suites:
                entry[s] = _strip(F.acc(m, f, s))
            if len(suites) > 1:
                entry[pareto.AVERAGE] = _strip(F.avg(m, f, suites))
            entry["agreement"] = F.agree(m, f, suites)
            data.append(entry)
            a = entry["agreement"]
            agree = "—" if a is None else f"{_pct(a['agreement'])} ({_pct(a['agree_low'])}–{_pct(a['agree_high'])})"
            rows.append([m, f, *[_pct(entry[c]["accuracy"]) if entry[c] else "—" for c in cols], agree])
    drawn = any(e[c] for e in data for c in cols)
    title = fig.get("title", "Accuracy (%)")
    agree_col = f"agreement with baseline % ({'mean over suites' if len(suites) > 1 else suites[0]}; 95% CI)"
    header = ["method", "frames", *cols, agree_col]
    files = _write_table(out, fig["id"], header, rows, title, fig.get("caption")) if drawn else {}
    files["json"] = _write_json(out / f"{fig['id']}.json", data)
    return F.result(drawn, files, data)


def _latency_accuracy_table(F: _Figure, out: Path) -> dict[str, Any]:
    fig = F.fig
    latency = fig.get("latency", F.spec["latency"])
    suites = F.suites()
    cols = [*suites, *([pareto.AVERAGE] if len(suites) > 1 else [])]
    parsed = [_parse_row(r, fig["id"]) for r in fig["rows"]]
    ref = _parse_row(fig["reference"], fig["id"]) if fig.get("reference") else None
    data = []
    for m, f in parsed:
        entry: dict[str, Any] = {"method": m, "frames": f}
        lats = []
        for s in suites:
            r = F.cell(m, f, s, latency=latency)
            lats.append(float(r[latency]) if r is not None else None)
            entry[s] = _strip(F.acc(m, f, s))
        entry["latency_s"] = float(np.mean(lats)) if lats and all(x is not None for x in lats) else None
        if len(suites) > 1:
            entry[pareto.AVERAGE] = _strip(F.avg(m, f, suites))
        data.append(entry)
    ref_lat = next((e["latency_s"] for e in data if ref and (e["method"], e["frames"]) == ref), None)
    header = ["method", "frames", f"{latency} (mean over suites)"]
    if ref:
        header.append(f"vs {ref[0]}@{ref[1]}")
    header += [f"{c} acc %" for c in cols]
    rows = []
    for e in data:
        lat = e["latency_s"]
        row = [e["method"], e["frames"], "—" if lat is None else f"{lat:.3g} s"]
        if ref:
            e["latency_vs_reference"] = (lat / ref_lat - 1) if lat is not None and ref_lat else None
            row.append("—" if e["latency_vs_reference"] is None else f"{100 * e['latency_vs_reference']:+.0f}%")
        row += [_pct(e[c]["accuracy"]) if e[c] else "—" for c in cols]
        rows.append(row)
    drawn = any(e["latency_s"] is not None or any(e[c] for c in cols) for e in data)
    title = fig.get("title", "Latency and accuracy")
    files = _write_table(out, fig["id"], header, rows, title, fig.get("caption")) if drawn else {}
    files["json"] = _write_json(out / f"{fig['id']}.json", data)
    return F.result(drawn, files, data)


# --------------------------------------------------------------------------------------------- analytic


def figures_analytic(
    out: str | os.PathLike,
    *,
    model: str = "internvl3-8b",
    gpu: str = "h200",
    frames: Sequence[int] = (8, 16, 32, 64, 128, 256, 512),
    methods: Sequence[str] = ("baseline", "wap:ratio=16"),
    new_tokens: int = 16,
    tiles: int = 1,
    stem: str = "fig1b_analytic",
    title: str | None = None,
) -> dict[str, Any]:
    """Fig. 1(b) at real scale from the analytic cost model (:mod:`liteframe_bench.cost`): no results, no GPU.

    Per (method, frames): the roofline lower bounds of the vision side (vision + reduce + project) and the LLM
    side (prefill + generate) on ``gpu``, and the vision share. Cells whose prompt + ``new_tokens`` exceeds the
    LLM's context are still drawn (hatched, annotated "exceeds 32k context") and flagged ``over_context``.
    Writes ``<stem>.png``, ``<stem>.svg``, ``<stem>.json`` under ``out``; returns ``{"png", "svg", "json",
    "cells", "over_context"}``.
    """
    from liteframe_bench import cost

    rep = cost.report(model, list(methods), list(frames), gpu=gpu, new_tokens=new_tokens, tiles=tiles)
    cells = []
    for c in rep["cells"]:
        base = {"method": c["method"], "frames": c["frames"]}
        if "error" in c:
            cells.append(base | {"status": "error", "reason": c["error"], "vision_side_s": None, "llm_side_s": None})
            continue
        st = c["stages"]
        v = sum(st[s]["predicted_s"] for s in cost.VISION_SIDE)
        llm = sum(st[s]["predicted_s"] for s in cost.LLM_SIDE)
        k = c["max_position_embeddings"]
        over = not c["fits_context"]
        cells.append(
            base
            | {
                "status": "over_context" if over else "ok",
                "label": f"exceeds {k // 1024}k context" if over else None,
                "reason": c["context_reason"],
                "vision_side_s": v,
                "llm_side_s": llm,
                "total_s": v + llm,
                "vision_share": v / (v + llm),
                "stages_s": {s: st[s]["predicted_s"] for s in cost.STAGES},
                "visual_tokens": c["tokens"]["visual"],
                "prompt_tokens": c["tokens"]["prompt"],
                "context_end": c["tokens"]["context_end"],
                "max_position_embeddings": k,
                "fits_context": c["fits_context"],
            }
        )
    g = rep["gpu"]
    title = title or (f"Fig. 1(b), analytic: {rep['model']['name']} on {g['label']} (roofline lower bounds)")
    out = Path(out)
    files = plots.latency_split_plot(
        cells,
        out / stem,
        title=title,
        unit="ms",
        note=(
            f"analytic cost model (lfbench cost): bf16, {new_tokens} new tokens, {tiles} tile(s) per frame; "
            "lower bounds, not measurements; decode of the video not included"
        ),
    )
    doc = {
        "model": rep["model"]["name"],
        "gpu": g,
        "settings": rep["settings"],
        "note": "predicted_s are roofline lower bounds (liteframe_bench.cost)",
        "cells": cells,
    }
    files["json"] = _write_json(out / f"{stem}.json", doc)
    over = [
        {"method": c["method"], "frames": c["frames"], "reason": c["reason"]}
        for c in cells
        if c["status"] == "over_context"
    ]
    return files | {"cells": cells, "over_context": over}


def _latency_split_analytic(F: _Figure | None, fig: dict[str, Any], out: Path) -> dict[str, Any]:
    res = figures_analytic(
        out,
        model=fig.get("model", "internvl3-8b"),
        gpu=fig.get("gpu", "h200"),
        frames=_frames_list(fig["frames"], fig["id"]),
        methods=[str(m) for m in fig["methods"]],
        new_tokens=int(fig.get("new_tokens", 16)),
        tiles=int(fig.get("tiles", 1)),
        stem=fig["id"],
        title=fig.get("title"),
    )
    notes = [
        f"{o['method']} @ {o['frames']} frames exceeds the LLM context: {o['reason']}" for o in res["over_context"]
    ]
    return {
        "id": fig["id"],
        "kind": fig["kind"],
        "title": fig.get("title", fig["id"]),
        "status": "complete",
        "files": {k: res[k] for k in ("png", "svg", "json")},
        "missing": [],
        "failed": [],
        "no_latency": [],
        "sweeps": [],
        "notes": notes,
        "data": {"cells": res["cells"]},
    }


_BUILDERS = {
    "latency_split": _latency_split,
    "pareto": _pareto,
    "accuracy_vs_frames": _accuracy_vs_frames,
    "token_budget": _token_budget,
    "accuracy_table": _accuracy_table,
    "latency_accuracy_table": _latency_accuracy_table,
}


# ------------------------------------------------------------------------------------------------- run


def _index_md(result: dict[str, Any], out: Path) -> str:
    lines = [
        f"# {result['spec_name']}: figures from {result['results_dir']}",
        "",
        f"- spec: `{result['spec']}`; model: `{result['model']}`",
        "",
    ]
    for f in result["figures"]:
        lines += [f"## {f['title']}", "", f"`{f['id']}` ({f['kind']}): **{f['status']}**", ""]
        if "png" in f["files"]:
            lines += [f"![{f['id']}]({os.path.relpath(f['files']['png'], out)})", ""]
        if "md" in f["files"]:
            lines += [Path(f["files"]["md"]).read_text().split("\n", 2)[-1].strip(), ""]
        for n in f["notes"]:
            lines.append(f"- note: {n}")
        for c in f["failed"]:
            lines.append(f"- could not run: `{c['method']}` @ {c['frames']} frames on {c['suite']}: {c['reason']}")
        if f["missing"]:
            lines.append(
                "- missing: " + ", ".join(f"`{c['method']}`@{c['frames']} on {c['suite']}" for c in f["missing"])
            )
        if f["sweeps"]:
            lines += ["", "To fill it:", "", "```", *f["sweeps"], "```"]
        lines.append("")
    return "\n".join(lines)


def run_figures(
    results_dir: str | os.PathLike,
    *,
    spec: str | os.PathLike | dict[str, Any] | None = None,
    out: str | os.PathLike | None = None,
    only: Sequence[str] | None = None,
) -> dict[str, Any]:
    """``lfbench figures DIR --spec SPEC``: every figure of the spec from the results in ``DIR``.

    Writes into ``out`` (default ``DIR/figures``) and returns ``{"results_dir", "spec", "spec_name", "model",
    "out", "figures": [{id, kind, title, status (complete | partial | empty), files, missing, failed,
    no_latency, sweeps, notes, data}], "sweeps": all sweep commands, "index", "json"}``. ``only``: figure ids.
    """
    sp = load_spec(spec)
    figs = sp["figures"]
    if only:
        ids = [f["id"] for f in figs]
        bad = [i for i in only if i not in ids]
        if bad:
            raise SpecError(f"unknown figure id {bad[0]!r}; allowed: {', '.join(ids)}")
        figs = [f for f in figs if f["id"] in only]
    needs_results = any(f["kind"] != "latency_split_analytic" for f in figs)
    data = (
        _Data(results_dir, model=sp["model"], seed=sp["seed"], n_boot=sp["n_boot"], confidence=sp["confidence"])
        if needs_results
        else None
    )
    out = Path(out) if out is not None else Path(results_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for f in figs:
        if f["kind"] == "latency_split_analytic":
            done.append(_latency_split_analytic(None, f, out))
        else:
            done.append(_BUILDERS[f["kind"]](_Figure(data, f, sp), out))
    cells = list(dict.fromkeys((c["method"], c["frames"], c["suite"]) for f in done for c in f["missing"]))
    sweeps = data.sweeps(cells, sp["figures"])[0] if cells else []
    result = {
        "results_dir": str(results_dir),
        "spec": sp["source"],
        "spec_name": sp["name"],
        "model": data.model if data else None,
        "out": str(out),
        "figures": done,
        "sweeps": sweeps,
    }
    index = out / "figures.md"
    index.write_text(_index_md(result, out))
    result["index"] = str(index)
    result["json"] = _write_json(out / "figures.json", result | {"json": str(out / "figures.json")})
    return result


def render_figures(result: dict[str, Any], console: Any = None) -> None:
    """Print what was written, per figure, and the sweeps that would complete the rest."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if console.width < 120:
        console.width = 120
    t = Table(title=f"lfbench figures: {result['spec_name']} -> {result['out']}")
    for col in ("id", "kind", "status", "files", "missing", "could not run"):
        t.add_column(col, no_wrap=col in ("id", "kind"))
    colour = {"complete": "green", "partial": "yellow", "empty": "red"}
    for f in result["figures"]:
        t.add_row(
            f["id"],
            f["kind"],
            f"[{colour[f['status']]}]{f['status']}[/]",
            ", ".join(sorted({Path(p).suffix.lstrip(".") for p in f["files"].values()})),
            str(len(f["missing"])),
            str(len(f["failed"])),
        )
    console.print(t)
    for f in result["figures"]:
        for n in f["notes"]:
            console.print(f"{f['id']}: {n}", style="yellow", highlight=False)
    if result["sweeps"]:
        console.print("To complete the figures, run:", highlight=False)
        for c in result["sweeps"]:
            console.print(f"  {c}", highlight=False, soft_wrap=True)
    console.print(f"index: {result['index']}", highlight=False)


__all__ = ["DEFAULT_SPEC", "canonical_method", "figures_analytic", "load_spec", "render_figures", "run_figures"]
