"""``lfbench bench reducers``: every reducer at InternVL3's real shapes, timed beside one real InternViT layer.

Shapes (InternVL3-8B, 448 px frames, one tile per frame):
- ``vit``:  the ViT patch grid before pixel shuffle, [frames, 32, 32, 1024] (CLS logits from 16 heads).
- ``mlp``:  the pixel-shuffled features the MLP projector takes, [frames, 16, 16, 4096] (aux as at ``proj``).
- ``proj``: the projected tokens the LLM receives, [frames, 16, 16, 3584] (CLS logits and 1024-d keys pooled
  2x2 to that grid, one 1024-d global feature per frame).
The yardstick is one transformers ``InternVLVisionLayer`` (InternViT-300M config, random weights, SDPA
attention) on the same frames ([frames, 1025, 1024]); the encoder has 24 of them. Goal: each reducer at 16x
costs at most 0.25 of that layer (about 1% of the encoder).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from liteframe_bench import registry
from liteframe_bench.interfaces import Reducer, TokenGrid
from liteframe_bench.provenance import machine
from liteframe_bench.testing import random_grid
from liteframe_bench.timing import Timing, time_fn

GOAL_RATIO = 0.25
VIT_GRID = (32, 32, 1024)  # 448 px / patch 14 = 32, InternViT-300M width
MLP_GRID = (16, 16, 4096)  # after 2x2 pixel shuffle, 4 x InternViT-300M width
PROJ_GRID = (16, 16, 3584)  # after the MLP projector, Qwen2.5-7B width
GRIDS = {"vit": VIT_GRID, "mlp": MLP_GRID, "proj": PROJ_GRID}
VIT_HEADS, KEY_DIM = 16, 1024


def default_specs() -> list[str]:
    """Every registered reducer at 16x: ``ratio=16`` where it has a ratio, ``retain=1/16`` where a retention."""
    specs = []
    for e in registry.entries("reducer"):
        names = {p.name for p in e.params}
        specs.append(
            f"{e.name}:ratio=16" if "ratio" in names else f"{e.name}:retain=0.0625" if "retain" in names else e.name
        )
    return specs


def make_grid(at: str, frames: int, device: str, dtype: torch.dtype, seed: int = 0) -> TokenGrid:
    """Random tokens and auxiliary inputs at the real shape of insertion point ``at``."""
    H, W, C = GRIDS[at]
    return random_grid(
        1, frames, H, W, C, heads=VIT_HEADS, key_dim=KEY_DIM, global_dim=KEY_DIM, seed=seed, dtype=dtype, device=device
    )


def time_encoder_layer(frames: int, device: str, dtype: torch.dtype, warmup: int, repeats: int):
    """Time one real-size InternViT-300M layer (transformers, random weights, SDPA) on ``frames`` frames."""
    from transformers.models.internvl.configuration_internvl import InternVLVisionConfig
    from transformers.models.internvl.modeling_internvl import InternVLVisionLayer

    cfg = InternVLVisionConfig()  # defaults = InternViT-300M: 1024 wide, 16 heads, 448 px, patch 14
    cfg._attn_implementation = "sdpa"
    layer = InternVLVisionLayer(cfg).to(device=device, dtype=dtype).eval()
    shape = [frames, (cfg.image_size[0] // cfg.patch_size[0]) ** 2 + 1, cfg.hidden_size]
    h = torch.randn(*shape, generator=torch.Generator().manual_seed(0)).to(device=device, dtype=dtype)
    return time_fn(lambda: layer(h), warmup=warmup, repeats=repeats, device=device), shape


def run(
    specs: Sequence[str] | None = None,
    *,
    frames: int = 64,
    device: str = "cpu",
    dtype: str | None = None,
    warmup: int = 1,
    repeats: int = 3,
    progress: bool = True,
) -> dict:
    """Time each reducer and one encoder layer in the same process; return a JSON-ready report."""
    dt = getattr(torch, dtype) if dtype else (torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32)
    specs = list(specs) if specs else default_specs()
    reducers: list[tuple[str, Reducer]] = [(s, registry.create(s)) for s in specs]  # fail fast on a bad spec
    from tqdm.auto import tqdm

    bar = tqdm(total=len(reducers) + 1, desc="bench reducers", disable=not progress, leave=False)
    with torch.inference_mode():
        bar.set_postfix_str("InternViT layer")
        layer_t, layer_shape = time_encoder_layer(frames, device, dt, warmup, repeats)
        bar.update()
        grids: dict[str, TokenGrid] = {}
        rows = []
        for spec, red in reducers:
            at = red.default_at
            grid = grids[at] = grids.get(at) or make_grid(at, frames, device, dt)
            _, T, H, W, C = grid.shape
            bar.set_postfix_str(spec)
            out = red(grid)
            t: Timing = time_fn(lambda red=red, grid=grid: red(grid), warmup=warmup, repeats=repeats, device=device)
            ratio = t.median / layer_t.median
            rows.append(
                {
                    "spec": spec,
                    "canonical": registry.canonical_spec(red),
                    "at": at,
                    "shape": [T, H, W, C],
                    "tokens_in": T * H * W,
                    "tokens_out": max(out.num_tokens),
                    "timing": t.to_json(),
                    "median_ms": t.median * 1e3,
                    "ratio_to_layer": ratio,
                    "meets_goal": ratio <= GOAL_RATIO,
                }
            )
            bar.update()
    bar.close()
    return {
        "benchmark": "reducers",
        "frames": frames,
        "dtype": str(dt).removeprefix("torch."),
        "goal_ratio_to_layer": GOAL_RATIO,
        "layer": {
            "what": "transformers InternVLVisionLayer, InternViT-300M config (1024 wide, 16 heads), random init, sdpa",
            "shape": layer_shape,
            "timing": layer_t.to_json(),
            "median_ms": layer_t.median * 1e3,
        },
        "reducers": rows,
        "machine": machine(device),
    }


def render(report: dict) -> None:
    """Print the report as a rich table."""
    from rich.console import Console
    from rich.table import Table

    lay = report["layer"]
    table = Table(
        title=f"Reducers at real InternVL3 shapes, {report['frames']} frames, {report['dtype']} "
        f"on {report['machine']['device_name']}"
    )
    for col in ("reducer", "at", "grid T×H×W×C", "tokens in→out", "median ms", "IQR ms", "÷ 1 ViT layer", "goal ≤0.25"):
        table.add_column(col, justify="left" if col in ("reducer", "at") else "right")
    for r in report["reducers"]:
        t = r["timing"]
        table.add_row(
            r["spec"],
            r["at"],
            "×".join(map(str, r["shape"])),
            f"{r['tokens_in']}→{r['tokens_out']}",
            f"{r['median_ms']:.2f}",
            f"{(t['q75'] - t['q25']) * 1e3:.2f}",
            f"{r['ratio_to_layer']:.4f}",
            "yes" if r["meets_goal"] else "[red]NO[/red]",
        )
    lt = lay["timing"]
    table.add_row(
        "InternViT layer (1 of 24)",
        "—",
        "×".join(map(str, lay["shape"])),
        "—",
        f"{lay['median_ms']:.1f}",
        f"{(lt['q75'] - lt['q25']) * 1e3:.1f}",
        "1",
        "—",
        style="bold",
    )
    Console(width=max(Console().width, 160)).print(table)
