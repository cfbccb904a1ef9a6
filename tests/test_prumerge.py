"""LLaVA-PruMerge / PruMerge+: method-specific invariants and error messages."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import liteframe_bench as lfb
import liteframe_bench.methods  # noqa: F401  (registers the built-ins)
from liteframe_bench import ReducerError, SpecError, TokenGrid
from liteframe_bench.reduction import headwise_to_full_logits, raster_index
from liteframe_bench.testing import constant_grid, random_grid

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def frame_attention(g: TokenGrid) -> torch.Tensor:
    """[B, T, N] CLS attention probabilities over each frame's patch tokens (one-head full-width form)."""
    B, T, H, W, _ = g.shape
    work = torch.float64 if g.cls_attn.dtype == torch.float64 else torch.float32
    return torch.softmax(headwise_to_full_logits(g.cls_attn.to(work)).reshape(B, T, H * W), dim=-1)


def reference_frame(x, keys, attn, kept, neighbors, extra):
    """The original's per-token loop (clip_encoder.py L139-169) for one frame; kept in the given order."""
    n = x.shape[0]
    kn = keys / keys.norm(dim=-1, keepdim=True)
    out = []
    for i in kept:
        rest = [j for j in range(n) if j != i]  # other kept tokens and all pruned tokens
        sims = torch.stack([kn[i] @ kn[j] for j in rest])
        near = [rest[j] for j in sims.argsort(descending=True)[: min(neighbors, n - 1)].tolist()]
        out.append(x[i] + sum((attn[j] * x[j] for j in near), torch.zeros_like(x[i])))
    if extra:
        pruned = [j for j in range(n) if j not in kept]
        out.append(sum((attn[j] * x[j] for j in pruned), torch.zeros_like(x[0])))
    return torch.stack(out)


def per_frame(out, T, H, W, b=0):
    """Output rows of sample b grouped by frame: {t: (in-frame raster indices, rows)}."""
    n = out.num_tokens[b]
    pos = out.pos[b, :n]
    res = {}
    for t in range(T):
        rows = (pos[:, 0] == t).nonzero().flatten()
        res[t] = ((pos[rows, 1] * W + pos[rows, 2]).tolist(), rows)
    return res


# ------------------------------------------------------------------------------------------ counts


@SETTINGS
@given(
    B=st.integers(1, 2), T=st.integers(1, 3), H=st.integers(2, 5), W=st.integers(2, 5),
    ratio=st.sampled_from([1.0, 2.0, 3.0, 4.0, 7.0, 16.0]), variant=st.sampled_from(["fixed", "plus"]),
    extra=st.booleans(), seed=st.integers(0, 2**16),
)
def test_count_and_topk_selection(B, T, H, W, ratio, variant, extra, seed):
    n = H * W
    ratio = min(ratio, float(n))
    k = int(n // ratio)
    if extra and k == n:
        return
    r = lfb.create("prumerge", ratio=ratio, variant=variant, extra_token=extra)
    g = random_grid(B=B, T=T, H=H, W=W, C=8, seed=seed)
    out = r(g)
    assert r.target_tokens(T, H, W) == T * (k + extra)
    assert out.x.shape == (B, T * (k + extra), 8) and out.lengths is None
    flat = raster_index(out.pos, H, W)
    assert (flat[:, 1:] > flat[:, :-1]).all()  # ascending raster order, distinct
    a = frame_attention(g)
    k_attn = k if variant == "fixed" else math.ceil(k / 4)
    for b in range(B):
        for t, (idx, rows) in per_frame(out, T, H, W, b).items():
            assert len(idx) == k + extra
            top = set(torch.sort(a[b, t], descending=True, stable=True).indices[:k_attn].tolist())
            sizes = out.size[b, rows].tolist()
            kept = {i for i, s in zip(idx, sizes, strict=True) if s == min(n - 1, 32) + 1} if extra else set(idx)
            assert top <= kept
            if variant == "fixed":
                assert kept == top


@pytest.mark.parametrize("tokens, T, per", [(8, 4, 2), (12, 3, 4), (64, 64, 1)])
def test_tokens_budget_splits_over_frames(tokens, T, per):
    g = random_grid(B=1, T=T, H=4, W=4, C=8)
    out = lfb.create("prumerge", tokens=tokens)(g)
    assert out.x.shape == (1, tokens, 8)
    assert torch.bincount(out.pos[0, :, 0], minlength=T).tolist() == [per] * T


# --------------------------------------------------------------------------------- merge formula


@pytest.mark.parametrize("variant", ["fixed", "plus"])
@pytest.mark.parametrize("neighbors, extra", [(32, False), (3, True), (0, False), (1000, True)])
def test_merge_matches_original_loop(variant, neighbors, extra):
    B, T, H, W = 2, 2, 5, 6
    g = random_grid(B=B, T=T, H=H, W=W, C=12, key_dim=8, seed=neighbors, dtype=torch.float64)
    r = lfb.create("prumerge", ratio=3.0, variant=variant, neighbors=neighbors, extra_token=extra)
    out = r(g)
    a = frame_attention(g)
    n = H * W
    nb = min(neighbors, n - 1)
    for b in range(B):
        for t, (idx, rows) in per_frame(out, T, H, W, b).items():
            sizes = out.size[b, rows].tolist()
            kept = [i for i, s in zip(idx, sizes, strict=True) if s == nb + 1]
            if extra:
                assert len(kept) == len(idx) - 1
            x, keys = g.x[b, t].reshape(n, -1), g.keys[b, t].reshape(n, -1)
            ref = reference_frame(x, keys, a[b, t], kept, neighbors, extra)
            got = out.x[b, rows]
            if extra:  # the extra token sits at its own position; compare it separately
                j = [p for p, s in enumerate(sizes) if s != nb + 1][0]
                assert sizes[j] == n - len(kept)
                torch.testing.assert_close(got[j], ref[-1], rtol=1e-9, atol=1e-9)
                got, ref = torch.cat([got[:j], got[j + 1:]]), ref[:-1]
            torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-9)


def test_plus_takes_uniform_samples_outside_the_attention_tokens():
    H = W = 8
    g = random_grid(B=1, T=1, H=H, W=W, C=8)
    out = lfb.create("prumerge", ratio=4, variant="plus")(g)  # k = 16: 4 by attention + 12 uniform
    a = frame_attention(g)[0, 0]
    idx = raster_index(out.pos[0], H, W).tolist()
    top = torch.sort(a, descending=True, stable=True).indices[:4].tolist()
    rest = [i for i in range(64) if i not in top]
    expect_uniform = [rest[int((j + 0.5) * 60 / 12)] for j in range(12)]
    assert sorted(idx) == sorted(top + expect_uniform)


def test_zero_attention_elsewhere_leaves_the_kept_token_unchanged():
    """x_i' = x_i + sum_j a_j x_j: with a_j = 0 for every j != i (one kept token per frame) x_i' = x_i."""
    B, T, H, W = 2, 3, 4, 4
    g = random_grid(B=B, T=T, H=H, W=W, C=16)
    hot = torch.randint(0, H * W, (B, T), generator=torch.Generator().manual_seed(1))
    logits = torch.full((B, T, 4, H * W), -1e4)
    logits.scatter_(3, hot.view(B, T, 1, 1).expand(B, T, 4, 1), 0.0)
    g = TokenGrid(g.x, cls_attn=logits.view(B, T, 4, H, W), keys=g.keys)
    for extra in (False, True):
        out = lfb.create("prumerge", tokens=T, extra_token=extra)(g)  # one kept token per frame
        for b in range(B):
            for t, (idx, rows) in per_frame(out, T, H, W, b).items():
                i = idx.index(int(hot[b, t]))
                assert torch.equal(out.x[b, rows[i]], g.x[b, t].reshape(H * W, -1)[hot[b, t]])
                if extra:
                    assert (out.x[b, rows[1 - i]] == 0).all()
    # and the formula does move the kept token once others get attention
    g_rand = random_grid(B=B, T=T, H=H, W=W, C=16)
    out = lfb.create("prumerge", tokens=T)(g_rand)
    kept = raster_index(out.pos, H, W)
    source = g_rand.x.reshape(B, T * H * W, 16).gather(1, kept.unsqueeze(-1).expand(-1, -1, 16))
    assert not torch.isclose(out.x, source).all(dim=-1).any()


# ------------------------------------------------------------------------------------------ adaptive


@SETTINGS
@given(B=st.integers(1, 3), T=st.integers(1, 3), H=st.integers(2, 6), W=st.integers(2, 6),
       spike=st.sampled_from([0.0, 3.0, 8.0]), extra=st.booleans(), seed=st.integers(0, 2**16))
def test_adaptive_count_is_the_number_of_iqr_outliers(B, T, H, W, spike, extra, seed):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, 2, H, W, generator=gen) + spike * (torch.rand(B, T, 1, H, W, generator=gen) > 0.9)
    x, keys = torch.randn(B, T, H, W, 8, generator=gen), torch.randn(B, T, H, W, 8, generator=gen)
    g = TokenGrid(x, cls_attn=logits, keys=keys)
    r = lfb.create("prumerge", variant="adaptive", extra_token=extra)
    assert r.exact is False
    out = r(g)
    a = frame_attention(g).float().numpy()
    expect = np.zeros((B, T), dtype=int)
    for b in range(B):
        for t in range(T):
            q1, q3 = np.percentile(a[b, t], 25), np.percentile(a[b, t], 75)
            expect[b, t] = max(1, int((a[b, t] > q3 + 1.5 * (q3 - q1)).sum()))
    assert (expect <= (r.target_tokens(T, H, W) // T) - extra).all()
    got = np.array([[len(per_frame(out, T, H, W, b)[t][0]) - extra for t in range(T)] for b in range(B)])
    assert (got == expect).all()
    per_sample = (expect + extra).sum(1)
    assert out.num_tokens == per_sample.tolist()
    assert out.x.shape[1] == per_sample.max()
    if len(set(per_sample.tolist())) > 1:
        assert out.lengths.tolist() == per_sample.tolist()
        for b in range(B):  # padding rows
            assert (out.size[b, per_sample[b]:] == 0).all() and (out.x[b, per_sample[b]:] == 0).all()
    else:
        assert out.lengths is None
    for b in range(B):
        flat = raster_index(out.pos[b, : per_sample[b]], H, W)
        assert (flat[1:] > flat[:-1]).all()
        # the kept tokens are the top-attention ones of each frame
        for t, (idx, _) in per_frame(out, T, H, W, b).items():
            top = set(np.argsort(-a[b, t], kind="stable")[: expect[b, t]].tolist())
            assert top <= set(idx)


def test_adaptive_without_outliers_keeps_one_token_per_frame():
    g = constant_grid(B=1, T=2, H=4, W=4, C=8)
    out = lfb.create("prumerge:variant=adaptive")(g)
    assert out.x.shape == (1, 2, 8)
    assert out.pos[0].tolist() == [[0, 0, 0], [1, 0, 0]]  # ties go to the lowest raster index


# ------------------------------------------------------------------------------------ dtypes, needs


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("variant", ["fixed", "adaptive", "plus"])
def test_dtypes_and_constant_input(dtype, variant):
    g = random_grid(B=2, T=2, H=4, W=4, C=16, dtype=dtype)
    out = lfb.create("prumerge", ratio=4, variant=variant, extra_token=True)(g)
    assert out.x.dtype == dtype and torch.isfinite(out.x.float()).all()
    c = constant_grid(B=1, T=2, H=4, W=4, C=16, dtype=dtype, value=0.0)
    oc = lfb.create("prumerge", ratio=4, variant=variant)(c)
    assert torch.isfinite(oc.x.float()).all() and (oc.x == 0).all()


def test_needs_and_exactness():
    assert lfb.create("prumerge").needs == frozenset({"cls_attn", "keys"})
    assert lfb.create("prumerge:neighbors=0").needs == frozenset({"cls_attn"})
    assert lfb.create("prumerge").exact and lfb.create("prumerge:variant=plus").exact
    assert not lfb.create("prumerge:variant=adaptive").exact
    g = random_grid(B=1, T=2, H=4, W=4, C=8)
    with pytest.raises(ReducerError, match="keys"):
        lfb.create("prumerge")(TokenGrid(g.x, cls_attn=g.cls_attn))
    out = lfb.create("prumerge:neighbors=0,ratio=4")(TokenGrid(g.x, cls_attn=g.cls_attn))
    kept = raster_index(out.pos, 4, 4)
    assert torch.equal(out.x, g.x.reshape(1, 32, 8).gather(1, kept.unsqueeze(-1).expand(-1, -1, 8)))
    assert (out.size == 1).all()


# -------------------------------------------------------------------------------------------- errors


def test_target_errors_name_the_parameter():
    with pytest.raises(ReducerError, match=r"tokens=10 does not split evenly over the T=4 frames"):
        lfb.create("prumerge:tokens=10").target_tokens(4, 4, 4)
    with pytest.raises(ReducerError, match=r"tokens=80 exceeds"):
        lfb.create("prumerge:tokens=80").target_tokens(4, 4, 4)
    with pytest.raises(ReducerError, match=r"ratio=17 is above the 16 tokens"):
        lfb.create("prumerge:ratio=17").target_tokens(4, 4, 4)
    with pytest.raises(ReducerError, match="extra_token"):
        lfb.create("prumerge:ratio=1,extra_token=true").target_tokens(4, 4, 4)
    assert lfb.create("prumerge:ratio=16,extra_token=true").target_tokens(64, 16, 16) == 64 * 17
    assert lfb.create("prumerge:variant=adaptive").target_tokens(2, 16, 16) == 2 * 64


@pytest.mark.parametrize(
    "spec, field",
    [("prumerge:variant=bogus", "variant"), ("prumerge:neighbors=-1", "neighbors"), ("prumerge:ratio=0", "ratio"),
     ("prumerge:tokens=0", "tokens"), ("prumerge:extra_token=maybe", "extra_token")],
)
def test_spec_errors(spec, field):
    with pytest.raises(SpecError, match=field):
        lfb.create(spec)
