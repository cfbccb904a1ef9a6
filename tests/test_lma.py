"""Language Model Adaptation: the label mask, the loss falls, the adapter/student/projector save as safetensors and
load back (same loss), exact resume, data sources, config errors. Tiny InternVL3 + StudentConfig.tiny()."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from liteframe_bench.backends.internvl import IMG_CONTEXT, InternVL3
from liteframe_bench.errors import SpecError
from liteframe_bench.methods.liteframe.lma import (
    IGNORE,
    LMAConfig,
    answer_loss,
    load_items,
    load_lma,
    make_batch,
    train_lma,
)
from liteframe_bench.methods.liteframe.student import LiteFrameStudent, StudentConfig, load_student, save_student
from liteframe_bench.testing import moving_square_video
from liteframe_bench.video import load_video

FRAMES = 8


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """4 videos, a JSONL of {video (relative), prompt, answer}, and a seeded random tiny student."""
    root = tmp_path_factory.mktemp("lma")
    rows = []
    for i in range(4):
        moving_square_video(root / f"v{i}.mp4", 12, size=112, seed=i)
        rows.append({"video": f"v{i}.mp4", "prompt": f"Which letter goes with square number {i}?", "answer": "ABCD"[i]})
    (root / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    torch.manual_seed(0)
    save_student(LiteFrameStudent(StudentConfig.tiny()), root / "student")
    return root


def examples(cfg: LMAConfig) -> list[dict]:
    return [
        {**it, "pixel_values": load_video(it["video"], FRAMES, image_size=112).pixel_values[0]}
        for it in load_items(cfg)
    ]


def cfg(root, out, **kw) -> LMAConfig:
    base = dict(
        student=str(root / "student"),
        data=str(root / "train.jsonl"),
        out=str(out),
        frames=FRAMES,
        lr=1e-2,
        warmup_steps=5,
        batch_size=2,
        checkpoint_every=0,
        cache_clips=True,
        lora_dropout=0.0,
    )
    return LMAConfig(**{**base, **kw})


def test_labels_mask_everything_but_the_answer(data, tmp_path):
    bb = InternVL3.load("tiny")
    student = load_student(data / "student")
    exs = examples(cfg(data, tmp_path))[:2]
    exs[1] = {**exs[1], "prompt": exs[1]["prompt"] + " Think.", "answer": "BC"}  # different lengths
    batch = make_batch(bb, student, exs)
    assert batch.groups == [("Frame1", 4), ("Frame5", 4)]  # T'=2 slices of a 4x4 grid -> 2x2 after the shuffle
    img = bb.tokenizer.convert_tokens_to_ids(IMG_CONTEXT)
    for b, ex in enumerate(exs):
        n = int(batch.attention_mask[b].sum())
        ids, labels = batch.input_ids[b], batch.labels[b]
        answer = bb.tokenizer(ex["answer"] + "<|im_end|>", add_special_tokens=False).input_ids
        assert (labels[n - len(answer) : n] == torch.tensor(answer)).all()
        assert (labels[: n - len(answer)] == IGNORE).all() and (labels[n:] == IGNORE).all()
        assert bb.tokenizer.decode(labels[labels != IGNORE]) == ex["answer"] + "<|im_end|>"
        assert int((ids == img).sum()) == 8 and not (labels == img).any()
        prompt = bb.build_prompt(ex["prompt"], batch.groups)[0]
        assert torch.equal(ids[: prompt.shape[0]], prompt)  # exactly the pipeline's prompt, then the answer
    # answer_loss is the mean cross-entropy over exactly the unmasked positions (checked against full logits)
    with torch.no_grad():
        loss = answer_loss(bb, student, batch)
        per = answer_loss(bb, student, batch, reduction="none")
        from liteframe_bench.methods.liteframe.lma import student_tokens

        vis = student_tokens(bb, student, batch.pixel_values)
        emb = bb.embed(batch.input_ids, vis.reshape(-1, vis.shape[-1]))
        logits = bb.model(inputs_embeds=emb, attention_mask=batch.attention_mask).logits
    pos = (batch.labels[:, 1:] != IGNORE).nonzero()
    manual = torch.stack(
        [torch.nn.functional.cross_entropy(logits[b, t], batch.labels[b, t + 1]) for b, t in pos.tolist()]
    )
    assert per.shape == (2 + 3,)
    torch.testing.assert_close(per, manual, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(loss, manual.mean(), rtol=1e-4, atol=1e-5)
    # the loss reaches the student (the visual tokens are in the graph), not the frozen LLM weights
    bb.model.requires_grad_(False)
    student.requires_grad_(True)
    answer_loss(bb, student, batch).backward()
    assert student.patch_embed.weight.grad is not None and student.patch_embed.weight.grad.abs().sum() > 0


def test_lma_lowers_the_answer_loss_and_saves_safetensors(data, tmp_path):
    c = cfg(data, tmp_path / "run", steps=60)
    exs = examples(c)
    bb = InternVL3.load("tiny")
    student0 = load_student(data / "student")
    with torch.no_grad():
        before = float(answer_loss(bb, student0, make_batch(bb, student0, exs)))
    res = train_lma(c, progress=False, backbone=bb)
    assert res["finished"] and len(res["losses"]) == 60 and res["trainable_params"]["lora"] > 0
    out = tmp_path / "run"
    for f in (
        "student/model.safetensors",
        "student/config.json",
        "adapter/adapter_model.safetensors",
        "adapter/adapter_config.json",
        "lma.json",
    ):
        assert (out / f).is_file(), f
    assert not [p for p in out.rglob("*") if p.suffix in (".pt", ".pth", ".bin", ".pkl")]
    adapter = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    assert adapter and all("lora_" in k for k in adapter)
    assert {k.split(".")[-3] for k in adapter} >= {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert any(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)
    trained = load_student(out / "student")
    assert not torch.equal(trained.patch_embed.weight, student0.patch_embed.weight)  # the student was fine-tuned
    with torch.no_grad():  # the in-memory backbone carries the trained LoRA
        after = float(answer_loss(bb, trained, make_batch(bb, trained, exs)))
    assert after < before - 0.4, (before, after)
    # a fresh backbone + load_lma (merged or not) gives the same loss
    for merge in (False, True):
        fresh = InternVL3.load("tiny")
        st = load_lma(fresh, out, merge=merge)
        with torch.no_grad():
            again = float(answer_loss(fresh, st, make_batch(fresh, st, exs)))
        assert again == pytest.approx(after, rel=1e-4, abs=1e-5)
    record = json.loads((out / "lma.json").read_text())
    assert record["groups"] == [["Frame1", 4], ["Frame5", 4]] and record["losses"] == res["losses"]


def test_resume_and_projector(data, tmp_path):
    kw = dict(steps=6, warmup_steps=1, lora_dropout=0.2, train_projector=True, weight_decay=0.01)
    straight = train_lma(cfg(data, tmp_path / "a", **kw), progress=False, backbone=InternVL3.load("tiny"))
    train_lma(cfg(data, tmp_path / "b", **kw), progress=False, backbone=InternVL3.load("tiny"), stop_after=3)
    rest = train_lma(cfg(data, tmp_path / "b", **kw), progress=False, backbone=InternVL3.load("tiny"))
    assert rest["start_step"] == 3
    np.testing.assert_allclose(rest["losses"], straight["losses"], rtol=1e-5, atol=1e-6)
    for f in ("adapter/adapter_model.safetensors", "student/model.safetensors", "projector.safetensors"):
        a, b = load_file(str(tmp_path / "a" / f)), load_file(str(tmp_path / "b" / f))
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=f"{f}:{k}")
    # the trained projector is applied by load_lma
    fresh = InternVL3.load("tiny")
    load_lma(fresh, tmp_path / "a")
    proj = load_file(str(tmp_path / "a" / "projector.safetensors"))
    sd = fresh.model.model.multi_modal_projector.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in proj.items())
    untrained = InternVL3.load("tiny").model.model.multi_modal_projector
    assert not torch.equal(proj["linear_1.weight"], untrained.linear_1.weight)


def test_synth_train_split_as_data(tmp_path):
    items = load_items(LMAConfig(student="x", data="synth:tiny", data_root=str(tmp_path)))
    assert len(items) == 10 and all(it["answer"] in "ABCD" for it in items)
    assert all(it["video"].endswith(".mp4") and "train" in it["video"] for it in items)
    assert "\nA. " in items[0]["prompt"] and items[0]["prompt"].endswith("directly.")


@pytest.mark.parametrize(
    "field, value",
    [
        ("lora_rank", 0),
        ("lora_alpha", 0),
        ("lora_dropout", 1.5),
        ("lora_targets", ()),
        ("lr", 0),
        ("steps", 0),
        ("split", "test"),
        ("precision", "fp16"),
        ("student", ""),
        ("train_projector", "no"),
        ("batch_size", 0),
        ("answers", "chain"),
    ],
)
def test_config_errors_name_the_field(field, value, data, tmp_path):
    with pytest.raises(SpecError, match=field):
        cfg(data, tmp_path, **{field: value})


def test_run_errors(data, tmp_path):
    bb = InternVL3.load("tiny")
    with pytest.raises(SpecError, match="lora_targets.*gate"):
        train_lma(cfg(data, tmp_path / "o", lora_targets="q_proj,gate"), progress=False, backbone=bb)
    with pytest.raises(SpecError, match="student="):
        train_lma(cfg(data, tmp_path / "o", student=str(tmp_path)), progress=False, backbone=bb)
    with pytest.raises(SpecError, match="data="):
        train_lma(cfg(data, tmp_path / "o", data=str(tmp_path / "none.jsonl")), progress=False, backbone=bb)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"video": "v0.mp4", "prompt": "hi"}) + "\n")
    with pytest.raises(SpecError, match="line 1.*answer"):
        load_items(cfg(data, tmp_path / "o", data=str(bad)))


def test_stream_questions_open_ended_or_in_words_then_letter():
    """``answers="open"``: the question as synth_open asks it (no options), answered in the option's words, which
    synth_open's judge accepts; the letter form keeps the suite's multiple-choice prompt."""
    import re

    from liteframe_bench.methods.liteframe.lma import _StreamItems
    from liteframe_bench.suites.synth.generator import OPEN_PROMPT, open_answer_correct
    from liteframe_bench.zoo.stream import make_clip

    for i in range(5):
        letter, words = _StreamItems(16, 112, 0)[i], _StreamItems(16, 112, 0, "open")[i]
        assert re.fullmatch(r"[ABCD]", letter["answer"]) and "A. " in letter["prompt"]
        chain = _StreamItems(16, 112, 0, "words")[i]
        assert chain["prompt"].startswith(letter["prompt"][:40]) and "A. " in chain["prompt"]
        assert chain["answer"] == f"{words['answer']}. {chain['answer'][-1]}" and chain["answer"][-1] in "ABCD"
        assert words["prompt"].endswith("\n" + OPEN_PROMPT) and "A. " not in words["prompt"]
        clip = make_clip(i, 16, 112, seed=0, copies=1, balanced=True)
        ((_, question, options, answer),) = [q for q in clip.mc if q[0] == words["family"]]
        item = {"family": words["family"], "scene": clip.scene.to_json(), "question": question, "options": options,
                "answer": answer}
        assert open_answer_correct(item, words["answer"])


def _mini_and_student(root):
    """A random mini-sized InternVL3 (the zoo's architecture and tokenizer) and a random student scaled to it."""
    from liteframe_bench.zoo import model as zm
    from liteframe_bench.zoo.train import STUDENT

    tok = zm.build_tokenizer(0)
    torch.manual_seed(0)
    bb = InternVL3(zm.build_model(tok, 0), tok, source="mini (test)", system_prompt=None)
    bb.model.model.vision_tower = None
    save_student(LiteFrameStudent(StudentConfig(**STUDENT)), root / "student")
    return bb, load_student(root / "student")


def test_clip_answers_score_every_text_after_the_students_tokens(tmp_path):
    """``answers="clip"``: each of the clip's texts (description, open, words-then-letter) scored after the
    student's tokens through the shared prefill equals that row run on its own, from the prompt's first token."""
    import torch.nn.functional as F

    from liteframe_bench.methods.liteframe.lma import CLIP_KINDS, _StreamItems, clip_loss, student_tokens, visual_groups
    from liteframe_bench.zoo.teacher import Texts

    bb, student = _mini_and_student(tmp_path)
    bb.model.eval()
    clip = _StreamItems(16, 224, 0, "clip")[3]["clip"]
    with torch.no_grad():
        loss, logged = clip_loss(bb, student, clip)
        tokens = student_tokens(bb, student, clip.pixel_values[None])[0]
        prefix = bb.build_prompt(None, visual_groups(bb, student, 16))[0].tolist()
        per: dict[str, list[float]] = {}
        for kind, _, p, a in Texts(bb.tokenizer, clip, CLIP_KINDS).rows:
            ids = torch.tensor([prefix + p + a])
            hidden = bb.model.model.language_model(inputs_embeds=bb.embed(ids, tokens)).last_hidden_state
            logits = bb.model.lm_head(hidden[0, len(prefix) + len(p) - 1 : -1])
            per.setdefault(kind, []).append(float(F.cross_entropy(logits, torch.tensor(a))))
    assert set(per) == set(CLIP_KINDS) and len(per["chain"]) == len(per["open"]) == 5
    for kind, values in per.items():
        assert logged[kind] == pytest.approx(sum(values) / len(values), rel=1e-4)
    assert float(loss) == pytest.approx(sum(logged[k] for k in CLIP_KINDS), rel=1e-5)
    assert 0.0 <= logged["letter_acc"] <= 1.0


def test_clip_answers_train_and_resume_exactly(tmp_path):
    from liteframe_bench.methods.liteframe.lma import STREAM

    def run(out, stops):
        bb, _ = _mini_and_student(tmp_path / out)
        c = LMAConfig(student=str(tmp_path / out / "student"), data=STREAM, answers="clip", out=str(tmp_path / out),
                      frames=16, lr=1e-3, warmup_steps=1, steps=3, batch_size=1, checkpoint_every=0, lora_rank=4,
                      lora_dropout=0.0, train_projector=True, device="cpu")
        for stop in stops:
            res = train_lma(c, progress=False, backbone=bb if stop == stops[0] else _mini_and_student(
                tmp_path / out)[0], stop_after=stop)
        return res

    whole, parts = run("a", [None]), run("b", [2, None])
    assert len(whole["losses"]) == 3 and all(np.isfinite(whole["losses"]))
    assert parts["start_step"] == 2 and parts["losses"] == pytest.approx(whole["losses"], rel=1e-5)
    for f in ("student/model.safetensors", "projector.safetensors", "adapter/adapter_model.safetensors"):
        a, b = load_file(str(tmp_path / "a" / f)), load_file(str(tmp_path / "b" / f))
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=f"{f}:{k}")
    with pytest.raises(SpecError, match="data"):
        LMAConfig(student="x", data="synth", answers="clip")
