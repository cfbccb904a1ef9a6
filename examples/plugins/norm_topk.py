"""An example third-party reducer: drop this file in a folder and run ``lfbench --plugins FOLDER ls``.

It keeps, per frame, the tokens with the largest L2 norm (a cheap saliency proxy needing no auxiliary input)
and is written against the public API only, exactly as the built-ins are.
"""

from dataclasses import dataclass, field

import torch

from liteframe_bench import ReducedTokens, Reducer, TokenGrid, register_reducer
from liteframe_bench.reduction import check_target, count_from_target, gather_tokens, raster_index


@register_reducer("norm-topk")
@dataclass
class NormTopK(Reducer):
    """Keep each frame's highest-L2-norm tokens (example plugin)."""

    ratio: float | None = field(default=16.0, metadata={"help": "compression ratio per frame"})
    tokens: int | None = field(default=None, metadata={"help": "tokens kept per frame (instead of ratio)"})

    reference = "example plugin shipped with lfbench (examples/plugins/norm_topk.py)"

    def __post_init__(self) -> None:
        check_target(self.ratio, self.tokens)

    def target_tokens(self, T: int, H: int, W: int) -> int:
        return T * count_from_target(H * W, self.ratio, self.tokens, f"one {H}x{W} frame")

    def reduce(self, grid: TokenGrid, generator: torch.Generator | None = None) -> ReducedTokens:
        B, T, H, W, C = grid.shape
        k = self.target_tokens(T, H, W) // T
        x = grid.x.reshape(B * T, H * W, C)
        keep = x.float().norm(dim=-1).topk(k, dim=-1).indices.sort(dim=-1).values  # [B*T, k], raster order
        pos = gather_tokens(grid.positions().reshape(T, H * W, 3).repeat(B, 1, 1), keep)
        out = gather_tokens(x, keep)
        assert bool((raster_index(pos, H, W).diff(dim=-1) > 0).all())
        size = torch.ones(B, T * k, dtype=torch.int64, device=x.device)
        return ReducedTokens(out.reshape(B, T * k, C), pos.reshape(B, T * k, 3), size)
