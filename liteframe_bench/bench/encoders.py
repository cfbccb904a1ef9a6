"""``lfbench bench encoders`` and ``lfbench bench temporal``: the LiteFrame student against its teacher.

``encoders``: the default student (:class:`~liteframe_bench.methods.liteframe.student.LiteFrameStudent`,
ViT-B/14 at 448 px with temporal and downsampling convolutions) beside InternViT-300M (transformers
``InternVLVisionModel`` with ``InternVLVisionConfig()`` defaults, SDPA attention), both with random weights at
their real size, on the same clip of ``frames`` 448 px frames. Parameters, FLOPs per frame (counted with
:func:`liteframe_bench.stages.flop_counter` on the ``meta`` device) and latency per frame, timed in the same
process with the two encoders interleaved call by call (so a load change on a shared machine hits both).
Goals: FLOPs ratio <= 0.15 and measured latency ratio <= 0.2. The teacher's WAP (a weighted sum, ~0.1% of
its cost) is not included.

``temporal`` (the paper's Table 2): four ways to model time at the student's width (768, 12 heads) on a
``frames``-frame clip, each as one student layer on the same ``[1, T, H, W, 768]`` grid:

- ``dw_conv``: spatial ViT block + depth-wise temporal convolution (kernel 3) — what the student uses;
- ``full_conv``: spatial ViT block + full (dense, 768 -> 768) temporal convolution (kernel 3);
- ``temporal_attn``: spatial ViT block + an interleaved temporal attention block (pre-norm multi-head
  attention over the T frames at each spatial position, residual; TimeSformer's divided attention);
- ``st_attn``: full spatio-temporal attention in place of spatial attention (one ViT block over all T*H*W
  tokens).

Each temporal branch is a pre-norm residual branch like the student's. A ``spatial only`` row (no temporal
modelling) is the reference; the "temporal part" columns are each branch alone (for ``st_attn``: its layer
minus the spatial-only layer). The default grid is 64 x 8 x 8 (4,096 tokens; the student's real grid is 32 x 32
then 16 x 16 per frame): full spatio-temporal attention over 64 x 32 x 32 = 65,536 tokens costs ~13 TFLOP for
the attention alone and cannot run on a 2-core CPU in minutes. All variants use the same grid.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch
from torch import Tensor, nn

from liteframe_bench.provenance import machine
from liteframe_bench.stages import flop_counter
from liteframe_bench.timing import summarize

GOAL_FLOPS_RATIO = 0.15
GOAL_LATENCY_RATIO = 0.2
TEMPORAL_GRID = (8, 8)
TEMPORAL_VARIANTS = ("dw_conv", "full_conv", "temporal_attn", "st_attn")


def _dtype(device: str, dtype: str | None) -> torch.dtype:
    return (
        getattr(torch, dtype) if dtype else (torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32)
    )


def count_flops(fn: Callable[[], object]) -> int:
    with flop_counter() as counter, torch.no_grad():
        fn()
    return counter.get_total_flops()


def time_interleaved(fns: dict[str, Callable[[], object]], *, warmup: int, repeats: int, device: str):
    """Time several callables round-robin (``a b c a b c ...``): each gets ``warmup`` untimed then ``repeats`` timed
    calls; a synchronise brackets every call on CUDA. Returns ``{name: Timing}`` and the per-round samples."""
    import time

    dev = torch.device(device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            samples[name].append(time.perf_counter() - t0)
    clock = "perf_counter+synchronize" if dev.type == "cuda" else "perf_counter"
    return {k: summarize(v, warmup, clock) for k, v in samples.items()}, samples


def _console():
    """A rich console; 160 columns when not writing to a terminal (pipes, logs), so wide tables are not cut."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


# ------------------------------------------------------------------------------------------------ encoders


def teacher_config():
    """InternViT-300M: transformers ``InternVLVisionConfig()`` defaults (1024 wide, 24 layers, 448 px, patch 14)."""
    from transformers.models.internvl.configuration_internvl import InternVLVisionConfig

    cfg = InternVLVisionConfig()
    cfg._attn_implementation = "sdpa"
    return cfg


def build_teacher(device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, cfg=None):
    from transformers.models.internvl.modeling_internvl import InternVLVisionModel

    cfg = cfg or teacher_config()
    with torch.device(device):
        model = InternVLVisionModel(cfg)
    return model.to(dtype=dtype).eval()


def teacher_flops(frames: int = 8, cfg=None) -> int:
    """FLOPs of the teacher ViT over ``frames`` frames, counted on the ``meta`` device."""
    cfg = cfg or teacher_config()
    model = build_teacher("meta", cfg=cfg)
    x = torch.empty(frames, cfg.num_channels, *cfg.image_size, device="meta")
    return count_flops(lambda: model(x))


def run_encoders(
    frames: int = 8,
    device: str = "cpu",
    dtype: str | None = None,
    warmup: int = 1,
    repeats: int = 3,
    progress: bool = True,
    student_cfg=None,
    teacher_cfg=None,
) -> dict:
    """Default student vs InternViT-300M on the same ``frames`` frames: parameters, FLOPs and latency per frame.

    ``student_cfg`` / ``teacher_cfg`` (a ``StudentConfig`` / ``InternVLVisionConfig``) replace the real sizes, for
    smoke tests with tiny models; both must take the same image size.
    """
    from tqdm.auto import tqdm

    from liteframe_bench.methods.liteframe.student import (
        LiteFrameStudent,
        StudentConfig,
        count_parameters,
        student_flops,
    )

    if frames < 1:
        raise ValueError(f"frames={frames}; allowed: a positive integer")
    dt = _dtype(device, dtype)
    scfg, tcfg = student_cfg or StudentConfig(), teacher_cfg or teacher_config()
    if tuple(tcfg.image_size) != (scfg.image_size, scfg.image_size):
        raise ValueError(f"student image_size {scfg.image_size} != teacher image_size {tuple(tcfg.image_size)}")
    bar = tqdm(total=3, desc="bench encoders", disable=not progress, leave=False)
    bar.set_postfix_str("FLOPs (meta)")
    flops = {"student": student_flops(scfg, frames), "teacher": teacher_flops(frames, tcfg)}
    bar.update()
    bar.set_postfix_str("build")
    torch.manual_seed(0)
    with torch.device(device):
        student = LiteFrameStudent(scfg)
    student = student.to(dtype=dt).eval()
    teacher = build_teacher(device, dt, tcfg)
    params = {"student": count_parameters(student), "teacher": count_parameters(teacher)}
    g = torch.Generator().manual_seed(0)
    clip = torch.randn(frames, 3, scfg.image_size, scfg.image_size, generator=g).to(device=device, dtype=dt)
    bar.update()
    bar.set_postfix_str(f"timing {frames} frames x {warmup}+{repeats}")
    with torch.inference_mode():
        out = student(clip[None])
        timings, samples = time_interleaved(
            {"student": lambda: student(clip[None]), "teacher": lambda: teacher(clip)},
            warmup=warmup,
            repeats=repeats,
            device=device,
        )
    bar.update()
    bar.close()
    paired = [s / t for s, t in zip(samples["student"], samples["teacher"], strict=True)]
    fl_ratio = flops["student"] / flops["teacher"]
    lat_ratio = timings["student"].median / timings["teacher"].median

    def row(name: str, what: str, grid: list[int]) -> dict:
        t = timings[name]
        return {
            "what": what,
            "parameters": params[name],
            "flops": flops[name],
            "gflops_per_frame": flops[name] / frames / 1e9,
            "output_grid": grid,
            "timing": t.to_json(),
            "median_s": t.median,
            "ms_per_frame": t.median / frames * 1e3,
            "iqr_ms_per_frame": (t.q75 - t.q25) / frames * 1e3,
        }

    return {
        "benchmark": "encoders",
        "frames": frames,
        "image_size": scfg.image_size,
        "dtype": str(dt).removeprefix("torch."),
        "goals": {"flops_ratio": GOAL_FLOPS_RATIO, "latency_ratio": GOAL_LATENCY_RATIO},
        "student": {
            **row(
                "student",
                "LiteFrame student, "
                + ("default" if student_cfg is None else "custom")
                + " StudentConfig, random init",
                list(out.grid.shape[1:]),
            ),
            "config": scfg.to_json(),
            "padded_frames": out.padded_frames,
        },
        "teacher": row(
            "teacher",
            "transformers InternVLVisionModel, "
            + ("InternVLVisionConfig() = InternViT-300M" if teacher_cfg is None else "custom config")
            + ", random init, sdpa",
            [
                frames,
                tcfg.image_size[0] // tcfg.patch_size[0],
                tcfg.image_size[1] // tcfg.patch_size[1],
                tcfg.hidden_size,
            ],
        ),
        "ratios": {
            "parameters": params["student"] / params["teacher"],
            "flops": fl_ratio,
            "latency": lat_ratio,
            "latency_paired_median": statistics.median(paired),
            "latency_paired_min": min(paired),
            "latency_paired_max": max(paired),
        },
        "meets_goals": {"flops": fl_ratio <= GOAL_FLOPS_RATIO, "latency": lat_ratio <= GOAL_LATENCY_RATIO},
        "machine": machine(device),
    }


def render_encoders(report: dict) -> None:
    """Print an encoders report as a rich table."""
    from rich.table import Table

    r = report["ratios"]
    table = Table(
        title=f"LiteFrame student vs InternViT-300M, {report['frames']} frames of {report['image_size']} px, "
        f"{report['dtype']} on {report['machine']['device_name']}"
    )
    for col in ("encoder", "params (M)", "GFLOP/frame", "ms/frame (median)", "IQR ms/frame", "output grid"):
        table.add_column(col, justify="left" if col == "encoder" else "right")
    for name in ("student", "teacher"):
        e = report[name]
        table.add_row(
            name,
            f"{e['parameters'] / 1e6:.2f}",
            f"{e['gflops_per_frame']:.2f}",
            f"{e['ms_per_frame']:.1f}",
            f"{e['iqr_ms_per_frame']:.1f}",
            "×".join(map(str, e["output_grid"])),
        )
    ok = lambda b: "yes" if b else "[red]NO[/red]"
    g = report["goals"]
    table.add_row(
        "student ÷ teacher",
        f"{r['parameters']:.3f}",
        f"{r['flops']:.3f} (goal ≤{g['flops_ratio']}: {ok(report['meets_goals']['flops'])})",
        f"{r['latency']:.3f} (goal ≤{g['latency_ratio']}: {ok(report['meets_goals']['latency'])})",
        f"paired {r['latency_paired_min']:.3f}–{r['latency_paired_max']:.3f}",
        "",
        style="bold",
    )
    _console().print(table)


# ------------------------------------------------------------------------------------------------ temporal


class FullTemporalConv(nn.Module):
    """``x + Conv1d_T(LN(x))`` with a dense ``C -> C`` kernel over time (spatial positions in the batch)."""

    def __init__(self, width: int, kernel: int = 3, eps: float = 1e-6):
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=eps)
        self.conv = nn.Conv1d(width, width, kernel, padding=kernel // 2)

    def forward(self, x: Tensor) -> Tensor:
        from liteframe_bench.methods.liteframe.student import temporal_conv

        return x + temporal_conv(self.norm(x), self.conv)  # same channels-last path as the depth-wise one


class TemporalAttention(nn.Module):
    """``x + Attn_T(LN(x))``: multi-head attention over the T frames at each spatial position (SDPA)."""

    def __init__(self, width: int, heads: int, eps: float = 1e-6):
        super().__init__()
        from liteframe_bench.methods.liteframe.student import Attention

        self.norm = nn.LayerNorm(width, eps=eps)
        self.attn = Attention(width, heads)

    def forward(self, x: Tensor) -> Tensor:
        B, T, H, W, C = x.shape
        y = self.norm(x).permute(0, 2, 3, 1, 4).reshape(B * H * W, T, C)
        return x + self.attn(y).reshape(B, H, W, T, C).permute(0, 3, 1, 2, 4)


class VariantLayer(nn.Module):
    """One student layer with a choice of temporal modelling (see the module docstring)."""

    def __init__(self, variant: str, width: int = 768, heads: int = 12, mlp_ratio: float = 4.0, kernel: int = 3):
        super().__init__()
        from liteframe_bench.methods.liteframe.student import Block, TemporalConv

        if variant not in ("spatial", *TEMPORAL_VARIANTS):
            raise ValueError(f"variant={variant!r}; allowed: spatial, {', '.join(TEMPORAL_VARIANTS)}")
        self.variant = variant
        self.block = Block(width, heads, int(width * mlp_ratio))
        self.temporal: nn.Module | None = {
            "dw_conv": lambda: TemporalConv(width, kernel),
            "full_conv": lambda: FullTemporalConv(width, kernel),
            "temporal_attn": lambda: TemporalAttention(width, heads),
        }.get(variant, lambda: None)()
        if isinstance(self.temporal, TemporalConv):  # the student zero-inits; random weights here, like the others
            nn.init.normal_(self.temporal.conv.weight, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        B, T, H, W, C = x.shape
        if self.variant == "st_attn":
            return self.block(x.reshape(B, T * H * W, C)).reshape(B, T, H, W, C)
        x = self.block(x.reshape(B * T, H * W, C)).reshape(B, T, H, W, C)
        return self.temporal(x) if self.temporal is not None else x


def run_temporal(
    frames: int = 64,
    device: str = "cpu",
    dtype: str | None = None,
    warmup: int = 1,
    repeats: int = 3,
    grid: tuple[int, int] = TEMPORAL_GRID,
    width: int = 768,
    heads: int = 12,
    progress: bool = True,
) -> dict:
    """Table 2: one student layer with each temporal-modelling variant on a ``[1, frames, *grid, width]`` grid."""
    from tqdm.auto import tqdm

    if frames < 1 or len(grid) != 2 or min(grid) < 1:
        raise ValueError(f"frames={frames}, grid={grid}; allowed: a positive frame count and (H, W) positive")
    dt = _dtype(device, dtype)
    H, W = grid
    names = ("spatial", *TEMPORAL_VARIANTS)
    bar = tqdm(total=2 * len(names), desc="bench temporal", disable=not progress, leave=False)
    # FLOPs on meta: whole layer and temporal part alone
    flops, part_flops, part_params = {}, {}, {}
    xm = torch.empty(1, frames, H, W, width, device="meta")
    for name in names:
        bar.set_postfix_str(f"FLOPs {name}")
        with torch.device("meta"):
            layer = VariantLayer(name, width, heads)
        flops[name] = count_flops(lambda layer=layer: layer(xm))
        part_params[name] = sum(p.numel() for p in layer.temporal.parameters()) if layer.temporal is not None else 0
        if layer.temporal is not None:
            part_flops[name] = count_flops(lambda layer=layer: layer.temporal(xm))
        bar.update()
    part_flops["st_attn"] = flops["st_attn"] - flops["spatial"]
    # timing: real tensors, one input, all layers round-robin; temporal parts alone in a second round-robin
    torch.manual_seed(0)
    layers = {n: VariantLayer(n, width, heads).to(device=device, dtype=dt).eval() for n in names}
    x = torch.randn(1, frames, H, W, width, generator=torch.Generator().manual_seed(0)).to(device=device, dtype=dt)
    bar.set_postfix_str(f"timing layers {warmup}+{repeats}")
    with torch.inference_mode():
        lt, _ = time_interleaved(
            {n: (lambda m=m: m(x)) for n, m in layers.items()}, warmup=warmup, repeats=repeats, device=device
        )
        bar.update(len(names))
        bar.set_postfix_str("timing temporal parts")
        parts = {n: (lambda m=m: m.temporal(x)) for n, m in layers.items() if m.temporal is not None}
        pt, _ = time_interleaved(parts, warmup=warmup, repeats=repeats, device=device)
    bar.update(len(names))
    bar.close()
    base = lt["dw_conv"].median
    rows = []
    for n in names:
        t = lt[n]
        part_s = pt[n].median if n in pt else (t.median - lt["spatial"].median if n == "st_attn" else 0.0)
        rows.append(
            {
                "variant": n,
                "layer_timing": t.to_json(),
                "layer_ms": t.median * 1e3,
                "layer_iqr_ms": (t.q75 - t.q25) * 1e3,
                "layer_gflops": flops[n] / 1e9,
                "temporal_ms": part_s * 1e3,
                "temporal_measured": n in pt,
                "temporal_timing": pt[n].to_json() if n in pt else None,
                "temporal_gflops": part_flops.get(n, 0) / 1e9,
                "temporal_params": part_params[n],
                "layer_latency_vs_dw_conv": t.median / base,
                "layer_flops_vs_dw_conv": flops[n] / flops["dw_conv"],
            }
        )
    return {
        "benchmark": "temporal",
        "frames": frames,
        "grid": [frames, H, W, width],
        "tokens": frames * H * W,
        "heads": heads,
        "dtype": str(dt).removeprefix("torch."),
        "grid_note": f"{frames}x{H}x{W} tokens of width {width} for every variant; the student's real grid "
        "(32x32 then 16x16 per frame) is too large for full spatio-temporal attention on a small CPU",
        "variants": rows,
        "machine": machine(device),
    }


def render_temporal(report: dict) -> None:
    """Print a temporal report (Table 2) as a rich table."""
    from rich.table import Table

    T, H, W, C = report["grid"]
    table = Table(
        title=f"Temporal modelling, one student layer on {T}×{H}×{W} tokens × {C}, {report['dtype']} "
        f"on {report['machine']['device_name']}"
    )
    cols = (
        "variant",
        "layer ms",
        "IQR ms",
        "layer GFLOP",
        "× dw_conv latency",
        "× dw_conv FLOPs",
        "temporal ms",
        "temporal GFLOP",
        "temporal params",
    )
    for col in cols:
        table.add_column(col, justify="left" if col == "variant" else "right")
    for r in report["variants"]:
        table.add_row(
            r["variant"] + (" (reference)" if r["variant"] == "spatial" else ""),
            f"{r['layer_ms']:.1f}",
            f"{r['layer_iqr_ms']:.1f}",
            f"{r['layer_gflops']:.2f}",
            f"{r['layer_latency_vs_dw_conv']:.2f}",
            f"{r['layer_flops_vs_dw_conv']:.2f}",
            f"{r['temporal_ms']:.1f}" + ("" if r["temporal_measured"] or r["variant"] == "spatial" else " (diff)"),
            f"{r['temporal_gflops']:.3f}",
            f"{r['temporal_params']:,}",
            style="bold" if r["variant"] == "dw_conv" else None,
        )
    _console().print(table)
