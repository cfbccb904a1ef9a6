"""FastVID: budgets, DySeg, ATS, DPC-kNN anchors and DTM merging against a plain loop-based reference."""

import math

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import liteframe_bench as lfb
from liteframe_bench import ReducerError, SpecError, TokenGrid
from liteframe_bench.methods.reducers.fastvid import FastVID, _merge, anchor_plan, dyseg, frame_similarity
from liteframe_bench.reduction import raster_index
from liteframe_bench.testing import constant_grid, random_grid

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------------- reference


def ref_segments(glob: torch.Tensor, c: int, tau: float) -> list[int]:
    """DySeg written out: cut after t when s_t < tau or s_t is among the c-1 lowest."""
    g = glob.double()
    T = g.shape[0]
    s = [float(g[t] @ g[t + 1] / (g[t].norm() * g[t + 1].norm())) for t in range(T - 1)]
    low = sorted(range(T - 1), key=lambda t: s[t])[: min(c, T) - 1]
    cuts = sorted({t for t in range(T - 1) if s[t] < tau} | set(low))
    ends = [-1, *cuts, T - 1]
    return [b - a for a, b in zip(ends[:-1], ends[1:], strict=True)]


def ref_fastvid(x, logits, glob, r: FastVID):
    """One sample, float64, loops everywhere, noise-free. Returns {raster index: (token, size)} and min rho gap."""
    T, N, C = x.shape
    n_ret = int(N * r.retain)
    n_sal = n_ret - int(n_ret * r.salient)
    n_ctx = n_ret - n_sal
    sal = torch.softmax(logits.double(), dim=-1).mean(dim=0 if logits.ndim == 2 else 1)  # [T, N]
    out, gaps = {}, [math.inf]
    nonsal = []
    for t in range(T):
        top = sorted(range(N), key=lambda i: -float(sal[t, i]))[:n_sal]
        for i in top:
            out[t * N + i] = (x[t, i], 1)
        nonsal.append([i for i in range(N) if i not in top])
    if n_ctx == 0:
        return out, min(gaps)
    start = 0
    for L in ref_segments(glob, r.segments, r.tau):
        frames = list(range(start, start + L))
        anchor_frames = [f for f in frames if (start + L - 1 - f) % r.anchor_step == 0]
        k = min((n_ctx * L) // len(anchor_frames), N - n_sal)
        members = [(f, i) for f in frames for i in nonsal[f]]
        for fa in anchor_frames:
            toks = nonsal[fa]
            d = [[float((x[fa, i] - x[fa, j]).norm()) / math.sqrt(C) for j in toks] for i in toks]
            rho = [math.exp(-sum(v * v for v in sorted(row)[: r.knn]) / r.knn) for row in d]
            srt = sorted(rho)
            gaps.extend(b - a for a, b in zip(srt[:-1], srt[1:], strict=True))
            dmax = max(max(row) for row in d)
            score = []
            for a in range(len(toks)):
                denser = [d[a][b] for b in range(len(toks)) if rho[b] > rho[a]]
                score.append((min(denser) if denser else dmax) * rho[a])
            anchors = [toks[a] for a in sorted(range(len(toks)), key=lambda a: -score[a])[:k]]
            joined = {i: [] for i in anchors}
            for f, i in members:
                cos = [float(torch.nn.functional.cosine_similarity(x[f, i], x[fa, j], dim=0)) for j in anchors]
                joined[anchors[max(range(k), key=lambda j: cos[j])]].append((f, i))
            for i in anchors:
                mem = joined[i]
                w = max(1 / (len(mem) + 1), r.beta)
                mean = torch.stack([x[f, j] for f, j in mem]).mean(0) if mem else torch.zeros(C, dtype=x.dtype)
                size = len(mem) + (0 if (fa, i) in mem else 1)
                out[fa * N + i] = (w * x[fa, i] + (1 - w) * mean, size)
        start += L
    return out, min(gaps)


def globals_with_sims(sims: list[float]) -> torch.Tensor:
    """2-D frame features whose consecutive cosine similarities are exactly ``sims``."""
    angles = torch.cumsum(torch.tensor([0.0, *[math.acos(s) for s in sims]], dtype=torch.float64), 0)
    return torch.stack([angles.cos(), angles.sin()], dim=-1)


def smooth_grid(B, T, H, W, C, seed, mix):
    """A random grid whose frame globals drift slowly (mix near 1: long segments)."""
    grid = random_grid(B, T, H, W, C, seed=seed, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed + 1)
    base = torch.randn(B, 1, C, generator=g, dtype=torch.float64)
    noise = torch.randn(B, T, C, generator=g, dtype=torch.float64)
    grid.frame_global = mix * base + (1 - mix) * noise
    return grid


# ----------------------------------------------------------------------------------------- budgets


def test_paper_budget_at_196_tokens():
    r = FastVID()
    assert r.budgets(196) == (19, 12, 7)
    assert r.target_tokens(8, 14, 14) == 8 * 19
    assert anchor_plan(1, 7, 4) == ([0], 7)
    assert anchor_plan(5, 7, 4) == ([0, 4], 17)  # last frame and every 4th backwards; 35 // 2
    assert anchor_plan(8, 7, 4) == ([3, 7], 28)


@pytest.mark.parametrize("L", range(1, 20))
@pytest.mark.parametrize("p", [1, 2, 3, 4, 7])
def test_anchor_budget_never_exceeds_the_segment_budget(L, p):
    offsets, k = anchor_plan(L, 7, p)
    assert offsets[-1] == L - 1 and all(b - a == p for a, b in zip(offsets[:-1], offsets[1:], strict=True))
    assert len(offsets) == math.ceil(L / p) and len(offsets) * k <= 7 * L


# ------------------------------------------------------------------------------------------- DySeg


def test_dyseg_hand_example():
    g = globals_with_sims([0.95, 0.5, 0.99, 0.97, 0.92])
    assert torch.allclose(frame_similarity(g), torch.tensor([0.95, 0.5, 0.99, 0.97, 0.92], dtype=torch.float64))
    assert dyseg(g, segments=1, tau=0.9) == [2, 4]  # only s_1 < tau
    assert dyseg(g, segments=2, tau=0.9) == [2, 4]  # the lowest is s_1 again
    assert dyseg(g, segments=3, tau=0.9) == [2, 3, 1]  # + s_4 = 0.92
    assert dyseg(g, segments=4, tau=0.9) == [1, 1, 3, 1]  # + s_0 = 0.95
    assert dyseg(g, segments=1, tau=0.96) == [1, 1, 3, 1]
    assert dyseg(g, segments=20, tau=0.0) == [1] * 6  # at least min(c, T) segments
    assert dyseg(g[:1], segments=8, tau=0.9) == [1]


@SETTINGS
@given(
    T=st.integers(1, 24),
    c=st.integers(1, 10),
    tau=st.floats(-1.0, 1.0),
    mix=st.floats(0.0, 0.95),
    seed=st.integers(0, 2**16),
)
def test_dyseg_rule(T, c, tau, mix, seed):
    gen = torch.Generator().manual_seed(seed)
    glob = mix * torch.randn(1, 6, generator=gen) + (1 - mix) * torch.randn(T, 6, generator=gen)
    sizes = dyseg(glob, c, tau)
    assert sum(sizes) == T and min(sizes) >= 1 and len(sizes) >= min(c, T)
    s = frame_similarity(glob).tolist()
    ends = set(torch.cumsum(torch.tensor(sizes), 0)[:-1].sub(1).tolist())
    assert {t for t in range(T - 1) if s[t] < tau} <= ends  # every similarity below tau is a cut
    extra = [t for t in ends if s[t] >= tau]
    assert len(extra) <= c - 1
    if extra:  # the other cuts are the lowest similarities
        assert max(s[t] for t in extra) <= min([s[t] for t in range(T - 1) if t not in ends], default=math.inf)
    assert sizes == ref_segments(glob, c, tau)


# ------------------------------------------------------------------------------------ full method


@SETTINGS
@given(
    B=st.integers(1, 2),
    T=st.integers(1, 6),
    H=st.integers(3, 7),
    W=st.integers(3, 7),
    retain=st.sampled_from([0.1, 0.2, 0.3, 0.5, 0.75, 1.0]),
    salient=st.sampled_from([0.0, 0.25, 0.4, 0.6, 1.0]),
    segments=st.integers(1, 4),
    tau=st.sampled_from([0.0, 0.5, 0.9]),
    anchor_step=st.integers(1, 4),
    beta=st.sampled_from([0.0, 0.3, 0.6, 1.0]),
    knn=st.integers(1, 4),
    mix=st.sampled_from([0.0, 0.8, 0.97]),
    seed=st.integers(0, 2**16),
)
def test_matches_loop_reference(B, T, H, W, retain, salient, segments, tau, anchor_step, beta, knn, mix, seed):
    r = FastVID(retain=retain, segments=segments, tau=tau, salient=salient, anchor_step=anchor_step, beta=beta, knn=knn)
    n_ret, n_sal, n_ctx = r.budgets(H * W)
    if n_ret < 1 or (n_ctx > 0 and H * W - n_sal < knn):
        with pytest.raises(ReducerError, match="retain" if n_ret < 1 else "knn"):
            r.target_tokens(T, H, W)
        return
    grid = smooth_grid(B, T, H, W, 5, seed, mix)
    target = r.target_tokens(T, H, W)
    out = r(grid, generator=torch.Generator().manual_seed(seed))
    counts = out.num_tokens
    assert out.x.shape[1] == max(counts) and all(1 <= n <= target for n in counts)
    assert (out.lengths is None) == (len(set(counts)) == 1)
    for b in range(B):
        n = counts[b]
        x, pos, size = out.x[b, :n], out.pos[b, :n], out.size[b, :n]
        raster = raster_index(pos, H, W)
        assert bool((raster.diff() > 0).all())
        ref, gap = ref_fastvid(
            grid.x[b].reshape(T, H * W, -1), grid.cls_attn[b].reshape(T, -1, H * W), grid.frame_global[b], r
        )
        assume(gap > 1e-5)  # the 1e-6 density noise can only reorder (near-)ties
        assert sorted(ref) == raster.tolist()
        want_x = torch.stack([ref[i][0] for i in raster.tolist()])
        assert torch.allclose(x, want_x, atol=1e-9)
        assert size.tolist() == [ref[i][1] for i in raster.tolist()]
        if n < max(counts):  # padding rows are zero
            assert not out.x[b, n:].any() and not out.size[b, n:].any() and not out.pos[b, n:].any()


@SETTINGS
@given(
    T=st.integers(1, 5),
    H=st.integers(4, 8),
    W=st.integers(4, 8),
    seed=st.integers(0, 2**16),
    retain=st.sampled_from([0.1, 0.25, 0.5]),
)
def test_salient_tokens_are_each_frames_top_by_saliency(T, H, W, seed, retain):
    r = FastVID(retain=retain, knn=1)
    n_ret, n_sal, _ = r.budgets(H * W)
    assume(n_ret >= 1)
    grid = random_grid(1, T, H, W, 8, seed=seed)
    out = r(grid)
    x, pos = out.x[0, : out.num_tokens[0]], out.pos[0, : out.num_tokens[0]]
    sal = torch.softmax(grid.cls_attn[0].reshape(T, -1, H * W), dim=-1).mean(1)
    for t in range(T):
        top = set(torch.topk(sal[t], n_sal).indices.tolist())
        rows = {int(p[1]) * W + int(p[2]): i for i, p in enumerate(pos.tolist()) if p[0] == t}
        assert top <= set(rows)  # every top-n_sal token is kept ...
        for i in top:  # ... unchanged
            assert torch.equal(x[rows[i]], grid.x[0, t].reshape(H * W, -1)[i])


def test_random_frames_keep_the_full_budget_at_196_tokens():
    # independent random frame globals: every similarity < tau, every frame its own segment: 12 + 7 per frame
    r = lfb.create("fastvid")
    grid = random_grid(2, 6, 14, 14, 32, seed=1)
    out = r(grid)
    assert out.lengths is None and out.x.shape[1] == 6 * 19
    for b in range(2):
        frames = out.pos[b, :, 0]
        assert torch.bincount(frames, minlength=6).tolist() == [19] * 6
        assert int((out.size[b] > 1).sum()) >= 6  # anchors absorbed their frame's other tokens
        assert int(out.size[b].sum()) >= 6 * 196  # every token of every frame is represented


def test_lengths_report_samples_with_fewer_tokens():
    # sample 0: independent frames (5 single-frame segments: 5*19 tokens); sample 1: one 5-frame segment with
    # 2 anchor frames of (7*5)//2 = 17 anchors each: 5*12 + 34 = 94 tokens
    r = FastVID(segments=1)
    grid = random_grid(2, 5, 14, 14, 16, seed=2)
    grid.frame_global[1] = 1.0
    out = r(grid)
    assert out.lengths.tolist() == [95, 94] and out.x.shape[1] == 95
    assert not out.x[1, 94:].any() and int(out.size[1, 94]) == 0
    anchors = out.pos[1][(out.size[1] > 1)]
    assert sorted(set(anchors[:, 0].tolist())) == [0, 4]  # anchor frames: the last and 4 frames before
    assert int(out.size[1, :94].sum()) > 5 * 196  # a token joins one anchor per anchor frame


def test_single_anchor_is_the_weighted_mean_of_its_frame():
    # one frame, n_ctx = 1: every non-salient token joins the only anchor; anchor' = beta*a + (1-beta)*mean
    r = FastVID(retain=0.1875, salient=0.4, beta=0.6, knn=2)  # n_ret = 3, n_sal = 2, n_ctx = 1
    assert r.budgets(16) == (3, 2, 1)
    grid = random_grid(1, 1, 4, 4, 6, seed=4, dtype=torch.float64)
    out = r(grid)
    sal = set(torch.topk(torch.softmax(grid.cls_attn[0, 0].reshape(-1, 16), -1).mean(0), 2).indices.tolist())
    rest = [i for i in range(16) if i not in sal]
    flat = grid.x[0, 0].reshape(16, -1)
    (anchor_row,) = [i for i, p in enumerate(out.pos[0].tolist()) if p[1] * 4 + p[2] not in sal]
    a = int(out.pos[0, anchor_row, 1] * 4 + out.pos[0, anchor_row, 2])
    assert torch.allclose(out.x[0, anchor_row], 0.6 * flat[a] + 0.4 * flat[rest].mean(0), atol=1e-12)
    assert int(out.size[0, anchor_row]) == 14


def test_deterministic_and_dtype_preserving():
    r = lfb.create("fastvid:retain=0.2,segments=2")
    grid = smooth_grid(2, 6, 8, 8, 16, seed=5, mix=0.9)
    a, b = r(grid), r(grid)
    assert torch.equal(a.x, b.x) and torch.equal(a.pos, b.pos) and torch.equal(a.size, b.size)
    g1 = r(grid, generator=torch.Generator().manual_seed(9))
    g2 = r(grid, generator=torch.Generator().manual_seed(9))
    assert torch.equal(g1.x, g2.x) and torch.equal(g1.pos, g2.pos)
    for dtype in (torch.float32, torch.bfloat16):
        low = TokenGrid(grid.x.to(dtype), grid.cls_attn.to(dtype), frame_global=grid.frame_global.to(dtype))
        out = r(low)
        assert out.x.dtype == dtype and bool(torch.isfinite(out.x.float()).all())
    for value in (0.0, 1.0):
        out = r(constant_grid(1, 4, 8, 8, 16, value=value))
        assert bool(torch.isfinite(out.x).all()) and out.num_tokens[0] <= r.target_tokens(4, 8, 8)


# ------------------------------------------------------------------------------------------ errors


def test_impossible_retain_names_the_parameter():
    with pytest.raises(ReducerError, match=r"retain=0\.1 .*2x2 .*allowed: retain >= 0\.25"):
        FastVID().target_tokens(3, 2, 2)
    with pytest.raises(ReducerError, match="retain"):
        FastVID()(random_grid(1, 2, 3, 3, 8))
    with pytest.raises(ReducerError, match=r"knn=185 .*allowed: knn <= 184"):
        FastVID(knn=185).target_tokens(2, 14, 14)


@pytest.mark.parametrize(
    "spec, field",
    [
        ("fastvid:retain=2", "retain"),
        ("fastvid:retain=0", "retain"),
        ("fastvid:segments=0", "segments"),
        ("fastvid:tau=1.5", "tau"),
        ("fastvid:salient=-0.1", "salient"),
        ("fastvid:anchor_step=0", "anchor_step"),
        ("fastvid:beta=1.2", "beta"),
        ("fastvid:knn=0", "knn"),
        ("fastvid:retain=nan", "retain"),
    ],
)
def test_bad_parameters_are_spec_errors(spec, field):
    with pytest.raises(SpecError, match=f"{field}=.*allowed"):
        lfb.create(spec)


def test_cpu_index_add_path_equals_the_dense_path():
    # _merge sums a single long segment with index_add on CPU and batches of frames with a dense product
    g = torch.Generator().manual_seed(6)
    members = torch.randn(1, 30, 4, generator=g, dtype=torch.float64)
    anchor_idx = torch.tensor([[[3, 7, 11], [20, 25, 29]]])  # [1, A=2, k=3]
    anchors = members[0, anchor_idx[0]].unsqueeze(0)  # [1, 2, 3, 4]
    unit = members / members.norm(dim=-1, keepdim=True)
    cos = torch.einsum("gpc,gakc->gpak", unit, anchors / anchors.norm(dim=-1, keepdim=True))
    valid = torch.rand(1, 30, generator=g) > 0.2
    valid[0, anchor_idx.flatten()] = True
    one = _merge(anchors, members, cos, valid, anchor_idx, 0.3)
    two = _merge(*(t.expand(2, *t.shape[1:]) for t in (anchors, members, cos, valid, anchor_idx)), 0.3)
    assert torch.allclose(one[0][0], two[0][1], atol=1e-12) and torch.equal(one[1][0], two[1][1])
    # and by hand: w = max(1/(n+1), beta), anchor' = w * anchor + (1 - w) * mean(joined)
    assign = cos.argmax(-1)[0]  # [P, A]
    for a in range(2):
        for j in range(3):
            joined = [p for p in range(30) if valid[0, p] and assign[p, a] == j]
            w = max(1 / (len(joined) + 1), 0.3)
            mean = members[0, joined].mean(0) if joined else torch.zeros(4, dtype=torch.float64)
            assert torch.allclose(one[0][0, a, j], w * anchors[0, a, j] + (1 - w) * mean, atol=1e-12)
            assert int(one[1][0, a, j]) == len(joined) + (int(anchor_idx[0, a, j]) not in joined)
