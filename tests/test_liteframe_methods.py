"""The ``liteframe-ctd`` and ``liteframe`` methods on the tiny backbone, from real (short) CTD and LMA runs."""

import json

import pytest
import torch

import liteframe_bench as lfb
from liteframe_bench.backends.internvl import InternVL3
from liteframe_bench.methods.liteframe.ctd import CTDConfig, train_ctd
from liteframe_bench.methods.liteframe.lma import LMAConfig, student_tokens, train_lma
from liteframe_bench.pipeline import build_method
from liteframe_bench.testing import moving_square_video
from liteframe_bench.video import load_video

FRAMES = 8


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("lf")
    (root / "videos").mkdir()
    rows = []
    for i in range(2):
        moving_square_video(root / "videos" / f"v{i}.mp4", 12, size=112, seed=i)
        rows.append({"video": f"videos/v{i}.mp4", "prompt": f"Square {i}?", "answer": "AB"[i]})
    (root / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    train_ctd(CTDConfig(videos=str(root / "videos"), out=str(root / "ctd"), frames=FRAMES, student="tiny", steps=3,
                        batch_size=1, warmup_steps=1, checkpoint_every=0), progress=False)
    train_lma(LMAConfig(student=str(root / "ctd"), data=str(root / "train.jsonl"), out=str(root / "lma"),
                        frames=FRAMES, steps=3, batch_size=1, warmup_steps=1, checkpoint_every=0, lr=1e-2,
                        train_projector=True), progress=False)
    return root


def test_registered_with_their_parameter():
    names = {e.name: e for e in lfb.entries("method")}
    assert {"baseline", "liteframe", "liteframe-ctd"} <= set(names)
    assert [p.name for p in names["liteframe"].params] == ["checkpoint"]


def test_ctd_method_runs_the_trained_student_like_training_does(trained):
    bb = InternVL3.load("tiny")
    method = build_method(f"liteframe-ctd:checkpoint={trained / 'ctd'}", bb)
    video = trained / "videos" / "v0.mp4"
    tokens = method.encode(video, FRAMES)
    assert tokens.num_tokens == FRAMES // 4 * 4 and tokens.groups == [("Frame1", 4), ("Frame5", 4)]
    px = load_video(video, FRAMES, image_size=bb.image_size).pixel_values
    with torch.inference_mode():
        expected = student_tokens(bb, method.student, px)[0]
    assert torch.allclose(tokens.embeds, expected, atol=1e-6)  # inference path == training path
    gen = method.generate(tokens, "Q?", 3, min_new_tokens=3)
    assert gen.new_tokens == 3


def test_liteframe_adapter_is_on_only_inside_its_own_generate(trained):
    bb = InternVL3.load("tiny")
    base = build_method("baseline", bb)
    video = trained / "videos" / "v1.mp4"
    base_tokens = base.encode(video, FRAMES)
    before = base.generate(base_tokens, "Q?", 4, min_new_tokens=4).token_ids
    with torch.inference_mode():
        ids = bb.build_prompt("Q?", base_tokens.groups)
        logits_before, _ = bb.prefill(bb.embed(ids, base_tokens.embeds))
    lf = build_method(f"liteframe:checkpoint={trained / 'lma'}", bb)
    lf_tokens = lf.encode(video, FRAMES)
    assert lf_tokens.num_tokens == 8
    lf.generate(lf_tokens, "Q?", 4, min_new_tokens=4)
    with torch.inference_mode():
        logits_after, _ = bb.prefill(bb.embed(ids, base_tokens.embeds))
        lf_ids = bb.build_prompt("Q?", lf_tokens.groups)
        plain, _ = bb.prefill(bb.embed(lf_ids, lf_tokens.embeds))  # adapter off: the published LLM
        with lf._adapter():
            adapted, _ = bb.prefill(bb.embed(lf_ids, lf_tokens.embeds))
    assert torch.equal(logits_before, logits_after)
    assert base.generate(base_tokens, "Q?", 4, min_new_tokens=4).token_ids == before
    assert not torch.allclose(plain, adapted)  # the LoRA really changes the LLM when on
    assert lf._projector is not None  # LMA trained the projector: liteframe uses its own copy


def test_random_student_for_latency_and_errors(trained):
    bb = InternVL3.load("tiny")
    tokens = build_method("liteframe-ctd:checkpoint=random", bb).encode(trained / "videos" / "v0.mp4", 6)
    assert tokens.frames == 6 and tokens.num_tokens == 2 * 4  # 6 frames padded to 8 -> T' = 2
    with pytest.raises(lfb.SpecError, match="needs checkpoint=DIR"):
        build_method("liteframe-ctd", bb)
    with pytest.raises(lfb.SpecError, match="no student/config.json"):
        build_method(f"liteframe-ctd:checkpoint={trained / 'videos'}", bb)
    with pytest.raises(lfb.SpecError, match="adapter/adapter_config.json missing"):
        build_method(f"liteframe:checkpoint={trained / 'ctd'}", bb)
    with pytest.raises(lfb.SpecError, match="takes no reducer"):
        lfb.create("liteframe-ctd:checkpoint=random").bind(bb, reducer=lfb.create("wap"))


def test_train_cli(trained, tmp_path, capsys):
    from liteframe_bench.cli import main

    assert main(["train", "ctd", str(trained / "videos"), "--out", str(tmp_path / "ctd"), "--teacher", "tiny",
                 "--student", "tiny", "--steps", "2", "--frames", "8", "--batch-size", "1", "--set", "warmup_steps=1",
                 "--set", "checkpoint_every=0", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["steps"] == 2 and (tmp_path / "ctd" / "student" / "model.safetensors").is_file()
    assert main(["train", "ctd", str(trained / "videos"), "--set", "bogus=1"]) == 2
    assert "allowed keys: videos" in capsys.readouterr().err
    assert main(["train", "ctd", str(tmp_path / "empty-nothing"), "--out", str(tmp_path / "x")]) == 2


def test_zero_shot_spatial_tiling(trained):
    """LiteFrame Sec. 5.2.3: high-resolution frames split into tiles of the model's size, each tile a clip."""
    bb = InternVL3.load("tiny")
    video = moving_square_video(trained / "hires.mp4", 12, size=448)
    tokens = build_method("liteframe-ctd:checkpoint=random", bb, tiles=(2, 2)).encode(video, FRAMES)
    assert tokens.num_tokens == 4 * (FRAMES // 4) * 4  # 4 tiles x T'=2 x 2x2 tokens
    assert tokens.groups == [("Frame1", 16), ("Frame5", 16)]  # every tile's tokens of a slice in one block
    assert tokens.tile[:16].tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
