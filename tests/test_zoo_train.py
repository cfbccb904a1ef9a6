"""`lfbench zoo train` on a tiny budget: every stage runs, cards are written, a rerun resumes; the teacher trainer
resumes exactly mid-run."""

import json
from dataclasses import replace

import torch

from liteframe_bench import zoo
from liteframe_bench.backends.internvl import InternVL3
from liteframe_bench.zoo import model as zm
from liteframe_bench.zoo.teacher import TeacherConfig, train_teacher
from liteframe_bench.zoo.train import train_zoo


def test_zoo_train_tiny_budget_end_to_end_then_resume(tmp_path, monkeypatch):
    monkeypatch.setenv("LFBENCH_DATA", str(tmp_path / "data"))
    out = tmp_path / "zoo"
    cards = train_zoo(out, budget_min=0.05, progress=False, eval_suite="synth_tiny", eval_limit=5, log=lambda m: None)
    assert list(cards) == list(zoo.NAMES)
    for name, card in cards.items():
        assert card["steps"] >= 1 and card["command"].startswith("lfbench zoo train")
        assert card["eval"]["families"]["overall"]["questions"] == 5
        assert (out / name / zoo.CARD).is_file()

    # the new zoo is usable as the default model's zoo
    monkeypatch.setenv("LFBENCH_ZOO", str(out))
    from liteframe_bench.pipeline import build_method

    bb = InternVL3.load("mini")
    assert bb.zoo_name == "mini"
    assert build_method("liteframe", bb).folder == str(out / "mini-lma")

    # a rerun skips finished stages; a removed export is rebuilt from its final checkpoint without training
    before = {n: (out / n / zoo.CARD).stat().st_mtime_ns for n in zoo.NAMES}
    (out / "mini-lma" / zoo.CARD).unlink()
    monkeypatch.delenv("LFBENCH_ZOO")
    again = train_zoo(out, budget_min=0.05, progress=False, eval_suite="synth_tiny", eval_limit=5, log=lambda m: None)
    assert (out / "mini" / zoo.CARD).stat().st_mtime_ns == before["mini"]
    assert (out / "mini-ctd" / zoo.CARD).stat().st_mtime_ns == before["mini-ctd"]
    assert again["mini-lma"]["steps"] == cards["mini-lma"]["steps"]
    assert json.loads((out / "runs" / "lma" / "lma.json").read_text())["start_step"] == cards["mini-lma"]["steps"]


def test_teacher_resumes_exactly(tmp_path):
    tok = zm.build_tokenizer(0)
    cfg = TeacherConfig(steps=4, frames=12, clips=1, copies=1, vision_steps=1, vision_clips=1, short_steps=1,
                        short_clips=1, ground_steps=1, fade_steps=1, oracle_until=2, oracle_fade=1, warmup_steps=1,
                        checkpoint_every=0, eval_every=0)

    def run(out, stops):
        net = zm.build_model(tok, 0)
        bb = InternVL3(net, tok, source="mini (test)", system_prompt=None)
        for stop in stops:
            rec = train_teacher(replace(cfg, out=str(out)), bb, progress=False, log=lambda m: None, stop_after=stop)
        return net, rec

    whole, rec = run(tmp_path / "a", [None])
    parts, rec2 = run(tmp_path / "b", [2, None])
    assert rec["finished"] and rec2["finished"] and rec2["steps"] == 4
    assert [h["step"] for h in rec2["history"]] == [1, 2, 3, 4]
    for (k, a), (_, b) in zip(whole.state_dict().items(), parts.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
