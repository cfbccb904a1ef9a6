"""``random``: seeded uniform token dropping, the baseline every informed reducer has to beat."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from liteframe_bench import ReducedTokens, Reducer, ReducerError, TokenGrid, register_reducer
from liteframe_bench.reduction import check_target, count_from_target, gather_tokens, require

_REF = (
    "UniPruneBench (Peng et al., 'Can Visual Input Be Compressed? A Visual Token Compression Benchmark for Large "
    "Multimodal Models', arXiv:2511.02650): random pruning as a baseline; no public code was read"
)


@register_reducer("random")
@dataclass
class RandomDrop(Reducer):
    """Keep a seeded uniformly random subset of the tokens, as many as the other reducers at the same ratio.

    Algorithm: with ``scope=frame`` (default) every frame keeps ``k = floor(H*W / ratio)`` of its tokens (or
    ``tokens / T``), drawn uniformly without replacement; with ``scope=clip`` the whole clip keeps
    ``floor(T*H*W / ratio)`` (or ``tokens``) drawn uniformly from all of its tokens, so a frame may keep none.
    Kept tokens are returned unchanged, in raster (t, y, x) order, each with size 1.

    Randomness: the draw comes from ``generator`` when the harness passes one, else from a CPU generator seeded
    with ``seed``, so a cell is reproducible and every video of a sweep gets the same kept positions for the same
    grid. Deviations from UniPruneBench, which prunes one image's tokens: a video's frames are pruned either
    frame by frame (``scope=frame``, the image setting applied per frame) or jointly (``scope=clip``); the samples
    of one batch (the tiles of a frame) share one draw, so a sample's kept positions never depend on its batch.

    It runs at ``mlp`` by default, on the pixel-shuffled features before the projector's MLP: the MLP is
    token-wise, so the kept tokens are exactly those of dropping after it (``at=proj``), for 1/ratio of the
    MLP's work.
    """

    ratio: float | None = field(default=16.0, metadata={"help": "compression ratio (tokens kept = N / ratio)"})
    tokens: int | None = field(default=None, metadata={"help": "tokens kept per sample (instead of ratio)"})
    scope: Literal["frame", "clip"] = field(
        default="frame", metadata={"help": "draw per frame (same count in every frame) or over the whole clip"}
    )
    seed: int = field(default=0, metadata={"help": "seed of the draw (when the harness passes no generator)"})

    needs = frozenset()
    structured = False
    ordered = True
    exact = True
    default_at = "mlp"
    reference = _REF

    def __post_init__(self) -> None:
        check_target(self.ratio, self.tokens)
        require(isinstance(self.seed, int) and self.seed >= 0, "seed", self.seed, "a non-negative integer")

    def target_tokens(self, T: int, H: int, W: int) -> int:
        if self.scope == "clip":
            return count_from_target(T * H * W, self.ratio, self.tokens, f"a {T}x{H}x{W} clip")
        if self.tokens is not None and self.tokens % T:
            raise ReducerError(
                f"tokens={self.tokens} does not split evenly over {T} frames (scope=frame); allowed: a multiple "
                f"of {T}, or scope=clip"
            )
        per_frame = None if self.tokens is None else self.tokens // T
        return T * count_from_target(H * W, self.ratio, per_frame, f"one {H}x{W} frame")

    def reduce(self, grid: TokenGrid, generator: torch.Generator | None = None) -> ReducedTokens:
        B, T, H, W, C = grid.shape
        K = self.target_tokens(T, H, W)
        g = generator if generator is not None else torch.Generator().manual_seed(self.seed)
        if self.scope == "clip":
            keep = torch.rand(T * H * W, generator=g).topk(K).indices.sort().values
        else:
            per_frame = torch.rand(T, H * W, generator=g).topk(K // T, dim=-1).indices.sort(dim=-1).values
            keep = (per_frame + torch.arange(T)[:, None] * H * W).flatten()
        keep = keep.to(grid.x.device).expand(B, K)
        x = gather_tokens(grid.x.reshape(B, T * H * W, C), keep)
        pos = gather_tokens(grid.positions().reshape(1, T * H * W, 3).expand(B, -1, -1), keep)
        return ReducedTokens(x, pos, torch.ones(B, K, dtype=torch.int64, device=x.device))
