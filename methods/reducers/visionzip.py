"""VisionZip: per frame, dominant tokens by CLS attention plus contextual tokens merged by key similarity."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from liteframe_bench import ReducedTokens, Reducer, ReducerError, TokenGrid, register_reducer
from liteframe_bench.reduction import (
    check_target,
    cls_softmax,
    compute_dtype,
    cosine_normalize,
    count_from_target,
    require,
)

_REF = (
    "VisionZip (Yang et al., CVPR 2025); dvlab-research/VisionZip@3151f6df4fca36a4cd1c985e5956e725b1f9ad02, "
    "visionzip/clip_encoder.py L42-83 (metric: visionzip/utils.py L22-24, L89; defaults: README.md L127-128)"
)


def split_budget(k: int, contextual: float) -> tuple[int, int]:
    """(dominant, contextual) tokens of a per-frame budget k: contextual = floor(k * contextual)."""
    n_ctx = int(math.floor(k * contextual + 1e-9))
    return k - n_ctx, n_ctx


def contextual_targets(m: int, n_ctx: int) -> Tensor:
    """Positions (among the m remaining tokens, in raster order) of the n_ctx uniformly spaced targets."""
    step = max(1, m // n_ctx)
    return torch.arange(0, m, step)[:n_ctx]


def dominance(grid: TokenGrid, dtype: torch.dtype) -> Tensor:
    """[B*T, H*W] the original's dominance score: each head's CLS row of softmax over [CLS, patches] (patches only
    when ``grid.cls_self`` is None), CLS column dropped, summed over heads."""
    assert grid.cls_attn is not None
    B, T, H, W, _ = grid.shape
    heads = grid.cls_attn.shape[2]
    logits = grid.cls_attn.to(dtype).reshape(B * T, heads, H * W)
    own = None if grid.cls_self is None else grid.cls_self.to(dtype).reshape(B * T, heads)
    return cls_softmax(logits, own).sum(dim=1)


def head_mean_keys(keys: Tensor, heads: int) -> Tensor:
    """Keys [..., Ck] (heads concatenated) averaged over heads -> [..., Ck / heads]; unchanged if not divisible."""
    ck = keys.shape[-1]
    if heads <= 1 or ck % heads:
        return keys
    return keys.reshape(*keys.shape[:-1], heads, ck // heads).mean(dim=-2)


@register_reducer("visionzip")
@dataclass
class VisionZip(Reducer):
    """VisionZip per frame: top tokens by CLS attention (dominant) + uniformly chosen targets absorbing the rest.

    Algorithm, per frame of N = H*W tokens with budget k (``tokens / T``, or ``floor(N / ratio)``):

    1. Split k into n_dom = k - n_ctx dominant and n_ctx = floor(k * contextual) contextual tokens (the original's
       default is 54 dominant + 10 contextual = 64 tokens, hence contextual = 10/64).
    2. Dominant: the n_dom tokens with the largest CLS attention summed over heads (each head's CLS row of the
       softmax over [CLS, N patches], CLS column dropped: :func:`dominance`).
    3. Contextual: of the m = N - n_dom remaining tokens, in raster order, the targets are positions
       0, s, 2s, ... (s = max(1, m // n_ctx)), the first n_ctx of them. Every other remaining token joins the
       target with the most similar key (cosine of the keys averaged over heads, as the original's metric).
       ``merge=add`` (the original): contextual = x_target + mean(joined tokens) (x_target when none joined).
       ``merge=mean``: contextual = (x_target + sum(joined)) / (1 + n_joined), so size * x = the sum of its
       sources.
    4. Output: dominant + contextual tokens of every frame, re-sorted into raster (t, y, x) order (dominant and
       contextual tokens interleaved by position); pos = the token's own (dominant) or the target's
       (contextual) position; size = 1 for dominant tokens and 1 + n_joined for contextual ones. Exactly
       T * k tokens per sample.

    Where it runs: ``mlp`` by default, the pixel-shuffled InternViT features the MLP projector takes: the
    original reduces CLIP's features before LLaVA's projector, and ``mlp`` is that place in InternVL (``vit``
    is not possible: the output is not a regular grid). Each token there is a 2x2 patch group; the harness
    gives it, per head, the logit of the group's attention mass (log-sum-exp over its patches) and the
    CLS-to-CLS logit, so step 2's score is exactly the group's share of the full-resolution attention summed
    over heads (``cls_heads = "each"``); keys are averaged over the group.

    Reference: dvlab-research/VisionZip@3151f6df4fca36a4cd1c985e5956e725b1f9ad02, visionzip/clip_encoder.py
    L42-83 (dominant L49-57, contextual L59-80), visionzip/utils.py L22-24 and L89 (metric = keys averaged
    over heads), README.md L127-128 (dominant=54, contextual=10).

    Deviations from the original, stated plainly:
    - Where: the original runs on CLIP's penultimate-layer hidden states, attention and keys, before the
      projector; here it runs per frame on the tokens the harness gives (by default the pixel-shuffled
      features before the MLP, one per 2x2 patch group), with the encoder's last-layer CLS logits and keys.
    - No class token: the original always keeps CLIP's CLS token among the dominant ones (its ``dominant=54``
      means CLS + 53 patches); InternVL drops its CLS token, so all n_dom dominant tokens are patch tokens.
    - Attention: as the original (each head's softmax over CLS + patches, summed over heads) when the grid
      carries ``cls_self``, as the harness's always does; without it the softmax runs over the patch tokens
      only, which rescales each head's weights by a per-head constant before the head sum.
    - Order: the original outputs [CLS + dominant in raster order, contextual in target order]; here all
      tokens are re-sorted into raster order.
    - Budget: the original fixes 54 + 10 tokens per image; here the per-frame budget comes from ratio/tokens
      and is split by the ``contextual`` fraction (floor).
    - ``merge=mean`` is an option the original does not have; the default ``add`` is the original's formula.
    - Keys whose width is not a multiple of the head count (from the CLS logits) are used whole.
    - Similarities and merging run in float32 (float64 for float64 input); the output has the input dtype.
    """

    ratio: float | None = field(default=16.0, metadata={"help": "keep floor(H*W/ratio) tokens per frame"})
    tokens: int | None = field(
        default=None, metadata={"help": "token budget per sample (a multiple of T); wins over ratio"}
    )
    contextual: float = field(
        default=10 / 64, metadata={"help": "fraction of each frame's budget made of contextual tokens (10/64)"}
    )
    merge: Literal["add", "mean"] = field(
        default="add", metadata={"help": "contextual token: add = target + mean(joined) (original); mean = average"}
    )

    needs = frozenset({"cls_attn", "keys"})
    structured = False
    ordered = True
    exact = True
    default_at = "mlp"
    cls_heads = "each"
    reference = _REF

    def __post_init__(self) -> None:
        check_target(self.ratio, self.tokens)
        c = self.contextual
        require(
            isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) and 0 <= c <= 1,
            "contextual",
            c,
            "a fraction in [0, 1] (default 10/64)",
        )
        require(self.merge in ("add", "mean"), "merge", self.merge, "add, mean")

    def per_frame(self, T: int, H: int, W: int) -> int:
        """Tokens kept per frame; raises ReducerError when the target is impossible for this grid."""
        n = H * W
        if self.tokens is not None:
            if self.tokens % T:
                raise ReducerError(
                    f"tokens={self.tokens} does not split evenly over the {T} frames of the {T}x{H}x{W} grid; "
                    f"allowed: a multiple of {T} up to {T * n}"
                )
            if self.tokens // T > n:
                raise ReducerError(
                    f"tokens={self.tokens} asks {self.tokens // T} tokens from each {H}x{W} frame of the {T}x{H}x{W} "
                    f"grid; allowed: a multiple of {T} up to {T * n}"
                )
            return self.tokens // T
        return count_from_target(n, self.ratio, None, f"a {H}x{W} frame of the {T}x{H}x{W} grid")

    def target_tokens(self, T: int, H: int, W: int) -> int:
        return T * self.per_frame(T, H, W)

    def reduce(self, grid: TokenGrid, generator: torch.Generator | None = None) -> ReducedTokens:
        B, T, H, W, C = grid.shape
        n, F = H * W, B * T
        device = grid.x.device
        dt = compute_dtype(grid.x.dtype)
        k = self.per_frame(T, H, W)
        n_dom, n_ctx = split_budget(k, self.contextual)
        x = grid.x.reshape(F, n, C)
        heads = grid.cls_attn.shape[2]

        attn = dominance(grid, dt)  # [F, n]
        dom = torch.topk(attn, n_dom, dim=1).indices  # [F, n_dom]
        idx, toks = [dom], [x.gather(1, dom.unsqueeze(-1).expand(F, n_dom, C))]
        sizes = [torch.ones(F, n_dom, dtype=torch.long, device=device)]

        if n_ctx > 0:
            m = n - n_dom
            rest = torch.ones(F, n, dtype=torch.bool, device=device).scatter_(1, dom, False)
            rem = torch.arange(n, device=device).expand(F, n)[rest].view(F, m)  # remaining, raster order
            is_tgt = torch.zeros(m, dtype=torch.bool, device=device)
            is_tgt[contextual_targets(m, n_ctx).to(device)] = True
            tgt, src = rem[:, is_tgt], rem[:, ~is_tgt]  # [F, n_ctx], [F, m - n_ctx]

            metric = cosine_normalize(head_mean_keys(grid.keys.reshape(F, n, -1).to(dt), heads))
            pick = lambda t, i: t.gather(1, i.unsqueeze(-1).expand(*i.shape, t.shape[-1]))
            sim = torch.bmm(pick(metric, src), pick(metric, tgt).transpose(1, 2))  # [F, m - n_ctx, n_ctx]
            assign = sim.argmax(dim=-1)  # [F, m - n_ctx]: target slot each source joins
            # sums through a one-hot matrix over the whole frame (no copy of the sources)
            onehot = torch.zeros(F, n_ctx, n, dtype=dt, device=device)
            onehot.view(F, n_ctx * n).scatter_(1, assign * n + src, 1.0)  # onehot[f, assign, src] = 1
            sums = torch.bmm(onehot, x.to(dt))  # [F, n_ctx, C]
            counts = onehot.sum(dim=-1)
            x_tgt = pick(x, tgt).to(dt)
            if self.merge == "add":
                ctx = x_tgt + sums / counts.clamp_min(1).unsqueeze(-1)
            else:
                ctx = (x_tgt + sums) / (counts + 1).unsqueeze(-1)
            idx.append(tgt)
            toks.append(ctx.to(x.dtype))
            sizes.append(counts.long() + 1)

        idx_all = torch.cat(idx, dim=1)  # [F, k]
        order = torch.argsort(idx_all, dim=1)
        idx_all = idx_all.gather(1, order)
        out = torch.cat(toks, dim=1).gather(1, order.unsqueeze(-1).expand(F, k, C))
        size = torch.cat(sizes, dim=1).gather(1, order)
        t = torch.arange(T, device=device).repeat(B)[:, None].expand(F, k)
        pos = torch.stack([t, idx_all // W, idx_all % W], dim=-1)
        N = T * k
        return ReducedTokens(x=out.reshape(B, N, C), pos=pos.reshape(B, N, 3), size=size.reshape(B, N), grid=None)
