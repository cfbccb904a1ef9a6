"""LLaVA-PruMerge / PruMerge+: keep CLS-salient tokens per frame and merge key-similar tokens into them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from liteframe_bench import ReducedTokens, Reducer, ReducerError, TokenGrid, register_reducer
from liteframe_bench.reduction import check_target, cls_softmax, compute_dtype, cosine_normalize, joint_logits, require

PRUMERGE_REF = (
    "42Shawn/LLaVA-PruMerge@097c04116a58465e4bcb58cec44a94018a68ff1a "
    "llava/model/multimodal_encoder/clip_encoder.py L34-47 (outlier_dectection), "
    "L85-171 (token_prune_merge_advanced), L174-281 (token_prune_merge_advanced_plus)"
)


def iqr_outlier_bound(n: int) -> int:
    """Most tokens out of ``n`` that can lie strictly above Q3 + 1.5 IQR (linear quantiles), at least 1."""
    return max(1, n - 1 - math.floor(0.75 * (n - 1)))


def iqr_outlier_count(attn: Tensor) -> Tensor:
    """Per row of ``attn`` [F, N]: how many values exceed Q3 + 1.5 IQR (numpy-style linear quantiles), >= 1."""
    q1, q3 = torch.quantile(attn, torch.tensor([0.25, 0.75], dtype=attn.dtype, device=attn.device), dim=-1)
    upper = q3 + 1.5 * (q3 - q1)
    count = (attn > upper.unsqueeze(-1)).sum(dim=-1)
    return count.clamp(1, iqr_outlier_bound(attn.shape[-1]))


def cls_attention(grid: TokenGrid, dtype: torch.dtype) -> Tensor:
    """[B*T, H*W] the original's CLS attention per frame: softmax of the one-head full-width logits over
    [CLS, patches] (patches only when ``grid.cls_self`` is None), the CLS column dropped."""
    assert grid.cls_attn is not None
    B, T, H, W, _ = grid.shape
    logits = joint_logits(grid.cls_attn.to(dtype), dim=2).reshape(B * T, H * W)
    own = None if grid.cls_self is None else joint_logits(grid.cls_self.to(dtype), dim=2).reshape(B * T)
    return cls_softmax(logits, own)


def plus_split(k: int) -> tuple[int, int]:
    """PruMerge+ at a fixed budget k: (tokens chosen by CLS attention, spatially uniform tokens)."""
    k_attn = math.ceil(k / 4)
    return k_attn, k - k_attn


@register_reducer("prumerge")
@dataclass
class PruMerge(Reducer):
    """LLaVA-PruMerge(+) per frame: keep tokens by CLS attention, add their key-nearest tokens weighted by attention.

    Algorithm (per frame of N = H*W tokens). CLS attention a = the CLS row of softmax over [CLS, patches] of the
    one-head, full-width logits (``joint_logits``: q.k / sqrt(C), as the original computes with the un-split
    q_proj/k_proj outputs), CLS column dropped (:func:`cls_attention`). Keep k tokens:
    - ``fixed``: the top-k by a (k = floor(N/ratio), or tokens/T), for equal-ratio comparisons;
    - ``adaptive``: the original's PruMerge: the tokens whose a is an IQR outlier (a > Q3 + 1.5 IQR,
      linear-interpolated quantiles as numpy.percentile), at least 1; ratio/tokens are ignored and the
      count varies per frame (reported through ``lengths``; ``target_tokens`` is the upper bound);
    - ``plus``: PruMerge+ at a fixed budget: ceil(k/4) tokens by attention plus k - ceil(k/4) spatially
      uniform tokens, evenly spaced in raster order over the tokens not already chosen.
    Merge: for every kept token i, its ``neighbors`` most key-cosine-similar tokens j among all the other
    tokens of the frame (kept or pruned, i itself excluded) give x_i' = x_i + sum_j a_j x_j, with a_j the
    raw (unnormalised) CLS attention and weight 1 on x_i (size = 1 + neighbors). With ``extra_token`` one
    more token per frame is sum over the pruned tokens of a_j x_j (size = number pruned).
    Output: per sample, the frames' tokens in ascending raster (t, y, x) order of their kept token.

    Where it runs: ``mlp`` by default, the pixel-shuffled InternViT features the MLP projector takes. The
    original reduces CLIP's patch features before LLaVA's MLP projector; ``mlp`` is the same place in
    InternVL (``vit`` is not possible: the output is not a regular grid). There each token is a 2x2 patch
    group: the harness combines the heads first (``cls_heads = "joint"``) and gives each group the logit of
    its attention mass (log-sum-exp over its patches) plus the CLS-to-CLS logit, so a is exactly the group's
    share of the full-resolution CLS attention over [CLS + all patches]; keys are averaged over the group.

    Reference: Shang et al., "LLaVA-PruMerge: Adaptive Token Reduction for Efficient Large Multimodal
    Models" (2024), 42Shawn/LLaVA-PruMerge@097c04116a58465e4bcb58cec44a94018a68ff1a
    llava/model/multimodal_encoder/clip_encoder.py L34-47 (outlier_dectection), L85-171
    (token_prune_merge_advanced), L174-281 (token_prune_merge_advanced_plus).

    Deviations from the original:
    - It is an image method; here it runs independently on every frame, and the IQR statistics are per
      frame (the original pools the whole batch of images into one percentile computation).
    - On the 2x2 groups (``mlp``, ``proj``) a token's attention is its group's summed attention and its key
      the mean of the group's keys; the original has one token per patch. Given a grid without ``cls_self``
      the softmax runs over the patch tokens only (a_j larger by 1 / (1 - a_cls)).
    - Extra token: the original (``token_prune_merge_advanced``) always appends one token summing the pruned
      tokens weighted by attention, so it outputs k + 1 per image; here it is off by default
      (``extra_token=False``) so that the count is k = N / ratio, the budget every 16x method shares.
    - ``fixed`` (top-k at a given ratio) is our addition; the original's ``reduction_ratio`` path with
      ``if_adaptive=False`` keeps int(N * ratio) tokens in the same way.
    - ``adaptive`` keeps exactly the number of outliers (at least 1); the original computes
      int(N * (outliers / N)), which float rounding can make one less, and keeps 0 tokens (then fails in
      PruMerge+) when there is no outlier.
    - ``plus`` has a fixed budget: the original PruMerge+ (inference path, L203-215) adds the arithmetic
      sequence 0, s, 2s, ... < 575 with s = int(int(1/outlier_ratio)/3), minus tokens already kept, to the
      adaptive outliers (so about 1/4 of its tokens come from attention, 3/4 from the uniform grid, and the
      count varies); its training path (L216-227) adds int(N*ratio) uniform tokens to as many top-k tokens,
      duplicates allowed. We keep ceil(k/4) by attention and k - ceil(k/4) distinct uniform tokens, so the
      count is exactly k and comparable to the other methods at the same ratio.
    - Kept tokens are output in ascending raster order; the original keeps top-k order (descending
      attention) followed by the uniform samples.
    - The extra token (``extra_token=True``) sits at the position of the pruned token with the highest
      attention and is sorted in with the kept tokens; the original appends it after all kept tokens.
    - ``neighbors`` is clamped to N - 1 (the original's topk(32) fails on fewer than 33 tokens).
    - Ties (equal attention or similarity, e.g. constant input) go to the lower raster index (stable sort);
      the original's torch.topk leaves tie order unspecified.
    - Computation in float32 (float64 for float64 input); key normalisation uses an eps
      (``cosine_normalize``), like the original's F.normalize.
    """

    ratio: float | None = field(
        default=16.0, metadata={"help": "keep floor(H*W/ratio) tokens per frame (fixed/plus; ignored by adaptive)"}
    )
    tokens: int | None = field(
        default=None, metadata={"help": "token budget per sample (wins over ratio); must split evenly over T frames"}
    )
    variant: Literal["fixed", "adaptive", "plus"] = field(
        default="fixed",
        metadata={"help": "fixed: top-k by CLS attention; adaptive: IQR outliers (count varies); "
                          "plus: PruMerge+ (1/4 by attention, 3/4 spatially uniform)"},
    )
    neighbors: int = field(
        default=32, metadata={"help": "key-nearest tokens merged into each kept token (clamped to H*W-1; 0 = prune)"}
    )
    extra_token: bool = field(
        default=False,
        metadata={"help": "add one token per frame: attention-weighted sum of the pruned (k+1/frame; the original "
                          "always adds it)"},
    )

    needs = frozenset({"cls_attn", "keys"})
    structured = False
    ordered = True
    exact = True
    default_at = "mlp"
    cls_heads = "joint"
    reference = f"Shang et al., LLaVA-PruMerge (2024); {PRUMERGE_REF}"

    def __post_init__(self) -> None:
        check_target(self.ratio, self.tokens)
        require(self.variant in ("fixed", "adaptive", "plus"), "variant", self.variant, "fixed, adaptive, plus")
        require(isinstance(self.neighbors, int) and self.neighbors >= 0, "neighbors", self.neighbors,
                "a number of tokens >= 0 (e.g. 32)")
        require(isinstance(self.extra_token, bool), "extra_token", self.extra_token, "true, false")
        self.needs = frozenset({"cls_attn", "keys"}) if self.neighbors > 0 else frozenset({"cls_attn"})
        self.exact = self.variant != "adaptive"

    # ------------------------------------------------------------------------------------------ targets

    def _keep_per_frame(self, T: int, H: int, W: int) -> int:
        """Kept tokens per frame (fixed/plus), or the upper bound (adaptive); without the extra token."""
        n = H * W
        grid = f"grid T={T}, H={H}, W={W}"
        if self.variant == "adaptive":
            k = iqr_outlier_bound(n)
        elif self.tokens is not None:
            if self.tokens % T != 0:
                raise ReducerError(
                    f"tokens={self.tokens} does not split evenly over the T={T} frames ({grid}); "
                    f"allowed: a multiple of {T}"
                )
            k = self.tokens // T
            if k > n:
                raise ReducerError(
                    f"tokens={self.tokens} exceeds the {T * n} tokens of the {grid}; allowed: up to {T * n}"
                )
        else:
            assert self.ratio is not None
            k = int(n // self.ratio)
            if k < 1:
                raise ReducerError(
                    f"ratio={self.ratio:g} is above the {n} tokens of a frame ({grid}); allowed: ratio <= {n}"
                )
        if self.extra_token and k >= n:
            raise ReducerError(
                f"extra_token=True needs at least one pruned token per frame, but {k} of the {n} tokens of a "
                f"frame are kept ({grid}); allowed: extra_token=false, or a larger ratio / smaller tokens"
            )
        return k

    def target_tokens(self, T: int, H: int, W: int) -> int:
        return T * (self._keep_per_frame(T, H, W) + int(self.extra_token))

    # ------------------------------------------------------------------------------------------- reduce

    def _select(self, a: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """Kept token indices [F, K] (raster order within the frame, valid ones first) and validity [F, K]."""
        F, n = a.shape
        dev = a.device
        by_attn = torch.sort(a, dim=-1, descending=True, stable=True).indices
        if self.variant == "plus":
            k_attn, k_uni = plus_split(k)
            chosen = by_attn[:, :k_attn]
            taken = torch.zeros(F, n, dtype=torch.long, device=dev).scatter_(1, chosen, 1)
            rest = (taken * n + torch.arange(n, device=dev)).argsort(dim=-1)[:, : n - k_attn]  # raster order
            step = (n - k_attn) / max(k_uni, 1)
            slots = ((torch.arange(k_uni, device=dev, dtype=torch.float64) + 0.5) * step).long()
            sel = torch.cat([chosen, rest[:, slots]], dim=1)
            valid = torch.ones_like(sel, dtype=torch.bool)
        elif self.variant == "adaptive":
            count = iqr_outlier_count(a)
            kmax = int(count.max())
            sel = by_attn[:, :kmax]
            valid = torch.arange(kmax, device=dev) < count.unsqueeze(-1)
        else:
            sel = by_attn[:, :k]
            valid = torch.ones_like(sel, dtype=torch.bool)
        key = torch.where(valid, sel, sel + n)
        order = key.argsort(dim=-1)
        return sel.gather(1, order), valid.gather(1, order)

    def reduce(self, grid: TokenGrid, generator: torch.Generator | None = None) -> ReducedTokens:
        B, T, H, W, C = grid.shape
        n = H * W
        F = B * T
        k = self._keep_per_frame(T, H, W)
        dev, dtype = grid.x.device, grid.x.dtype
        work = compute_dtype(dtype)
        assert grid.cls_attn is not None

        with torch.no_grad():
            a = cls_attention(grid, work)
            sel, valid = self._select(a, k)  # [F, K]
            K = sel.shape[1]
            x = grid.x.reshape(F, n, C).to(work)

            # Merge weights: 1 on the kept token, a_j on its key-nearest other tokens.
            weights = torch.zeros(F, K, n, dtype=work, device=dev)
            nb = min(self.neighbors, n - 1)
            if nb > 0:
                assert grid.keys is not None
                keys = cosine_normalize(grid.keys.reshape(F, n, -1).to(work))
                sim = keys.gather(1, sel.unsqueeze(-1).expand(F, K, keys.shape[-1])) @ keys.transpose(1, 2)
                sim.scatter_(2, sel.unsqueeze(-1), -math.inf)  # i itself is not a candidate
                near = torch.sort(sim, dim=-1, descending=True, stable=True).indices[..., :nb]  # [F, K, nb]
                weights.scatter_(2, near, a.gather(1, near.reshape(F, K * nb)).reshape(F, K, nb))
            weights.scatter_(2, sel.unsqueeze(-1), 1.0)
            out = weights @ x  # [F, K, C]
            pos = sel
            size = torch.full((F, K), 1 + nb, dtype=torch.long, device=dev)

            if self.extra_token:
                kept = torch.zeros(F, n, dtype=torch.bool, device=dev).scatter_(1, sel, valid)
                pruned_attn = torch.where(kept, torch.zeros_like(a), a)
                extra = pruned_attn.unsqueeze(1) @ x  # [F, 1, C]
                extra_pos = torch.where(kept, -math.inf, a).argmax(dim=-1, keepdim=True)
                out = torch.cat([out, extra], dim=1)
                pos = torch.cat([pos, extra_pos], dim=1)
                size = torch.cat([size, (n - kept.sum(-1, keepdim=True))], dim=1)
                valid = torch.cat([valid, torch.ones_like(extra_pos, dtype=torch.bool)], dim=1)

            # Per sample: frames in order, tokens by raster index; invalid (adaptive) slots to the end.
            M = pos.shape[1]
            flat = (torch.arange(T, device=dev).repeat(B) * n).unsqueeze(-1) + pos  # [F, M] raster in T x H x W
            flat, valid = flat.reshape(B, T * M), valid.reshape(B, T * M)
            order = torch.where(valid, flat, flat + T * n).argsort(dim=-1)
            lengths = valid.sum(dim=-1)
            N = int(lengths.max())
            order = order[:, :N]
            flat = flat.gather(1, order)
            keep = valid.gather(1, order)
            out = out.reshape(B, T * M, C).gather(1, order.unsqueeze(-1).expand(B, N, C))
            size = size.reshape(B, T * M).gather(1, order)

            out = torch.where(keep.unsqueeze(-1), out, torch.zeros_like(out))
            size = torch.where(keep, size, torch.zeros_like(size))
            flat = torch.where(keep, flat, torch.zeros_like(flat))

        tyx = torch.stack([flat // n, (flat % n) // W, flat % W], dim=-1)
        same = bool((lengths == N).all())
        return ReducedTokens(x=out.to(dtype), pos=tyx, size=size, lengths=None if same else lengths)
