"""The Pareto analysis as people read it: ``report.md`` (markdown), the console tables, and ``lfbench pareto DIR``.

- :func:`write_report` is ``lfbench pareto DIR``: :func:`liteframe_bench.pareto.analyze`, one plot per suite and
  for the average (:func:`liteframe_bench.plots.pareto_plot`), ``analysis.json`` and ``report.md`` (embedding the
  plots by relative path) in ``DIR/report``.
- :func:`markdown` and :func:`render` (rich console tables) format an analysis; :func:`md_table`,
  :func:`axis_sentence` and :func:`agreement_text` are shared with ``lfbench results show`` and the figures.

Imports go one way: this module uses ``pareto`` (numbers) and ``plots`` (drawings); neither imports it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from liteframe_bench import axes, pareto, plots


def _pct(x: Any) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def axis_sentence(analysis: dict[str, Any]) -> str:
    """One sentence saying which axis is measured and which is modelled (for the console, report and plot)."""
    axis = analysis["latency_axis"]
    prov = analysis.get("provenance") or {}
    devices = ", ".join(prov.get("devices", [])) or "the sweep's device"
    acc = f"accuracy: measured in {analysis['results_dir']} ({analysis['model']} on {devices})"
    if axis["kind"] == "modelled":
        return f"{acc}; latency: MODELLED, not measured — {axis['note']}"
    if axis["kind"] == "counted":
        return f"{acc}; x axis: counted, not timed — {axis['note']}"
    return f"{acc}; latency: measured ({axis['label']}) on {devices}"


def agreement_text(p: dict[str, Any]) -> str:
    """``87.5 (75.0–100.0)``: agreement with the baseline and its interval, in percent; ``—`` when there is none."""
    if p.get("agreement") is None:
        return "—"
    return f"{_pct(p['agreement'])} ({_pct(p.get('agree_low'))}–{_pct(p.get('agree_high'))})"


def render(analysis: dict[str, Any], console: Any = None) -> None:
    """Print the analysis as rich tables: per section its frontier and budget table, then what is missing."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if console.width < 100:
        console.width = 100
    sections = [*analysis["suites"].values(), *([analysis["average"]] if analysis.get("average") else [])]
    lat = analysis["latency"]
    axis = analysis["latency_axis"]
    fmt = lambda x: axes.format_value(x, axis["unit"])
    console.print(
        f"[bold]lfbench pareto[/bold] {analysis['results_dir']}  model={analysis['model']}  "
        f"latency={lat}  {analysis['settings']['confidence']:.0%} bootstrap CI "
        f"(n_boot={analysis['settings']['n_boot']}, seed={analysis['settings']['seed']})",
        highlight=False,
    )
    console.print(axis_sentence(analysis), highlight=False, style="bold yellow" if axis["kind"] == "modelled" else None)
    for sec in sections:
        title = f"{sec['name']}: Pareto frontier ({len(sec['frontier'])} of {len(sec['points'])} points)"
        if sec["name"] == pareto.AVERAGE:
            title += f" over {', '.join(sec['suites'])}"
        t = Table(title=title)
        for col in ("method", "frames", lat, "accuracy %", "CI %", "n", "agree w/ baseline %"):
            t.add_column(col, justify="left" if col == "method" else "right")
        for p in sec["points"]:
            style = None if not p["dominated"] else "dim"
            ci = f"{_pct(p['ci_low'])}–{_pct(p['ci_high'])}"
            t.add_row(
                p["method"],
                str(p["frames"]),
                fmt(p["latency"]),
                _pct(p["accuracy"]),
                ci,
                str(p["n"]),
                agreement_text(p),
                style=style,
            )
        console.print(t)
        b = Table(title=f"{sec['name']}: best under a latency budget")
        for col in ("budget", "method", "frames", lat, "accuracy %"):
            b.add_column(col, justify="left" if col == "method" else "right")
        for r in sec["budget_table"]:
            b.add_row(
                fmt(r["budget_s"]),
                r["method"] or "(none fits)",
                str(r["frames"] or "—"),
                fmt(r["latency"]),
                _pct(r["accuracy"]),
            )
        console.print(b)
        for e in sec.get("errors", []):
            console.print(
                f"  cannot run: {e['method']} @ {e['frames']} frames: {e['reason']}", style="red", highlight=False
            )
        for e in sec.get("no_latency", []):
            console.print(
                f"  not on the plot: {e['method']} @ {e['frames']} frames: {e.get('reason') or 'no latency'}",
                style="yellow",
                highlight=False,
            )
        for m in sec.get("missing", []):
            why = "; ".join(f"{s}: {r}" for s, r in m["reasons"].items())
            console.print(
                f"  not averaged: {m['method']} @ {m['frames']} frames ({why})", style="yellow", highlight=False
            )
        for cmd in sec.get("sweeps", []):
            console.print(f"  to fill: {cmd}", highlight=False)
    for w in analysis.get("warnings", []):
        console.print(f"warning: {w}", style="yellow", highlight=False)


def _fmt_pct(x: Any) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def markdown(analysis: dict[str, Any], images: dict[str, str]) -> str:
    """``report.md`` text: provenance, then per section its plot (relative path), frontier and budget tables."""
    lat = analysis["latency"]
    axis = analysis["latency_axis"]
    fmt = lambda x: axes.format_value(x, axis["unit"])
    s = analysis["settings"]
    prov = analysis.get("provenance") or {}
    lines = [
        f"# lfbench pareto: {analysis['results_dir']}",
        "",
        f"**{axis_sentence(analysis)}**",
        "",
        f"- model: `{analysis['model']}`",
        f"- latency: `{lat}` ({axis['label']}; {axis['kind']}); accuracy: mean per-sample correctness "
        f"({s['nan_policy']})",
        *([f"- {s['agreement']}"] if s.get("agreement") else []),
        f"- intervals: {s['confidence']:.0%} percentile bootstrap, {s['n_boot']} resamples, seed {s['seed']}; "
        "the average's interval is a stratified bootstrap (resampled within each suite)",
        f"- budgets: {s['budgets']}",
        f"- runs: {len(prov.get('runs', []))}; devices: {', '.join(prov.get('devices', [])) or 'unknown'}; "
        f"git: {', '.join(prov.get('git_shas', [])) or 'unknown'}",
        "",
    ]
    for w in analysis.get("warnings", []):
        lines.append(f"> warning: {w}")
    sections = [*analysis["suites"].values(), *([analysis["average"]] if analysis.get("average") else [])]
    for sec in sections:
        name = sec["name"]
        lines += ["", f"## {name}" + (f" (mean over {', '.join(sec['suites'])})" if sec.get("suites") else ""), ""]
        if name in images:
            lines += [f"![Pareto plot: {name}]({images[name]})", ""]
        lines += [f"Frontier ({len(sec['frontier'])} of {len(sec['points'])} points):", ""]
        lines.append(
            md_table(
                ["method", "frames", lat, "accuracy %", "95% CI", "n", "agreement with baseline % (95% CI)"],
                [
                    [
                        f"`{p['method']}`",
                        p["frames"],
                        fmt(p["latency"]),
                        _fmt_pct(p["accuracy"]),
                        f"{_fmt_pct(p['ci_low'])}–{_fmt_pct(p['ci_high'])}",
                        p["n"],
                        agreement_text(p),
                    ]
                    for p in sec["frontier"]
                ],
            )
        )
        dom = [p for p in sec["points"] if p["dominated"]]
        if dom:
            lines += ["", "Dominated: " + ", ".join(f"`{p['method']}`@{p['frames']}" for p in dom)]
        agreeing = [p for p in sec["points"] if p.get("agreement") is not None]
        if agreeing:
            lines += [
                "",
                "Agreement with the baseline, every point (share of answers equal to the baseline's at the same "
                "frames; EffiVLM-Bench's loyalty):",
                "",
                md_table(
                    ["method", "frames", "accuracy %", "agreement % (95% CI)", "samples compared"],
                    [
                        [f"`{p['method']}`", p["frames"], _fmt_pct(p["accuracy"]), agreement_text(p),
                         p["agree_n"]]
                        for p in agreeing
                    ],
                ),
            ]
        lines += ["", "Best under a latency budget:", ""]
        lines.append(
            md_table(
                ["budget", "method", "frames", lat, "accuracy %"],
                [
                    [
                        fmt(r["budget_s"]),
                        f"`{r['method']}`" if r["method"] else "(none fits)",
                        r["frames"] or "—",
                        fmt(r["latency"]),
                        _fmt_pct(r["accuracy"]),
                    ]
                    for r in sec["budget_table"]
                ],
            )
        )
        if sec.get("errors"):
            lines += ["", "Cells that could not run:", ""]
            lines += [f"- `{e['method']}` @ {e['frames']} frames: {e['reason']}" for e in sec["errors"]]
        if sec.get("no_latency"):
            lines += ["", f"Not on the plot (no value on the `{lat}` axis):", ""]
            lines += [f"- `{e['method']}` @ {e['frames']} frames: {e.get('reason') or 'no latency'}"
                      for e in sec["no_latency"]]
        if sec.get("missing"):
            lines += ["", "Not averaged (missing or failed in some suite):", ""]
            for m in sec["missing"]:
                why = "; ".join(f"{k}: {v}" for k, v in m["reasons"].items())
                lines.append(f"- `{m['method']}` @ {m['frames']} frames — {why}")
        if sec.get("sweeps"):
            lines += ["", "To fill the missing cells:", "", "```", *sec["sweeps"], "```"]
    return "\n".join(lines) + "\n"


def write_report(
    results_dir: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    budgets: Sequence[float] | None = None,
    latency: str = "lat_e2e_s",
    suites: Sequence[str] | None = None,
    model: str | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    confidence: float = 0.95,
    at_scale: str | None = None,
) -> dict[str, Any]:
    """``lfbench pareto DIR``: analyse (:func:`liteframe_bench.pareto.analyze`), write ``pareto_<suite>.png/.svg``
    per suite and ``pareto_average.png/.svg``, ``analysis.json`` and ``report.md`` into ``out`` (default
    ``DIR/report``).

    Returns the analysis with ``written``: ``{"out", "report", "json", "plots": {section: {png, svg}}}``.
    """
    analysis = pareto.analyze(
        results_dir,
        latency=latency,
        budgets=budgets,
        suites=suites,
        model=model,
        seed=seed,
        n_boot=n_boot,
        confidence=confidence,
        at_scale=at_scale,
    )
    out = Path(out) if out is not None else Path(results_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    drawn: dict[str, dict[str, Any]] = {}
    sections = {**analysis["suites"], **({pareto.AVERAGE: analysis["average"]} if analysis["average"] else {})}
    for name, sec in sections.items():
        stem = out / f"pareto_{plots.slug(name)}"
        drawn[name] = plots.pareto_plot(
            sec,
            stem,
            latency=latency,
            confidence=confidence,
            axis=analysis["latency_axis"],
            note=axis_sentence(analysis),
        )
    images = {name: Path(p["png"]).name for name, p in drawn.items()}
    report = out / "report.md"
    report.write_text(markdown(analysis, images))
    js = out / "analysis.json"
    js.write_text(json.dumps(analysis, indent=2, default=str, allow_nan=False) + "\n")
    analysis["written"] = {
        "out": str(out),
        "report": str(report),
        "json": str(js),
        "plots": {k: {"png": v["png"], "svg": v["svg"]} for k, v in drawn.items()},
    }
    return analysis

__all__ = [
    "agreement_text",
    "axis_sentence",
    "markdown",
    "md_table",
    "render",
    "write_report",
]
