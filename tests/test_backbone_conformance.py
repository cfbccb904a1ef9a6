"""Every registered backbone family honours the Backbone contract on its tiny model, and model specs resolve to
one family through load_backbone (a new family is tested the moment it registers)."""

import json
from types import SimpleNamespace

import pytest
import torch

import liteframe_bench as lfb
from liteframe_bench.backbone import Backbone, backbones, family_of, load_backbone, model_config
from liteframe_bench.pipeline import PrefixCache, build_method

FAMILIES = [c.family for c in backbones()]
T = 4


def test_both_families_are_registered():
    assert {"internvl", "qwen2.5-vl"} <= set(FAMILIES)


@pytest.fixture(scope="module", params=FAMILIES)
def bb(request):
    cls = next(c for c in backbones() if c.family == request.param)
    return load_backbone(cls.tiny, seed=0)


@pytest.fixture(scope="module")
def clip(bb):
    g = torch.Generator().manual_seed(0)
    px = torch.randn(1, T, 3, bb.image_size, bb.image_size, generator=g)
    return SimpleNamespace(pixel_values=px, distinct_frames=T, decode_s=0.0)


def test_declares_its_contract(bb):
    cls = type(bb)
    assert isinstance(bb, Backbone) and cls.tiny in cls.keywords and cls.model_types
    assert cls.cls_attn_source and cls.frame_global_source and bb.temporal_patch >= 1
    assert bb.grid_side * bb.patch_size == bb.image_size and bb.grid_side % bb.shuffle == 0
    assert bb.describe()["family"] == cls.family
    for name, preset in cls.presets().items():
        assert family_of(f"random:{name}") == (cls, "random") and preset.hf_id
        _, cfg, fam = model_config(name)
        assert fam is cls and cfg.model_type in cls.model_types


def test_vision_shapes_and_auxiliary_signals(bb, clip):
    n = T // bb.temporal_patch
    g, C = bb.grid_side, bb.vision_width
    with torch.inference_mode():
        vis = bb.vision(clip.pixel_values[0], {"cls_attn", "keys", "frame_global"})
        proj = bb.project(vis.grid)
    assert vis.grid.shape == (n, g, g, C)
    assert vis.cls_attn.shape[0] == n and vis.cls_attn.shape[2:] == (g, g) and bool(vis.cls_attn.isfinite().all())
    assert vis.keys.shape[:3] == (n, g, g) and vis.cls_out.shape == (n, C)
    assert proj.shape == (n, g // bb.shuffle, g // bb.shuffle, bb.llm_width)
    assert torch.equal(bb.mlp(bb.shuffle_grid(vis.grid)), proj)
    assert bb.tokens_before(T) == proj[..., 0].numel() and bb.reducer_grid(T, "mlp") == proj.shape[:3]


@pytest.mark.parametrize("at", ["vit", "mlp", "proj"])
def test_identity_reduction_equals_baseline(bb, clip, at):
    base = build_method("baseline", bb)
    tokens = base.encode(clip)
    ident = build_method(f"identity:at={at}", bb)
    same = ident.encode(clip)
    assert torch.equal(tokens.embeds, same.embeds) and torch.equal(tokens.pos, same.pos)
    assert tokens.num_tokens == tokens.tokens_before == bb.tokens_before(T)
    assert base.generate(tokens, "Q?", 4, min_new_tokens=4).token_ids == ident.generate(
        same, "Q?", 4, min_new_tokens=4
    ).token_ids


def test_prompt_has_one_slot_per_token_and_positions_cover_it(bb, clip):
    tokens = build_method("wap:ratio=4", bb).encode(clip)
    ids = bb.build_prompt("Q?", tokens.groups)
    assert int((ids == bb.image_token_id).sum()) == tokens.num_tokens
    pos = bb.position_ids(ids, tokens)
    assert pos is None or pos.shape[-1] == ids.shape[1]
    prefix = bb.build_prompt(None, tokens.groups)
    assert torch.equal(ids[:, : prefix.shape[1]], prefix)


def test_shared_prefix_equals_whole_prompt(bb, clip):
    """A question after a cached prefix (extend) gives the whole prompt's logits and answers."""
    method = build_method("baseline", bb)
    tokens = method.encode(clip)
    ids = bb.build_prompt("Where?", tokens.groups)
    with torch.inference_mode():
        full, _ = bb.prefill(bb.embed(ids, tokens.embeds), bb.position_ids(ids, tokens))
        prefix = PrefixCache()
        assert prefix.matches(bb, tokens, ids)
        part = bb.extend(ids[:, prefix.length :], prefix.cache)
    torch.testing.assert_close(part, full, rtol=1e-4, atol=1e-5)
    prefix = PrefixCache()
    for q in ("Where?", "What colour is it?", "Where?"):
        assert method.generate(tokens, q, 4, prefix=prefix).token_ids == method.generate(tokens, q, 4).token_ids


def test_context_limit_is_a_context_error(bb, clip):
    method = build_method("baseline", bb)
    tokens = method.encode(clip)
    with pytest.raises(lfb.ContextError, match="max_position_embeddings"):
        method.generate(tokens, "Q?", bb.max_context)


# ------------------------------------------------------------------------------------------- model specs


def test_every_keyword_names_one_family():
    owners = [(k, c.family) for c in backbones() for k in c.keywords]
    assert len({k for k, _ in owners}) == len(owners)
    for k, fam in owners:
        assert family_of(k)[0].family == fam


def test_load_backbone_errors(tmp_path):
    with pytest.raises(lfb.SpecError, match="size preset for counting on the meta device"):
        load_backbone("internvl3-8b")
    with pytest.raises(lfb.SpecError, match=r"no such folder; allowed: mini, tiny, tiny-qwen, random:"):
        load_backbone(str(tmp_path / "nope"))
    with pytest.raises(lfb.SpecError, match="has no config.json"):
        load_backbone(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "internvl_chat"}))
    with pytest.raises(lfb.SpecError, match=r"model_type is 'internvl_chat'; allowed: 'internvl' \(internvl\), "
                                            r"'qwen2_5_vl' \(qwen2.5-vl\)"):
        load_backbone(str(tmp_path))
    with pytest.raises(lfb.SpecError, match="dtype='fp8' is invalid"):
        load_backbone("tiny-qwen", dtype="fp8")


# ------------------------------------------------------------------------------------------------ sweep


@pytest.mark.parametrize("family", FAMILIES)
def test_sweep_runs_on_every_family(family, tmp_path, capsys):
    """``lfbench sweep --model <tiny>`` with the issue's methods: every cell runs, and the cost model prices it."""
    from liteframe_bench.cli import main
    from liteframe_bench.results import ResultsDir

    tiny = next(c for c in backbones() if c.family == family).tiny
    out = tmp_path / "sweep"
    args = ["sweep", "--model", tiny, "--methods", "baseline,wap:ratio=16,tome:ratio=16", "--frames", "8",
            "--limit", "1", "--timing-samples", "1", "--warmup", "0", "--repeats", "1", "--out", str(out), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ran"] == 3 and summary["errors"] == []
    cells, _ = ResultsDir(out).load()
    assert set(cells["status"]) == {"ok"} and set(cells["flops_source"]) == {"analytic"}
    assert sorted(cells["visual_tokens"].tolist()) == sorted([bb_tokens(tiny, 8)] + [bb_tokens(tiny, 8) // 16] * 2)


def bb_tokens(tiny: str, frames: int) -> int:
    return load_backbone(tiny).tokens_before(frames)
