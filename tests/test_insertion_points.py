"""Reducers at ``mlp`` (between InternVL's pixel shuffle and its MLP) and the CLS attention they get there.

References are computed here from the model itself: the pixel shuffle's own channel grouping for the 2x2
groups, the last layer's q/k projections (PruMerge's full-width form) and the eager attention matrix
(VisionZip's per-head form), never through the pipeline's pooling helper.
"""

from types import SimpleNamespace

import pytest
import torch

import liteframe_bench as lfb
from liteframe_bench.backends.internvl import InternVL3
from liteframe_bench.methods.reducers.prumerge import cls_attention
from liteframe_bench.methods.reducers.visionzip import dominance
from liteframe_bench.pipeline import build_method

T, SIDE = 8, 8  # tiny model: 8 frames of 8x8 patches -> 4x4 tokens after the pixel shuffle


@pytest.fixture(scope="module")
def bb():
    return InternVL3.load("tiny", seed=0)


@pytest.fixture(scope="module")
def clip():
    g = torch.Generator().manual_seed(1)
    return SimpleNamespace(pixel_values=torch.randn(1, T, 3, 112, 112, generator=g), distinct_frames=T, decode_s=0.0)


def groups(bb, t: torch.Tensor) -> torch.Tensor:
    """[N, h, w, c] -> [N, h/2, w/2, 4, c]: each pixel-shuffled token's 4 patches, by the shuffle itself."""
    shuffled = bb.model.model.pixel_shuffle(t.contiguous(), scale_factor=bb.config.downsample_ratio)
    return shuffled.unflatten(-1, (4, t.shape[-1]))


def reference_grid(bb, vis, joint: bool) -> lfb.TokenGrid:
    """The TokenGrid at mlp built by hand: shuffled features, group log-sum-exp logits, group-mean keys."""
    feats = bb.model.model.pixel_shuffle(vis.grid, scale_factor=bb.config.downsample_ratio)
    logits, own = vis.cls_attn.permute(0, 2, 3, 1), vis.cls_self  # [N, h, w, heads], [N, heads]
    if joint:
        heads = logits.shape[-1]
        logits, own = logits.sum(-1, keepdim=True) / heads**0.5, own.sum(-1, keepdim=True) / heads**0.5
    cls_attn = groups(bb, logits).logsumexp(dim=3).permute(0, 3, 1, 2)
    keys = groups(bb, vis.keys).mean(dim=3)
    return lfb.TokenGrid(feats[None], cls_attn=cls_attn[None], keys=keys[None], cls_self=own[None])


def spy(method) -> list[lfb.TokenGrid]:
    """Record every TokenGrid the pipeline hands the method's reducer."""
    seen, reduce = [], method.reducer.reduce
    method.reducer.reduce = lambda grid, generator=None: (seen.append(grid), reduce(grid, generator))[1]
    return seen


@pytest.mark.parametrize(
    "spec",
    ["identity", "tome:ratio=4", "prumerge:ratio=4", "prumerge:ratio=4,variant=plus,extra_token=true",
     "visionzip:ratio=4"],
)
def test_reducer_at_mlp_is_the_reducer_on_shuffled_features_then_the_mlp(bb, clip, spec):
    method = build_method(f"{spec},at=mlp" if ":" in spec else f"{spec}:at=mlp", bb)
    tokens = method.encode(clip)
    red = method.reducer
    with torch.inference_mode():
        vis = bb.vision(clip.pixel_values[0], {"cls_attn", "keys"})
        out = red(reference_grid(bb, vis, red.cls_heads == "joint"))
        expected = bb.model.model.multi_modal_projector(out.x[0])
    assert tokens.num_tokens == out.num_tokens[0] == red.target_tokens(T, SIDE // 2, SIDE // 2)
    assert torch.equal(tokens.pos, out.pos[0]) and torch.equal(tokens.size, out.size[0])
    assert torch.allclose(tokens.embeds, expected, atol=1e-5)


def test_the_default_insertion_points_follow_the_originals(bb):
    at = {name: build_method(name, bb).at for name in ("tome", "prumerge", "visionzip", "fastvid", "wap", "avgpool")}
    assert at == {"tome": "mlp", "prumerge": "mlp", "visionzip": "mlp", "fastvid": "proj", "wap": "vit",
                  "avgpool": "vit"}
    assert build_method("tome", bb).spec == "tome" and build_method("tome:at=proj", bb).spec == "tome:at=proj"


def last_layer_qk(bb, px):
    """Full-width q of the class token [N, C] and keys of every token [N, 1 + h*w, C] of the last vision layer."""
    attn = bb.model.model.vision_tower.encoder.layer[bb.config.vision_feature_layer].attention
    got = {}
    hooks = [attn.q_proj.register_forward_hook(lambda m, i, o: got.__setitem__("q", o)),
             attn.k_proj.register_forward_hook(lambda m, i, o: got.__setitem__("k", o))]
    try:
        bb.model.model.vision_tower(pixel_values=px)
    finally:
        for h in hooks:
            h.remove()
    return attn.q_norm(got["q"])[:, 0], attn.k_norm(got["k"])


def group_mass(bb, probs: torch.Tensor) -> torch.Tensor:
    """[N, h*w] per-patch attention -> [N, h/2 * w/2] attention of each pixel-shuffled token's 4 patches."""
    n = probs.shape[0]
    return groups(bb, probs.reshape(n, SIDE, SIDE, 1)).sum(dim=(3, 4)).reshape(n, -1)


@pytest.mark.parametrize("at", ["mlp", "proj"])
@torch.no_grad()
def test_prumerge_attention_is_the_group_mass_of_the_full_width_softmax(bb, clip, at):
    px = clip.pixel_values[0]
    q, k = last_layer_qk(bb, px)
    full = torch.softmax(torch.einsum("nc,nlc->nl", q, k) / q.shape[-1] ** 0.5, dim=-1)  # [N, 1 + 64]: CLS first
    expected = group_mass(bb, full[:, 1:])

    method = build_method(f"prumerge:ratio=4,at={at}", bb)
    seen = spy(method)
    tokens = method.encode(clip)
    assert seen[0].cls_attn.shape[2] == 1  # heads combined before the group pooling
    assert torch.allclose(cls_attention(seen[0], torch.float64), expected.double(), atol=1e-6)

    # The kept tokens and merge weights are those of this reference attention: PruMerge on a grid whose
    # softmax returns exactly `expected` (logits log a, CLS logit log a_cls) gives the same tokens.
    a = expected.double()
    as_logits = lfb.TokenGrid(
        seen[0].x.double(),
        cls_attn=a.log().reshape(1, T, 1, SIDE // 2, SIDE // 2),
        keys=seen[0].keys.double(),
        cls_self=full[:, :1].double().log().reshape(1, T, 1),
    )
    ref = method.reducer(as_logits)
    assert torch.equal(tokens.pos, ref.pos[0]) and torch.equal(tokens.size, ref.size[0])
    reduced = method.reducer(seen[0])
    assert torch.allclose(reduced.x.double(), ref.x, atol=1e-5)


@pytest.mark.parametrize("at", ["mlp", "proj"])
@torch.no_grad()
def test_visionzip_dominance_is_the_head_sum_of_each_heads_group_mass(bb, clip, at):
    px = clip.pixel_values[0]
    tower = bb.model.model.vision_tower
    impl = tower.config._attn_implementation
    tower.config._attn_implementation = "eager"
    try:
        att = tower(pixel_values=px, output_attentions=True).attentions[-1]  # [N, heads, 1 + 64, 1 + 64]
    finally:
        tower.config._attn_implementation = impl
    expected = group_mass(bb, att[:, :, 0, 1:].sum(dim=1))  # CLS row over [CLS, patches], CLS column dropped

    method = build_method(f"visionzip:ratio=4,at={at}", bb)
    seen = spy(method)
    method.encode(clip)
    assert seen[0].cls_attn.shape[2] == att.shape[1]  # per head (cls_heads = "each")
    assert torch.allclose(dominance(seen[0], torch.float64), expected.double(), atol=1e-6)


def test_cls_self_shape_is_checked():
    x = torch.zeros(1, 2, 4, 4, 8)
    with pytest.raises(lfb.ReducerError, match=r"cls_self has shape \(1, 2, 3\); expected \[B, T, heads\].*heads=2"):
        lfb.TokenGrid(x, cls_attn=torch.zeros(1, 2, 2, 4, 4), cls_self=torch.zeros(1, 2, 3))
