"""Every registered method (``lfbench ls``'s methods: baseline, lowres, the LiteFrame students, plugins) on every
registered backbone family's tiny model, the way the reducer conformance test runs every reducer: it runs end to
end with the checkpoint a test can have (``checkpoint=random`` where one is required), or refuses that family
with a SpecError that says which families it takes. A new method or family is tested the moment it registers."""

from types import SimpleNamespace

import pytest
import torch

import liteframe_bench as lfb
from liteframe_bench import cost
from liteframe_bench.backbone import backbones, load_backbone
from liteframe_bench.pipeline import VideoLLM, build_method

METHODS = [e.name for e in lfb.entries("method")]
FAMILIES = [c.family for c in backbones()]
FRAMES = 8
_LOADED: dict = {}


def tiny_backbone(family: str):
    if family not in _LOADED:
        cls = next(c for c in backbones() if c.family == family)
        _LOADED[family] = load_backbone(cls.tiny, seed=0)
    return _LOADED[family]


def runnable_spec(name: str) -> str:
    """The method with a random checkpoint for each locator parameter it cannot run without."""
    needed = [f"{p.name}=random" for p in lfb.get(name).params if p.locator and p.default is None]
    return name + (":" + ",".join(needed) if needed else "")


def test_the_built_in_methods_are_registered():
    assert {"baseline", "lowres", "liteframe", "liteframe-ctd"} <= set(METHODS)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", METHODS)
def test_runs_end_to_end_or_refuses_the_family_clearly(name, family):
    bb = tiny_backbone(family)
    spec = runnable_spec(name)
    try:
        method = build_method(spec, bb)
    except lfb.SpecError as e:
        assert "allowed families" in str(e) and name in str(e), e  # says what it takes: that is the contract
        return
    assert isinstance(method, VideoLLM) and method.backbone is bb and method.reducer is None
    assert build_method(method.full_spec, bb).full_spec == method.full_spec  # the canonical spec rebuilds it
    assert lfb.parse_method_spec(method.spec).name == name

    g = torch.Generator().manual_seed(0)
    px = torch.randn(1, FRAMES, 3, bb.image_size, bb.image_size, generator=g)
    tokens = method.encode(SimpleNamespace(pixel_values=px, distinct_frames=FRAMES, decode_s=0.0))
    steps, h, w = tokens.grid
    assert 1 <= tokens.num_tokens == tokens.embeds.shape[0] == tokens.pos.shape[0]
    assert tokens.embeds.shape[1] == bb.llm_width and bool(tokens.embeds.isfinite().all())
    assert bool((tokens.pos >= 0).all()) and bool((tokens.pos < torch.tensor([steps, h, w])).all())
    ids = bb.build_prompt("Q?", tokens.groups)
    assert int((ids == bb.image_token_id).sum()) == tokens.num_tokens
    gen = method.generate(tokens, "Q?", 2, min_new_tokens=2)
    assert gen.new_tokens == 2 and gen.prompt_tokens == ids.shape[1]

    # the cost model prices it, or says why it cannot (never an exception)
    flops, why = cost.stage_flops(bb, method.full_spec, FRAMES, prompt_tokens=gen.prompt_tokens, new_tokens=2)
    assert (flops is None) != (why is None)
    if flops is not None:
        assert set(flops) == set(cost.STAGES) and flops["vision"] > 0 and flops["prefill"] > 0


@pytest.mark.parametrize("name", METHODS)
def test_unknown_parameters_and_insertion_points_are_refused(name):
    bb = tiny_backbone(FAMILIES[0])
    with pytest.raises(lfb.SpecError, match="has no parameter 'nope'"):
        build_method(runnable_spec(name) + (",nope=1" if ":" in runnable_spec(name) else ":nope=1"), bb)
    with pytest.raises(lfb.SpecError, match="has no parameter 'at'"):
        build_method(runnable_spec(name) + (",at=mlp" if ":" in runnable_spec(name) else ":at=mlp"), bb)
