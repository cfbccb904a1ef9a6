"""Invariants of the block reducers and WAP (notes/reducers.md, WAP section)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import liteframe_bench as lfb
from liteframe_bench.methods.reducers.pooling import RATIO_BLOCKS, to_blocks
from liteframe_bench.methods.reducers.wap import wap_weights
from liteframe_bench.testing import random_grid

BLOCKS = st.tuples(st.sampled_from([1, 2, 4]), st.sampled_from([1, 2, 4]), st.sampled_from([1, 2]))


@st.composite
def grids(draw):
    bt, bh, bw = draw(BLOCKS)
    T, H, W = (b * draw(st.integers(1, 3)) for b in (bt, bh, bw))
    B, C, heads = draw(st.integers(1, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 3))
    grid = random_grid(B, T, H, W, C, heads=heads, seed=draw(st.integers(0, 10_000)), dtype=torch.float64)
    return grid, f"{bt}x{bh}x{bw}"


@settings(max_examples=30, deadline=None)
@given(grids(), st.sampled_from(["wap", "avgpool", "maxpool", "subsample"]))
def test_count_positions_sizes(case, name):
    grid, block = case
    B, T, H, W, C = grid.shape
    bt, bh, bw = map(int, block.split("x"))
    out = lfb.create(f"{name}:block={block}")(grid)
    n = (T // bt) * (H // bh) * (W // bw)
    assert out.x.shape == (B, n, C) and out.grid == (T // bt, H // bh, W // bw)
    origins = out.pos[0].view(*out.grid, 3)
    assert torch.equal(origins[..., 0], torch.arange(0, T, bt).view(-1, 1, 1).expand(out.grid))
    assert torch.equal(origins[..., 2], torch.arange(0, W, bw).view(1, 1, -1).expand(out.grid))
    expected_total = n if name == "subsample" else T * H * W
    assert int(out.size[0].sum()) == expected_total


@settings(max_examples=30, deadline=None)
@given(grids())
def test_wap_block_weights_sum_to_one(case):
    grid, block = case
    blk = tuple(map(int, block.split("x")))
    for heads in ("logits", "weights"):
        w = wap_weights(grid.cls_attn, blk, heads, dtype=torch.float64)
        assert torch.allclose(w.sum(-1), torch.ones(()).double(), atol=1e-12)
        assert bool((w >= 0).all())


@settings(max_examples=30, deadline=None)
@given(grids(), st.floats(-5, 5))
def test_wap_with_uniform_logits_is_average_pooling(case, value):
    grid, block = case
    uniform = lfb.TokenGrid(grid.x, cls_attn=torch.full_like(grid.cls_attn, value))
    wap = lfb.create(f"wap:block={block}")(uniform)
    avg = lfb.create(f"avgpool:block={block}")(uniform)
    assert torch.allclose(wap.x, avg.x, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(grids(), st.integers(0, 2**31 - 1))
def test_wap_is_invariant_to_permutation_inside_blocks(case, seed):
    grid, block = case
    blk = tuple(map(int, block.split("x")))
    B, T, H, W, C = grid.shape
    n = blk[0] * blk[1] * blk[2]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))

    def permute(t):  # t: [B, T, H, W, C'] -> same grid with the cells of every block shuffled alike
        b = to_blocks(t, blk)[..., perm, :]
        Tn, Hn, Wn = b.shape[1:4]
        b = b.view(B, Tn, Hn, Wn, *blk, -1).permute(0, 1, 4, 2, 5, 3, 6, 7)
        return b.reshape(t.shape)

    logits = grid.cls_attn.permute(0, 1, 3, 4, 2)
    shuffled = lfb.TokenGrid(permute(grid.x), cls_attn=permute(logits).permute(0, 1, 4, 2, 3))
    a = lfb.create(f"wap:block={block}")(grid).x
    b = lfb.create(f"wap:block={block}")(shuffled).x
    assert torch.allclose(a, b, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(grids(), st.integers(0, 2**31 - 1))
def test_wap_one_dominant_logit_returns_that_token(case, seed):
    grid, block = case
    blk = tuple(map(int, block.split("x")))
    g = torch.Generator().manual_seed(seed)
    B, T, H, W, C = grid.shape
    logits = torch.zeros_like(grid.cls_attn)
    # one random winner per block
    n = blk[0] * blk[1] * blk[2]
    Tn, Hn, Wn = T // blk[0], H // blk[1], W // blk[2]
    win = torch.randint(0, n, (B, Tn, Hn, Wn), generator=g)
    onehot = torch.nn.functional.one_hot(win, n).double() * 1e4  # [B, Tn, Hn, Wn, n]
    cells = onehot.view(B, Tn, Hn, Wn, *blk).permute(0, 1, 4, 2, 5, 3, 6).reshape(B, T, H, W)
    logits += cells.unsqueeze(2)
    out = lfb.create(f"wap:block={block}")(lfb.TokenGrid(grid.x, cls_attn=logits))
    chosen = to_blocks(grid.x, blk).gather(-2, win[..., None, None].expand(-1, -1, -1, -1, 1, C)).squeeze(-2)
    assert torch.allclose(out.x, chosen.reshape(B, -1, C), atol=1e-9)


def test_wap_uses_logits_not_probabilities():
    # Two cells with logits 0 and 4: WAP weights e^4/(1+e^4) ~ 0.982 on the second, far from the 0.5 of averaging.
    x = torch.tensor([1.0, 3.0]).view(1, 2, 1, 1, 1)
    logits = torch.tensor([0.0, 4.0]).view(1, 2, 1, 1, 1)
    out = lfb.create("wap:block=2x1x1")(lfb.TokenGrid(x, cls_attn=logits)).x.item()
    w = torch.sigmoid(torch.tensor(4.0)).item()
    assert out == pytest.approx(1 * (1 - w) + 3 * w, rel=1e-6)


def test_wap_head_modes_differ_and_agree_with_one_head():
    grid = random_grid(1, 4, 4, 4, 8, heads=3, seed=1)
    a = lfb.create("wap:ratio=16,heads=logits")(grid).x
    b = lfb.create("wap:ratio=16,heads=weights")(grid).x
    assert not torch.allclose(a, b)
    one = lfb.TokenGrid(grid.x, cls_attn=grid.cls_attn[:, :, :1])
    assert torch.allclose(lfb.create("wap:heads=logits")(one).x, lfb.create("wap:heads=weights")(one).x, atol=1e-6)


def test_pooling_matches_plain_torch():
    grid = random_grid(2, 8, 6, 4, 5, seed=3, dtype=torch.float64)
    x = grid.x  # [B, T, H, W, C]
    ref = torch.nn.functional.avg_pool3d(x.permute(0, 4, 1, 2, 3), (4, 2, 2)).permute(0, 2, 3, 4, 1)
    assert torch.allclose(lfb.create("avgpool")(grid).as_grid(), ref)
    ref = torch.nn.functional.max_pool3d(x.permute(0, 4, 1, 2, 3), (4, 2, 2)).permute(0, 2, 3, 4, 1)
    assert torch.equal(lfb.create("maxpool")(grid).as_grid(), ref)
    assert torch.equal(lfb.create("subsample")(grid).as_grid(), x[:, ::4, ::2, ::2])
    centre = lfb.create("subsample:pick=center")(grid)
    assert torch.equal(centre.as_grid(), x[:, 2::4, 1::2, 1::2])
    assert centre.pos[0, 0].tolist() == [2, 1, 1]


@pytest.mark.parametrize("ratio, block", sorted(RATIO_BLOCKS.items()))
def test_ratio_table_is_what_it_says(ratio, block):
    assert block[0] * block[1] * block[2] == ratio
    grid = random_grid(1, 16, 8, 8, 2, aux=False)
    out = lfb.create(f"avgpool:ratio={ratio}")(grid)
    assert out.x.shape[1] * ratio == 16 * 8 * 8


def test_budget_and_bad_grids():
    grid = random_grid(1, 8, 16, 16, 4)
    assert lfb.create("wap:tokens=128")(grid).x.shape[1] == 128  # 2048 / 128 = 16x
    with pytest.raises(lfb.ReducerError, match=r"tokens=100 on a 8x16x16 grid \(2048 tokens\) needs ratio 20.48"):
        lfb.create("wap:tokens=100")(grid)
    with pytest.raises(lfb.ReducerError, match=r"4x2x2 \(t x h x w\) block, which does not tile the 6x16x16 grid"):
        lfb.create("wap:ratio=16")(random_grid(1, 6, 16, 16, 4))
    with pytest.raises(lfb.ReducerError, match="needs cls_attn"):
        lfb.create("wap")(random_grid(1, 8, 16, 16, 4, aux=False))
