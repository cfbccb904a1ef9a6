"""Latency/accuracy Pareto analysis of a results folder: points, frontiers, bootstrap intervals, budget tables.

Pure functions over the results store's DataFrames (``ResultsDir(dir).load() -> (cells, samples)``): the public
analysis API that ``lfbench pareto`` (through :mod:`liteframe_bench.pareto_report`) and the paper's figures
(:mod:`liteframe_bench.figures`) both call. No plotting or text here: :mod:`liteframe_bench.plots` draws,
:mod:`liteframe_bench.pareto_report` writes the markdown report and the console tables.

Definitions
-----------
- **Point**: one cell with ``status == "ok"`` of one suite. ``latency`` is the cell's value on the x axis
  (:mod:`liteframe_bench.axes`: default ``lat_e2e_s``, the median end-to-end wall time of the timing runs; also
  ``lat_ttft_s``, a stage such as ``lat_vision_s``, the modelled ``predicted:GPU`` at a real size, ``flops``,
  ``visual_tokens``), ``accuracy`` is the cell's ``accuracy`` (mean per-sample correctness in [0, 1]) and
  ``agreement`` its agreement with the baseline (:mod:`liteframe_bench.agreement`). A cell without a finite value
  on the axis (an accuracy-only run, a method the cost model cannot model) or accuracy is listed under
  ``no_latency`` (with its reason) / ``no_accuracy``, never drawn; a cell that could not run
  (``status != "ok"``) is listed under ``errors`` with its reason.
- **Dominance**: minimise latency, maximise accuracy. ``a`` dominates ``b`` when ``a.latency <= b.latency``
  and ``a.accuracy >= b.accuracy`` with at least one strict. The frontier is the set of non-dominated points;
  two points with identical (latency, accuracy) do not dominate each other and are both on it. Points and the
  frontier are ordered by (latency ascending, accuracy descending, method, frames): deterministic.
- **Bootstrap interval** on accuracy: resample a cell's per-sample ``correct`` with replacement
  (``n_boot`` resamples, default 1000), percentile interval at ``confidence`` (default 95%). The same
  samples as the sweep's ``accuracy``: a sample that **errored counts as wrong** (the sweep stores
  ``correct = 0.0`` with its ``error``), a sample whose ``correct`` is **NaN is unscorable** (the suite's scorer
  gave no verdict: a suite problem, not the method's) and is left out of numerator and denominator, and
  counted in ``n_unscored``; ``n`` is the scored samples. When the cell's ``accuracy`` differs from the mean of
  its scored samples, the analysis carries a warning naming the cell. Each cell
  draws from its own ``numpy.random.Generator`` seeded by ``(seed, suite, method, frames)``, so a point's
  interval does not change when other cells are added.
- **Average over suites**: for each (method, frames) with an ok cell in every analysed suite, accuracy = mean
  of the per-suite accuracies, latency = mean of the per-suite latencies; the interval is a stratified
  bootstrap (resample within each suite, average the suite means). (method, frames) pairs missing or failed in
  some suite are listed under ``missing`` with the suites and reasons (and the sweep that would fill them).
- **Budget table**: for each latency budget, the most accurate point with ``latency <= budget`` (ties: lower
  latency, then method, then frames). Budgets are given, or a 1-2-5 grid (…, 0.1, 0.2, 0.5, 1, 2, …
  seconds) spanning every point's latency.
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from liteframe_bench import axes
from liteframe_bench.agreement import agreement_table
from liteframe_bench.axes import LATENCY_COLUMNS
from liteframe_bench.bootstrap import (
    bootstrap_ci,
    bootstrap_means,
    cell_seed,
    percentile_interval,
    scores,
    stratified_bootstrap_ci,
)
from liteframe_bench.errors import LfbenchError, SpecError
from liteframe_bench.results import ResultsDir

#: Name of the average-over-suites section.
AVERAGE = "average"
#: How unscorable/errored samples enter accuracy and its interval.
NAN_POLICY = (
    "errored samples count as wrong (correct = 0); unscorable samples (correct = NaN) are left out of "
    "accuracy and its interval, as in the sweep's accuracy, and counted in n_unscored"
)

AGREEMENT_POLICY = (
    "agreement with the baseline: share of samples (matched by doc_id) whose parsed answer equals the baseline "
    "cell's at the same model, frames and suite; both errored: left out; one errored: disagree (EffiVLM-Bench's "
    "loyalty); the average's is the mean over suites"
)

POINT_KEYS = ("method", "frames", "latency", "accuracy", "ci_low", "ci_high", "n", "dominated")
#: What a section lists per point: :data:`POINT_KEYS`, unscored samples and the agreement with the baseline.
POINT_KEYS_OUT = (*POINT_KEYS[:-1], "n_unscored", "agreement", "agree_low", "agree_high", "agree_n", "dominated")


# --------------------------------------------------------------------------------------------- frontier


#: Columns of a points table (one row per cell on a latency/accuracy plane); ``boot`` holds bootstrap accuracies.
POINT_COLUMNS = [
    "method",
    "frames",
    "suite",
    "cell_id",
    "latency",
    "accuracy",
    "ci_low",
    "ci_high",
    "n",
    "n_unscored",
    "boot",
    "agreement",
    "agree_low",
    "agree_high",
    "agree_n",
    "agree_boot",
]


def dominated_mask(latency: Sequence[float], accuracy: Sequence[float]) -> np.ndarray:
    """``True`` where a point is dominated (another is at least as good in both and strictly better in one).

    Minimise latency, maximise accuracy. Points with identical coordinates do not dominate each other.
    NaN coordinates are not allowed (filter them first). O(n log n).
    """
    lat = np.asarray(latency, dtype=float)
    acc = np.asarray(accuracy, dtype=float)
    if lat.shape != acc.shape or lat.ndim != 1:
        raise ValueError(f"latency and accuracy must be 1-d of one length, got {lat.shape} and {acc.shape}")
    if np.isnan(lat).any() or np.isnan(acc).any():
        raise ValueError("dominated_mask: NaN latency or accuracy; drop those points first")
    out = np.ones(lat.shape, dtype=bool)
    order = np.lexsort((-acc, lat))  # latency ascending, accuracy descending
    best_before = -np.inf  # best accuracy among points with strictly lower latency
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and lat[order[j]] == lat[order[i]]:
            j += 1
        group = order[i:j]
        top = acc[group].max()
        if top > best_before:
            out[group[acc[group] == top]] = False
        best_before = max(best_before, top)
        i = j
    return out


def sort_points(df: pd.DataFrame) -> pd.DataFrame:
    """Deterministic order: latency ascending, accuracy descending, method, frames."""
    if df.empty:
        return df.reset_index(drop=True)
    key = df.assign(_neg_acc=-df["accuracy"])
    order = key.sort_values(["latency", "_neg_acc", "method", "frames"], kind="mergesort").index
    return df.loc[order].reset_index(drop=True)


def frontier(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (columns ``latency``, ``accuracy``, ``method``, ``frames``) sorted, with a ``dominated`` column."""
    df = sort_points(df.copy())
    df["dominated"] = dominated_mask(df["latency"].to_numpy(float), df["accuracy"].to_numpy(float)) if len(df) else []
    return df


# ---------------------------------------------------------------------------------------------- budgets


def auto_budgets(latencies: Iterable[float]) -> list[float]:
    """A 1-2-5 grid of budgets (seconds) from the smallest latency up to the first value covering the largest."""
    lat = np.asarray([x for x in latencies if x is not None and np.isfinite(x) and x > 0], dtype=float)
    if lat.size == 0:
        return []
    lo, hi = lat.min(), lat.max()
    out: list[float] = []
    e = math.floor(math.log10(lo))
    while True:
        for m in (1, 2, 5):
            b = float(f"{m * 10.0**e:.12g}")
            if b >= lo * (1 - 1e-12):
                out.append(b)
            if b >= hi * (1 - 1e-12):
                return out
        e += 1


def best_under_budget(df: pd.DataFrame, budget: float) -> dict[str, Any] | None:
    """The most accurate point with ``latency <= budget`` (ties: lower latency, method, frames), or None."""
    ok = df[df["latency"] <= budget]
    if ok.empty:
        return None
    ok = ok.assign(_neg_acc=-ok["accuracy"]).sort_values(["_neg_acc", "latency", "method", "frames"], kind="mergesort")
    return ok.iloc[0].to_dict()


def budget_table(df: pd.DataFrame, budgets: Sequence[float]) -> list[dict[str, Any]]:
    rows = []
    for b in budgets:
        best = best_under_budget(df, b) if len(df) else None
        row: dict[str, Any] = {"budget_s": float(b)}
        if best is None:
            row |= {
                "method": None,
                "frames": None,
                "latency": None,
                "accuracy": None,
                "ci_low": None,
                "ci_high": None,
                "note": "no point within this budget",
            }
        else:
            row |= {k: best[k] for k in ("method", "frames", "latency", "accuracy", "ci_low", "ci_high")}
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------- intervals


def cell_bootstrap(correct: Any, *, seed: int, suite: str, method: str, frames: int, n_boot: int) -> np.ndarray:
    """Bootstrap means of one cell's per-sample correctness (NaN = unscorable, left out), drawn from the cell's
    own generator seeded by ``(seed, suite, method, frames)``: a cell's interval does not depend on other cells.
    The one draw behind every accuracy interval (the analysis here and the paper's figures)."""
    rng = np.random.default_rng(cell_seed(seed, suite, method, int(frames)))
    return bootstrap_means(correct, n_boot=n_boot, rng=rng)


def pooled(values: Sequence[float], boots: Sequence[np.ndarray], confidence: float = 0.95):
    """``(mean, ci_low, ci_high, boot)`` of a mean over suites: the mean of the per-suite values and a stratified
    bootstrap interval (each suite's draws resampled within that suite, then averaged draw by draw)."""
    boot = np.mean(list(boots), axis=0)
    lo, hi = percentile_interval(boot, confidence)
    return float(np.mean(values)), lo, hi, boot


# --------------------------------------------------------------------------------------------- helpers


def jsonable(x: Any) -> Any:
    """JSON-ready scalar: numpy -> Python, NaN/inf -> None."""
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    if x is pd.NA or x is pd.NaT:
        return None
    return x


def _records(df: pd.DataFrame, keys: Sequence[str]) -> list[dict[str, Any]]:
    return [{k: jsonable(r[k]) for k in keys} for r in df[list(keys)].to_dict("records")] if len(df) else []


#: ``lfbench sweep`` options that define a cell besides (method, frames, suite), with the command's defaults.
SWEEP_DEFAULTS: dict[str, Any] = {
    "model": "mini",
    "device": "cpu",
    "dtype": "auto",
    "limit": None,
    "timing_samples": 2,
    "warmup": 1,
    "repeats": 3,
    "new_tokens": 16,
    "seed": 0,
}


def sweep_settings(
    runs: Iterable[dict[str, Any]], run_ids: Iterable[str] | None = None, model: str | None = None
) -> dict[str, Any]:
    """The sweep options (``config`` of the run records) shared by every run that wrote ``run_ids``, so that a
    sweep filling missing cells measures them the same way. Options the runs disagree on are left out;
    ``model`` (the cells' model) stands in when no run record names one."""
    ids = None if run_ids is None else {str(r) for r in run_ids}
    cfgs = [
        r["config"]
        for r in runs
        if isinstance(r, dict) and isinstance(r.get("config"), dict) and (ids is None or str(r.get("run_id")) in ids)
    ]
    out: dict[str, Any] = {}
    for key in SWEEP_DEFAULTS:
        vals = [c[key] for c in cfgs if key in c]
        if vals and all(v == vals[0] for v in vals) and len(vals) == len(cfgs):
            out[key] = vals[0]
    if "model" not in out and model is not None:
        out["model"] = model
    return out


def sweep_command(
    method: str,
    frames: Iterable[int],
    suites: Iterable[str],
    out: str | os.PathLike,
    model: str | None = None,
    settings: dict[str, Any] | None = None,
) -> str:
    """The ``lfbench sweep`` invocation that fills the given cells into ``out`` (with the options of
    ``settings`` that differ from the command's defaults, e.g. ``--model``, ``--device``, ``--limit``)."""
    settings = dict(settings or {})
    if model is not None:
        settings.setdefault("model", model)
    cmd = [
        "lfbench",
        "sweep",
        "--methods",
        method,
        "--frames",
        ",".join(str(int(f)) for f in sorted(set(frames))),
        "--suites",
        ",".join(sorted(set(suites))),
    ]
    for key, default in SWEEP_DEFAULTS.items():
        if key in settings and settings[key] is not None and settings[key] != default:
            cmd += ["--" + key.replace("_", "-"), str(settings[key])]
    cmd += ["--out", str(out)]
    return " ".join(shlex.quote(c) for c in cmd)


def sweep_commands(
    cells: Iterable[tuple[str, int, str]],
    out: str | os.PathLike,
    model: str | None = None,
    settings: dict[str, Any] | None = None,
) -> list[str]:
    """Few sweep commands covering every (method, frames, suite): one per method and set of suites sharing the
    same frame counts."""
    by_ms: dict[tuple[str, str], set[int]] = {}
    for m, f, s in cells:
        by_ms.setdefault((m, s), set()).add(int(f))
    grouped: dict[tuple[str, tuple[int, ...]], set[str]] = {}
    for (m, s), fs in by_ms.items():
        grouped.setdefault((m, tuple(sorted(fs))), set()).add(s)
    return [sweep_command(m, fs, ss, out, model, settings) for (m, fs), ss in sorted(grouped.items())]


def select_model(cells: pd.DataFrame, model: str | None, where: str) -> tuple[pd.DataFrame, str | None]:
    models = sorted(str(m) for m in cells["model"].dropna().unique())
    if model is not None:
        if model not in models:
            raise LfbenchError(f"model {model!r} is not in {where}; allowed: {', '.join(models) or '(none)'}")
        return cells[cells["model"] == model], model
    if len(models) > 1:
        raise LfbenchError(f"{where} holds cells of several models ({', '.join(models)}); choose one with model=")
    return cells, (models[0] if models else None)


def check_duplicates(cells: pd.DataFrame) -> None:
    dup = cells[cells.duplicated(["suite", "method", "frames"], keep=False)]
    if len(dup):
        first = dup.sort_values(["suite", "method", "frames"]).iloc[0]
        ids = dup[
            (dup["suite"] == first["suite"]) & (dup["method"] == first["method"]) & (dup["frames"] == first["frames"])
        ]["cell_id"].tolist()
        raise LfbenchError(
            f"{len(dup)} cells share (suite, method, frames) with different settings, e.g. {first['method']} @ "
            f"{first['frames']} frames on {first['suite']}: cell ids {', '.join(map(str, ids))}; analyse one "
            "setting per results folder"
        )


# --------------------------------------------------------------------------------------------- sections


def suite_points(
    cells: pd.DataFrame,
    samples: pd.DataFrame,
    suite: str,
    *,
    latency: str = "lat_e2e_s",
    seed: int = 0,
    n_boot: int = 1000,
    confidence: float = 0.95,
    agreement: pd.DataFrame | None = None,
    no_value: dict[str, str] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any], list[str]]:
    """Points of one suite (with ``boot``: bootstrap means per point) plus the cells left out and warnings.
    ``agreement``: :func:`liteframe_bench.agreement.agreement_table` rows by ``cell_id`` (the points' agreement);
    ``no_value``: why a cell has no value on the latency axis, by ``cell_id``."""
    c = cells[cells["suite"] == suite]
    ok = c[c["status"] == "ok"]
    bad = c[c["status"] != "ok"]
    left: dict[str, Any] = {
        "errors": [
            {
                "method": r["method"],
                "frames": int(r["frames"]),
                "status": r["status"],
                "reason": r["reason"] if isinstance(r["reason"], str) else None,
            }
            for r in bad.sort_values(["method", "frames"]).to_dict("records")
        ],
        "no_latency": [],
        "no_accuracy": [],
    }
    warnings: list[str] = []
    by_cell = {k: g["correct"].to_numpy(float) for k, g in samples[samples["suite"] == suite].groupby("cell_id")}
    rows = []
    for r in ok.to_dict("records"):
        corr = by_cell.get(r["cell_id"], np.array([]))
        boot = cell_bootstrap(corr, seed=seed, suite=suite, method=r["method"], frames=r["frames"], n_boot=n_boot)
        lo, hi = percentile_interval(boot, confidence)
        acc = float(r["accuracy"]) if pd.notna(r["accuracy"]) else math.nan
        where = f"{r['method']} @ {int(r['frames'])} frames on {suite}"
        scored = scores(corr)
        if scored.size == 0:
            what = "no per-sample rows" if corr.size == 0 else "no scored sample"
            warnings.append(f"{where}: {what}, so no confidence interval")
        elif math.isfinite(acc) and abs(scored.mean() - acc) > 1e-9:
            warnings.append(
                f"{where}: cell accuracy {acc:.6f} differs from the mean of its scored samples "
                f"{scored.mean():.6f} ({NAN_POLICY})"
            )
        lat = float(r[latency]) if pd.notna(r[latency]) else math.nan
        entry = {
            "method": r["method"],
            "frames": int(r["frames"]),
            "suite": suite,
            "cell_id": r["cell_id"],
            "latency": lat,
            "accuracy": acc,
            "ci_low": lo,
            "ci_high": hi,
            "n": int(scored.size),
            "n_unscored": int(np.isnan(corr).sum()),
            "boot": boot,
        }
        agree = agreement.loc[r["cell_id"]] if agreement is not None and r["cell_id"] in agreement.index else None
        entry |= {
            "agreement": math.nan if agree is None else agree["agreement"],
            "agree_low": math.nan if agree is None else agree["agree_low"],
            "agree_high": math.nan if agree is None else agree["agree_high"],
            "agree_n": 0 if agree is None else int(agree["agree_n"]),
            "agree_boot": None if agree is None else agree["boot"],
        }
        if not math.isfinite(lat):
            why = (no_value or {}).get(r["cell_id"], "no latency (accuracy-only run)")
            left["no_latency"].append(
                {"method": entry["method"], "frames": entry["frames"], "accuracy": jsonable(acc), "reason": why}
            )
        elif not math.isfinite(acc):
            left["no_accuracy"].append({"method": entry["method"], "frames": entry["frames"], "latency": lat})
        else:
            rows.append(entry)
    df = pd.DataFrame(rows, columns=POINT_COLUMNS)
    return frontier(df), left, warnings


def average_points(
    per_suite: dict[str, pd.DataFrame],
    all_cells: pd.DataFrame,
    *,
    confidence: float = 0.95,
    no_value: dict[str, str] | None = None,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Average over the suites of ``per_suite`` (points with ``boot``), and the (method, frames) left out
    (``no_value``: why a cell has no value on the latency axis, by ``cell_id``)."""
    suites = sorted(per_suite)
    keys: dict[tuple[str, int], dict[str, Any]] = {}
    for s in suites:
        for r in per_suite[s].to_dict("records"):
            keys.setdefault((r["method"], int(r["frames"])), {})[s] = r
    # (method, frames) seen anywhere in the analysed suites' cells, ok or not
    seen = {(m, int(f)) for m, f in all_cells[["method", "frames"]].itertuples(index=False)} | set(keys)
    rows, missing = [], []
    for key in sorted(seen):
        have = keys.get(key, {})
        if len(have) == len(suites):
            pts = [have[s] for s in suites]
            acc, lo, hi, boot = pooled([p["accuracy"] for p in pts], [p["boot"] for p in pts], confidence)
            agreed = all(p["agree_boot"] is not None and math.isfinite(p["agreement"]) for p in pts)
            if agreed:
                agree, a_lo, a_hi, a_boot = pooled(
                    [p["agreement"] for p in pts], [p["agree_boot"] for p in pts], confidence
                )
            else:
                agree, a_lo, a_hi, a_boot = math.nan, math.nan, math.nan, None
            rows.append(
                {
                    "method": key[0],
                    "frames": key[1],
                    "suite": AVERAGE,
                    "cell_id": None,
                    "latency": float(np.mean([p["latency"] for p in pts])),
                    "accuracy": acc,
                    "ci_low": lo,
                    "ci_high": hi,
                    "n": int(sum(p["n"] for p in pts)),
                    "n_unscored": int(sum(p["n_unscored"] for p in pts)),
                    "boot": boot,
                    "agreement": agree,
                    "agree_low": a_lo,
                    "agree_high": a_hi,
                    "agree_n": int(sum(p["agree_n"] for p in pts)) if agreed else 0,
                    "agree_boot": a_boot,
                }
            )
            continue
        reasons = {}
        for s in suites:
            if s in have:
                continue
            c = all_cells[(all_cells["suite"] == s) & (all_cells["method"] == key[0]) & (all_cells["frames"] == key[1])]
            if c.empty:
                reasons[s] = "no cell"
            elif (c["status"] != "ok").any():
                r = c.iloc[0]["reason"]
                reasons[s] = f"{c.iloc[0]['status']}: {r if isinstance(r, str) else 'no reason recorded'}"
            elif c[["accuracy"]].isna().all(axis=None):
                reasons[s] = "no accuracy"
            else:
                reasons[s] = (no_value or {}).get(c.iloc[0]["cell_id"], "no value on the latency axis")
        missing.append(
            {
                "method": key[0],
                "frames": key[1],
                "present_suites": sorted(have),
                "missing_suites": sorted(reasons),
                "reasons": reasons,
            }
        )
    df = pd.DataFrame(rows, columns=POINT_COLUMNS)
    return frontier(df), missing


def _section(name: str, df: pd.DataFrame, budgets: Sequence[float], extra: dict[str, Any]) -> dict[str, Any]:
    pts = _records(df, POINT_KEYS_OUT)
    return {
        "name": name,
        "points": pts,
        "frontier": [p for p in pts if not p["dominated"]],
        "budget_table": [{k: jsonable(v) for k, v in r.items()} for r in budget_table(df, budgets)],
        **extra,
    }


def analyze_tables(
    cells: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    latency: str = "lat_e2e_s",
    budgets: Sequence[float] | None = None,
    suites: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    frames: Sequence[int] | None = None,
    model: str | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    confidence: float = 0.95,
    where: str = "the results",
    out_hint: str | os.PathLike = "DIR",
    runs: Sequence[dict[str, Any]] = (),
    agreement: pd.DataFrame | None = None,
    at_scale: str | None = None,
) -> dict[str, Any]:
    """:func:`analyze` on already loaded tables (optionally restricted to ``methods``/``frames``). ``agreement``:
    a precomputed :func:`~liteframe_bench.agreement.agreement_table` (when ``cells`` lacks the baseline cells)."""
    axis = axes.parse(latency, at_scale)
    if n_boot < 1:
        raise SpecError(f"n_boot={n_boot!r} is invalid; allowed: a positive integer")
    if budgets is not None:
        budgets = [float(b) for b in budgets]
        if any(not math.isfinite(b) or b <= 0 for b in budgets):
            raise SpecError(f"budgets={budgets!r} are invalid; allowed: positive seconds")
    if cells.empty:
        raise LfbenchError(f"no finished cells in {where}; run `lfbench sweep ... --out {out_hint}` first")
    cells, model = select_model(cells, model, where)
    if agreement is None:
        agreement = agreement_table(cells, samples, seed=seed, n_boot=n_boot, confidence=confidence)
    if methods is not None:
        cells = cells[cells["method"].isin(list(methods))]
    if frames is not None:
        cells = cells[cells["frames"].isin([int(f) for f in frames])]
    check_duplicates(cells)
    okc = cells[cells["status"] == "ok"]
    if okc.empty:
        reasons = sorted({str(r) for r in cells["reason"].dropna()})[:5]
        raise LfbenchError(
            f"no cell with status ok in {where} ({len(cells)} cells could not run"
            + (f": {'; '.join(reasons)}" if reasons else "")
            + ")"
        )
    present = sorted(cells["suite"].dropna().unique())
    if suites is None:
        suites = sorted(okc["suite"].unique())
    else:
        suites = list(dict.fromkeys(suites))
        unknown = [s for s in suites if s not in present]
        if unknown:
            raise LfbenchError(f"unknown suite {unknown[0]!r} in {where}; allowed: {', '.join(present)}")
    cells = cells[cells["suite"].isin(suites)]
    samples = samples[samples["cell_id"].isin(set(cells["cell_id"]))]
    ok = cells["status"] == "ok"
    value, no_value = axes.values(axis, cells[ok])
    cells = cells.assign(**{axes.DERIVED: value.reindex(cells.index)}) if axis.column == axes.DERIVED else cells

    warnings: list[str] = []
    per_suite: dict[str, pd.DataFrame] = {}
    left: dict[str, dict[str, Any]] = {}
    for s in suites:
        per_suite[s], left[s], w = suite_points(
            cells,
            samples,
            s,
            latency=axis.column,
            seed=seed,
            n_boot=n_boot,
            confidence=confidence,
            agreement=agreement,
            no_value=no_value,
        )
        warnings += w
    avg_df, missing = (
        average_points(per_suite, cells, confidence=confidence, no_value=no_value) if len(suites) > 1 else (None, [])
    )
    given = budgets is not None
    if budgets is None:
        lats = [x for df in per_suite.values() for x in df["latency"]]
        lats += list(avg_df["latency"]) if avg_df is not None else []
        budgets = auto_budgets(lats)

    sections = {s: _section(s, per_suite[s], budgets, left[s]) for s in suites}
    average = None
    if avg_df is not None:
        fill = [
            (m["method"], m["frames"], s) for m in missing for s in m["missing_suites"] if m["reasons"][s] == "no cell"
        ]
        average = _section(
            AVERAGE,
            avg_df,
            budgets,
            {
                "suites": list(suites),
                "missing": missing,
                "sweeps": sweep_commands(fill, out_hint, settings=sweep_settings(runs, set(cells["run_id"]), model)),
            },
        )
    return {
        "results_dir": where,
        "model": model,
        "latency": axis.spec,
        "latency_axis": axis.to_json(),
        "accuracy": "accuracy",
        "settings": {
            "seed": seed,
            "n_boot": n_boot,
            "confidence": confidence,
            "nan_policy": NAN_POLICY,
            "agreement": AGREEMENT_POLICY,
            "budgets": "given" if given else "auto (1-2-5 grid over the points' latencies)",
        },
        "budgets": [float(b) for b in budgets],
        "suites": sections,
        "average": average,
        "warnings": warnings,
    }


def provenance(rd: ResultsDir, run_ids: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
    """The run records of the analysed cells, the devices and revisions they came from, and warnings."""
    runs = rd.runs()
    used = {str(r) for r in run_ids if isinstance(r, str)}
    by_id = {str(r.get("run_id")): r for r in runs if isinstance(r, dict) and r.get("run_id") is not None}
    warnings = []
    unknown = sorted(used - set(by_id)) if by_id else sorted(used)
    if unknown:
        warnings.append(f"no run record (runs/<run_id>.json) for run(s) {', '.join(unknown)}")

    def field(r: dict[str, Any], *keys: str) -> Any:
        for k in keys:
            v = r.get(k)
            if v is None and isinstance(r.get("machine"), dict):
                v = r["machine"].get(k)
            if v is not None:
                return v
        return None

    devices = sorted({str(d) for r in runs if (d := field(r, "device_name", "device")) is not None})
    shas = sorted({str(s) for r in runs if (s := field(r, "git_sha")) is not None})
    if len(devices) > 1:
        warnings.append(
            f"latencies come from {len(devices)} different devices ({'; '.join(devices)}); compare them with care"
        )
    return {"runs": runs, "run_ids": sorted(used), "devices": devices, "git_shas": shas}, warnings


def analyze(
    results_dir: str | os.PathLike,
    *,
    latency: str = "lat_e2e_s",
    budgets: Sequence[float] | None = None,
    suites: Sequence[str] | None = None,
    model: str | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    confidence: float = 0.95,
    at_scale: str | None = None,
) -> dict[str, Any]:
    """Pareto analysis of a results folder as a JSON-ready dict.

    ``latency``: the x axis (:mod:`liteframe_bench.axes`: a measured column, ``predicted:GPU`` at ``at_scale``,
    ``flops`` or ``visual_tokens``); ``latency_axis`` in the result says which and whether it is modelled.

    ``{"results_dir", "model", "latency", "settings", "budgets", "suites": {suite: section}, "average":
    section | None (with ``suites``, ``missing``, ``sweeps``), "provenance", "warnings"}``; a section has
    ``points`` (method, frames, latency, accuracy, ci_low, ci_high, n, n_unscored, dominated), ``frontier``,
    ``budget_table``, and for a suite ``errors``/``no_latency``/``no_accuracy``. ``average`` is None with one
    suite. Raises :class:`LfbenchError` for a missing/empty folder, no ok cell, an unknown suite (listing the
    allowed ones) or several models without ``model=``.
    """
    rd = ResultsDir(results_dir)
    cells, samples = rd.load()
    out = analyze_tables(
        cells,
        samples,
        latency=latency,
        budgets=budgets,
        suites=suites,
        model=model,
        seed=seed,
        n_boot=n_boot,
        confidence=confidence,
        where=str(rd.path),
        out_hint=rd.path,
        runs=rd.runs(),
        at_scale=at_scale,
    )
    used = cells[cells["suite"].isin(list(out["suites"]))]
    if out["model"] is not None:
        used = used[used["model"] == out["model"]]
    out["provenance"], w = provenance(rd, used["run_id"])
    out["warnings"] += w
    return out


__all__ = [
    "AVERAGE",
    "LATENCY_COLUMNS",
    "NAN_POLICY",
    "analyze",
    "analyze_tables",
    "auto_budgets",
    "average_points",
    "best_under_budget",
    "bootstrap_ci",
    "bootstrap_means",
    "budget_table",
    "cell_bootstrap",
    "cell_seed",
    "check_duplicates",
    "dominated_mask",
    "frontier",
    "jsonable",
    "percentile_interval",
    "pooled",
    "provenance",
    "scores",
    "select_model",
    "stratified_bootstrap_ci",
    "suite_points",
    "sweep_command",
    "sweep_commands",
    "sweep_settings",
]
