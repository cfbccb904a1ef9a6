"""Wall-clock timing done right: warm-up, repeats, median and spread; CUDA events on GPU, perf_counter on CPU."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class Timing:
    """Seconds per call over ``repeats`` timed calls (after ``warmup`` untimed ones)."""

    median: float
    q25: float
    q75: float
    min: float
    max: float
    repeats: int
    warmup: int
    clock: str

    def to_json(self) -> dict:
        return asdict(self)


def _quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    i = q * (len(xs) - 1)
    lo, hi = int(i), min(int(i) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (i - lo)


def summarize(samples: list[float], warmup: int, clock: str) -> Timing:
    return Timing(
        statistics.median(samples),
        _quantile(samples, 0.25),
        _quantile(samples, 0.75),
        min(samples),
        max(samples),
        len(samples),
        warmup,
        clock,
    )


def time_fn(
    fn: Callable[[], object], *, warmup: int = 1, repeats: int = 5, device: str | torch.device = "cpu"
) -> Timing:
    """Time ``fn()``.

    On CUDA, a pair of events brackets every call, all recorded in stream order, and the host synchronises once
    at the end (no per-call synchronisation skewing the work). On CPU, ``time.perf_counter`` around each call.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats={repeats} must be >= 1 and warmup={warmup} >= 0")
    dev = torch.device(device)
    for _ in range(warmup):
        fn()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(repeats)]
        for start, end in events:
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize(dev)
        return summarize([s.elapsed_time(e) / 1e3 for s, e in events], warmup, "cuda-events")
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return summarize(samples, warmup, "perf_counter")
