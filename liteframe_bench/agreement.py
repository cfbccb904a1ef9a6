"""Agreement with the baseline: how often a reduced method still gives the uncompressed model's answer.

EffiVLM-Bench (Wang et al., "EffiVLM-Bench: A Comprehensive Benchmark for Evaluating Training-Free Acceleration
in Large Vision-Language Models", ACL 2025) reports this as *loyalty*; accuracy alone hides it (a method can
keep the score while changing many answers, right ones for wrong ones).

Definition, for a reduced cell (any method other than :data:`BASELINE`) and the ``baseline`` cell of the same
model, frames and suite:

- samples are matched by ``doc_id`` (only documents present in both cells count);
- a sample's answer is the one the suite's scorer parsed (the ``answer`` column, e.g. the option letter) when
  both samples have one, else the raw prediction with whitespace collapsed and case folded;
- a sample that errored in both cells is left out (nothing to compare, e.g. a missing video: ``n_excluded``);
  one that errored in only one of them disagrees;
- ``agreement`` is the fraction of matched samples whose answers are equal, with a percentile bootstrap interval
  over the matched samples (:mod:`liteframe_bench.bootstrap`), seeded per cell.

It is computed when results are analysed, never stored: the baseline cell may come from another shard or a later
run, and a results folder without the baseline at that frame count simply has no agreement for the cell.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from liteframe_bench.bootstrap import bootstrap_means, cell_seed, percentile_interval

#: The method every reduced cell is compared with.
BASELINE = "baseline"
#: Columns of :func:`agreement_table` (besides ``boot``, the bootstrap means).
COLUMNS = ("agreement", "agree_low", "agree_high", "agree_n", "agree_excluded", "agree_note")


def _text(x: Any) -> str | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA else str(x)


def matched_agreement(reduced: pd.DataFrame, baseline: pd.DataFrame) -> tuple[np.ndarray, int]:
    """(1.0 / 0.0 per matched sample, samples left out because both errored) of two cells' sample rows."""
    cols = ["doc_id", "prediction", "answer", "error"]
    pairs = reduced[cols].merge(baseline[cols], on="doc_id", suffixes=("_r", "_b"))
    out, excluded = [], 0
    for r in pairs.to_dict("records"):
        err_r, err_b = _text(r["error_r"]) is not None, _text(r["error_b"]) is not None
        if err_r and err_b:
            excluded += 1
            continue
        if err_r or err_b:
            out.append(0.0)
            continue
        a_r, a_b = _text(r["answer_r"]), _text(r["answer_b"])
        if a_r is None or a_b is None:
            a_r, a_b = (" ".join((_text(r[k]) or "").split()).casefold() for k in ("prediction_r", "prediction_b"))
        out.append(float(a_r.strip() == a_b.strip()))
    return np.asarray(out, dtype=float), excluded


def agreement_table(
    cells: pd.DataFrame, samples: pd.DataFrame, *, seed: int = 0, n_boot: int = 1000, confidence: float = 0.95
) -> pd.DataFrame:
    """Agreement of every ok reduced cell with its baseline cell, indexed by ``cell_id``: :data:`COLUMNS` and
    ``boot`` (bootstrap means; NaN-filled when there is nothing to compare). ``agree_note`` says why a cell has
    none. Cells of different models are never compared."""
    ok = cells[cells["status"] == "ok"]
    base = ok[ok["method"] == BASELINE].sort_values("finished_at", na_position="first")
    base_of = {(b["model"], b["frames"], b["suite"]): b["cell_id"] for b in base.to_dict("records")}  # latest wins
    by_cell = dict(tuple(samples.groupby("cell_id")))
    empty = samples.iloc[:0]
    rows = []
    for r in ok[ok["method"] != BASELINE].to_dict("records"):
        out: dict[str, Any] = {"cell_id": r["cell_id"], "agree_note": None}
        bid = base_of.get((r["model"], r["frames"], r["suite"]))
        agree, excluded = (np.array([]), 0)
        if bid is None:
            out["agree_note"] = f"no {BASELINE} cell at {int(r['frames'])} frames on {r['suite']}"
        else:
            agree, excluded = matched_agreement(by_cell.get(r["cell_id"], empty), by_cell.get(bid, empty))
            if agree.size == 0:
                out["agree_note"] = f"no sample matched with the {BASELINE} cell (doc_ids, errors)"
        rng = np.random.default_rng(cell_seed(seed, "agreement", r["suite"], r["method"], int(r["frames"])))
        boot = bootstrap_means(agree, n_boot=n_boot, rng=rng)
        lo, hi = percentile_interval(boot, confidence)
        rows.append(
            out
            | {
                "agreement": float(agree.mean()) if agree.size else math.nan,
                "agree_low": lo,
                "agree_high": hi,
                "agree_n": int(agree.size),
                "agree_excluded": int(excluded),
                "boot": boot,
            }
        )
    return pd.DataFrame(rows, columns=["cell_id", *COLUMNS, "boot"]).set_index("cell_id")


__all__ = ["BASELINE", "COLUMNS", "agreement_table", "matched_agreement"]
