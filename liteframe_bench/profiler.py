"""Stage timing for one run: ``decode``, ``vision``, ``reduce``, ``project``, ``prefill``, ``generate``.

A :class:`StageClock` is handed through a method's ``encode`` and ``generate``. On CUDA every stage is
bracketed by CUDA events recorded in stream order and the host synchronises once, in :meth:`results`; on CPU
``time.perf_counter`` brackets the stage. Every stage is also a ``torch.profiler.record_function`` range,
so a trace shows the same names. ``mode="flops"`` counts FLOPs per stage with ``FlopCounterMode`` instead
(never inside a timed run).
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager

import torch

STAGES = ("decode", "vision", "reduce", "project", "prefill", "generate")


class StageClock:
    """Accumulates per-stage seconds (``mode="time"``), or FLOPs (``mode="flops"``), or nothing (``"off"``)."""

    def __init__(self, device: str | torch.device = "cpu", mode: str = "time"):
        if mode not in ("time", "flops", "off"):
            raise ValueError(f"mode={mode!r}; allowed: time, flops, off")
        self.device = torch.device(device)
        self.mode = mode
        self.cuda = self.device.type == "cuda"
        self._cpu: dict[str, float] = defaultdict(float)
        self._events: list[tuple[str, object, object]] = []
        self.flops: dict[str, int] = defaultdict(int)
        self.peak_bytes: dict[str, int] = {}

    @contextmanager
    def stage(self, name: str):
        if self.mode == "off":
            yield
            return
        with torch.profiler.record_function(f"lfbench::{name}"):
            if self.mode == "flops":
                from torch.utils.flop_counter import FlopCounterMode

                with FlopCounterMode(display=False) as counter:
                    yield
                self.flops[name] += counter.get_total_flops()
                return
            if self.cuda:
                torch.cuda.reset_peak_memory_stats(self.device)
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                yield
                end.record()
                self._events.append((name, start, end))
                peak = torch.cuda.max_memory_allocated(self.device)
                self.peak_bytes[name] = max(self.peak_bytes.get(name, 0), peak)
            else:
                t0 = time.perf_counter()
                yield
                self._cpu[name] += time.perf_counter() - t0

    def results(self) -> dict[str, float]:
        """Seconds per stage (synchronises the device once)."""
        if self.cuda and self._events:
            torch.cuda.synchronize(self.device)
            out: dict[str, float] = defaultdict(float)
            for name, start, end in self._events:
                out[name] += start.elapsed_time(end) / 1e3
            return dict(out)
        return dict(self._cpu)
