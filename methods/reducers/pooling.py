"""Block reducers over a regular spatio-temporal grid: identity, average/max pooling, subsampling.

They partition the grid into non-overlapping (t, h, w) blocks and return one token per block, so the
output is again a regular grid: they may run on the ViT patch grid before InternVL's pixel shuffle
(``default_at = "vit"``), which is where the LiteFrame paper applies them (Table 1: "Average/Max Pooling,
Subsampling" baselines at 16x = 2x2 spatial x 4 temporal). WAP (wap.py) shares this machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from liteframe_bench import ReducedTokens, Reducer, ReducerError, TokenGrid, register_reducer
from liteframe_bench.interfaces import grid_positions
from liteframe_bench.reduction import check_target, compute_dtype, require

#: How a compression ratio maps to a (t, h, w) block when no explicit ``block`` is given: spatial 2x2 first,
#: then temporal up to 4, then spatial 4x4, then temporal again. 16x = (4, 2, 2) as in the LiteFrame paper.
RATIO_BLOCKS: dict[int, tuple[int, int, int]] = {
    1: (1, 1, 1),
    2: (2, 1, 1),
    4: (1, 2, 2),
    8: (2, 2, 2),
    16: (4, 2, 2),
    32: (2, 4, 4),
    64: (4, 4, 4),
    128: (8, 4, 4),
    256: (16, 4, 4),
}


def parse_block(text: str) -> tuple[int, int, int]:
    """``"4x2x2"`` -> (4, 2, 2)."""
    parts = text.lower().split("x")
    ok = len(parts) == 3 and all(p.strip().isdigit() and int(p) >= 1 for p in parts)
    require(ok, "block", text, "TxHxW with positive integers, e.g. 4x2x2")
    t, h, w = (int(p) for p in parts)
    return t, h, w


def to_blocks(x: Tensor, block: tuple[int, int, int]) -> Tensor:
    """[B, T, H, W, C] -> [B, T', H', W', bt*bh*bw, C], cells of a block in (t, y, x) order."""
    B, T, H, W, C = x.shape
    bt, bh, bw = block
    x = x.reshape(B, T // bt, bt, H // bh, bh, W // bw, bw, C).permute(0, 1, 3, 5, 2, 4, 6, 7)
    return x.reshape(B, T // bt, H // bh, W // bw, bt * bh * bw, C)


@dataclass
class BlockReducer(Reducer):
    """Shared parameters and bookkeeping of the block reducers (not registered itself)."""

    ratio: float | None = field(default=16.0, metadata={"help": f"compression ratio; one of {sorted(RATIO_BLOCKS)}"})
    tokens: int | None = field(default=None, metadata={"help": "token budget per sample (instead of ratio)"})
    block: str | None = field(
        default=None, metadata={"help": "explicit TxHxW block, e.g. 4x2x2 (overrides ratio/tokens)"}
    )

    structured = True
    ordered = True
    exact = True
    default_at = "vit"

    def __post_init__(self) -> None:
        if self.block is not None:
            parse_block(self.block)
            return
        check_target(self.ratio, self.tokens)
        if self.tokens is None:
            require(
                float(self.ratio).is_integer() and int(self.ratio) in RATIO_BLOCKS,
                "ratio",
                self.ratio,
                f"one of {sorted(RATIO_BLOCKS)} (or give block=TxHxW)",
            )

    def block_for(self, T: int, H: int, W: int) -> tuple[int, int, int]:
        """The (t, h, w) block used on a T x H x W grid; ReducerError when it does not tile the grid."""
        if self.block is not None:
            block, why = parse_block(self.block), f"block={self.block}"
        else:
            if self.tokens is not None:
                n = T * H * W
                if n % self.tokens or n // self.tokens not in RATIO_BLOCKS:
                    raise ReducerError(
                        f"tokens={self.tokens} on a {T}x{H}x{W} grid ({n} tokens) needs ratio {n / self.tokens:g}; "
                        f"block reducers allow ratios {sorted(RATIO_BLOCKS)} (or give block=TxHxW)"
                    )
                ratio = n // self.tokens
                why = f"tokens={self.tokens}"
            else:
                ratio = int(self.ratio)
                why = f"ratio={self.ratio:g}"
            block = RATIO_BLOCKS[ratio]
        if T % block[0] or H % block[1] or W % block[2]:
            raise ReducerError(
                f"{why} uses a {block[0]}x{block[1]}x{block[2]} (t x h x w) block, which does not tile the "
                f"{T}x{H}x{W} grid; allowed: T, H, W divisible by the block (choose frames accordingly)"
            )
        return block

    def target_tokens(self, T: int, H: int, W: int) -> int:
        bt, bh, bw = self.block_for(T, H, W)
        return (T // bt) * (H // bh) * (W // bw)

    def pool(self, grid: TokenGrid, block: tuple[int, int, int]) -> Tensor:
        """One token per block: [B, T, H, W, C] -> [B, T', H', W', C]."""
        raise NotImplementedError

    def offset(self, block: tuple[int, int, int]) -> tuple[int, int, int]:
        """Which cell of a block gives the output token its position (the first by default)."""
        return (0, 0, 0)

    def block_size(self, block: tuple[int, int, int]) -> int:
        return block[0] * block[1] * block[2]

    def reduce(self, grid: TokenGrid, generator: torch.Generator | None = None) -> ReducedTokens:
        B, T, H, W, C = grid.shape
        block = self.block_for(T, H, W)
        out = self.pool(grid, block)
        Tn, Hn, Wn = out.shape[1:4]
        (ot, oh, ow), (bt, bh, bw) = self.offset(block), block
        pos = grid_positions(T, H, W, grid.x.device)[ot::bt, oh::bh, ow::bw].reshape(1, -1, 3).expand(B, -1, -1)
        size = torch.full((B, Tn * Hn * Wn), self.block_size(block), dtype=torch.int64, device=grid.x.device)
        return ReducedTokens(out.reshape(B, -1, C), pos, size, grid=(Tn, Hn, Wn))


@register_reducer("identity")
@dataclass
class Identity(Reducer):
    """No reduction: every token kept in raster order (for parity checks and as the 1x point).

    Where it runs: ``proj`` by default, the tokens the LLM receives; it returns the baseline's tokens at any
    insertion point (the parity checks of the harness compare all three).
    """

    structured = True
    ordered = True
    exact = True
    default_at = "proj"
    reference = "none (pass-through)"

    def target_tokens(self, T: int, H: int, W: int) -> int:
        return T * H * W

    def reduce(self, grid: TokenGrid, generator: torch.Generator | None = None) -> ReducedTokens:
        B, T, H, W, C = grid.shape
        pos = grid.positions().reshape(1, -1, 3).expand(B, -1, -1)
        size = torch.ones(B, T * H * W, dtype=torch.int64, device=grid.x.device)
        return ReducedTokens(grid.x.reshape(B, -1, C), pos, size, grid=(T, H, W))


@register_reducer("avgpool")
@dataclass
class AvgPool(BlockReducer):
    """Spatio-temporal average pooling over non-overlapping blocks (LiteFrame Table 1 baseline).

    Where it runs: ``vit`` by default, the ViT grid before the pixel shuffle, where the paper applies its Table 1
    baselines (the pooled grid then goes through the projector as usual).
    """

    reference = "LiteFrame paper, Sec. 3.1 / Table 1 (baseline); no public code"

    def pool(self, grid: TokenGrid, block: tuple[int, int, int]) -> Tensor:
        x = grid.x
        return to_blocks(x.to(compute_dtype(x.dtype)), block).mean(dim=-2).to(x.dtype)


@register_reducer("maxpool")
@dataclass
class MaxPool(BlockReducer):
    """Spatio-temporal max pooling (per channel) over non-overlapping blocks (LiteFrame Table 1 baseline).

    Where it runs: ``vit`` by default, the ViT grid before the pixel shuffle, where the paper applies its Table 1
    baselines (the pooled grid then goes through the projector as usual).
    """

    reference = "LiteFrame paper, Sec. 3.1 / Table 1 (baseline); no public code"

    def pool(self, grid: TokenGrid, block: tuple[int, int, int]) -> Tensor:
        return to_blocks(grid.x, block).amax(dim=-2)


@register_reducer("subsample")
@dataclass
class Subsample(BlockReducer):
    """Keep one token per block (strided subsampling; LiteFrame Table 1 baseline).

    ``pick=first`` keeps the block's first cell (plain striding ``x[::bt, ::bh, ::bw]``); ``pick=center`` keeps
    the cell at offset (bt//2, bh//2, bw//2). The kept token stands for itself alone (size 1).

    Where it runs: ``vit`` by default, the ViT grid before the pixel shuffle, where the paper applies its Table 1
    baselines (the kept grid then goes through the projector as usual).
    """

    pick: Literal["first", "center"] = field(default="first", metadata={"help": "which cell of each block to keep"})
    reference = "LiteFrame paper, Sec. 3.1 / Table 1 (baseline); no public code"

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.pick in ("first", "center"), "pick", self.pick, "first, center")

    def offset(self, block: tuple[int, int, int]) -> tuple[int, int, int]:
        return (0, 0, 0) if self.pick == "first" else (block[0] // 2, block[1] // 2, block[2] // 2)

    def block_size(self, block: tuple[int, int, int]) -> int:
        return 1

    def pool(self, grid: TokenGrid, block: tuple[int, int, int]) -> Tensor:
        (ot, oh, ow), (bt, bh, bw) = self.offset(block), block
        return grid.x[:, ot::bt, oh::bh, ow::bw].contiguous()
