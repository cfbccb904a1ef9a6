"""``lfbench figures``: every figure of a spec, each by its kind's module, plus the index and the console summary."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from liteframe_bench.errors import SpecError
from liteframe_bench.figures import (
    accuracy_table,
    accuracy_vs_frames,
    latency_accuracy_table,
    latency_split,
    latency_split_analytic,
    token_budget,
)
from liteframe_bench.figures import pareto as pareto_kind
from liteframe_bench.figures.base import FigureData, ResultsData, write_json
from liteframe_bench.figures.spec import load_spec

#: Each figure kind's builder, ``build(FigureData, out) -> figure result``, by the ``kind`` a spec writes; one module
#: per kind (``liteframe_bench/figures/<kind>.py``). ``latency_split_analytic`` needs no results:
#: ``latency_split_analytic.build(None, fig, out)``.
KINDS = {
    "latency_split": latency_split.build,
    "pareto": pareto_kind.build,
    "accuracy_vs_frames": accuracy_vs_frames.build,
    "token_budget": token_budget.build,
    "accuracy_table": accuracy_table.build,
    "latency_accuracy_table": latency_accuracy_table.build,
}
ANALYTIC_KINDS = {"latency_split_analytic": latency_split_analytic.build}


def index_md(result: dict[str, Any], out: Path) -> str:
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
        ResultsData(results_dir, model=sp["model"], seed=sp["seed"], n_boot=sp["n_boot"], confidence=sp["confidence"])
        if needs_results
        else None
    )
    out = Path(out) if out is not None else Path(results_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for f in figs:
        if f["kind"] == "latency_split_analytic":
            done.append(latency_split_analytic.build(None, f, out))
        else:
            done.append(KINDS[f["kind"]](FigureData(data, f, sp), out))
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
    index.write_text(index_md(result, out))
    result["index"] = str(index)
    result["json"] = write_json(out / "figures.json", result | {"json": str(out / "figures.json")})
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
