"""The InternVL3 backend on the tiny random model: parity with plain transformers, hooks, errors."""

from types import SimpleNamespace

import pytest
import torch

import liteframe_bench as lfb
from liteframe_bench.backends.internvl import InternVL3
from liteframe_bench.pipeline import build_method

T = 8


@pytest.fixture(scope="module")
def bb():
    return InternVL3.load("tiny", seed=0)


@pytest.fixture(scope="module")
def clip():
    g = torch.Generator().manual_seed(0)
    return SimpleNamespace(pixel_values=torch.randn(1, T, 3, 112, 112, generator=g), distinct_frames=T, decode_s=0.0)


def test_baseline_matches_plain_transformers(bb, clip):
    method = build_method("baseline", bb)
    tokens = method.encode(clip)
    assert tokens.num_tokens == T * 16 and tokens.groups == [(f"Frame{i + 1}", 16) for i in range(T)]
    ids = bb.build_prompt("Which colour?", tokens.groups)
    with torch.inference_mode():
        plain = bb.model(input_ids=ids, pixel_values=clip.pixel_values[0]).logits[:, -1]
        ours, _ = bb.prefill(bb.embed(ids, tokens.embeds))
        reference = bb.model.generate(
            input_ids=ids, pixel_values=clip.pixel_values[0], max_new_tokens=6, min_new_tokens=6, do_sample=False
        )
    assert torch.allclose(ours, plain, atol=1e-5)
    gen = method.generate(tokens, "Which colour?", 6, min_new_tokens=6)
    assert gen.token_ids == reference[0, ids.shape[1] :].tolist()
    assert gen.prompt_tokens == ids.shape[1] and gen.new_tokens == 6


@pytest.mark.parametrize("at", ["vit", "mlp", "proj"])
def test_identity_reducer_equals_baseline(bb, clip, at):
    base = build_method("baseline", bb).encode(clip)
    ident = build_method(f"identity:at={at}", bb).encode(clip)
    assert torch.equal(base.embeds, ident.embeds) and ident.groups == base.groups
    assert torch.equal(base.pos, ident.pos)
    a = build_method("baseline", bb).generate(base, "Q?", 5, min_new_tokens=5)
    b = build_method(f"identity:at={at}", bb).generate(ident, "Q?", 5, min_new_tokens=5)
    assert a.token_ids == b.token_ids


@torch.no_grad()
def test_cls_logits_hook_equals_eager_attention_row(bb, clip):
    px = clip.pixel_values[0]
    vis = bb.vision(px, {"cls_attn", "keys", "frame_global"})
    tower = bb.model.model.vision_tower
    impl = tower.config._attn_implementation
    tower.config._attn_implementation = "eager"
    try:
        att = tower(pixel_values=px, output_attentions=True).attentions[-1]  # [N, heads, L, L], probabilities
    finally:
        tower.config._attn_implementation = impl
    # The CLS row over patch columns, renormalised, is the softmax of our captured logits.
    row = att[:, :, 0, 1:]
    row = row / row.sum(-1, keepdim=True)
    ours = torch.softmax(vis.cls_attn.flatten(2), dim=-1)
    assert torch.allclose(row, ours, atol=1e-6)
    # With the CLS-to-CLS logit as the first column, the softmax is the eager row itself, CLS column included.
    full = torch.softmax(torch.cat([vis.cls_self.unsqueeze(-1), vis.cls_attn.flatten(2)], dim=-1), dim=-1)
    assert torch.allclose(att[:, :, 0], full, atol=1e-6)
    assert vis.keys.shape == (T, 8, 8, 32) and vis.cls_out.shape == (T, 32)


def test_pool_aux_follows_pixel_shuffle_grouping(bb):
    h = w = 8
    rows = torch.arange(h).view(1, h, 1, 1).expand(1, h, w, 1).float()
    cols = torch.arange(w).view(1, 1, w, 1).expand(1, h, w, 1).float()
    feats = torch.cat([rows, cols], dim=-1)  # channel 0 = row, 1 = col
    shuffled = bb.model.model.pixel_shuffle(feats, scale_factor=0.5)  # [1, 4, 4, 8]
    groups = shuffled.view(1, 4, 4, 4, 2)  # 4 patches of (row, col) per token
    pooled = bb.pool_aux(feats, "mean")
    assert torch.equal(groups.mean(dim=3), pooled)
    i, j = 2, 3
    patches = {tuple(p) for p in groups[0, i, j].long().tolist()}
    assert patches == {(2 * i + a, 2 * j + b) for a in (0, 1) for b in (0, 1)}


@pytest.mark.parametrize(
    "spec, per_frame",
    [
        ("wap:ratio=16", 1),
        ("avgpool:ratio=4", 4),
        ("tome:ratio=4", 4),
        ("prumerge:ratio=4", 4),
        ("visionzip:ratio=4", 4),
    ],
)
def test_reducers_feed_the_llm(bb, clip, spec, per_frame):
    method = build_method(spec, bb)
    tokens = method.encode(clip)
    assert tokens.num_tokens == T * per_frame == sum(n for _, n in tokens.groups)
    assert tokens.tokens_before == T * 16
    gen = method.generate(tokens, "Q?", 3, min_new_tokens=3)
    ids = bb.build_prompt("Q?", tokens.groups)
    assert gen.prompt_tokens == ids.shape[1] and int((ids == bb.image_token_id).sum()) == tokens.num_tokens


def test_fastvid_reports_its_own_count(bb, clip):
    tokens = build_method("fastvid:retain=0.25", bb).encode(clip)
    assert 1 <= tokens.num_tokens <= T * 4


def test_spec_errors(bb):
    with pytest.raises(
        lfb.SpecError, match="cannot run on the ViT grid before the pixel shuffle; allowed: at=mlp, at=proj"
    ):
        build_method("tome:ratio=16,at=vit", bb)
    with pytest.raises(lfb.SpecError, match="at='llm' is invalid; allowed: vit, mlp, proj"):
        build_method("wap:at=llm", bb)
    with pytest.raises(lfb.SpecError, match="method 'baseline' has no parameter 'at'"):
        build_method("baseline:at=vit", bb)


def test_model_errors(tmp_path):
    with pytest.raises(lfb.SpecError, match="size preset for counting on the meta device"):
        InternVL3.load("internvl3-8b")
    with pytest.raises(lfb.SpecError, match="no such folder"):
        InternVL3.load(str(tmp_path / "nope"))
    with pytest.raises(lfb.SpecError, match="has no config.json"):
        InternVL3.load(str(tmp_path))
    (tmp_path / "config.json").write_text('{"model_type": "internvl_chat"}')
    with pytest.raises(lfb.SpecError, match="model_type is 'internvl_chat'; expected 'internvl'"):
        InternVL3.load(str(tmp_path))
    with pytest.raises(lfb.SpecError, match="dtype='fp8' is invalid"):
        InternVL3.load("tiny", dtype="fp8")


def test_tiny_vocab_is_the_tokenizer():
    from liteframe_bench.backends.internvl import tiny_tokenizer
    from liteframe_bench.presets import TINY_VOCAB

    assert len(tiny_tokenizer()) == TINY_VOCAB


def test_methods_report_their_own_stage_timings(bb, clip):
    from liteframe_bench.profiler import StageClock

    method = build_method("wap:ratio=16", bb)
    tokens = method.encode(clip)
    assert set(tokens.timings) == {"vision", "reduce", "project"} and all(v > 0 for v in tokens.timings.values())
    gen = method.generate(tokens, "Q?", 3, min_new_tokens=3)
    assert set(gen.timings) == {"prefill", "generate"}
    clock = StageClock("cpu")
    assert method.encode(clip, clock=clock).timings == {} and set(clock.results()) == {"vision", "reduce", "project"}
