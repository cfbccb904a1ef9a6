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
Each kind is a module of this package (``figures/<kind>.py``, its builder in :data:`KINDS`); :mod:`.spec` loads
specs, :mod:`.base` holds what the kinds share, :mod:`.run` is ``lfbench figures``. Outputs go to ``DIR/figures``
(``out=`` to change): per figure PNG + SVG (plots) or MD + CSV (tables) and a
JSON of its numbers; ``figures.json`` and ``figures.md`` index them.
"""

from liteframe_bench.figures.latency_split_analytic import figures_analytic
from liteframe_bench.figures.run import ANALYTIC_KINDS, KINDS, render_figures, run_figures
from liteframe_bench.figures.spec import DEFAULT_SPEC, KIND_KEYS, canonical_method, is_registered, load_spec

__all__ = [
    "ANALYTIC_KINDS",
    "DEFAULT_SPEC",
    "KINDS",
    "KIND_KEYS",
    "canonical_method",
    "figures_analytic",
    "is_registered",
    "load_spec",
    "render_figures",
    "run_figures",
]
