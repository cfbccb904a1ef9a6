"""Helpers shared by reducer implementations: parameter checks, token targets, gathering by index."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from liteframe_bench.errors import ReducerError, SpecError


def require(ok: bool, field: str, value: object, allowed: str) -> None:
    """Raise :class:`SpecError` ``field=value is invalid; allowed: ...`` unless ``ok``."""
    if not ok:
        raise SpecError(f"{field}={value!r} is invalid; allowed: {allowed}")


def check_target(ratio: float | None, tokens: int | None) -> None:
    """Validate the common ``ratio`` / ``tokens`` pair (``tokens`` wins when both are set)."""
    require(ratio is None or (math.isfinite(ratio) and ratio >= 1), "ratio", ratio, "a number >= 1 (e.g. 16)")
    require(tokens is None or tokens >= 1, "tokens", tokens, "a positive token budget per sample")
    require(ratio is not None or tokens is not None, "ratio", ratio, "set ratio or tokens")


def count_from_target(n: int, ratio: float | None, tokens: int | None, what: str) -> int:
    """Tokens to keep out of ``n``: ``tokens`` if given, else ``floor(n / ratio)``; at least 1, at most n."""
    if tokens is not None:
        if tokens > n:
            raise ReducerError(f"tokens={tokens} exceeds the {n} tokens of {what}; allowed: 1..{n}")
        return tokens
    assert ratio is not None
    keep = int(n // ratio)
    if keep < 1:
        raise ReducerError(f"ratio={ratio:g} is above the {n} tokens of {what}; allowed: ratio <= {n}")
    return keep


def gather_tokens(x: Tensor, idx: Tensor) -> Tensor:
    """``x[b, idx[b, i]]`` for x [B, N, ...] and idx [B, K] -> [B, K, ...]."""
    shape = idx.shape + x.shape[2:]
    return x.gather(1, idx.reshape(*idx.shape, *([1] * (x.ndim - 2))).expand(shape))


def raster_index(pos: Tensor, H: int, W: int) -> Tensor:
    """Flat index t*H*W + y*W + x of (t, y, x) positions [..., 3]."""
    return (pos[..., 0] * H + pos[..., 1]) * W + pos[..., 2]


def cosine_normalize(x: Tensor, eps: float = 1e-6) -> Tensor:
    """L2-normalise the last dimension, safe for all-zero vectors (they stay zero)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


def joint_logits(per_head: Tensor, dim: int) -> Tensor:
    """Per-head logits -> the one-head logit over the full width, keeping ``dim`` (the heads) with size 1.

    With per-head logits l_h = q_h.k_h / sqrt(d), the full-width one-head logit q.k / sqrt(heads * d)
    equals sum_h l_h / sqrt(heads). Idempotent: a single head is returned unchanged.
    """
    return per_head.sum(dim=dim, keepdim=True) / math.sqrt(per_head.shape[dim])


def headwise_to_full_logits(cls_attn: Tensor) -> Tensor:
    """Per-head CLS logits [..., heads, H, W] -> single-head logits [..., H, W] over the full width
    (:func:`joint_logits`; used by PruMerge, whose original takes the one-head form)."""
    return joint_logits(cls_attn, dim=-3).squeeze(-3)


def cls_softmax(logits: Tensor, cls_self: Tensor | None) -> Tensor:
    """Softmax over the last dimension of patch logits [..., N], with the class token's own logit [...] as
    one more column when given (then dropped, as a ViT's CLS attention row without its CLS column)."""
    if cls_self is None:
        return logits.softmax(dim=-1)
    full = torch.cat([cls_self.unsqueeze(-1).to(logits.dtype), logits], dim=-1)
    return full.softmax(dim=-1)[..., 1:]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Accumulation dtype for reductions: float64 stays float64, everything else computes in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32
