"""FastVID: dynamic temporal segmentation, then salient-token selection plus density-based token merging."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from liteframe_bench import ReducedTokens, Reducer, ReducerError, TokenGrid, register_reducer
from liteframe_bench.reduction import compute_dtype, cosine_normalize, require

#: Seed of the density tie-breaking noise when ``reduce`` is called without a generator.
DEFAULT_SEED = 0

_REF = (
    "FastVID (Shen et al., 2025); LunarShen/FastVID@a40a109cb8df20e8c2c17c6850f8269717369990, "
    "fastvid_llavaonevision/LLaVA-NeXT/llava/model/language_model/modeling_qwen2.py L900-1075"
)


# --------------------------------------------------------------------------------------------- pieces


def frame_similarity(frame_global: Tensor) -> Tensor:
    """[T-1] cosine similarity of consecutive frame features ``frame_global`` [T, Cg] (float32 or float64)."""
    g = cosine_normalize(frame_global.to(compute_dtype(frame_global.dtype)))
    return (g[:-1] * g[1:]).sum(dim=-1)


def dyseg(frame_global: Tensor, segments: int = 8, tau: float = 0.9) -> list[int]:
    """DySeg: split T frames into consecutive segments; returns the segment lengths (they sum to T).

    With s_t = cos(g_t, g_{t+1}), a segment ends after frame t when s_t < tau, and also after the
    ``min(segments, T) - 1`` frames with the lowest s_t, so there are at least ``min(segments, T)`` segments.
    """
    T = frame_global.shape[0]
    if T <= 1:
        return [T]
    sim = frame_similarity(frame_global)
    cut = sim < tau
    n_low = min(segments, T) - 1
    if n_low > 0:
        cut[torch.topk(sim, n_low, largest=False).indices] = True
    ends = [-1, *torch.nonzero(cut).flatten().tolist(), T - 1]
    return [b - a for a, b in zip(ends[:-1], ends[1:], strict=True)]


def anchor_plan(length: int, n_ctx: int, step: int) -> tuple[list[int], int]:
    """Anchor frames of a segment (offsets, ascending) and the context tokens each anchor frame gets.

    Anchor frames are the segment's last frame and every ``step``-th frame counting backwards; each gets
    ``(n_ctx * length) // ceil(length / step)`` tokens, so the segment keeps at most ``n_ctx * length``.
    """
    offsets = [j for j in range(length) if (length - 1 - j) % step == 0]
    return offsets, (n_ctx * length) // len(offsets)


def frame_saliency(cls_attn: Tensor) -> Tensor:
    """Per-token saliency [..., N] from per-head CLS logits [..., heads, N]: softmax over N per head, head mean."""
    return cls_attn.to(compute_dtype(cls_attn.dtype)).softmax(dim=-1).mean(dim=-2)


def density_scores(tokens: Tensor, valid: Tensor, knn: int, noise: Tensor, gram: Tensor | None = None) -> Tensor:
    """DPC-kNN score rho * delta of each valid token of each frame; -inf for invalid (salient) tokens.

    tokens [F, N, D]; valid [F, N] bool (the frame's non-salient tokens, at least ``knn`` per frame); noise
    [F, N] in [0, 1); gram [F, N, N] = tokens @ tokens^T when already computed. Among a frame's valid tokens,
    d_ij = ||x_i - x_j|| / sqrt(D); rho_i = exp(-mean of the ``knn`` smallest d_ij^2, the token itself
    included as in the original) + 1e-6 * noise_i; delta_i = distance to the nearest valid token with a larger
    rho, or the largest valid distance of the frame for the densest token.
    """
    F, N, D = tokens.shape
    if gram is None:
        gram = torch.bmm(tokens, tokens.transpose(1, 2))
    sq = gram.diagonal(dim1=1, dim2=2)
    d2 = (sq[:, :, None] + sq[:, None, :] - 2 * gram).clamp_min_(0)
    d2.diagonal(dim1=1, dim2=2).zero_()
    dist = (d2 / D).sqrt_()
    pair = valid[:, :, None] & valid[:, None, :]
    inf = torch.tensor(float("inf"), dtype=dist.dtype, device=dist.device)
    nearest = torch.topk(torch.where(pair, dist, inf), knn, dim=-1, largest=False).values
    nearest = torch.where(valid[:, :, None], nearest, 0)
    rho = torch.exp(-(nearest**2).mean(dim=-1)) + noise.to(dist.dtype) * 1e-6
    denser = pair & (rho[:, None, :] > rho[:, :, None])  # [F, i, j]: valid token j is denser than token i
    far = torch.where(pair, dist, 0).flatten(1).amax(dim=-1)[:, None, None]
    delta = torch.where(denser, dist, far).amin(dim=-1)
    return torch.where(valid, delta * rho, -inf)


def _merge(
    anchors: Tensor, members: Tensor, cos: Tensor, valid: Tensor, self_slot: Tensor, beta: float
) -> tuple[Tensor, Tensor]:
    """DTM update of anchors [G, A, k, C] from the valid members [G, P, C] (cos [G, P, A, k] similarities).

    Each valid member joins its most similar anchor of every anchor group a; anchor' = w * anchor + (1 - w) *
    mean(assigned) with w = max(1 / (n + 1), beta) (w = 1 when none joined). ``self_slot`` [G, A, k]: the
    member index of each anchor, so sizes [G, A, k] count the distinct source tokens (the anchor itself once).
    """
    G, A, k, C = anchors.shape
    P = members.shape[1]
    assign = cos.argmax(dim=-1).transpose(1, 2)  # [G, A, P]
    onehot = anchors.new_zeros(G, A, k, P)
    onehot.scatter_(2, assign.unsqueeze(2), valid.to(anchors.dtype)[:, None, None, :].expand(G, A, 1, P))
    counts = onehot.sum(dim=-1)  # [G, A, k]
    if G == 1 and members.device.type == "cpu":
        # One long segment on CPU: an index_add per anchor group reads the members A times instead of a dense
        # [A*k, P] x [P, C] product (same sums; index_add is deterministic on CPU, not on CUDA).
        slot = torch.where(valid[0], assign[0], k)  # salient members go to a discarded slot k
        buf = members.new_zeros(A, k + 1, C)
        for a in range(A):
            buf[a].index_add_(0, slot[a], members[0])
        sums = buf[None, :, :k]
    else:
        sums = torch.bmm(onehot.view(G, A * k, P), members).view(G, A, k, C)
    w = torch.clamp(1.0 / (counts + 1.0), min=beta).unsqueeze(-1)
    merged = w * anchors + (1.0 - w) * sums / counts.clamp_min(1).unsqueeze(-1)
    self_joined = onehot.gather(3, self_slot.unsqueeze(-1)).squeeze(-1) > 0
    return merged, counts.long() + (~self_joined).long()


# -------------------------------------------------------------------------------------------- reducer


@register_reducer("fastvid")
@dataclass
class FastVID(Reducer):
    """FastVID: DySeg temporal segments, top-saliency tokens per frame plus density-peak anchors merging the rest.

    Algorithm, per sample, on projected tokens X [T, N, C] (N = H*W):

    1. DySeg: s_t = cos(g_t, g_{t+1}) of the frame globals; a segment ends after frame t when s_t < tau and after
       the ``segments - 1`` lowest s_t (so at least min(segments, T) segments). :func:`dyseg`.
    2. Budgets per frame: n_ret = int(N * retain), n_sal = n_ret - int(n_ret * salient), n_ctx = n_ret - n_sal
       (N = 196, retain = 0.1: 19 = 12 salient + 7 context).
    3. ATS: every frame keeps its top n_sal tokens by saliency (size 1). Saliency = softmax of the per-head CLS
       logits over the frame's N tokens, then the mean over heads (the original uses the head-averaged softmax
       attention of SigLIP's MAP head, which has the same form).
    4. Anchor frames: a segment of L frames has ceil(L / anchor_step) anchor frames, its last frame and every
       anchor_step-th frame counting backwards; each gets k = (n_ctx * L) // ceil(L / anchor_step) anchors.
    5. Density (DPC-kNN, :func:`density_scores`) of each anchor frame's non-salient tokens, computed within
       that frame; anchors = the frame's top-k non-salient tokens by rho * delta.
    6. DTM: every non-salient token of the segment (anchors included, all frames
       of the segment) joins its most cosine-similar anchor of *each* anchor frame, so a token is merged once
       per anchor frame of its segment, exactly as in the original; anchor' = w * anchor + (1 - w) *
       mean(assigned), w = max(1 / (n_assigned + 1), beta), i.e. w = beta whenever beta >= 1/2 and the
       anchor joined itself. Non-salient tokens that are not anchors are dropped after merging.
    7. Output: salient tokens and anchors, sorted by raster (t, y, x) position (the original keeps the
       original order and position ids). pos = the token's own position; size = 1 for salient tokens, for an
       anchor the distinct source tokens merged into it (so sizes within a multi-anchor-frame segment add up
       to more than its token count: a token can feed one anchor per anchor frame).

    Where it runs: ``proj`` by default, the projected tokens the LLM receives, as the original (it prunes and
    merges the visual tokens inside the LLM's forward, after the projector).

    Count: sum over segments of L * n_sal + ceil(L/p) * k <= T * n_ret, the upper bound ``target_tokens``
    reports (equal when every segment's n_ctx * L divides by its anchor-frame count); per-sample counts go in
    ``lengths`` when they differ across the batch (padding rows are zero).

    Reference: LunarShen/FastVID@a40a109cb8df20e8c2c17c6850f8269717369990,
    fastvid_llavaonevision/LLaVA-NeXT/llava/model/language_model/modeling_qwen2.py L900-1075 (DySeg L912-922,
    budgets and anchor distribution L924-952, ATS L954-962, density L964-989, single-frame DTM L991-1017,
    multi-frame DTM L1019-1061, ordering L1063-1068).

    Deviations from the original, stated plainly:
    - Inputs: saliency comes from the encoder's CLS attention logits (softmax per head, head mean) and g_t from
      the harness's ``frame_global``; the original uses SigLIP's MAP-head attention (bilinearly pooled to the
      projected grid) and its pooled feature. Tokens are the projected tokens, as in the original.
    - Segment kind: the original treats an anchor frame as a single-frame segment (merging only that frame's
      tokens) whenever its anchor count equals n_ctx, which also happens in multi-frame segments when
      anchor_step = 1 or n_ctx = 1 (there, the non-anchor frames' tokens are then merged nowhere). Here a segment
      of one frame merges that frame's tokens and every longer segment merges all its frames' tokens into each
      anchor frame's anchors, whatever anchor_step and n_ctx are. Identical whenever anchor_step >= 2
      and n_ctx >= 2 (the defaults on any frame of 30 tokens or more).
    - DySeg asks for min(segments, T) - 1 lowest similarities (the original's topk fails when T < segments);
      cosine normalisation uses an eps, so constant or zero features stay finite.
    - Anchor counts are capped at the anchor frame's non-salient tokens (N - n_sal); the original's topk fails
      when (n_ctx * L) // ceil(L/p) exceeds it (large retain). The output then holds fewer tokens.
    - Density is computed only for anchor frames (the scores of other frames are never used) and its 1e-6
      tie-breaking noise is drawn from ``generator`` (default: a fresh generator seeded with DEFAULT_SEED for
      each sample), so results are reproducible; the original draws from torch's global RNG.
    - Similarities, softmax, distances and merging run in float32 (float64 for float64 input); the output has
      the input dtype. The original runs cdist in float32 and the rest in the model dtype.
    """

    retain: float = field(default=0.10, metadata={"help": "r: tokens kept per frame on average, as a fraction of H*W"})
    segments: int = field(default=8, metadata={"help": "c: DySeg cuts at least the c-1 lowest frame similarities"})
    tau: float = field(default=0.9, metadata={"help": "DySeg cuts wherever consecutive frame similarity < tau"})
    salient: float = field(default=0.4, metadata={"help": "d: n_sal = n_ret - int(n_ret*d) salient tokens per frame"})
    anchor_step: int = field(default=4, metadata={"help": "p: every p-th frame (from a segment's end) is an anchor"})
    beta: float = field(default=0.6, metadata={"help": "DTM: anchor weight, anchor' = beta*anchor + (1-beta)*mean"})
    knn: int = field(default=4, metadata={"help": "neighbours (self included) in the DPC-kNN density"})

    needs = frozenset({"cls_attn", "frame_global"})
    structured = False
    ordered = True
    exact = False
    default_at = "proj"
    reference = _REF

    def __post_init__(self) -> None:
        fin = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        integer = lambda v: isinstance(v, int) and not isinstance(v, bool)
        require(fin(self.retain) and 0 < self.retain <= 1, "retain", self.retain, "a fraction in (0, 1], e.g. 0.1")
        require(integer(self.segments) and self.segments >= 1, "segments", self.segments, "an integer >= 1")
        require(fin(self.tau) and -1 <= self.tau <= 1, "tau", self.tau, "a cosine threshold in [-1, 1]")
        require(fin(self.salient) and 0 <= self.salient <= 1, "salient", self.salient, "a fraction in [0, 1]")
        require(integer(self.anchor_step) and self.anchor_step >= 1, "anchor_step", self.anchor_step, "an integer >= 1")
        require(fin(self.beta) and 0 <= self.beta <= 1, "beta", self.beta, "a weight in [0, 1]")
        require(integer(self.knn) and self.knn >= 1, "knn", self.knn, "an integer >= 1")

    def budgets(self, n: int) -> tuple[int, int, int]:
        """(n_ret, n_sal, n_ctx) per frame of ``n`` tokens, as in the original."""
        n_ret = int(n * self.retain)
        n_sal = n_ret - int(n_ret * self.salient)
        return n_ret, n_sal, n_ret - n_sal

    def target_tokens(self, T: int, H: int, W: int) -> int:
        n = H * W
        n_ret, n_sal, n_ctx = self.budgets(n)
        if n_ret < 1:
            raise ReducerError(
                f"retain={self.retain:g} keeps int({n} * {self.retain:g}) = 0 tokens per {H}x{W} frame of the "
                f"{T}x{H}x{W} grid; allowed: retain >= {1 / n:.4g}"
            )
        if n_ctx > 0 and n - n_sal < self.knn:
            raise ReducerError(
                f"knn={self.knn} exceeds the {n - n_sal} non-salient tokens per {H}x{W} frame of the {T}x{H}x{W} "
                f"grid (retain={self.retain:g}, salient={self.salient:g}); allowed: knn <= {n - n_sal}"
            )
        return T * n_ret

    def reduce(self, grid: TokenGrid, generator: torch.Generator | None = None) -> ReducedTokens:
        B, T, H, W, C = grid.shape
        n = H * W
        # Without a generator every sample draws its noise from its own generator seeded with DEFAULT_SEED,
        # so a sample gives the same output alone or in a batch.
        gens = [generator if generator is not None else torch.Generator().manual_seed(DEFAULT_SEED) for _ in range(B)]
        outs = [self._reduce_one(grid, b, gens[b]) for b in range(B)]
        counts = [o[0].shape[0] for o in outs]
        width = max(counts)
        x = grid.x.new_zeros(B, width, C)
        raster = torch.zeros(B, width, dtype=torch.long, device=grid.x.device)
        size = torch.zeros(B, width, dtype=torch.long, device=grid.x.device)
        for b, (xb, rb, sb) in enumerate(outs):
            x[b, : counts[b]] = xb
            raster[b, : counts[b]] = rb
            size[b, : counts[b]] = sb
        pos = torch.stack([raster // n, (raster % n) // W, raster % W], dim=-1)
        lengths = None
        if len(set(counts)) > 1:
            lengths = torch.tensor(counts, dtype=torch.long, device=grid.x.device)
        return ReducedTokens(x=x, pos=pos, size=size, lengths=lengths, grid=None)

    def _reduce_one(self, grid: TokenGrid, b: int, gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """Tokens [n_b, C] (input dtype), raster indices [n_b] and sizes [n_b] of sample b, sorted by raster."""
        _, T, H, W, C = grid.shape
        n = H * W
        device = grid.x.device
        _, n_sal, n_ctx = self.budgets(n)
        x_in = grid.x[b].reshape(T, n, C)
        frames = torch.arange(T, device=device)

        # ATS: every frame's top n_sal tokens by CLS saliency.
        saliency = frame_saliency(grid.cls_attn[b].reshape(T, -1, n))  # [T, n]
        sal_idx = torch.topk(saliency, n_sal, dim=1).indices  # [T, n_sal]
        toks = [x_in.gather(1, sal_idx.unsqueeze(-1).expand(T, n_sal, C)).reshape(-1, C)]
        rasters = [(frames[:, None] * n + sal_idx).reshape(-1)]
        sizes = [torch.ones(T * n_sal, dtype=torch.long, device=device)]

        if n_ctx > 0:
            # Everything below works on whole frames (views of x, no copies of the big tensor); salient tokens
            # are masked out of the density and of the merging through ``valid``.
            x = x_in.to(compute_dtype(x_in.dtype))
            norm = torch.linalg.vector_norm(x, dim=-1).clamp_min(1e-6)  # [T, n], as in cosine_normalize
            valid = torch.ones(T, n, dtype=torch.bool, device=device).scatter_(1, sal_idx, False)
            k_cap = n - n_sal

            def anchors_of(a0: int, a1: int, step: int, k: int) -> tuple[Tensor, Tensor, Tensor]:
                """Frames a0:a1:step as anchor frames: their gram [A, n, n] and top-k anchors [A, k] by density."""
                xa = x[a0:a1:step]
                gram = torch.bmm(xa, xa.transpose(1, 2))
                noise = torch.rand(xa.shape[0], n, generator=gen, device=gen.device).to(device)
                scores = density_scores(xa, valid[a0:a1:step], self.knn, noise, gram)
                loc = torch.topk(scores, k, dim=1).indices  # all valid: k <= non-salient tokens per frame
                return gram, loc, torch.arange(a0, a1, step, device=device)

            def emit(merged: Tensor, sz: Tensor, fa: Tensor, loc: Tensor) -> None:
                toks.append(merged.reshape(-1, C).to(x_in.dtype))
                rasters.append((fa[:, None] * n + loc).reshape(-1))
                sizes.append(sz.reshape(-1))

            # Segments; runs of consecutive single-frame segments are batched (each frame merges into itself).
            seg_sizes = dyseg(grid.frame_global[b], self.segments, self.tau)
            starts = [sum(seg_sizes[:i]) for i in range(len(seg_sizes))]
            i = 0
            while i < len(seg_sizes):
                s = starts[i]
                if seg_sizes[i] == 1:
                    j = i
                    while j < len(seg_sizes) and seg_sizes[j] == 1:
                        j += 1
                    R, k = j - i, min(n_ctx, k_cap)
                    gram, loc, fa = anchors_of(s, s + R, 1, k)
                    # cosine of each token of the frame to the frame's anchors, from the gram
                    dots = gram.gather(2, loc[:, None, :].expand(R, n, k))
                    cos = dots / (norm[s : s + R, :, None] * norm[fa[:, None], loc][:, None, :])
                    anchors = x[fa[:, None], loc].unsqueeze(1)  # [R, 1, k, C]
                    merged, sz = _merge(
                        anchors, x[s : s + R], cos.unsqueeze(2), valid[s : s + R], loc[:, None], self.beta
                    )
                    emit(merged, sz, fa, loc)
                    i = j
                    continue
                L = seg_sizes[i]
                offsets, k = anchor_plan(L, n_ctx, self.anchor_step)
                k = min(k, k_cap)
                _, loc, fa = anchors_of(s + offsets[0], s + L, self.anchor_step, k)
                A = len(offsets)
                anchors = x[fa[:, None], loc]  # [A, k, C]
                members = x[s : s + L].reshape(1, L * n, C)
                dots = (members[0] @ anchors.reshape(A * k, C).T).view(L * n, A, k)
                cos = dots / (norm[s : s + L].reshape(L * n, 1, 1) * norm[fa[:, None], loc])
                self_slot = ((fa - s)[:, None] * n + loc).unsqueeze(0)  # anchors' member indices [1, A, k]
                merged, sz = _merge(
                    anchors.unsqueeze(0),
                    members,
                    cos.unsqueeze(0),
                    valid[s : s + L].reshape(1, L * n),
                    self_slot,
                    self.beta,
                )
                emit(merged[0], sz[0], fa, loc)
                i += 1

        raster = torch.cat(rasters)
        order = torch.argsort(raster)
        return torch.cat(toks)[order], raster[order], torch.cat(sizes)[order]
