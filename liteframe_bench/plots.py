"""Plots: PNG + SVG through matplotlib's Agg canvas (no display, no pyplot state).

- :func:`pareto_plot` draws one section of :func:`liteframe_bench.pareto.analyze` (a suite or the average):
  log-scale latency, one colour per method (stable across plots and runs), one marker per frame count,
  bootstrap CI error bars, the frontier as a step line, dominated points faded.
- :func:`latency_split_plot`, :func:`accuracy_frames_plot`, :func:`grouped_bars_plot` serve the paper figures
  (:mod:`liteframe_bench.figures`).

Drawings only: the numbers come from :mod:`liteframe_bench.pareto`, the report and ``lfbench pareto`` from
:mod:`liteframe_bench.pareto_report`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from liteframe_bench import axes
from liteframe_bench.errors import LfbenchError

#: Fixed colours for the methods of the paper (tab10 order); others get a stable colour from a hash of the name.
METHOD_COLORS: dict[str, str] = {
    "baseline": "#1f77b4",
    "wap": "#d62728",
    "wap:ratio=4": "#ff9896",
    "wap:ratio=64": "#8c1a1a",
    "avgpool": "#2ca02c",
    "maxpool": "#98df8a",
    "subsample": "#bcbd22",
    "tome": "#9467bd",
    "prumerge": "#8c564b",
    "fastvid": "#e377c2",
    "visionzip": "#17becf",
    "liteframe": "#ff7f0e",
}
_FALLBACK = [
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#31a354",
    "#756bb1",
    "#636363",
    "#e6550d",
    "#969696",
    "#6baed6",
    "#fd8d3c",
    "#74c476",
    "#9e9ac8",
    "#a1d99b",
]
#: Markers by frame count; other counts take the next free marker in a fixed order.
FRAME_MARKERS: dict[int, str] = {
    1: "8",
    2: "p",
    4: "h",
    8: "o",
    16: "s",
    32: "^",
    64: "D",
    128: "v",
    256: "P",
    512: "X",
    1024: "*",
    2048: "<",
}
_MARKER_POOL = [">", "d", "H", "1", "2", "3", "4", "+", "x"]



def method_color(method: str) -> str:
    """A fixed colour per method; a spec spelling out the default ratio (``wap:ratio=16``) shares its name's."""
    method = re.sub(r"(?<=[:,])ratio=16(\.0*)?(,|$)", "", method).rstrip(":,")
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    h = int.from_bytes(hashlib.sha256(method.encode()).digest()[:4], "little")
    return _FALLBACK[h % len(_FALLBACK)]


def frame_marker(frames: int) -> str:
    f = int(frames)
    if f in FRAME_MARKERS:
        return FRAME_MARKERS[f]
    return _MARKER_POOL[f % len(_MARKER_POOL)]


def latency_label(column: str) -> str:
    """The axis label of a ``--latency`` value (:mod:`liteframe_bench.axes`), or the value itself."""
    try:
        return axes.parse(column).label
    except LfbenchError:
        return column


def slug(name: str) -> str:
    """A file-name-safe version of a suite or figure name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or "unnamed"


def _new_figure(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path_stem: str | os.PathLike) -> dict[str, str]:
    """Write ``<stem>.png`` (150 dpi) and ``<stem>.svg``; reproducible SVG ids, no timestamps."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".svg")
    with matplotlib.rc_context({"svg.hashsalt": "lfbench", "svg.fonttype": "none"}):
        fig.savefig(png, dpi=150, metadata={"Software": None})
        fig.savefig(svg, metadata={"Date": None, "Creator": None})
    return {"png": str(png), "svg": str(svg)}


def _legends(fig: Figure, methods: Sequence[str], frames: Sequence[int], extra: Sequence[Any] = ()) -> None:
    """Colour legend (methods) and marker legend (frames) outside the axes, on the right."""
    mh = [Line2D([], [], color=method_color(m), marker="o", linestyle="", markersize=7, label=m) for m in methods]
    fh = [
        Line2D([], [], color="#555555", marker=frame_marker(f), linestyle="", markersize=7, label=f"{f} frames")
        for f in frames
    ]
    if mh or extra:
        fig.legend(
            handles=mh + list(extra),
            title="method",
            loc="outside right upper",
            fontsize=8,
            title_fontsize=9,
            frameon=False,
        )
    if fh:
        fig.legend(handles=fh, title="frames", loc="outside right lower", fontsize=8, title_fontsize=9, frameon=False)


def pareto_plot(
    section: dict[str, Any],
    path_stem: str | os.PathLike,
    *,
    title: str | None = None,
    latency: str = "lat_e2e_s",
    confidence: float = 0.95,
    axis: dict[str, Any] | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Draw one analysis section (points with latency, accuracy, ci_low/ci_high, dominated) to PNG + SVG.

    ``axis``: the analysis's ``latency_axis`` (label, and whether it is measured or modelled: a modelled axis
    says so in the title); ``note``: a line under the plot (which axis is measured, which modelled).
    Returns ``{"png", "svg", "points", "frontier"}``.
    """
    pts = [p for p in section["points"] if p["latency"] is not None and p["accuracy"] is not None]
    fig = _new_figure(8.0, 5.0)
    ax = fig.add_subplot()
    for p in pts:
        acc = 100 * p["accuracy"]
        err = None
        if p.get("ci_low") is not None and p.get("ci_high") is not None:
            err = [[max(acc - 100 * p["ci_low"], 0)], [max(100 * p["ci_high"] - acc, 0)]]
        alpha = 0.3 if p["dominated"] else 1.0
        dom = p["dominated"]
        ax.errorbar(
            [p["latency"]],
            [acc],
            yerr=err,
            color=method_color(p["method"]),
            marker=frame_marker(p["frames"]),
            markersize=6 if dom else 8,
            markeredgecolor="none" if dom else "black",
            markeredgewidth=0.6,
            elinewidth=1.0,
            capsize=2.5,
            alpha=alpha,
            linestyle="",
            zorder=3,
        )
    front = sorted((p for p in pts if not p["dominated"]), key=lambda p: (p["latency"], -p["accuracy"]))
    extra = []
    if front:
        xs = [p["latency"] for p in front]
        ys = [100 * p["accuracy"] for p in front]
        ax.step(xs, ys, where="post", color="black", linewidth=1.2, alpha=0.7, zorder=2)
        extra.append(Line2D([], [], color="black", linewidth=1.2, label="Pareto frontier"))
        extra.append(Line2D([], [], color="#999999", marker="o", linestyle="", alpha=0.3, label="dominated"))
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xlabel((axis["label"] if axis else latency_label(latency)) + " — log scale")
    ax.set_ylabel(f"accuracy (%), {confidence:.0%} bootstrap CI")
    ax.grid(True, which="both", alpha=0.25)
    name = section.get("name", "")
    if title is None:
        title = f"Latency–accuracy Pareto: {name}"
        if section.get("suites"):
            title += f" (mean over {', '.join(section['suites'])})"
        if axis and axis["kind"] == "modelled":
            title += "\naccuracy measured, latency MODELLED (roofline lower bound)"
    ax.set_title(title, fontsize=11)
    if note:
        import textwrap

        fig.supxlabel(textwrap.fill(note, 110), fontsize=7, color="#444444")
    if not pts:
        ax.text(0.5, 0.5, "no points", transform=ax.transAxes, ha="center", va="center")
    methods = sorted({p["method"] for p in pts})
    frames = sorted({int(p["frames"]) for p in pts})
    _legends(fig, methods, frames, extra)
    files = save(fig, path_stem)
    return files | {"points": len(pts), "frontier": len(front)}


def latency_split_plot(
    rows: Sequence[dict[str, Any]],
    path_stem: str | os.PathLike,
    *,
    title: str,
    unit: str = "s",
    note: str | None = None,
) -> dict[str, str]:
    """Fig. 1(b): per frame count, one stacked bar per method (vision side below, LLM side above), and the
    vision-side share against frames (log x). ``rows``: method, frames, vision_side_s, llm_side_s,
    ``status`` (ok | over_context | error | missing) and an optional ``label`` for marked bars."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    frames = sorted({int(r["frames"]) for r in rows})
    scale = 1e3 if unit == "ms" else 1.0
    fig = _new_figure(12.0, 4.8)
    ax, ax2 = fig.subplots(1, 2, width_ratios=[1.6, 1.0])
    width = 0.8 / max(len(methods), 1)
    by = {(r["method"], int(r["frames"])): r for r in rows}
    drawn = [r for r in rows if r.get("vision_side_s") is not None]
    fitting = [scale * (r["vision_side_s"] + r["llm_side_s"]) for r in drawn if r.get("status") != "over_context"]
    tallest = max((scale * (r["vision_side_s"] + r["llm_side_s"]) for r in drawn), default=0.0)
    # Bars over the context would dwarf the rest: clip the axis at 1.3x the tallest bar that fits, label the rest.
    ymax = 1.3 * max(fitting) if fitting and tallest > 1.3 * max(fitting) else None
    for i, m in enumerate(methods):
        c = method_color(m)
        for j, f in enumerate(frames):
            r = by.get((m, f))
            x = j - 0.4 + width * (i + 0.5)
            if r is None or r.get("vision_side_s") is None:
                label = "missing" if r is None or r.get("status") == "missing" else "cannot run"
                ax.text(x, 0, label, rotation=90, ha="center", va="bottom", fontsize=6, color="#888888")
                continue
            v, llm = scale * r["vision_side_s"], scale * r["llm_side_s"]
            over = r.get("status") == "over_context"
            hatch = "xxx" if over else None
            ax.bar(x, v, width, color=c, edgecolor="black" if over else c, linewidth=0.5, hatch=hatch)
            ax.bar(
                x,
                llm,
                width,
                bottom=v,
                color=c,
                alpha=0.35,
                edgecolor="black" if over else c,
                linewidth=0.5,
                hatch=hatch,
            )
            if over:
                label = r.get("label") or "exceeds context"
                total = v + llm
                if ymax is not None and total > ymax:
                    shown = f"{total:,.0f}" if total >= 100 else f"{total:.3g}"
                    label += f" (total {shown} {unit}, clipped)"
                ax.text(
                    x,
                    min(total, 0.97 * ymax) if ymax is not None else total,
                    label,
                    rotation=90,
                    ha="center",
                    va="top" if ymax is not None and total > ymax else "bottom",
                    fontsize=6,
                    color="#b00000",
                    bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1},
                )
    ax.set_xticks(range(len(frames)), [str(f) for f in frames])
    ax.set_xlabel("frames")
    ax.set_ylabel(f"latency ({unit})")
    ax.set_title(title, fontsize=10)
    if ymax is not None:
        ax.set_ylim(0, ymax)
    else:
        ax.margins(y=0.18)
    ax.grid(True, axis="y", alpha=0.25)
    handles = [Patch(color=method_color(m), label=m) for m in methods]
    handles += [
        Patch(facecolor="#777777", label="vision side (vision+reduce+project)"),
        Patch(facecolor="#777777", alpha=0.35, label="LLM side (prefill+generate)"),
        Patch(facecolor="white", edgecolor="black", hatch="xxx", label="exceeds the LLM context"),
    ]
    ax.legend(handles=handles, fontsize=7, loc="upper left", frameon=False)
    for m in methods:
        pts = [(int(r["frames"]), r) for r in rows if r["method"] == m and r.get("vision_side_s") is not None]
        pts.sort(key=lambda t: t[0])
        if not pts:
            continue
        xs = [f for f, _ in pts]
        ys = [100 * r["vision_side_s"] / (r["vision_side_s"] + r["llm_side_s"]) for _, r in pts]
        ax2.plot(xs, ys, color=method_color(m), marker="o", label=m)
        for f, r in pts:
            if r.get("status") == "over_context":
                y = 100 * r["vision_side_s"] / (r["vision_side_s"] + r["llm_side_s"])
                ax2.plot([f], [y], marker="o", markersize=11, markerfacecolor="none", markeredgecolor="#b00000")
    ax2.set_xscale("log", base=2)
    ax2.set_xticks(frames, [str(f) for f in frames])
    ax2.minorticks_off()
    ax2.set_ylim(0, 100)
    ax2.set_xlabel("frames (log scale)")
    ax2.set_ylabel("vision side share of latency (%)")
    ax2.set_title("vision encoder share (red ring: exceeds context)", fontsize=10)
    ax2.grid(True, alpha=0.25)
    ax2.legend(fontsize=7, frameon=False)
    if note:
        fig.text(0.5, -0.02, note, ha="center", va="top", fontsize=7, color="#444444", wrap=True)
    return save(fig, path_stem)


def accuracy_frames_plot(
    panels: dict[str, list[dict[str, Any]]], path_stem: str | os.PathLike, *, title: str
) -> dict[str, str]:
    """Fig. 3 (left): accuracy vs frames (log x), one line per method, one panel per suite (and the average).
    ``panels``: name -> points (method, frames, accuracy, ci_low, ci_high)."""
    names = list(panels)
    fig = _new_figure(3.6 * max(len(names), 1) + 1.2, 3.8)
    axes = fig.subplots(1, max(len(names), 1), squeeze=False)[0]
    methods = sorted({p["method"] for pts in panels.values() for p in pts})
    for ax, name in zip(axes, names, strict=False):
        allf = sorted({int(p["frames"]) for p in panels[name]})
        for m in methods:
            pts = sorted((p for p in panels[name] if p["method"] == m), key=lambda p: p["frames"])
            if not pts:
                continue
            xs = [p["frames"] for p in pts]
            ys = [100 * p["accuracy"] for p in pts]
            ax.plot(xs, ys, color=method_color(m), marker="o", label=m)
            lo = [100 * p["ci_low"] if p.get("ci_low") is not None else y for p, y in zip(pts, ys, strict=True)]
            hi = [100 * p["ci_high"] if p.get("ci_high") is not None else y for p, y in zip(pts, ys, strict=True)]
            ax.fill_between(xs, lo, hi, color=method_color(m), alpha=0.15, linewidth=0)
        ax.set_xscale("log", base=2)
        if allf:
            ax.set_xticks(allf, [str(f) for f in allf])
        ax.minorticks_off()
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("frames (log scale)")
        ax.grid(True, alpha=0.25)
        if not panels[name]:
            ax.text(0.5, 0.5, "no results", transform=ax.transAxes, ha="center", va="center")
    axes[0].set_ylabel("accuracy (%)")
    if methods:
        handles = [Line2D([], [], color=method_color(m), marker="o", label=m) for m in methods]
        axes[-1].legend(handles=handles, fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(title, fontsize=11)
    return save(fig, path_stem)


def grouped_bars_plot(
    groups: dict[str, list[dict[str, Any]]], path_stem: str | os.PathLike, *, title: str, ylabel: str = "accuracy (%)"
) -> dict[str, str]:
    """Fig. 3 (right): for each group (suite), one bar per variant (``label``, ``method``, ``accuracy``,
    ``ci_low``, ``ci_high``; accuracy None draws a 'missing' note)."""
    names = list(groups)
    labels = list(dict.fromkeys(v["label"] for vs in groups.values() for v in vs))
    fig = _new_figure(max(6.0, 1.6 * len(names) + 3), 4.2)
    ax = fig.subplots()
    width = 0.8 / max(len(labels), 1)
    done = set()
    for j, g in enumerate(names):
        for v in groups[g]:
            i = labels.index(v["label"])
            x = j - 0.4 + width * (i + 0.5)
            if v.get("accuracy") is None:
                ax.text(x, 0, "missing", rotation=90, ha="center", va="bottom", fontsize=6, color="#888888")
                continue
            acc = 100 * v["accuracy"]
            err = None
            if v.get("ci_low") is not None:
                err = [[max(acc - 100 * v["ci_low"], 0)], [max(100 * v["ci_high"] - acc, 0)]]
            ax.bar(
                x,
                acc,
                width,
                yerr=err,
                capsize=2,
                color=method_color(v["method"]),
                alpha=0.9,
                edgecolor="black",
                linewidth=0.4,
                label=v["label"] if v["label"] not in done else None,
            )
            done.add(v["label"])
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="y", alpha=0.25)
    if done:
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save(fig, path_stem)


__all__ = [
    "FRAME_MARKERS",
    "METHOD_COLORS",
    "accuracy_frames_plot",
    "frame_marker",
    "grouped_bars_plot",
    "latency_label",
    "latency_split_plot",
    "method_color",
    "pareto_plot",
    "save",
    "slug",
]
