"""The Qwen2.5-VL backend on the tiny random model: parity with plain transformers, the window un-permutation,
M-RoPE positions of kept tokens, the class-token substitutes, meta-device presets and errors."""

from types import SimpleNamespace

import pytest
import torch

import liteframe_bench as lfb
from liteframe_bench.backbone import load_backbone
from liteframe_bench.pipeline import build_method

T = 8  # frames: 4 temporal patches of the 112 px tiny model (8x8 patches, 4x4 LLM tokens each)


@pytest.fixture(scope="module")
def bb():
    return load_backbone("tiny-qwen", seed=0)


def make_clip(seconds: float | None = None):
    g = torch.Generator().manual_seed(0)
    info = None if seconds is None else SimpleNamespace(duration_s=seconds)
    px = torch.randn(1, T, 3, 112, 112, generator=g)
    return SimpleNamespace(pixel_values=px, distinct_frames=T, decode_s=0.0, info=info)


@pytest.fixture(scope="module")
def clip():
    return make_clip()


def plain_inputs(bb, clip, ids, second_per_grid=None):
    """What Qwen's processor would hand transformers for these frames and this prompt."""
    flat, thw = bb.patchify(bb._clip_normalise(clip.pixel_values[0]))
    kw = dict(pixel_values_videos=flat, video_grid_thw=thw, mm_token_type_ids=(ids == bb.image_token_id).int() * 2)
    if second_per_grid is not None:
        kw["second_per_grid_ts"] = torch.tensor([second_per_grid])
    return kw


@pytest.mark.parametrize("seconds", [None, 3.0])
def test_baseline_matches_plain_transformers(bb, seconds):
    """Logits and greedy tokens equal Qwen2_5_VLForConditionalGeneration's own forward and generate (M-RoPE from
    get_rope_index, the vision tower inside the model), with and without time-aware temporal positions."""
    clip = make_clip(seconds)
    method = build_method("baseline", bb)
    tokens = method.encode(clip)
    assert tokens.num_tokens == T // 2 * 16 == tokens.tokens_before and tokens.grid == (T // 2, 4, 4)
    ids = bb.build_prompt("Which colour?", tokens.groups)
    spg = None if seconds is None else 2 * seconds / T
    kw = plain_inputs(bb, clip, ids, spg)
    with torch.inference_mode():
        ref_pos, _ = bb.model.model.get_rope_index(ids, kw["mm_token_type_ids"], video_grid_thw=kw["video_grid_thw"],
                                                   second_per_grid_ts=kw.get("second_per_grid_ts"))
        ours_pos = bb.position_ids(ids, tokens)
        assert torch.equal(ours_pos, ref_pos)
        plain = bb.model(input_ids=ids, **kw).logits[:, -1]
        ours, _ = bb.prefill(bb.embed(ids, tokens.embeds), ours_pos)
        reference = bb.model.generate(input_ids=ids, **kw, max_new_tokens=6, min_new_tokens=6, do_sample=False)
    torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-5)
    gen = method.generate(tokens, "Which colour?", 6, min_new_tokens=6)
    assert gen.token_ids == reference[0, ids.shape[1] :].tolist()
    assert gen.prompt_tokens == ids.shape[1] and gen.new_tokens == 6


def test_grid_is_the_towers_output_in_raster_order(bb, clip):
    """The [t, y, x] grid un-permutes the tower's window order: each row lands at the (y, x) its own rotary
    position ids say, and the merge + MLP of the grid is the tower's pooler output."""
    from transformers.vision_utils import get_vision_position_ids

    px = bb._clip_normalise(clip.pixel_values[0])
    flat, thw = bb.patchify(px)
    tower = bb.model.model.visual
    with torch.inference_mode():
        out = tower(flat, grid_thw=thw)
        vis = bb.vision(clip.pixel_values[0])
        pooled = out.pooler_output
        projected = bb.project(vis.grid)
    yx = tower.permute_input_for_window_attn(get_vision_position_ids(thw, 2), bb._window_order(thw), flat.shape[0])
    t = torch.arange(flat.shape[0]) // 64
    assert torch.equal(vis.grid[t, yx[:, 0], yx[:, 1]], out.last_hidden_state)
    torch.testing.assert_close(projected.reshape(-1, projected.shape[-1]), pooled)


def test_received_attention_substitute_and_keys(bb, clip):
    """cls_attn is log(mean over a temporal patch's queries of the last layer's attention), per head, placed by the
    patches' own rotary positions; keys are that layer's pre-rotary keys; no class-token column."""
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb_vision
    from transformers.vision_utils import get_vision_position_ids

    block = bb.model.model.visual.blocks[-1]
    seen = {}
    h = block.register_forward_pre_hook(lambda m, a, kw: seen.update(x=a[0], rope=kw["position_embeddings"]),
                                        with_kwargs=True)
    try:
        with torch.inference_mode():
            vis = bb.vision(clip.pixel_values[0], {"cls_attn", "keys", "frame_global"})
    finally:
        h.remove()
    assert vis.cls_self is None and vis.cls_attn.shape == (T // 2, 2, 8, 8) and vis.keys.shape == (T // 2, 8, 8, 32)
    with torch.inference_mode():
        x = block.norm1(seen["x"])
        q, k, _ = block.attn.qkv(x).reshape(x.shape[0], 3, 2, 16).permute(1, 0, 2, 3).unbind(0)
        qr, kr = apply_rotary_pos_emb_vision(q, k, *seen["rope"])
    flat, thw = bb.patchify(bb._clip_normalise(clip.pixel_values[0]))
    yx = bb.model.model.visual.permute_input_for_window_attn(
        get_vision_position_ids(thw, 2), bb._window_order(thw), flat.shape[0]
    )
    for step in range(T // 2):
        rows = slice(64 * step, 64 * (step + 1))  # a temporal patch is contiguous in window order
        att = torch.softmax(torch.einsum("qhd,khd->hqk", qr[rows], kr[rows]) * 16**-0.5, dim=-1)
        received = att.mean(dim=1)  # [heads, 64]
        y, xx = yx[rows, 0], yx[rows, 1]
        torch.testing.assert_close(vis.cls_attn[step][:, y, xx].exp(), received, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(vis.keys[step, y, xx], k[rows].flatten(1))
    torch.testing.assert_close(vis.cls_out, vis.grid.mean(dim=(1, 2)))


@pytest.mark.parametrize("at", ["vit", "mlp", "proj"])
def test_identity_reducer_equals_baseline(bb, clip, at):
    base = build_method("baseline", bb).encode(clip)
    ident = build_method(f"identity:at={at}", bb).encode(clip)
    assert torch.equal(base.embeds, ident.embeds) and torch.equal(base.pos, ident.pos)
    ids = bb.build_prompt("Q?", base.groups)
    assert torch.equal(bb.position_ids(ids, base), bb.position_ids(ids, ident))
    a = build_method("baseline", bb).generate(base, "Q?", 5, min_new_tokens=5)
    b = build_method(f"identity:at={at}", bb).generate(ident, "Q?", 5, min_new_tokens=5)
    assert a.token_ids == b.token_ids


@pytest.mark.parametrize("spec", ["random:ratio=4", "random:ratio=4,scope=clip,at=proj", "prumerge:ratio=4,at=proj"])
def test_pruned_tokens_keep_their_source_positions(bb, clip, spec):
    """Dropping tokens equals deleting their rows from the baseline prompt: the kept tokens keep the M-RoPE
    positions get_rope_index gives them in the whole prompt, and the text after the video keeps its own."""
    base = build_method("baseline", bb).encode(clip)
    reduced = build_method(spec, bb).encode(clip)
    assert reduced.num_tokens < base.num_tokens
    full_ids = bb.build_prompt("Q?", base.groups)
    ids = bb.build_prompt("Q?", reduced.groups)
    kw = plain_inputs(bb, clip, full_ids)
    with torch.inference_mode():
        full_pos, _ = bb.model.model.get_rope_index(
            full_ids, kw["mm_token_type_ids"], video_grid_thw=kw["video_grid_thw"]
        )
    raster = (base.pos[:, 0] * 4 + base.pos[:, 1]) * 4 + base.pos[:, 2]
    assert torch.equal(raster, torch.arange(base.num_tokens))  # baseline tokens are in raster order
    kept_raster = (reduced.pos[:, 0] * 4 + reduced.pos[:, 1]) * 4 + reduced.pos[:, 2]
    start = int((full_ids[0] == bb.image_token_id).nonzero()[0])
    keep = torch.ones(full_ids.shape[1], dtype=torch.bool)
    keep[start : start + base.num_tokens] = False
    keep[start + kept_raster] = True
    expected = full_pos[:, :, keep]
    assert torch.equal(bb.position_ids(ids, reduced), expected)
    if spec.startswith("random"):  # pure dropping: the kept embeddings are the baseline's own rows
        assert torch.equal(reduced.embeds, base.embeds[kept_raster])
        with torch.inference_mode():
            embeds = bb.embed(full_ids, base.embeds)[:, keep]
            plain = bb.model(inputs_embeds=embeds, position_ids=expected, logits_to_keep=1).logits[:, -1]
            ours, _ = bb.prefill(bb.embed(ids, reduced.embeds), bb.position_ids(ids, reduced))
        torch.testing.assert_close(ours, plain)


@pytest.mark.parametrize(
    "spec, per_step",
    [("wap:ratio=16", 1), ("avgpool:ratio=4", 4), ("tome:ratio=4", 4), ("prumerge:ratio=4", 4),
     ("visionzip:ratio=4", 4), ("lowres", 1)],
)
def test_reducers_feed_the_llm(bb, clip, spec, per_step):
    method = build_method(spec, bb)
    tokens = method.encode(clip)
    assert tokens.num_tokens == T // 2 * per_step == sum(n for _, n in tokens.groups)
    gen = method.generate(tokens, "Q?", 3, min_new_tokens=3)
    ids = bb.build_prompt("Q?", tokens.groups)
    assert gen.prompt_tokens == ids.shape[1] and int((ids == bb.image_token_id).sum()) == tokens.num_tokens
    pos = bb.position_ids(ids, tokens)[:, 0]
    end = int((ids[0] == bb.image_token_id).nonzero().max()) + 1  # <|vision_end|>
    assert bool((pos.diff(dim=1)[:, end:] == 1).all()) and pos[0, end] == pos[1, end] == pos[2, end]


def test_odd_frame_count_pads_with_the_last_frame(bb):
    g = torch.Generator().manual_seed(1)
    px = torch.randn(1, 5, 3, 112, 112, generator=g)
    odd = SimpleNamespace(pixel_values=px, distinct_frames=5, decode_s=0.0)
    padded = SimpleNamespace(pixel_values=torch.cat([px, px[:, -1:]], 1), distinct_frames=5, decode_s=0.0)
    a, b = build_method("baseline", bb).encode(odd), build_method("baseline", bb).encode(padded)
    assert a.frames == 5 and a.num_tokens == 3 * 16 == a.tokens_before and torch.equal(a.embeds, b.embeds)


def test_liteframe_refuses_with_what_differs(bb):
    with pytest.raises(lfb.SpecError, match=r"no class token, 2-frame temporal patches.*allowed families: internvl"):
        build_method("liteframe-ctd:checkpoint=random", bb)


def test_tiles_are_refused(bb, clip):
    method = build_method("baseline", bb, tiles=(1, 2))
    two = SimpleNamespace(pixel_values=clip.pixel_values.expand(2, -1, -1, -1, -1), distinct_frames=T, decode_s=0.0)
    tokens = method.encode(two)
    with pytest.raises(lfb.SpecError, match="allowed: tiles=1x1"):
        method.generate(tokens, "Q?", 2)


def test_model_errors():
    with pytest.raises(lfb.SpecError, match="size preset for counting on the meta device.*Qwen/Qwen2.5-VL-7B-Instruct"):
        load_backbone("qwen2.5-vl-7b")
    with pytest.raises(lfb.SpecError, match="unknown preset 'qwen2.5-vl-9b'; allowed: .*random:qwen2.5-vl-7b"):
        load_backbone("random:qwen2.5-vl-9b")


@pytest.mark.parametrize("name, total", [("qwen2.5-vl-7b", 8_292_166_656), ("qwen2.5-vl-3b", 3_754_622_976)])
def test_meta_presets_have_the_published_sizes(name, total):
    """Parameter counts of the presets on the meta device equal the published checkpoints' (the safetensors
    index's total_size / 2 bytes); both share the 632 M ViT (+ a merger sized to the LLM)."""
    from liteframe_bench.backends.qwen import meta_model, parameter_counts

    counts = parameter_counts(meta_model(name))
    assert counts["total"] == total
    assert counts["vision"] == 631_975_680
