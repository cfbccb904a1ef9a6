"""Accuracy per synth question family, per cell: ``lfbench results families DIR``.

The synth suites' per-sample rows carry lmms-eval's ``doc_id`` (the question's index in the suite's eval split); the
family (count, appeared, order, detail, global) is read from the split itself, so the table is computed from the
stored predictions' correctness alone, independently of any aggregation lmms-eval did.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from liteframe_bench.errors import LfbenchError

SIZES = {"synth": "default", "synth_open": "default", "synth_tiny": "tiny"}


def family_table(directory: str | Path) -> pd.DataFrame:
    """Rows (method, frames, suite, family, accuracy, questions), families in the generator's order."""
    from liteframe_bench.results import ResultsDir
    from liteframe_bench.suites.synth import generator as g

    cells, samples = ResultsDir(directory).load()
    samples = samples[samples["suite"].isin(list(SIZES))]
    if samples.empty:
        raise LfbenchError(f"{directory}: no samples of a synth suite ({', '.join(SIZES)}) in these results")
    rows = []
    for suite, part in samples.groupby("suite"):
        docs = g.items(SIZES[suite], "eval")
        family = [d["family"] for d in docs]
        part = part.assign(family=[family[int(i)] for i in part["doc_id"]])
        for (method, frames, fam), grp in part.groupby(["method", "frames", "family"]):
            rows.append({"method": method, "frames": int(frames), "suite": suite, "family": fam,
                         "accuracy": float(grp["correct"].fillna(0.0).mean()), "questions": len(grp)})
        for (method, frames), grp in part.groupby(["method", "frames"]):
            rows.append({"method": method, "frames": int(frames), "suite": suite, "family": "overall",
                         "accuracy": float(grp["correct"].fillna(0.0).mean()), "questions": len(grp)})
    return pd.DataFrame(rows)


def wide(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, frames, suite), one column per family (accuracy %)."""
    from liteframe_bench.suites.synth import generator as g

    w = table.pivot_table(index=["method", "frames", "suite"], columns="family", values="accuracy").reset_index()
    order = [c for c in [*g.FAMILIES, "overall"] if c in w.columns]
    return w[["method", "frames", "suite", *order]].sort_values(["suite", "method", "frames"])
