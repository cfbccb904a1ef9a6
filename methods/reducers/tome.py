"""ToMe (Token Merging) applied post hoc to a target token count over clips of frames."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from liteframe_bench import ReducedTokens, Reducer, ReducerError, TokenGrid, register_reducer
from liteframe_bench.reduction import check_target, compute_dtype, cosine_normalize, require

TOME_REF = "facebookresearch/ToMe@af95e4b1befa172dadccd8c81e223b10090f9579 tome/merge.py L18-97, L210-224"
VCF_REF = (
    "OpenGVLab/VideoChat-Flash@2f8e2f578897895519f11c7d3f9ff26a256b4743 "
    "llava-train_videochat/llava/model/multimodal_projector/tome16_mlp_hd64.py L16-69, L107-166"
)


def merge_schedule(p: int, target: int) -> list[int]:
    """Tokens removed at each bipartite step to go from ``p`` to ``target`` tokens.

    Halve (r = p // 2) while more than half must go, then remove the rest in one last step
    (VideoChat-Flash ``merge_tokens``): 3136 -> 1568 -> 784 -> 392 -> 196 -> 98 -> 64.
    """
    if not 1 <= target <= p:
        raise ValueError(f"target {target} must be in 1..{p}")
    rs: list[int] = []
    while p != target:
        if p - target <= p // 2:
            rs.append(p - target)
            break
        rs.append(p // 2)
        p -= p // 2
    return rs


def bipartite_step(metric: Tensor, r: int) -> tuple[Tensor, Tensor]:
    """One bipartite soft matching step on ``metric`` [G, N, D] removing ``r`` tokens (0 <= r <= N // 2).

    Returns ``dest`` [G, N] (the index, in the merged sequence of N - r tokens, that each token goes to)
    and ``rep`` [G, N - r] (the input index of each merged token's representative: itself for unmerged A
    tokens, the destination for B tokens). The merged order is [unmerged A by decreasing best score, all B]
    as in the original. Ties are broken towards the lower index (stable sort).
    """
    G, N, _ = metric.shape
    if not 0 <= r <= N // 2:
        raise ValueError(f"r={r} must be in 0..{N // 2} for {N} tokens")
    m = cosine_normalize(metric)
    a, b = m[:, ::2], m[:, 1::2]
    na, nb = a.shape[1], b.shape[1]
    dev = metric.device
    keep = na - r
    b_new = keep + torch.arange(nb, device=dev).expand(G, nb)
    if nb == 0:  # a single token: nothing to match
        return torch.zeros(G, N, dtype=torch.long, device=dev), torch.zeros(G, N, dtype=torch.long, device=dev)
    scores = a @ b.transpose(1, 2)  # [G, na, nb]
    best, best_b = scores.max(dim=-1)  # each A token's most similar B token
    order = torch.sort(best, dim=-1, descending=True, stable=True).indices  # [G, na]
    unm = order[:, r:]  # A tokens that stay
    dest_a = keep + best_b  # merged A tokens go to their B token...
    dest_a = dest_a.scatter(1, unm, torch.arange(keep, device=dev).expand(G, keep))  # ...unmerged ones stay
    dest = torch.empty(G, N, dtype=torch.long, device=dev)
    dest[:, ::2] = dest_a
    dest[:, 1::2] = b_new
    rep = torch.cat([2 * unm, 2 * torch.arange(nb, device=dev).expand(G, nb) + 1], dim=1)
    return dest, rep


def _sum_into(values: Tensor, dest: Tensor, n: int) -> Tensor:
    """Sum ``values`` [G, N, D] into ``n`` slots along dim 1 by ``dest`` [G, N]."""
    out = values.new_zeros(values.shape[0], n, values.shape[2])
    return out.scatter_reduce_(1, dest.unsqueeze(-1).expand_as(values), values, reduce="sum")


@register_reducer("tome")
@dataclass
class ToMe(Reducer):
    """ToMe bipartite soft matching, post hoc to a target count per clip of frames (VideoChat-Flash style).

    Algorithm. The T frames are cut into clips of ``clip`` consecutive frames; each clip's P = clip*H*W
    tokens are merged together (spatio-temporally) down to P/ratio tokens (or ``tokens / (T/clip)``).
    Steps follow VideoChat-Flash's schedule: r = P//2 while more than half must go, then a last r = P - target
    (e.g. 1024 -> 512 -> 256 -> 128 -> 64). Each step is ToMe's bipartite soft matching: L2-normalise the
    metric, split alternately A = even, B = odd indices, score A.B^T, give every A token its most similar B,
    and merge the r A tokens with the highest best score into their B tokens by size-weighted average
    (x' = sum(s*x)/sum(s), s' = sum(s), sizes start at 1); the unmerged A tokens and all B tokens are kept
    (N - r tokens). The metric is ``features`` (tokens averaged over ``head_dim``-sized channel chunks,
    VideoChat-Flash's ``x.reshape(b, p, heads, dim).mean(2)``) or ``keys`` (the ViT keys, averaged over heads
    the same way, as ToMe's ``k.mean(1)`` in tome/patch/timm.py L96). Each output token's position is that
    of its representative: the B token it was merged into (followed through every step), or itself.
    Note (as in the original): whenever r = N/2 with N even, every A token merges, so at power-of-two ratios
    the surviving representatives form a fixed lattice (e.g. every 16th raster index of a clip at ratio 16);
    only which tokens are averaged into them depends on the content.

    Where it runs: ``mlp`` by default, the pixel-shuffled ViT features the MLP projector takes: VideoChat-Flash's
    ``tome16_mlp_hd64`` projector merges the vision features and then applies its MLP to the merged tokens,
    which is this place in InternVL (``vit`` is not possible: the output is not a regular grid).

    Reference: Bolya et al., "Token Merging: Your ViT But Faster" (ICLR 2023),
    facebookresearch/ToMe@af95e4b1befa172dadccd8c81e223b10090f9579 tome/merge.py L18-97
    (bipartite_soft_matching), L210-224 (merge_wavg); post-hoc use to a target count:
    OpenGVLab/VideoChat-Flash@2f8e2f578897895519f11c7d3f9ff26a256b4743
    llava-train_videochat/llava/model/multimodal_projector/tome16_mlp_hd64.py L16-69, L107-166.

    Deviations from the originals:
    - Token granularity: VideoChat-Flash merges one token per ViT patch (its encoder has no pixel shuffle); at
      ``mlp`` each token is a 2x2 patch group, 4C wide, so the ``features`` metric averages 4C / head_dim chunks
      (the original: C / head_dim, which is its ViT's head count). ``keys`` are averaged over the group.
    - ``sort=True`` (default) re-sorts the output by source position (raster t, y, x); the original keeps
      ToMe's [unmerged A, B] order of the last step. ``sort=False`` keeps that order (then not ``ordered``).
    - The merged features are not built step by step: we track which output token every source token ends
      in and form each output as (sum of its source tokens) / size once at the end. This equals the
      original's repeated merge_wavg exactly in real arithmetic (only float rounding order differs).
    - The metric is carried as a size-weighted sum merged alongside the tokens and re-normalised at every
      step. For ``features`` this equals the original's recomputation from the merged features (the
      channel-chunk mean is linear). For ``keys`` post hoc there is no next ViT layer to recompute keys,
      so merged keys are the size-weighted average of their sources' keys.
    - Normalisation uses an eps (``cosine_normalize``) so all-zero tokens give finite scores; the original
      divides by the bare norm (NaN for a zero token).
    - Ties (equal best scores, e.g. constant input) go to the lower index (stable sort); the original's
      ``argsort`` leaves tie order unspecified.
    - The target per clip is floor(P / ratio) (``tokens`` must split evenly over the clips); VideoChat-Flash
      hard-codes 16 tokens per frame of a clip (64 for a single image). A target equal to P (ratio 1) returns
      the clip unchanged instead of failing its ``assert``.
    - Similarities and sums are computed in float32 (float64 for float64 input); x is returned in the
      input dtype.
    """

    ratio: float | None = field(
        default=16.0, metadata={"help": "reduction factor per clip: keep floor(P/ratio) of P = clip*H*W tokens"}
    )
    tokens: int | None = field(
        default=None, metadata={"help": "token budget per sample (wins over ratio); must split over T/clip clips"}
    )
    clip: int = field(default=4, metadata={"help": "frames merged together spatio-temporally; must divide T"})
    metric: Literal["features", "keys"] = field(
        default="features", metadata={"help": "matching metric: features (head_dim chunks averaged) or the ViT keys"}
    )
    head_dim: int = field(
        default=64, metadata={"help": "channel chunk averaged over to form the metric (must divide its width)"}
    )
    sort: bool = field(
        default=True, metadata={"help": "re-sort output by source position (original: [unmerged A, B] order)"}
    )

    needs = frozenset()
    structured = False
    ordered = True
    exact = True
    default_at = "mlp"
    reference = f"Bolya et al., Token Merging (ICLR 2023); {TOME_REF}; post-hoc schedule: {VCF_REF}"

    def __post_init__(self) -> None:
        check_target(self.ratio, self.tokens)
        require(isinstance(self.clip, int) and self.clip >= 1, "clip", self.clip,
                "a positive number of frames that divides T (e.g. 4)")
        require(self.metric in ("features", "keys"), "metric", self.metric, "features, keys")
        require(isinstance(self.head_dim, int) and self.head_dim >= 1, "head_dim", self.head_dim,
                "a positive channel count that divides the metric width (e.g. 64)")
        require(isinstance(self.sort, bool), "sort", self.sort, "true, false")
        self.needs = frozenset({"keys"}) if self.metric == "keys" else frozenset()
        self.ordered = self.sort

    # ------------------------------------------------------------------------------------------ targets

    def _per_clip(self, T: int, H: int, W: int) -> tuple[int, int, int]:
        """(clips, tokens per clip P, target per clip)."""
        grid = f"grid T={T}, H={H}, W={W}"
        if T % self.clip != 0:
            raise ReducerError(f"clip={self.clip} does not divide T={T} ({grid}); allowed: clip dividing T")
        clips = T // self.clip
        p = self.clip * H * W
        if self.tokens is not None:
            if self.tokens % clips != 0:
                raise ReducerError(
                    f"tokens={self.tokens} does not split evenly over the {clips} clips of {self.clip} frames "
                    f"({grid}); allowed: a multiple of {clips}"
                )
            per = self.tokens // clips
            if per > p:
                raise ReducerError(
                    f"tokens={self.tokens} exceeds the {p * clips} tokens of the {grid}; allowed: up to {p * clips}"
                )
            return clips, p, per
        assert self.ratio is not None
        per = int(p // self.ratio)
        if per < 1:
            raise ReducerError(
                f"ratio={self.ratio:g} is above the {p} tokens of a clip of {self.clip} frames ({grid}); "
                f"allowed: ratio <= {p}"
            )
        return clips, p, per

    def target_tokens(self, T: int, H: int, W: int) -> int:
        clips, _, per = self._per_clip(T, H, W)
        return clips * per

    # ------------------------------------------------------------------------------------------- reduce

    def _metric_source(self, grid: TokenGrid, work: torch.dtype) -> Tensor:
        src = grid.keys if self.metric == "keys" else grid.x
        if src is None:
            raise ReducerError("tome with metric=keys needs keys in its TokenGrid")
        width = src.shape[-1]
        if width % self.head_dim != 0:
            what = "key width Ck" if self.metric == "keys" else "feature width C"
            raise ReducerError(
                f"head_dim={self.head_dim} does not divide the {what}={width}; allowed: a divisor of {width}"
            )
        src = src.to(work)
        return src.reshape(*src.shape[:-1], width // self.head_dim, self.head_dim).mean(dim=-2)

    def reduce(self, grid: TokenGrid, generator: torch.Generator | None = None) -> ReducedTokens:
        B, T, H, W, C = grid.shape
        clips, p, per = self._per_clip(T, H, W)
        dev, dtype = grid.x.device, grid.x.dtype
        work = compute_dtype(dtype)
        G = B * clips

        metric = self._metric_source(grid, work).reshape(G, p, -1)  # running sums of the metric
        size = torch.ones(G, p, 1, dtype=work, device=dev)
        # Flat raster index (in the whole T x H x W grid) of each current token's representative.
        pos = (torch.arange(clips, device=dev) * p).view(1, clips, 1) + torch.arange(p, device=dev)
        pos = pos.expand(B, clips, p).reshape(G, p)
        assign = torch.arange(p, device=dev).expand(G, p)  # source token -> current token

        with torch.no_grad():
            for r in merge_schedule(p, per):
                n = metric.shape[1]
                dest, rep = bipartite_step(metric / size, r)
                metric = _sum_into(metric, dest, n - r)
                size = _sum_into(size, dest, n - r)
                pos = pos.gather(1, rep)
                assign = dest.gather(1, assign)

            if self.sort:
                order = pos.argsort(dim=1)
                inverse = torch.empty_like(order).scatter_(1, order, torch.arange(per, device=dev).expand(G, per))
                pos, size = pos.gather(1, order), size.gather(1, order.unsqueeze(-1))
                assign = inverse.gather(1, assign)

            # Each output = (sum of its source tokens) / size, one pass over the full-width features.
            flat = (assign + torch.arange(G, device=dev).unsqueeze(1) * per).reshape(-1)
            src = grid.x.reshape(G * p, C).to(work)
            x = src.new_zeros(G * per, C).index_add_(0, flat, src).view(G, per, C) / size

        hw = H * W
        tyx = torch.stack([pos // hw, (pos % hw) // W, pos % W], dim=-1)
        return ReducedTokens(
            x=x.to(dtype).reshape(B, clips * per, C),
            pos=tyx.reshape(B, clips * per, 3),
            size=size.squeeze(-1).round().long().reshape(B, clips * per),
        )
