"""VisionZip: per-frame budget, dominant tokens by CLS attention, contextual merging, against a loop reference."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import liteframe_bench as lfb
from liteframe_bench import ReducerError, SpecError, TokenGrid
from liteframe_bench.methods.reducers.visionzip import VisionZip, contextual_targets, split_budget
from liteframe_bench.reduction import raster_index
from liteframe_bench.testing import constant_grid, random_grid

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ref_frame(x, logits, keys, n_dom, n_ctx, merge):
    """One frame written out with loops: {flat index: (token, size)}. x [N, C], logits [heads, N], keys [N, Ck]."""
    N = x.shape[0]
    heads = logits.shape[0]
    attn = torch.softmax(logits.double(), dim=-1).sum(0)
    dom = sorted(range(N), key=lambda i: -float(attn[i]))[:n_dom]
    out = {i: (x[i], 1) for i in dom}
    if n_ctx == 0:
        return out
    rest = [i for i in range(N) if i not in dom]
    step = max(1, len(rest) // n_ctx)
    targets = [rest[j] for j in range(0, len(rest), step)][:n_ctx]
    metric = keys.double()
    if keys.shape[1] % heads == 0:
        metric = metric.reshape(N, heads, -1).mean(1)
    joined = {t: [] for t in targets}
    for i in rest:
        if i in targets:
            continue
        cos = [float(torch.nn.functional.cosine_similarity(metric[i], metric[t], dim=0)) for t in targets]
        joined[targets[max(range(n_ctx), key=lambda j: cos[j])]].append(i)
    for t in targets:
        mem = joined[t]
        if merge == "add":
            val = x[t] + (torch.stack([x[i] for i in mem]).mean(0) if mem else 0)
        else:
            val = (x[t] + sum((x[i] for i in mem), torch.zeros_like(x[t]))) / (1 + len(mem))
        out[t] = (val, 1 + len(mem))
    return out


def test_default_split_is_the_originals_54_plus_10():
    assert split_budget(64, VisionZip().contextual) == (54, 10)
    assert split_budget(16, 10 / 64) == (14, 2)
    assert split_budget(16, 0.0) == (16, 0) and split_budget(16, 1.0) == (0, 16)
    assert contextual_targets(10, 3).tolist() == [0, 3, 6]
    assert contextual_targets(5, 5).tolist() == [0, 1, 2, 3, 4]
    assert VisionZip().target_tokens(64, 16, 16) == 64 * 16


@SETTINGS
@given(
    B=st.integers(1, 2),
    T=st.integers(1, 4),
    H=st.integers(2, 7),
    W=st.integers(2, 7),
    ratio=st.sampled_from([1.0, 2.0, 3.0, 4.0, 6.5]),
    contextual=st.sampled_from([0.0, 10 / 64, 0.25, 0.5, 1.0]),
    merge=st.sampled_from(["add", "mean"]),
    key_dim=st.sampled_from([8, 6]),
    seed=st.integers(0, 2**16),
)
def test_matches_loop_reference(B, T, H, W, ratio, contextual, merge, key_dim, seed):
    r = VisionZip(ratio=ratio, contextual=contextual, merge=merge)
    N = H * W
    k = int(N // ratio)
    if k < 1:
        with pytest.raises(ReducerError, match="ratio"):
            r.target_tokens(T, H, W)
        return
    grid = random_grid(B, T, H, W, 5, heads=4, key_dim=key_dim, seed=seed, dtype=torch.float64)
    out = r(grid)
    assert out.lengths is None and out.x.shape == (B, T * k, 5) and r.target_tokens(T, H, W) == T * k
    n_dom, n_ctx = split_budget(k, contextual)
    for b in range(B):
        raster = raster_index(out.pos[b], H, W)
        assert bool((raster.diff() > 0).all())
        for t in range(T):
            ref = ref_frame(
                grid.x[b, t].reshape(N, -1),
                grid.cls_attn[b, t].reshape(4, N),
                grid.keys[b, t].reshape(N, -1),
                n_dom,
                n_ctx,
                merge,
            )
            rows = (out.pos[b, :, 0] == t).nonzero().flatten()
            flat = (raster[rows] - t * N).tolist()
            assert flat == sorted(ref)
            assert torch.allclose(out.x[b, rows], torch.stack([ref[i][0] for i in flat]), atol=1e-9)
            assert out.size[b, rows].tolist() == [ref[i][1] for i in flat]
        assert int(out.size[b].sum()) == T * (N if n_ctx else n_dom)


@SETTINGS
@given(T=st.integers(1, 4), H=st.integers(3, 8), W=st.integers(3, 8), seed=st.integers(0, 2**16))
def test_dominant_tokens_are_the_top_by_head_summed_attention(T, H, W, seed):
    r = VisionZip(ratio=3.0, contextual=0.25)
    N = H * W
    n_dom, _ = split_budget(N // 3, 0.25)
    grid = random_grid(1, T, H, W, 6, seed=seed)
    out = r(grid)
    attn = torch.softmax(grid.cls_attn[0].reshape(T, -1, N), dim=-1).sum(1)
    for t in range(T):
        top = set(torch.topk(attn[t], n_dom).indices.tolist())
        rows = {int(p[1]) * W + int(p[2]): i for i, p in enumerate(out.pos[0].tolist()) if p[0] == t}
        assert top <= set(rows)
        for i in top:
            assert torch.equal(out.x[0, rows[i]], grid.x[0, t].reshape(N, -1)[i])
            assert int(out.size[0, rows[i]]) == 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mean_merge_preserves_the_sum_of_the_sources(dtype):
    r = lfb.create("visionzip:ratio=8,merge=mean")
    grid = random_grid(2, 3, 8, 8, 16, seed=3, dtype=dtype)
    out = r(grid)
    total = (out.x.double() * out.size[..., None]).sum(1)
    assert torch.allclose(total, grid.x.double().sum((1, 2, 3)), atol=1e-4)
    assert out.size.sum(1).tolist() == [3 * 64] * 2


def test_add_merge_is_target_plus_mean_of_the_joined_tokens():
    # size * (x_ctx - x_target) = sum of the joined tokens; together with the dominant ones: the input sum
    r = lfb.create("visionzip:ratio=8")
    grid = random_grid(1, 2, 8, 8, 16, seed=4, dtype=torch.float64)
    out = r(grid)
    flat = grid.x[0].reshape(-1, 16)
    src = flat[raster_index(out.pos[0], 8, 8)]
    merged = src + (out.x[0] - src) * (out.size[0, :, None] - 1)
    assert torch.allclose(merged.sum(0), flat.sum(0), atol=1e-9)


def test_tokens_budget_and_dtypes():
    grid = random_grid(2, 4, 6, 6, 8, seed=5)
    out = lfb.create("visionzip:tokens=40")(grid)
    assert out.x.shape == (2, 40, 8) and torch.bincount(out.pos[0, :, 0]).tolist() == [10] * 4
    for dtype in (torch.bfloat16, torch.float64):
        g = TokenGrid(grid.x.to(dtype), grid.cls_attn.to(dtype), keys=grid.keys.to(dtype))
        o = lfb.create("visionzip:ratio=4")(g)
        assert o.x.dtype == dtype and bool(torch.isfinite(o.x.float()).all())
    for value in (0.0, 1.0):
        o = lfb.create("visionzip:ratio=4")(constant_grid(1, 2, 6, 6, 8, value=value))
        assert bool(torch.isfinite(o.x).all()) and o.x.shape[1] == 18


def test_impossible_targets_name_the_parameter():
    with pytest.raises(ReducerError, match=r"ratio=16 .*4 tokens.*allowed: ratio <= 4"):
        VisionZip().target_tokens(2, 2, 2)
    with pytest.raises(ReducerError, match=r"tokens=10 .*3 frames.*allowed: a multiple of 3"):
        VisionZip(tokens=10).target_tokens(3, 4, 4)
    with pytest.raises(ReducerError, match=r"tokens=60 .*allowed: a multiple of 3 up to 48"):
        VisionZip(tokens=60).target_tokens(3, 4, 4)
    with pytest.raises(ReducerError, match="ratio"):
        VisionZip(ratio=32.0)(random_grid(1, 2, 4, 4, 8))


@pytest.mark.parametrize(
    "spec, field",
    [
        ("visionzip:ratio=0.5", "ratio"),
        ("visionzip:tokens=0", "tokens"),
        ("visionzip:ratio=none", "ratio"),
        ("visionzip:contextual=1.5", "contextual"),
        ("visionzip:contextual=-0.1", "contextual"),
    ],
)
def test_bad_parameters_are_spec_errors(spec, field):
    with pytest.raises(SpecError, match=f"{field}=.*allowed"):
        lfb.create(spec)


def test_bad_merge_choice_is_a_spec_error():
    with pytest.raises(SpecError, match="merge"):
        lfb.create("visionzip:merge=max")
