"""The two baselines every reducer is measured against: ``random`` (seeded uniform dropping) and ``lowres`` (the
ViT on smaller frames, interpolated position embeddings), on the tiny model, through the cost model, and through
sweep -> pareto -> figures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from liteframe_bench import cost, figures, pareto_report
from liteframe_bench.backends.internvl import InternVL3
from liteframe_bench.errors import SpecError
from liteframe_bench.pipeline import build_method
from liteframe_bench.presets import build_config
from liteframe_bench.profiler import count_flops
from liteframe_bench.results import ResultsDir
from liteframe_bench.testing import moving_square_video

T = 8


@pytest.fixture(scope="module")
def bb():
    return InternVL3.load("tiny", seed=0)


@pytest.fixture(scope="module")
def clip():
    px = torch.randn(1, T, 3, 112, 112, generator=torch.Generator().manual_seed(0))
    return SimpleNamespace(pixel_values=px, distinct_frames=T)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return moving_square_video(tmp_path_factory.mktemp("v") / "v.mp4", T, size=224)


# ------------------------------------------------------------------------------------------------- random


def test_random_keeps_the_16x_count_per_frame_and_follows_its_seed(bb, clip):
    out = {s: build_method(s, bb).encode(clip) for s in ("random", "random:seed=1", "random:scope=clip")}
    base = build_method("baseline", bb).encode(clip)
    assert out["random"].num_tokens == T * 16 // 16 and [c for _, c in out["random"].groups] == [1] * T
    assert out["random:scope=clip"].num_tokens == T  # clip scope: the same total, frames may keep none
    assert not torch.equal(out["random"].pos, out["random:seed=1"].pos)
    again = build_method("random", bb).encode(clip)
    assert torch.equal(again.pos, out["random"].pos) and torch.equal(again.embeds, out["random"].embeds)
    # kept tokens are the baseline's own tokens, untouched
    flat = {tuple(p): e for p, e in zip(base.pos.tolist(), base.embeds, strict=True)}
    for p, e in zip(out["random"].pos.tolist(), out["random"].embeds, strict=True):
        assert torch.allclose(flat[tuple(p)], e, atol=1e-5)


def test_random_at_mlp_equals_at_proj(bb, clip):
    """The projector's MLP is token-wise: dropping before it (the default) keeps exactly the same tokens."""
    mlp, proj = (build_method(s, bb).encode(clip) for s in ("random", "random:at=proj"))
    assert torch.equal(mlp.pos, proj.pos) and torch.allclose(mlp.embeds, proj.embeds, atol=1e-5)


def test_random_draws_uniformly():
    from liteframe_bench import create
    from liteframe_bench.testing import random_grid

    grid = random_grid(1, 4, 8, 8, 8, aux=False)
    hits = torch.zeros(4 * 64)
    for seed in range(400):
        out = create(f"random:ratio=4,seed={seed}")(grid)
        p = out.pos[0]
        hits[(p[:, 0] * 64 + p[:, 1] * 8 + p[:, 2])] += 1
        assert torch.bincount(p[:, 0], minlength=4).tolist() == [16] * 4  # scope=frame: 16 of 64 in every frame
    assert hits.mean() == 100 and hits.std() < 15  # each token kept 1/4 of the time (binomial sd ~8.7)


# ------------------------------------------------------------------------------------------------- lowres


def test_transformers_interpolates_the_position_embeddings(bb):
    """The InternViT embeddings at 56 px equal patch conv + CLS + the 8x8 position table resized bicubically to
    4x4: transformers' interpolate_pos_encoding runs by itself when the input is smaller."""
    import copy

    emb = copy.deepcopy(bb.model.model.vision_tower.embeddings)
    px = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        emb.position_embeddings.normal_()  # a random model's table is all zeros: give it something to resize
        got = emb(px)
        table = emb.position_embeddings
        C = table.shape[-1]
        grid = table[:, 1:].reshape(1, 8, 8, C).permute(0, 3, 1, 2)
        small = F.interpolate(grid, size=(4, 4), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
        pos = torch.cat([table[:, :1], small.reshape(1, 16, C)], dim=1)
        patches = emb.patch_embeddings(px)
        want = torch.cat([emb.cls_token.expand(2, -1, -1), patches], dim=1) + pos
    assert got.shape == (2, 17, C) and torch.allclose(got, want, atol=1e-6)
    assert not torch.allclose(small.reshape(16, C), table[0, 1:17], atol=1e-3)  # really resized, not cropped


def test_lowres_tokens_and_identity_at_full_size(bb, clip):
    full = build_method("lowres:ratio=1", bb).encode(clip)
    base = build_method("baseline", bb).encode(clip)
    assert torch.allclose(full.embeds, base.embeds, atol=1e-5) and torch.equal(full.pos, base.pos)
    for spec, per_frame in (("lowres", 1), ("lowres:ratio=4", 4), ("lowres:size=84", 9)):
        tokens = build_method(spec, bb).encode(clip)
        assert tokens.num_tokens == T * per_frame and tokens.groups[0] == ("Frame1", per_frame), spec
        assert tokens.tokens_before == T * 16  # what the baseline would give the LLM
        assert bool(torch.isfinite(tokens.embeds).all())


def test_lowres_rejects_sides_the_model_cannot_take(bb):
    with pytest.raises(SpecError, match=r"lowres size=100 gives no valid input side for this 112 px model; "
                                        r"allowed: size in \[28, 56, 84, 112\].* or ratio in \[1, 4, 16\]"):
        build_method("lowres:size=100", bb)
    with pytest.raises(SpecError, match=r"ratio=64.*allowed: size in"):
        build_method("lowres:ratio=64", bb)
    with pytest.raises(SpecError, match=r"ratio=3.0 is invalid; allowed: one of \[1, 4, 16, 64, 256\]"):
        build_method("lowres:ratio=3", bb)
    with pytest.raises(SpecError, match="takes no reducer"):
        build_method("lowres", bb).bind(bb, reducer=object())


def test_lowres_vision_flops_counted_equal_the_cost_model(bb, video):
    """The smaller ViT is what the cost model counts: FlopCounterMode on the tiny run equals the analytic numbers."""
    for spec in ("lowres", "lowres:ratio=4", "baseline"):
        counted = count_flops(build_method(spec, bb), video, T, new_tokens=2)
        est = cost.estimate(build_config("tiny"), spec, T, ops=False)
        assert counted["vision"] == est["stages"]["vision"]["flops"] > 0, spec
        assert counted["project"] == est["stages"]["project"]["flops"], spec
    base = cost.estimate("internvl3-8b", "baseline", 64, gpu="h200", ops=False)
    low = cost.estimate("internvl3-8b", "lowres", 64, gpu="h200", ops=False)
    wap = cost.estimate("internvl3-8b", "wap", 64, gpu="h200", ops=False)
    assert low["tokens"]["visual"] == wap["tokens"]["visual"] == 64 * 16  # the same 16x budget
    assert low["stages"]["vision"]["flops"] < base["stages"]["vision"]["flops"] / 16  # patch work / 16, attention more
    assert wap["stages"]["vision"]["flops"] == base["stages"]["vision"]["flops"]  # post-hoc: the full ViT still runs
    assert low["totals"]["predicted_s"] < wap["totals"]["predicted_s"]
    with pytest.raises(SpecError, match="allowed: size in"):
        cost.estimate("internvl3-8b", "lowres:size=450", 8)


# ------------------------------------------------------------------------------ sweep -> pareto -> figures


def test_both_run_through_sweep_pareto_and_figures(probe_task, tmp_path):
    tasks, _ = probe_task
    out = tmp_path / "sweep"
    lfbench = Path(sys.executable).parent / "lfbench"
    args = ["sweep", "--model", "tiny", "--methods", "baseline,random,lowres,lowres:ratio=4", "--frames", "4",
            "--suites", "lfb_adapter_probe", "--timing-samples", "1", "--warmup", "0", "--repeats", "1",
            "--new-tokens", "2", "--out", str(out)]
    res = subprocess.run([str(lfbench), *args], env=dict(os.environ, LFBENCH_TASKS=str(tasks)), capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    cells, _ = ResultsDir(out).load()
    by = {r["method"]: r for r in cells.to_dict("records")}
    assert set(by) == {"baseline", "random", "lowres", "lowres:ratio=4"} and set(cells["status"]) == {"ok"}
    assert (by["random"]["visual_tokens"], by["lowres"]["visual_tokens"], by["lowres:ratio=4"]["visual_tokens"]) == (
        4, 4, 16)
    assert by["random"]["reducer"] == "random" and by["lowres"]["reducer"] == "none"
    assert by["lowres"]["flops_vision"] < by["random"]["flops_vision"] == by["baseline"]["flops_vision"]
    assert set(cells["flops_source"]) == {"analytic"}

    analysis = pareto_report.write_report(out, n_boot=100)
    pts = {p["method"] for p in analysis["suites"]["lfb_adapter_probe"]["points"]}
    assert pts == set(by) and Path(analysis["written"]["report"]).exists()
    table = {"id": "t1", "kind": "accuracy_table", "methods": ["random", "lowres"], "frames": 4}
    fig = figures.run_figures(out, spec={"suites": ["lfb_adapter_probe"], "n_boot": 50, "figures": [table]})
    (t1,) = fig["figures"]
    assert t1["status"] == "complete" and {e["method"] for e in t1["data"]} == {"random", "lowres"}
    assert all(e["agreement"] is not None for e in t1["data"])


def test_paper_table1_has_both_baselines_at_16x():
    spec = figures.load_spec(figures.DEFAULT_SPEC)
    t1 = next(f for f in spec["figures"] if f["id"] == "table1")
    assert "random" in t1["methods"] and "lowres" in t1["methods"]
    real = {m: cost.estimate("internvl3-8b", m, 64, ops=False)["tokens"]["visual"] for m in ("random", "lowres")}
    assert set(real.values()) == {64 * 256 // 16}
