"""The x axis of a latency/accuracy frontier: a measured latency, a modelled one, or a cost count.

``lfbench pareto DIR --latency AXIS`` takes:

- a measured latency column of the cells: ``lat_e2e_s`` (default), ``lat_ttft_s``, ``lat_total_s``, one stage
  ``lat_<stage>_s``, or the short names ``e2e``, ``ttft`` (time to first token: vision + reduce + project +
  prefill), ``ttft_decode`` (with the video decode), ``total``;
- ``predicted:GPU`` / ``predicted_ttft:GPU``: the roofline lower bound of the analytic cost model
  (:mod:`liteframe_bench.cost`) for each cell's method and frames at the size ``at_scale`` (default
  ``internvl3-8b``) on ``GPU`` (any GPU the cost model knows): end to end without the video decode (vision
  through generate, the cell's fixed decode length), or up to the first token. Accuracy stays what was measured
  in the folder, so a frontier measured on one machine is redrawn as another machine would time it; this axis is
  **modelled**, not measured, and every report says so;
- ``flops``: the cell's FLOPs of one run (``flops_total``, from the cost model for the model that ran), or with
  ``at_scale`` the cost model's at that size;
- ``visual_tokens``: the visual tokens the LLM received (median over samples), or with ``at_scale`` the count at
  that size.

A cell with no value on the axis (an accuracy-only run, a method the cost model cannot model, a prompt over the
context at that size) is left off the plot and listed with its reason.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from liteframe_bench.errors import SpecError
from liteframe_bench.results import CELL_COLUMNS
from liteframe_bench.stages import TTFT_STAGES

#: Cell columns that can serve as the latency axis.
LATENCY_COLUMNS: tuple[str, ...] = tuple(c for c in CELL_COLUMNS if c.startswith("lat_") and c.endswith("_s"))
ALIASES = {"e2e": "lat_e2e_s", "ttft": "lat_ttft_s", "ttft_decode": "lat_ttft_decode_s", "total": "lat_total_s"}
MODELLED = ("predicted", "predicted_ttft")
COUNTS = ("flops", "visual_tokens")
DEFAULT_SCALE = "internvl3-8b"
#: The column of the cells table that holds a derived axis's values.
DERIVED = "axis_value"

MEASURED_LABELS = {
    "lat_e2e_s": "end-to-end latency, median (s)",
    "lat_total_s": "latency, sum of stage medians (s)",
    "lat_ttft_s": "time to first token, median (s; vision + reduce + project + prefill)",
    "lat_ttft_decode_s": "time to first token with the video decode, median (s)",
}


@dataclass(frozen=True)
class Axis:
    """What the x axis holds: ``kind`` is measured | modelled | counted, ``unit`` s | FLOP | tokens."""

    spec: str
    column: str
    label: str
    unit: str
    kind: str
    note: str
    gpu: str | None = None
    at_scale: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def allowed() -> str:
    return (
        f"{', '.join(LATENCY_COLUMNS)}, {', '.join(ALIASES)}, predicted:GPU, predicted_ttft:GPU, "
        f"{', '.join(COUNTS)}"
    )


def measured_label(column: str) -> str:
    if column in MEASURED_LABELS:
        return MEASURED_LABELS[column]
    stage = column.removeprefix("lat_").removesuffix("_s")
    return f"{stage} stage latency, median (s)"


def parse(spec: str, at_scale: str | None = None) -> Axis:
    """The :class:`Axis` a ``--latency`` value names; :class:`SpecError` listing what is allowed."""
    from liteframe_bench import cost

    text = str(spec).strip()
    column = ALIASES.get(text, text)
    if column in LATENCY_COLUMNS:
        if at_scale is not None:
            raise SpecError(
                f"at_scale={at_scale!r} only applies to a modelled or counted axis (predicted:GPU, "
                f"predicted_ttft:GPU, flops, visual_tokens); latency={text!r} is measured"
            )
        return Axis(text, column, measured_label(column), "s", "measured", "measured in the timing runs of the sweep")
    name, _, gpu = text.partition(":")
    if name in MODELLED:
        if not gpu:
            gpus = ", ".join(cost.GPUS)
            raise SpecError(f"latency={text!r} names no GPU; allowed: {name}:GPU with GPU one of {gpus}")
        g = cost.get_gpu(gpu)
        scale = at_scale or DEFAULT_SCALE
        cost.resolve_model(scale)
        what = "time to first token" if name == "predicted_ttft" else "latency without the video decode"
        return Axis(
            text,
            DERIVED,
            f"predicted {what.removesuffix(' without the video decode')} on {g.name.upper()} at {scale} "
            "(s, modelled)",
            "s",
            "modelled",
            f"roofline lower bound of lfbench's analytic cost model for each cell's method "
            f"and frames at {scale} on {g.label} (bf16, datasheet peaks), "
            + ("vision + reduce + project + prefill" if name == "predicted_ttft" else "vision through generate")
            + "; no kernel reaches these peaks, so real latencies are higher",
            gpu=g.name,
            at_scale=scale,
        )
    if text in COUNTS and not gpu:
        if at_scale is not None:
            cost.resolve_model(at_scale)
        where = f"the cost model at {at_scale}" if at_scale else "the model that ran"
        if text == "flops":
            return Axis(text, DERIVED, f"FLOPs of one run ({where}; analytic)", "FLOP", "counted",
                        f"analytic FLOPs (FlopCounterMode convention) of one run, {where}", at_scale=at_scale)
        return Axis(text, DERIVED, f"visual tokens to the LLM ({where})", "tokens", "counted",
                    f"visual tokens the LLM receives, {where}", at_scale=at_scale)
    raise SpecError(f"latency={text!r} is not an axis; allowed: {allowed()}")


def _modelled(axis: Axis, r: dict[str, Any]) -> tuple[float, str | None]:
    from liteframe_bench import cost

    new_tokens = int(r["new_tokens"]) if pd.notna(r.get("new_tokens")) else 16
    try:
        est = cost.estimate(axis.at_scale, str(r["method"]), int(r["frames"]), gpu=axis.gpu, new_tokens=new_tokens,
                            ops=False)
    except SpecError as e:
        return math.nan, f"not modelled: {e}"
    if "error" in est:
        return math.nan, f"not modelled at {axis.at_scale}: {est['error']}"
    if axis.spec.startswith("visual_tokens"):
        return float(est["tokens"]["visual"]), None
    if axis.spec.startswith("flops"):
        return float(est["totals"]["flops"]), None
    if not est["fits_context"]:
        return math.nan, f"cannot run at {axis.at_scale}: {est['context_reason']}"
    st = est["stages"]
    if axis.spec.startswith("predicted_ttft"):
        return sum(st[s]["predicted_s"] for s in TTFT_STAGES), None
    return float(est["totals"]["predicted_s"]), None


def values(axis: Axis, cells: pd.DataFrame) -> tuple[pd.Series, dict[str, str]]:
    """The axis value of every cell (index aligned with ``cells``) and, by ``cell_id``, why a cell has none."""
    reasons: dict[str, str] = {}
    if axis.kind == "measured":
        col = cells[axis.column].astype(float)
        for cid, v in zip(cells["cell_id"], col, strict=True):
            if not math.isfinite(v):
                reasons[cid] = "no latency (accuracy-only run)"
        return col, reasons
    out = []
    for r in cells.to_dict("records"):
        if axis.at_scale is None:
            column = "flops_total" if axis.spec == "flops" else "visual_tokens"
            v = float(r[column]) if pd.notna(r.get(column)) else math.nan
            why = None
            if not math.isfinite(v):
                source = r.get("flops_source") if isinstance(r.get("flops_source"), str) else "results of schema v1"
                why = (f"no FLOPs recorded ({source}); give at_scale to count them with the cost model"
                       if column == "flops_total" else "no visual-token count")
        else:
            v, why = _modelled(axis, r)
        out.append(v)
        if why:
            reasons[r["cell_id"]] = why
    return pd.Series(out, index=cells.index, dtype=float), reasons


def format_value(x: Any, unit: str) -> str:
    """A value on the axis for tables: ``12.3 ms`` / ``1.2 s``, ``3.4 TFLOP``, ``1,024``."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if unit == "FLOP":
        for scale, name in ((1e15, "PFLOP"), (1e12, "TFLOP"), (1e9, "GFLOP"), (1e6, "MFLOP")):
            if x >= scale:
                return f"{x / scale:.3g} {name}"
        return f"{x:.3g} FLOP"
    if unit == "tokens":
        return f"{x:,.0f}"
    return f"{x * 1e3:.3g} ms" if x < 1 else f"{x:.3g} s"


__all__ = ["ALIASES", "Axis", "DEFAULT_SCALE", "LATENCY_COLUMNS", "format_value", "parse", "values"]
