"""The analytic cost model for Qwen2.5-VL (window attention, 2x2 merger, temporal patches, one video block of
text) against FlopCounterMode: the tiny model's whole pipeline on CPU, real-size 7B layers on the meta device."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from liteframe_bench import cost
from liteframe_bench.backbone import load_backbone
from liteframe_bench.backends.qwen import build_config, meta_model, parameter_counts
from liteframe_bench.cli import main
from liteframe_bench.errors import SpecError
from liteframe_bench.pipeline import build_method
from liteframe_bench.profiler import count_flops
from liteframe_bench.testing import moving_square_video


def flops(ops) -> float:
    return sum(o.flops for o in ops)


@pytest.fixture(scope="module")
def bb():
    return load_backbone("tiny-qwen")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("v") / "square.mp4"
    moving_square_video(path, 12, size=112)
    return str(path)


@pytest.mark.parametrize("spec, frames", [("baseline", 8), ("baseline", 5), ("lowres:ratio=4", 8),
                                          ("wap:ratio=16", 8), ("tome:ratio=16", 8)])
def test_tiny_pipeline_flops_equal_the_cost_model(bb, video, spec, frames):
    """Every stage FlopCounterMode sees in a real run of the tiny model (window and full attention, the merger, the
    class-token substitute for wap, the padded odd clip, the LLM at the run's prompt length) is the cost model's."""
    method = build_method(spec, bb)
    counted = count_flops(method, video, frames, new_tokens=3)
    tokens = method.encode(video, frames)
    prompt = int(bb.build_prompt("Describe the video.", tokens.groups).shape[1])
    est = cost.estimate(bb, spec, frames, prompt_tokens=prompt, new_tokens=3, ops=False)
    assert est["tokens"]["visual"] == tokens.num_tokens and est["tokens"]["prompt"] == prompt
    if not spec.startswith("lowres"):  # lowres's own geometry is smaller: its "before" is its own count
        assert est["tokens"]["before_reduction"] == tokens.tokens_before
    for stage in ("vision", "project", "prefill", "generate"):
        assert counted[stage] == est["stages"][stage]["flops"] > 0, stage


def test_window_sizes_are_the_towers(bb):
    """sum of window lengths squared equals what transformers' window index makes, also where windows are cut."""
    from transformers.vision_utils import get_vision_window_index

    for side in (112, 168, 392, 448):
        geo = cost.geometry(build_config("qwen2.5-vl-7b"), side)
        _, cu = get_vision_window_index(torch.tensor([[1, side // 14, side // 14]]), 2, 112, 14)
        assert int((cu.diff().long() ** 2).sum()) == geo.window_sq_sum(), side


# --------------------------------------------------------------------- real-size 7B on the meta device


@pytest.fixture(scope="module")
def meta7b():
    return meta_model("qwen2.5-vl-7b"), cost.geometry(build_config("qwen2.5-vl-7b"))


def test_meta_vision_tower_and_merger_four_frames(meta7b):
    """The whole 7B tower (32 layers: 28 windowed, 4 full) and merger on two 448 px temporal patches, on meta (its
    rotary position ids and window index computed beforehand, as the tower accepts them)."""
    from transformers.vision_utils import get_vision_cu_seqlens, get_vision_position_ids, get_vision_window_index

    model, geo = meta7b
    thw = torch.tensor([[2, 32, 32]])
    index, cu_window = get_vision_window_index(thw, 2, 112, 14)
    kw = dict(position_ids=get_vision_position_ids(thw, 2).to("meta"), window_index=index,
              cu_window_seqlens=cu_window, cu_seqlens=get_vision_cu_seqlens(thw))
    with FlopCounterMode(display=False) as fc:
        out = model.model.visual(torch.empty(2 * 1024, 3 * 2 * 14 * 14, device="meta"), grid_thw=thw, **kw)
    assert tuple(out.pooler_output.shape) == (512, 3584)
    assert fc.get_total_flops() == flops(cost.vision_ops(geo, 4) + cost.project_ops(geo, 512))
    assert fc.get_total_flops() == cost.vision_gflops_per_frame("qwen2.5-vl-7b") * 4e9


@pytest.mark.parametrize("P", [1000, 4097])
def test_meta_decoder_layer_with_mrope(meta7b, P):
    model, geo = meta7b
    lm = model.model.language_model
    h = torch.empty(1, P, geo.D, device="meta")
    pos = torch.arange(P, device="meta").view(1, 1, P).expand(3, 1, P)
    with FlopCounterMode(display=False) as fc:
        lm.layers[0](h, attention_mask=None, position_ids=None, position_embeddings=lm.rotary_emb(h, pos))
    layer_ops = [o for o in cost.prefill_ops(geo, P) if o.name not in ("embed", "lm_head")]
    assert fc.get_total_flops() == flops(layer_ops) / geo.L


@pytest.mark.parametrize("name", ["qwen2.5-vl-3b", "qwen2.5-vl-7b", "tiny-qwen"])
def test_weight_bytes_add_up_to_the_parameter_counts(name):
    pc = parameter_counts(meta_model(name))
    we = cost.weight_elements(cost.geometry(build_config(name)))
    assert {k: pc[k] for k in we} == we


# --------------------------------------------------------------------------------- token accounting


@pytest.mark.parametrize("T", [8, 64, 512])
def test_token_accounting(T):
    base = cost.estimate("qwen2.5-vl-7b", "baseline", T, ops=False)
    wap = cost.estimate("qwen2.5-vl-7b", "wap:ratio=16", T, ops=False)
    tome = cost.estimate("qwen2.5-vl-7b", "tome:ratio=16", T, ops=False)
    # 448 px frame pairs: 32x32 patches -> 16x16 merged = 256 tokens per 2 frames; one video block of text
    assert base["tokens"]["visual"] == 128 * T and base["tokens"]["vit_per_image"] == 1024
    assert base["tokens"]["prompt"] == 128 * T + 2 + cost.DEFAULT_FIXED_TEXT_TOKENS
    assert wap["tokens"]["visual"] == tome["tokens"]["visual"] == 8 * T  # 16x on the same grid (T/2 steps)
    assert wap["tokens"]["text"] == base["tokens"]["text"]  # no per-frame labels: positions carry time
    # the class-token substitute wap needs is an extra q.k^T per temporal patch in the vision stage
    assert wap["stages"]["vision"]["flops"] - base["stages"]["vision"]["flops"] == 2 * (T // 2) * 1024**2 * 1280
    assert tome["stages"]["vision"]["flops"] == base["stages"]["vision"]["flops"]
    assert base["fits_context"] and base["max_position_embeddings"] == 128_000


def test_odd_frames_pad_and_impossible_counts_and_tiles():
    assert cost.estimate("qwen2.5-vl-7b", "baseline", 7, ops=False)["tokens"]["visual"] == 4 * 256
    assert "4x2x2" in cost.estimate("qwen2.5-vl-7b", "wap:ratio=16", 12)["error"]  # 6 temporal patches
    with pytest.raises(SpecError, match="tiles=2 is invalid for Qwen2.5-VL"):
        cost.estimate("qwen2.5-vl-7b", "baseline", 8, tiles=2)
    assert cost.estimate("random:qwen2.5-vl-3b", "baseline", 8, ops=False)["model"] == "qwen2.5-vl-3b"


def test_cost_command_takes_qwen(capsys):
    assert main(["cost", "--model", "qwen2.5-vl-7b", "--frames", "8,64,512", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["model"]["family"] == "qwen2.5-vl" and rep["model"]["geometry"]["window"] == 4
    assert [c["frames"] for c in rep["cells"]] == [8, 64, 512]
    assert [c["tokens"]["visual"] for c in rep["cells"]] == [1024, 8192, 65536]
    assert all(c["stages"]["vision"]["predicted_s"] > 0 for c in rep["cells"])
