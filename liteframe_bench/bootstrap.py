"""Percentile bootstrap over per-sample outcomes (correctness, agreement): one place for the resampling rule.

Samples whose value is NaN are unscorable and left out (see ``pareto.NAN_POLICY``). Each caller seeds a
``numpy.random.Generator`` per cell from :func:`cell_seed`, so one cell's interval does not change when others are
added.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from liteframe_bench.errors import SpecError


def scores(correct: Iterable[float]) -> np.ndarray:
    """The scored samples' correctness as floats: NaN (unscorable) samples dropped (see ``pareto.NAN_POLICY``)."""
    x = np.asarray(list(correct) if not isinstance(correct, (np.ndarray, pd.Series)) else correct, dtype=float)
    return x[~np.isnan(x)]


def bootstrap_means(
    values: Sequence[float], *, n_boot: int = 1000, rng: np.random.Generator | None = None, seed: Any = 0
) -> np.ndarray:
    """``n_boot`` means of resamples (with replacement, same size) of the scored ``values`` (NaN dropped).

    Empty ``values`` give an array of NaN. Memory is bounded by drawing in chunks.
    """
    if n_boot < 1:
        raise SpecError(f"n_boot={n_boot!r} is invalid; allowed: a positive integer")
    x = scores(values)
    rng = rng if rng is not None else np.random.default_rng(seed)
    if x.size == 0:
        return np.full(n_boot, np.nan)
    out = np.empty(n_boot)
    chunk = max(1, min(n_boot, 4_000_000 // x.size))
    for s in range(0, n_boot, chunk):
        k = min(chunk, n_boot - s)
        out[s : s + k] = x[rng.integers(0, x.size, size=(k, x.size))].mean(axis=1)
    return out


def percentile_interval(means: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap means (NaN, NaN when they are NaN)."""
    if not 0 < confidence < 1:
        raise SpecError(f"confidence={confidence!r} is invalid; allowed: a number in (0, 1)")
    if means.size == 0 or np.isnan(means).any():
        return math.nan, math.nan
    a = (1 - confidence) / 2
    lo, hi = np.quantile(means, [a, 1 - a])
    return float(lo), float(hi)


def bootstrap_ci(
    correct: Sequence[float], *, n_boot: int = 1000, confidence: float = 0.95, seed: Any = 0
) -> tuple[float, float]:
    """95% (``confidence``) percentile bootstrap interval of mean correctness (NaN samples dropped)."""
    return percentile_interval(bootstrap_means(correct, n_boot=n_boot, seed=seed), confidence)


def stratified_bootstrap_ci(
    groups: Sequence[Sequence[float]], *, n_boot: int = 1000, confidence: float = 0.95, seed: Any = 0
) -> tuple[float, float]:
    """Interval of the mean over groups (suites) of per-group mean correctness: resample within each group."""
    if not groups:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = np.mean([bootstrap_means(g, n_boot=n_boot, rng=rng) for g in groups], axis=0)
    return percentile_interval(means, confidence)


def cell_seed(seed: int, *key: Any) -> list[int]:
    """Seed material for one cell's Generator: the user's seed plus a stable hash of the cell's key."""
    h = hashlib.sha256("\x1f".join(map(str, key)).encode()).digest()
    return [int(seed), int.from_bytes(h[:8], "little")]
