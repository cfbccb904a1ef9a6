"""The stages of one run and the clock that times them: the one module the pipeline, the profiler, the cost model,
the results store and the figures take stage names from.

A run is ``decode`` -> ``vision`` -> ``reduce`` -> ``project`` -> ``prefill`` -> ``generate`` (the pipeline's data
flow, :mod:`liteframe_bench.pipeline`). A :class:`StageClock` is handed through a method's ``encode`` and
``generate``. On CUDA every stage is bracketed by CUDA events recorded in stream order and the host synchronises
once, in :meth:`StageClock.results`; on CPU ``time.perf_counter`` brackets the stage. Every stage is also a
``torch.profiler.record_function`` range (``lfbench::<stage>``), so a trace shows the same names. ``mode="flops"``
counts FLOPs per stage with ``FlopCounterMode`` instead (never inside a timed run).

This module imports nothing from the rest of the package: everything that runs or reads stages imports it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager

import torch

#: Every stage of a run, in order (results columns ``t_<stage>_s``, ``lat_<stage>_s``, ``flops_<stage>``).
STAGES = ("decode", "vision", "reduce", "project", "prefill", "generate")
#: The stages the cost model prices (all but the video decode, which is not a model's work).
MODELLED_STAGES = STAGES[1:]
#: The vision side (what LiteFrame shrinks) and the LLM side of a run, as figures and the cost model split it.
VISION_SIDE = ("vision", "reduce", "project")
LLM_SIDE = ("prefill", "generate")
#: Time to first token: the stages before the first new token exists (prefill ends with its argmax). ``ttft``
#: starts from decoded frames; ``ttft_with_decode`` adds the video decode (a video file in, a token out).
TTFT_STAGES = ("vision", "reduce", "project", "prefill")


def flop_counter():
    """A ``FlopCounterMode`` that also counts CPU SDPA.

    torch 2.14's counter has no formula for ``aten._scaled_dot_product_flash_attention_for_cpu`` (it counts 0);
    we count it with torch's own SDPA formula, the one it applies to the CUDA attention kernels.
    """
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_sdpa(q, k, v, *args, out_shape=None, **kwargs):
        return sdpa_flop_count(q, k, v)

    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_sdpa}
    return FlopCounterMode(display=False, custom_mapping=mapping)


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
                with flop_counter() as counter:
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


def stage_overhead(device: str | torch.device = "cpu", n: int = 2000) -> float:
    """Seconds the clock itself adds per stage entry (record_function + timer), timed over ``n`` empty stages."""
    dev = torch.device(device)
    clock = StageClock(dev, "time")
    for _ in range(50):  # warm-up
        with clock.stage("x"):
            pass
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    clock = StageClock(dev, "time")
    for _ in range(n):
        with clock.stage("x"):
            pass
    clock.results()  # includes the one synchronise a real run pays
    return (time.perf_counter() - t0) / n
