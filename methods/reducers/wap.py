"""WAP: spatio-temporal Weighted Average Pooling, the LiteFrame paper's compression primitive."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from liteframe_bench import TokenGrid, register_reducer
from liteframe_bench.methods.reducers.pooling import BlockReducer, to_blocks
from liteframe_bench.reduction import compute_dtype, require


def wap_weights(
    cls_attn: Tensor,
    block: tuple[int, int, int],
    heads: str = "logits",
    tau: float = 1.0,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Per-cell weights [B, T', H', W', n] from per-head CLS logits [B, T, heads, H, W]; each block sums to 1.

    ``heads="logits"``: softmax of the head-mean logit within the block. ``heads="weights"``: softmax per head
    within the block, then the mean over heads.
    """
    s = to_blocks(cls_attn.permute(0, 1, 3, 4, 2).to(dtype), block) / tau  # [B, T', H', W', n, heads]
    if heads == "logits":
        return torch.softmax(s.mean(dim=-1), dim=-1)
    return torch.softmax(s, dim=-2).mean(dim=-1)


@register_reducer("wap")
@dataclass
class WAP(BlockReducer):
    """Weighted average pooling: one token per block, cells weighted by a softmax of the frame's CLS attention.

    For each non-overlapping (t, h, w) block b of the grid X [T, H, W, C], the output token is
    ``sum_{i in b} softmax_{j in b}(s_j / tau)_i * x_i`` with s_i the attention logit of frame t's class token to
    patch i in the encoder's last layer (LiteFrame, Sec. 3.1, Eq. 1). The paper's main setting is 16x:
    2x2 spatial x 4 temporal on the ViT grid before pixel shuffle, so the projector still applies.

    Where it runs: ``vit`` by default, as the paper applies it (its output is a regular grid, which the pixel
    shuffle and projector then take).

    Reference: LiteFrame paper (Sec. 3.1); no public code.
    Choices the paper leaves open (stated, configurable):
    - logits, not probabilities: a softmax over attention *probabilities* (each ~1e-3) is nearly uniform and
      collapses WAP to average pooling, so s are the pre-softmax logits q_cls.k_i/sqrt(d).
    - heads: ``logits`` (default) averages the per-head logits before the block softmax; ``weights`` takes the
      block softmax per head and averages the weights.
    - tau: softmax temperature (1 = the paper's formula).
    - positions: each output token reports its block's first cell; size = cells per block.
    """

    heads: Literal["logits", "weights"] = field(default="logits", metadata={"help": "how heads combine"})
    tau: float = field(default=1.0, metadata={"help": "softmax temperature over the block's logits"})

    needs = frozenset({"cls_attn"})
    reference = "LiteFrame paper (Sec. 3.1, Eq. 1, Table 1); no public code"

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.heads in ("logits", "weights"), "heads", self.heads, "logits, weights")
        require(self.tau > 0, "tau", self.tau, "a positive temperature")

    def pool(self, grid: TokenGrid, block: tuple[int, int, int]) -> Tensor:
        x, dt = grid.x, compute_dtype(grid.x.dtype)
        w = wap_weights(grid.cls_attn, block, self.heads, self.tau, dt)
        return torch.einsum("bthwn,bthwnc->bthwc", w, to_blocks(x.to(dt), block)).to(x.dtype)
