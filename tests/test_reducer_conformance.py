"""Every registered reducer, plugins included, honours the Reducer contract.

A new reducer is tested the moment it registers: this module parametrises over the registry after loading
the example plugin from a temporary folder (the same path as ``lfbench --plugins DIR``).
"""

import shutil
import tempfile
from pathlib import Path

import pytest
import torch

import liteframe_bench as lfb
from liteframe_bench.interfaces import CLS_HEADS
from liteframe_bench.reduction import joint_logits, raster_index
from liteframe_bench.testing import constant_grid, random_grid

_PLUGIN_DIR = Path(tempfile.mkdtemp(prefix="lfbench-plugin-"))
shutil.copy(Path(__file__).parents[1] / "examples" / "plugins" / "norm_topk.py", _PLUGIN_DIR)
assert lfb.load_plugin_dir(_PLUGIN_DIR) == ["norm-topk"]

NAMES = [e.name for e in lfb.entries("reducer")]
# Non-default settings that change the contract (count, order, needs) are held to it too.
VARIANTS = [
    "prumerge:variant=adaptive",
    "prumerge:variant=plus",
    "prumerge:extra_token=true",
    "prumerge:neighbors=0",
    "tome:sort=false",
    "tome:metric=keys",
    "tome:tokens=64,clip=2",
    "wap:heads=weights",
    "subsample:pick=center",
    "fastvid:retain=0.25",
    "avgpool:block=2x4x4",
    "random:scope=clip",
    "random:tokens=64",
]
B, T, H, W, C = 2, 8, 16, 16, 64  # widths are multiples of 64 in real models (ToMe chunks by 64)


def test_plugin_is_in_the_registry():
    assert "norm-topk" in NAMES
    assert lfb.get("norm-topk").source.startswith("lfbench_plugins.norm_topk_")


@pytest.fixture(params=NAMES + VARIANTS)
def reducer(request):
    return lfb.create(request.param)


def valid(out, b):
    n = out.num_tokens[b]
    return out.x[b, :n], out.pos[b, :n], out.size[b, :n]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_contract(reducer, dtype):
    grid = random_grid(B, T, H, W, C, seed=7, dtype=dtype)
    target = reducer.target_tokens(T, H, W)
    out = reducer(grid)
    assert out.x.dtype == dtype and out.x.device == grid.x.device
    assert out.pos.dtype == torch.int64 and out.size.dtype == torch.int64
    assert out.x.shape[0] == B and out.x.shape[2] == C and out.pos.shape == (*out.x.shape[:2], 3)
    assert out.size.shape == out.x.shape[:2]
    counts = out.num_tokens
    if reducer.exact:
        assert counts == [target] * B and out.x.shape[1] == target
    else:
        assert all(1 <= n <= target for n in counts) and out.x.shape[1] == max(counts)
    if out.lengths is not None:
        assert out.lengths.dtype == torch.int64 and out.lengths.shape == (B,)
    for b in range(B):
        x, pos, size = valid(out, b)
        assert bool(torch.isfinite(x.float()).all())
        assert bool((pos >= 0).all()) and bool((pos < torch.tensor([T, H, W])).all())
        assert bool((size >= 1).all())
        if reducer.ordered:
            assert bool((raster_index(pos, H, W).diff() > 0).all()), "positions must be strictly ascending"
    if reducer.structured:
        assert out.grid is not None and out.as_grid().shape == (B, *out.grid, C)


def test_batch_equals_samples_alone(reducer):
    grid = random_grid(B, T, H, W, C, seed=11, dtype=torch.float64)
    together = reducer(grid)
    for b in range(B):
        alone = reducer(
            lfb.TokenGrid(
                *(None if t is None else t[b : b + 1] for t in (grid.x, grid.cls_attn, grid.keys, grid.frame_global))
            )
        )
        xa, pa, sa = valid(alone, 0)
        xt, pt, st = valid(together, b)
        assert torch.equal(pa, pt) and torch.equal(sa, st)
        assert torch.allclose(xa, xt, atol=1e-9)


def test_deterministic_under_a_seed(reducer):
    grid = random_grid(B, T, H, W, C, seed=3)
    a = reducer(grid, generator=torch.Generator().manual_seed(5))
    b = reducer(grid, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.x, b.x) and torch.equal(a.pos, b.pos) and torch.equal(a.size, b.size)


def test_finite_on_constant_input(reducer):
    for value in (0.0, 0.5):
        out = reducer(constant_grid(B, T, H, W, C, value=value))
        for b in range(B):
            assert bool(torch.isfinite(valid(out, b)[0]).all())


def test_impossible_target_is_a_clear_error(reducer):
    tiny = random_grid(1, 1, 1, 1, C)  # one token: any reduction is impossible (or its block cannot tile)
    if reducer.name == "identity":
        pytest.skip("identity never reduces")
    if getattr(reducer, "variant", None) == "adaptive":
        pytest.skip("adaptive PruMerge keeps the outliers whatever the grid (at least one)")
    with pytest.raises(lfb.ReducerError) as info:
        reducer(tiny)
    msg = str(info.value)
    assert "allowed" in msg and any(k in msg for k in ("ratio", "tokens", "retain", "block", "clip")), msg


def test_missing_auxiliary_input_is_named(reducer):
    if not reducer.needs:
        pytest.skip("needs nothing")
    bare = random_grid(B, T, H, W, C, aux=False)
    with pytest.raises(lfb.ReducerError, match=f"needs {sorted(reducer.needs)[0]}"):
        reducer(bare)


def test_class_token_column_and_joint_heads(reducer):
    """A grid with the CLS-to-CLS logit keeps the contract; a ``joint`` reducer gives the same tokens when the
    harness hands it logits with the heads already combined (as it does on the pixel-shuffled grid)."""
    if "cls_attn" not in reducer.needs:
        pytest.skip("needs no CLS attention")
    grid = random_grid(B, T, H, W, C, seed=5, dtype=torch.float64, cls_self=True)
    out = reducer(grid)
    target = reducer.target_tokens(T, H, W)
    if reducer.exact:
        assert out.num_tokens == [target] * B
    else:
        assert all(1 <= n <= target for n in out.num_tokens)
    if reducer.cls_heads != "joint":
        return
    joined = lfb.TokenGrid(
        grid.x,
        cls_attn=joint_logits(grid.cls_attn, dim=2),
        keys=grid.keys,
        frame_global=grid.frame_global,
        cls_self=joint_logits(grid.cls_self, dim=2),
    )
    again = reducer(joined)
    assert torch.equal(out.pos, again.pos) and torch.equal(out.size, again.size)
    assert torch.allclose(out.x, again.x, atol=1e-9)


def test_declares_its_contract(reducer):
    assert reducer.default_at in lfb.INSERTION_POINTS
    assert reducer.cls_heads in CLS_HEADS
    assert set(reducer.needs) <= set(lfb.AUX_INPUTS)
    assert reducer.reference and (type(reducer).__doc__ or "").strip()
    if reducer.structured:
        assert reducer.exact, "a structured output has a fixed count"


# --------------------------------------------------------------------------- on every registered backbone

from types import SimpleNamespace  # noqa: E402

from liteframe_bench.backbone import backbones, load_backbone  # noqa: E402
from liteframe_bench.pipeline import build_method  # noqa: E402

FAMILIES = [c.family for c in backbones()]
_LOADED: dict = {}


def tiny_backbone(family: str):
    if family not in _LOADED:
        cls = next(c for c in backbones() if c.family == family)
        _LOADED[family] = load_backbone(cls.tiny, seed=0)
    return _LOADED[family]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", NAMES)
def test_runs_end_to_end_on_every_backbone(name, family):
    """Each reducer at its default insertion point on each family's tiny model: the count it promises, positions
    inside the projected grid the LLM places them by (M-RoPE on Qwen2.5-VL), one prompt slot each, an answer."""
    bb = tiny_backbone(family)
    frames = 8
    g = torch.Generator().manual_seed(0)
    px = torch.randn(1, frames, 3, bb.image_size, bb.image_size, generator=g)
    clip = SimpleNamespace(pixel_values=px, distinct_frames=frames, decode_s=0.0)
    method = build_method(name, bb)
    tokens = method.encode(clip)
    reducer = method.reducer
    steps, side, _ = tokens.grid
    assert steps == bb.time_steps(frames) and tokens.tokens_before == bb.tokens_before(frames)
    target = reducer.target_tokens(*bb.reducer_grid(frames, method.at))
    if method.at == "vit":
        target //= bb.shuffle**2
    assert (tokens.num_tokens == target) if reducer.exact else (1 <= tokens.num_tokens <= target)
    assert bool((tokens.pos >= 0).all()) and bool((tokens.pos < torch.tensor([steps, side, side])).all())
    ids = bb.build_prompt("Q?", tokens.groups)
    assert int((ids == bb.image_token_id).sum()) == tokens.num_tokens
    pos = bb.position_ids(ids, tokens)
    if pos is not None:  # every kept token sits at a distinct source position
        slots = (ids[0] == bb.image_token_id).nonzero().flatten()
        assert len({tuple(p) for p in pos[:, 0, slots].T.tolist()}) == tokens.num_tokens
    gen = method.generate(tokens, "Q?", 2, min_new_tokens=2)
    assert gen.new_tokens == 2 and gen.prompt_tokens == ids.shape[1]
