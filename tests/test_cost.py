"""The analytic cost model (liteframe_bench.cost) against FlopCounterMode on real module graphs, its token
accounting, context check and roofline."""

from __future__ import annotations

import io
import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from liteframe_bench import cost
from liteframe_bench.errors import SpecError
from liteframe_bench.presets import build_config, meta_model, parameter_counts
from liteframe_bench.profiler import flop_counter

aten = torch.ops.aten


def counted(fn, **kw) -> int:
    with torch.no_grad(), flop_counter() as fc:
        fn(**kw)
    return fc.get_total_flops()


def flops(ops) -> float:
    return sum(o.flops for o in ops)


def rel(a: float, b: float) -> float:
    return abs(a - b) / b


def test_cpu_sdpa_is_invisible_to_the_flop_counter_without_the_mapping():
    """Why flop_counter() maps CPU SDPA: if this starts failing, torch counts it itself and the mapping can go."""
    q = torch.randn(1, 2, 8, 4)
    with FlopCounterMode(display=False) as fc:
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
    assert fc.get_total_flops() == 0
    assert counted(lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q)) == 4 * 2 * 8 * 8 * 4


# ------------------------------------------------------------------------------ tiny model on CPU


@pytest.fixture(scope="module")
def tiny():
    from transformers import InternVLForConditionalGeneration

    cfg = build_config("tiny")
    torch.manual_seed(0)
    return cfg, InternVLForConditionalGeneration(cfg).eval(), cost.geometry(cfg)


def test_tiny_vision_and_projector_match_the_flop_counter(tiny):
    cfg, model, geo = tiny
    n = 3
    px = torch.randn(n, 3, geo.image, geo.image)
    got = counted(model.model.vision_tower, pixel_values=px)
    assert got == flops(cost.vision_ops(geo, n)) > 0
    both = counted(model.model.get_image_features, pixel_values=px, vision_feature_layer=-1,
                   vision_feature_select_strategy="default")
    assert both == flops(cost.vision_ops(geo, n) + cost.project_ops(geo, n * geo.tokens_per_tile))
    assert both > got


@pytest.mark.parametrize("P", [1, 37, 300])
def test_tiny_prefill_and_decode_step_match_the_flop_counter(tiny, P):
    cfg, model, geo = tiny
    D = cfg.text_config.hidden_size
    out = {}

    def prefill():
        out["o"] = model(inputs_embeds=torch.randn(1, P, D), logits_to_keep=1, use_cache=True)

    assert counted(prefill) == flops(cost.prefill_ops(geo, P))
    assert out["o"].logits.shape[1] == 1
    step = counted(model, inputs_embeds=torch.randn(1, 1, D), cache=out["o"].cache, logits_to_keep=1, use_cache=True)
    assert step == flops(cost.decode_step_ops(geo, P))


def test_tiny_eager_attention_counts_the_same_full_square():
    """The eager path (explicit matmuls, additive causal mask) is counted like SDPA: the full P x P square."""
    from transformers import InternVLForConditionalGeneration

    cfg = build_config("tiny")
    cfg._attn_implementation = "eager"
    cfg.text_config._attn_implementation = "eager"
    model = InternVLForConditionalGeneration(cfg).eval()
    geo, P = cost.geometry(cfg), 50
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(inputs_embeds=torch.randn(1, P, cfg.text_config.hidden_size), logits_to_keep=1)
    assert fc.get_total_flops() == flops(cost.prefill_ops(geo, P))
    attn = [o for o in cost.prefill_ops(geo, P) if o.name == "attention"][0]
    assert attn.flops_useful == pytest.approx(attn.flops * (P + 1) / (2 * P))


# --------------------------------------------------------------------- real-size 8B on the meta device


@pytest.fixture(scope="module")
def meta8b():
    return meta_model("internvl3-8b"), cost.geometry(build_config("internvl3-8b"))


def test_meta_flop_counter_counts_sdpa_as_math():
    """On meta, SDPA decomposes to bmm (counted, full square even when causal, GQA heads broadcast)."""
    q = torch.empty(1, 8, 64, 16, device="meta")
    kv = torch.empty(1, 2, 64, 16, device="meta")
    with FlopCounterMode(display=False) as fc:
        torch.nn.functional.scaled_dot_product_attention(q, kv, kv, is_causal=True, enable_gqa=True)
    assert fc.get_total_flops() == 4 * 8 * 64 * 64 * 16


def test_meta_internvit_layer(meta8b):
    model, geo = meta8b
    layer = model.model.vision_tower.encoder.layer[0]
    n = 2
    with FlopCounterMode(display=False) as fc:
        layer(torch.empty(n, geo.S, geo.C, device="meta"))
    per_layer = [o for o in cost.vision_ops(geo, n) if o.name != "patch_embed"]
    assert fc.get_total_flops() == flops(per_layer) / geo.layers_v
    assert geo.S == 1025


def test_meta_vision_tower_and_projector_one_frame(meta8b):
    model, geo = meta8b
    with FlopCounterMode(display=False) as fc:
        out = model.model.get_image_features(pixel_values=torch.empty(1, 3, 448, 448, device="meta"),
                                             vision_feature_layer=-1, vision_feature_select_strategy="default")
    assert tuple(out.pooler_output.shape) == (1, 256, 3584)
    analytic = cost.vision_gflops_per_frame("internvl3-8b") * 1e9
    assert fc.get_total_flops() == analytic
    assert rel(analytic, 738e9) < 0.02  # the notes' ~738 GFLOP per 448 px frame


@pytest.mark.parametrize("P", [1000, 4097])
def test_meta_qwen2_decoder_layer(meta8b, P):
    model, geo = meta8b
    lm = model.model.language_model
    h = torch.empty(1, P, geo.D, device="meta")
    pos = torch.arange(P, device="meta")[None]
    with FlopCounterMode(display=False) as fc:
        lm.layers[0](h, attention_mask=None, position_ids=pos, position_embeddings=lm.rotary_emb(h, pos))
    layer_ops = [o for o in cost.prefill_ops(geo, P) if o.name not in ("embed", "lm_head")]
    assert fc.get_total_flops() == flops(layer_ops) / geo.L


@pytest.mark.parametrize("name", ["internvl3-1b", "internvl3-8b", "tiny"])
def test_weight_bytes_add_up_to_the_parameter_counts(name):
    pc = parameter_counts(meta_model(name))
    we = cost.weight_elements(cost.geometry(build_config(name)))
    assert {k: pc[k] for k in we} == we


# --------------------------------------------------------------------------------- token accounting


def text_tokens(labels: list[int]) -> int:
    return sum(6 + len(str(i)) for i in labels) + cost.DEFAULT_FIXED_TEXT_TOKENS


@pytest.mark.parametrize("T", [8, 64, 512])
def test_token_accounting(T):
    base = cost.estimate("internvl3-8b", "baseline", T, ops=False)
    wap = cost.estimate("internvl3-8b", "wap:ratio=16", T, ops=False)
    tome = cost.estimate("internvl3-8b", "tome:ratio=16,at=proj", T, ops=False)
    at_mlp = cost.estimate("internvl3-8b", "tome:ratio=16", T, ops=False)
    assert (base["at"], wap["at"], tome["at"], at_mlp["at"]) == (None, "vit", "proj", "mlp")
    assert base["tokens"]["visual"] == 256 * T == base["tokens"]["projector_in"]
    assert base["tokens"]["prompt"] == 256 * T + text_tokens(list(range(1, T + 1)))
    # wap 16x at vit: 4x2x2 blocks on [T, 32, 32] -> T/4 x 16 x 16 -> pixel shuffle -> 16 per frame
    assert wap["tokens"]["visual"] == 16 * T == wap["tokens"]["projector_in"]
    assert wap["tokens"]["prompt"] == 16 * T + text_tokens(list(range(1, T + 1, 4)))  # Frame1, Frame5, ...
    assert wap["order"] == ["vision", "reduce", "project", "prefill", "generate"]
    # tome 16x at proj: the projector still sees all 256 per frame
    assert tome["tokens"]["visual"] == 16 * T and tome["tokens"]["projector_in"] == 256 * T
    assert tome["tokens"]["prompt"] == 16 * T + text_tokens(list(range(1, T + 1)))
    assert tome["order"] == ["vision", "project", "reduce", "prefill", "generate"]
    # tome 16x at mlp (its default): the pixel shuffle sees all 256 per frame, the MLP only the 16 kept
    assert at_mlp["tokens"]["visual"] == 16 * T == at_mlp["tokens"]["projector_in"]
    assert at_mlp["order"] == ["vision", "project", "reduce", "project", "prefill", "generate"]
    assert at_mlp["stages"]["project"]["flops"] * 16 == base["stages"]["project"]["flops"]
    assert base["stages"]["project"]["bytes"] > at_mlp["stages"]["project"]["bytes"] > wap["stages"]["project"]["bytes"]
    assert at_mlp["stages"]["reduce"]["bytes"] > tome["stages"]["reduce"]["bytes"]  # 4C = 4096 wide vs D = 3584
    # the vision stage does not care about the method; the projector does
    assert base["stages"]["vision"]["flops"] == wap["stages"]["vision"]["flops"] == tome["stages"]["vision"]["flops"]
    assert wap["stages"]["project"]["flops"] * 16 == base["stages"]["project"]["flops"]
    assert base["stages"]["reduce"]["bytes"] == 0 < wap["stages"]["reduce"]["bytes"]


def test_text_token_parameters_and_tiles():
    e = cost.estimate("internvl3-8b", "baseline", 10, frame_text_tokens=5, fixed_text_tokens=7, tiles=2, ops=False)
    assert e["tokens"]["visual"] == 10 * 2 * 256
    assert e["tokens"]["text"] == 10 * 5 + 7
    assert e["stages"]["vision"]["flops"] == 20 * flops(cost.vision_ops(cost.geometry(build_config("internvl3-8b")), 1))


def test_context_flag():
    e = cost.estimate("internvl3-8b", "baseline", 512, ops=False)
    assert e["tokens"]["visual"] == 131072 and not e["fits_context"]
    assert "32768" in e["context_reason"] and str(e["tokens"]["prompt"]) in e["context_reason"]
    assert e["stages"]["prefill"]["flops"] > 0  # still costed: what it would take
    ok = cost.estimate("internvl3-8b", "wap:ratio=16", 512, ops=False)
    assert ok["fits_context"] and ok["context_reason"] is None
    # prompt + new tokens is what must fit (as the pipeline checks)
    P = cost.estimate("tiny", "baseline", 4, ops=False)["tokens"]["prompt"]
    cfg = build_config("tiny")
    cfg.text_config.max_position_embeddings = P + 3
    assert cost.estimate(cfg, "baseline", 4, new_tokens=3)["fits_context"]
    assert not cost.estimate(cfg, "baseline", 4, new_tokens=4)["fits_context"]


@pytest.mark.parametrize("spec", ["wap:ratio=16", "tome:ratio=16"])
def test_impossible_frame_count_is_an_error_cell(spec):
    e = cost.estimate("internvl3-8b", spec, 6)
    assert "error" in e and "stages" not in e and e["frames"] == 6
    assert ("4x2x2" in e["error"]) if spec.startswith("wap") else ("clip" in e["error"])
    rep = cost.report("internvl3-8b", [spec], [6, 8], "h200")
    assert "error" in rep["cells"][0] and "error" not in rep["cells"][1]


def test_bad_specs_raise():
    with pytest.raises(SpecError, match="no-such-reducer"):
        cost.report("internvl3-8b", ["baseline", "no-such-reducer"], [8])
    with pytest.raises(SpecError, match="regular grid"):
        cost.estimate("internvl3-8b", "tome:ratio=16,at=vit", 8)
    with pytest.raises(SpecError, match="frames"):
        cost.estimate("internvl3-8b", "baseline", 0)
    with pytest.raises(SpecError, match="internvl3-8b"):
        cost.estimate("internvl3-9b", "baseline", 8)
    assert cost.estimate("internvl3-8b", "avgpool:ratio=16,at=vit", 8)["tokens"]["visual"] == 128


# --------------------------------------------------------------------------------------- roofline


def test_roofline_compute_vs_memory_bound():
    gpu = cost.GPUSpec("toy", "toy", peak_flops=1e12, bandwidth=1e9, memory_bytes=1e9, source="test")
    compute = cost.Op("matmul", flops=2e12, flops_useful=2e12, weight_bytes=1e6)  # 2 s compute, 1 ms memory
    memory = cost.Op("stream", flops=1e9, flops_useful=1e9, act_bytes=3e9)  # 1 ms compute, 3 s memory
    r = cost.roofline([compute], gpu)
    assert r["bound"] == "compute" and r["predicted_s"] == pytest.approx(2.0)
    r = cost.roofline([memory], gpu)
    assert r["bound"] == "memory" and r["predicted_s"] == pytest.approx(3.0)
    both = cost.roofline([compute, memory], gpu)  # per op group: 2 + 3, not max(2.001, 3.001)
    assert both["predicted_s"] == pytest.approx(5.0)
    assert both["compute_s"] == pytest.approx(2.001) and both["memory_s"] == pytest.approx(3.001)
    causal = cost.Op("attn", flops=4e12, flops_useful=2e12)
    assert cost.roofline([causal], gpu)["predicted_s"] == pytest.approx(2.0)  # the roofline uses flops_useful


def test_stage_bounds_on_h200():
    e = cost.estimate("internvl3-8b", "baseline", 64, gpu="h200", new_tokens=16)
    st = e["stages"]
    assert st["prefill"]["bound"] == "compute" and st["vision"]["bound"] == "compute"
    assert st["generate"]["bound"] == "memory"
    # a decode step reads every weight at least once: 15.2 GB of bf16 weights at 4.8 TB/s
    weights = 2 * sum(parameter_counts(meta_model("internvl3-8b"))[k] for k in ("llm", "lm_head"))
    assert st["generate"]["per_token_s"] > weights / 4.8e12 * (1 - 0.06)  # less the unread embedding table
    assert st["prefill"]["predicted_s"] >= st["prefill"]["flops_useful"] / 989.4e12
    assert e["totals"]["predicted_s"] == pytest.approx(sum(s["predicted_s"] for s in st.values()))


def test_unknown_gpu():
    with pytest.raises(SpecError) as err:
        cost.estimate("internvl3-8b", "baseline", 8, gpu="rtx9090")
    for name in ("h100", "h200", "a100", "l40s"):
        assert name in str(err.value)
    assert "rtx9090" in str(err.value)
    assert cost.get_gpu("H200").bandwidth == 4.8e12


def test_report_is_json_and_renders():
    from rich.console import Console

    rep = cost.report("internvl3-8b", ["baseline", "wap:ratio=16"], [6, 8], "h200")
    assert rep["gpu"]["name"] == "h200" and rep["model"]["name"] == "internvl3-8b"
    assert json.loads(json.dumps(rep))["cells"][1]["tokens"]["visual"] == 2048
    buf = io.StringIO()
    cost.render(rep, console=Console(file=buf, width=160))
    text = buf.getvalue()
    assert "wap:ratio=16" in text and "cannot run" in text and "4x2x2" in text
    cost.render(cost.report("tiny", ["baseline"], [2]), console=Console(file=io.StringIO()))


def test_real_prompt_length_and_stage_flops():
    est = cost.estimate("internvl3-8b", "wap:ratio=16", 8, prompt_tokens=500, ops=False)
    assert est["tokens"]["prompt"] == 500 and est["tokens"]["text"] == 500 - 128
    geo = cost.geometry(build_config("internvl3-8b"))
    assert est["stages"]["prefill"]["flops"] == flops(cost.prefill_ops(geo, 500))
    with pytest.raises(SpecError, match="prompt_tokens=100 is fewer than the 128 visual tokens"):
        cost.estimate("internvl3-8b", "wap:ratio=16", 8, prompt_tokens=100)
    per_stage, why = cost.stage_flops("internvl3-8b", "baseline", 8)
    assert why is None and set(per_stage) == set(cost.STAGES) and per_stage["reduce"] == 0
    assert cost.stage_flops("internvl3-8b", "wap:ratio=16", 6)[1].startswith("ratio=16 uses a 4x2x2")
    assert cost.stage_flops("internvl3-8b", "liteframe:checkpoint=random", 8) == (
        None,
        "the cost model takes baseline, a reducer spec (optionally with at=vit|mlp|proj) or a method that declares "
        "its geometry (lowres); 'liteframe' is a method without one",
    )
