"""ToMe (post-hoc, VideoChat-Flash schedule): method-specific invariants and error messages."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import liteframe_bench as lfb
import liteframe_bench.methods  # noqa: F401  (registers the built-ins)
from liteframe_bench import ReducerError, SpecError, TokenGrid
from liteframe_bench.methods.reducers.tome import bipartite_step, merge_schedule
from liteframe_bench.reduction import raster_index
from liteframe_bench.testing import constant_grid, random_grid

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_merge_tokens(x: torch.Tensor, target: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A literal, step-by-step re-statement of the original (merge_wavg with the metric recomputed from the
    merged features each step), for one clip x [P, C]; returns (x, size) in the original's token order."""
    size = torch.ones(x.shape[0], 1, dtype=x.dtype)
    for r in merge_schedule(x.shape[0], target):
        p, c = x.shape
        metric = x.reshape(p, c // head_dim, head_dim).mean(1)
        metric = metric / metric.norm(dim=-1, keepdim=True)
        scores = metric[0::2] @ metric[1::2].T
        best, best_b = scores.max(dim=-1)
        order = torch.sort(best, descending=True, stable=True).indices
        src, unm = order[:r], order[r:]
        xs = x * size
        a_x, b_x = xs[0::2], xs[1::2].clone()
        a_s, b_s = size[0::2], size[1::2].clone()
        for i in src.tolist():  # plain loop: this is the slow reference
            b_x[best_b[i]] += a_x[i]
            b_s[best_b[i]] += a_s[i]
        x_sum = torch.cat([a_x[unm], b_x])
        size = torch.cat([a_s[unm], b_s])
        x = x_sum / size
    return x, size.squeeze(-1)


# ------------------------------------------------------------------------------------------- schedule


def test_schedule_matches_videochat_flash_example():
    assert merge_schedule(3136, 64) == [1568, 784, 392, 196, 98, 34]
    assert merge_schedule(1024, 64) == [512, 256, 128, 64]
    assert merge_schedule(16, 15) == [1]
    assert merge_schedule(10, 10) == []


@SETTINGS
@given(p=st.integers(1, 5000), data=st.data())
def test_schedule_halves_then_finishes(p, data):
    target = data.draw(st.integers(1, p))
    rs = merge_schedule(p, target)
    n = p
    for i, r in enumerate(rs):
        assert 1 <= r <= n // 2
        if i < len(rs) - 1:
            assert r == n // 2  # halve while more than half must go
        n -= r
    assert n == target


# ------------------------------------------------------------------------------------- one bipartite step


@SETTINGS
@given(G=st.integers(1, 3), N=st.integers(2, 40), D=st.integers(3, 8), seed=st.integers(0, 2**16), data=st.data())
def test_bipartite_step_removes_r_tokens(G, N, D, seed, data):
    r = data.draw(st.integers(0, N // 2))
    metric = torch.randn(G, N, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    dest, rep = bipartite_step(metric, r)
    assert dest.shape == (G, N) and rep.shape == (G, N - r)
    assert int(dest.min()) >= 0 and int(dest.max()) == N - r - 1
    for g in range(G):
        counts = torch.bincount(dest[g], minlength=N - r)
        assert (counts >= 1).all() and int(counts.sum()) == N  # N - r non-empty groups
        assert torch.equal(dest[g, rep[g]], torch.arange(N - r))  # each representative is in its own group
        sources = sorted(set(range(N)) - set(rep[g].tolist()))
        assert len(sources) == r and all(j % 2 == 0 for j in sources)  # only A tokens merge away
        # the merged-away A tokens are the r with the highest best score, each into its most similar B
        m = metric[g] / metric[g].norm(dim=-1, keepdim=True)
        scores = m[0::2] @ m[1::2].T
        best, best_b = scores.max(dim=-1)
        expect = sorted(2 * i for i in torch.sort(best, descending=True, stable=True).indices[:r].tolist())
        assert sources == expect
        for j in sources:
            assert int(rep[g, dest[g, j]]) == 2 * int(best_b[j // 2]) + 1


# ----------------------------------------------------------------------------------------- full reduce


@SETTINGS
@given(
    B=st.integers(1, 2),
    clip=st.integers(1, 3),
    clips=st.integers(1, 2),
    H=st.integers(1, 4),
    W=st.integers(1, 4),
    chunks=st.integers(1, 3),
    ratio=st.sampled_from([1.0, 2.0, 3.0, 4.5, 16.0]),
    use_tokens=st.booleans(),
    sort=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_reduce_invariants(B, clip, clips, H, W, chunks, ratio, use_tokens, sort, seed):
    T, hd = clip * clips, 4
    P = clip * H * W
    if ratio > P:
        ratio = float(P)
    per = int(P // ratio)
    params = {"tokens": per * clips} if use_tokens else {"ratio": ratio}
    r = lfb.create("tome", clip=clip, head_dim=hd, sort=sort, **params)
    g = random_grid(B=B, T=T, H=H, W=W, C=hd * chunks, seed=seed, dtype=torch.float64)
    out = r(g)
    n = r.target_tokens(T, H, W)
    assert n == per * clips
    assert out.x.shape == (B, n, hd * chunks) and out.x.dtype == torch.float64
    assert out.pos.shape == (B, n, 3) and out.pos.dtype == torch.int64
    assert out.size.shape == (B, n) and out.size.dtype == torch.int64 and out.lengths is None
    assert (out.size >= 1).all()
    # size and size-weighted sums preserved, per clip
    assert torch.equal(out.size.sum(1), torch.full((B,), T * H * W))
    tot_in = g.x.reshape(B, clips, P, -1).sum(2)
    tot_out = (out.x * out.size.unsqueeze(-1)).reshape(B, clips, per, -1).sum(2)
    torch.testing.assert_close(tot_out, tot_in, rtol=1e-9, atol=1e-9)
    # positions valid, distinct, inside their clip
    assert (out.pos >= 0).all() and (out.pos < torch.tensor([T, H, W])).all()
    flat = raster_index(out.pos, H, W)
    clip_of = (out.pos[..., 0] // clip).reshape(B, clips, per)
    assert torch.equal(clip_of, torch.arange(clips).view(1, clips, 1).expand(B, clips, per))
    for b in range(B):
        assert len(set(flat[b].tolist())) == n
    if sort:
        assert r.ordered and (flat[:, 1:] > flat[:, :-1]).all()
    else:
        assert r.ordered is False


@SETTINGS
@given(clip=st.integers(1, 2), H=st.integers(2, 4), W=st.integers(2, 4), ratio=st.sampled_from([2.0, 3.0, 5.0, 7.5]),
       seed=st.integers(0, 2**16))
def test_matches_step_by_step_original(clip, H, W, ratio, seed):
    """sort=False reproduces the original's iterative merge_wavg, in its token order."""
    P = clip * H * W
    ratio = min(ratio, float(P))
    g = random_grid(B=2, T=2 * clip, H=H, W=W, C=12, seed=seed, dtype=torch.float64)
    out = lfb.create("tome", ratio=ratio, clip=clip, head_dim=4, sort=False)(g)
    per = int(P // ratio)
    for b in range(2):
        for c in range(2):
            clip_x = g.x[b, c * clip:(c + 1) * clip].reshape(P, 12)
            x_ref, s_ref = reference_merge_tokens(clip_x, per, 4)
            torch.testing.assert_close(out.x[b, c * per:(c + 1) * per], x_ref, rtol=1e-10, atol=1e-10)
            assert torch.equal(out.size[b, c * per:(c + 1) * per], s_ref.long())
    # sorting changes the order only
    srt = lfb.create("tome", ratio=ratio, clip=clip, head_dim=4)(g)
    for b in range(2):
        key = raster_index(out.pos[b], H, W).argsort()
        torch.testing.assert_close(srt.x[b], out.x[b, key])
        assert torch.equal(srt.size[b], out.size[b, key])


@pytest.mark.parametrize("a_idx, b_idx", [(0, 1), (4, 11), (14, 3), (8, 15)])
@pytest.mark.parametrize("metric", ["features", "keys"])
def test_identical_duplicates_merge_first(a_idx, b_idx, metric):
    g = random_grid(B=1, T=1, H=4, W=4, C=16, seed=a_idx * 17 + b_idx)
    src = g.keys if metric == "keys" else g.x
    flat = src.view(1, 16, 16)
    flat[0, a_idx] = flat[0, b_idx]  # an A (even) token duplicates a B (odd) token
    r = lfb.create("tome", tokens=15, clip=1, metric=metric, head_dim=16)
    out = r(g)
    merged = (out.size[0] == 2).nonzero().flatten()
    assert merged.numel() == 1 and int(out.size[0].sum()) == 16
    i = int(merged)
    assert int(raster_index(out.pos[0, i], 4, 4)) == b_idx  # represented by the B token
    expect = (g.x.view(16, 16)[a_idx] + g.x.view(16, 16)[b_idx]) / 2
    torch.testing.assert_close(out.x[0, i], expect)
    assert a_idx not in raster_index(out.pos[0], 4, 4).tolist()


def test_default_ratio_16_on_a_video_grid():
    g = random_grid(B=1, T=8, H=8, W=8, C=128)
    out = lfb.create("tome")(g)
    assert out.x.shape == (1, 8 * 64 // 16, 128)
    assert torch.equal(out.size.sum(1), torch.tensor([8 * 64]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dtypes_and_constant_input(dtype):
    g = random_grid(B=2, T=4, H=4, W=4, C=64, dtype=dtype)
    out = lfb.create("tome", ratio=4)(g)
    assert out.x.dtype == dtype and out.x.shape == (2, 16, 64)
    c = constant_grid(B=1, T=4, H=4, W=4, C=64, dtype=dtype, value=0.0)
    oc = lfb.create("tome", ratio=4)(c)
    assert torch.isfinite(oc.x.float()).all() and (oc.x == 0).all()
    c = constant_grid(B=1, T=4, H=4, W=4, C=64, dtype=dtype, value=0.5)
    oc = lfb.create("tome", ratio=4)(c)
    assert (oc.x == 0.5).all()
    assert torch.equal(lfb.create("tome", ratio=4)(c).pos, oc.pos)  # deterministic under ties


def test_keys_metric_needs_keys():
    r = lfb.create("tome:metric=keys")
    assert r.needs == frozenset({"keys"})
    assert lfb.create("tome").needs == frozenset()
    g = random_grid(B=1, T=4, H=4, W=4, C=64, aux=False)
    with pytest.raises(ReducerError, match="keys"):
        r(g)


# -------------------------------------------------------------------------------------------- errors


def test_target_errors_name_the_parameter():
    with pytest.raises(ReducerError, match=r"ratio=100.*64 tokens"):
        lfb.create("tome:ratio=100").target_tokens(4, 4, 4)
    with pytest.raises(ReducerError, match=r"clip=4 does not divide T=6"):
        lfb.create("tome").target_tokens(6, 4, 4)
    with pytest.raises(ReducerError, match=r"tokens=5 .* 2 clips"):
        lfb.create("tome:tokens=5").target_tokens(8, 4, 4)
    with pytest.raises(ReducerError, match=r"tokens=1000 exceeds"):
        lfb.create("tome:tokens=1000").target_tokens(8, 4, 4)
    assert lfb.create("tome:tokens=6").target_tokens(8, 4, 4) == 6
    with pytest.raises(ReducerError, match="head_dim=64 does not divide"):
        lfb.create("tome:ratio=4")(TokenGrid(torch.randn(1, 4, 2, 2, 48)))


@pytest.mark.parametrize(
    "spec, field",
    [("tome:metric=bogus", "metric"), ("tome:clip=0", "clip"), ("tome:ratio=0.5", "ratio"),
     ("tome:head_dim=0", "head_dim"), ("tome:tokens=0", "tokens"), ("tome:ratio=none", "ratio")],
)
def test_spec_errors(spec, field):
    with pytest.raises(SpecError, match=field):
        lfb.create(spec)
