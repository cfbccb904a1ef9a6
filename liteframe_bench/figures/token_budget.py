"""Kind ``token_budget`` (Fig. 3, right): baseline at N frames against a reducer at R x N frames for one visual-token
budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liteframe_bench import pareto, plots
from liteframe_bench.errors import SpecError
from liteframe_bench.figures.base import FigureData, strip_boot, write_json
from liteframe_bench.figures.spec import canonical_method


def build(F: FigureData, out: Path) -> dict[str, Any]:
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
                {"label": label, "method": m, "frames": f, **({"accuracy": None} if p is None else strip_boot(p))}
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
    files["json"] = write_json(out / f"{fig['id']}.json", data)
    return F.result(drawn, files, data)
