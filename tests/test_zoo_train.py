"""`lfbench zoo train` on a tiny budget: every stage runs, cards are written, a rerun resumes; the teacher trainer
resumes exactly mid-run."""

import json
from dataclasses import replace

import torch
import torch.nn.functional as F

from liteframe_bench import zoo
from liteframe_bench.backends.internvl import InternVL3
from liteframe_bench.suites.synth import generator as g
from liteframe_bench.zoo import model as zm
from liteframe_bench.zoo import stream
from liteframe_bench.zoo.teacher import (
    BindConfig,
    ChainConfig,
    TeacherConfig,
    Texts,
    chain_answer,
    chain_questions,
    chain_questions_loss,
    evaluate_generate,
    hint_rows,
    text_rows_loss,
    train_bind,
    train_chain,
    train_teacher,
)
from liteframe_bench.zoo.train import Recipe, train_zoo


def test_zoo_train_tiny_budget_end_to_end_then_resume(tmp_path, monkeypatch):
    monkeypatch.setenv("LFBENCH_DATA", str(tmp_path / "data"))
    out = tmp_path / "zoo"
    cards = train_zoo(out, budget_min=0.05, progress=False, eval_suite="synth_tiny", eval_limit=5, log=lambda m: None)
    assert list(cards) == list(zoo.NAMES)
    for name, card in cards.items():
        assert card["steps"] >= 1 and card["command"].startswith("lfbench zoo train")
        assert card["eval"]["families"]["overall"]["questions"] == 5
        assert (out / name / zoo.CARD).is_file()
    assert cards["mini"]["bind_steps"] >= 2 and cards["mini"]["training"]["bind_last"]["mc_acc"] >= 0
    passes = 2 + Recipe().chain2_passes  # the answering stage's passes (the last with option rows), each its own folder
    assert len(cards["mini"]["chain_steps"]) == passes and (out / "runs" / f"chain{passes}").is_dir()
    assert {"options", "options_acc", "chain"} <= set(cards["mini"]["training"]["chain_last"])  # its clip rows ran

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


def test_bind_resumes_exactly_through_its_video_steps(tmp_path):
    tok = zm.build_tokenizer(0)
    cfg = BindConfig(steps=3, texts=4, video_texts=2, video_from=1, frames=12, warmup_steps=1, checkpoint_every=0,
                     eval_every=0)

    def run(out, stops):
        torch.manual_seed(0)
        net = zm.build_model(tok, 0)
        bb = InternVL3(net, tok, source="mini (test)", system_prompt=None)
        for stop in stops:
            rec = train_bind(replace(cfg, out=str(out)), bb, progress=False, log=lambda m: None, stop_after=stop)
        return net, rec

    whole, rec = run(tmp_path / "a", [None])
    parts, rec2 = run(tmp_path / "b", [1, None])
    assert rec2["finished"] and [h["step"] for h in rec2["history"]] == [1, 2, 3]
    assert "mc" in rec["history"][-1] and "mc" not in rec["history"][0]  # text only, then clips
    for (k, a), (_, b) in zip(whole.state_dict().items(), parts.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)


def assert_plain_forward(net, tok, rows, loss):
    """``loss`` (not yet backpropagated) and its gradients equal a plain batched forward's over ``rows``' answer
    tokens: each row whole, right-padded, no cache."""
    loss.backward()
    grads = {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}
    net.zero_grad()
    ids, labels = Texts.pad(rows, tok.pad_token_id)
    lm = net.model.language_model
    hidden = lm(inputs_embeds=lm.get_input_embeddings()(ids), use_cache=False).last_hidden_state
    target = labels[:, 1:]
    keep = target != -100
    plain = F.cross_entropy(net.lm_head(hidden[:, :-1][keep]).float(), target[keep])
    plain.backward()
    torch.testing.assert_close(loss, plain, rtol=1e-5, atol=1e-6)
    for k, p in net.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(grads[k], p.grad, rtol=1e-3, atol=1e-6, msg=k)


def test_text_rows_share_their_instruction_and_lose_nothing():
    """The shared-prefix, length-sorted forward gives the plain batched forward's loss and gradients."""
    tok = zm.build_tokenizer(0)
    net = zm.build_model(tok, 0)
    bb = InternVL3(net, tok, source="mini (test)", system_prompt=None)
    rows = hint_rows(tok, 7, (0, 12, 3), 12)
    assert len({tuple(r[2][:20]) for r in rows}) == 1  # the suite's instruction: a common prefix to share
    loss, acc = text_rows_loss(bb, rows, chunk=3)
    assert_plain_forward(net, tok, rows, loss)
    assert 0.0 <= acc <= 1.0


def test_chain_answers_tokenise_as_words_then_letter():
    """The answering stage's text rows (words given, letter scored) and its clip rows (words and letter scored) split
    the answer at the same token, so the letter the text rows train is the one the model writes."""
    tok = zm.build_tokenizer(0)
    enc = lambda s: tok(s, add_special_tokens=False).input_ids
    for i in range(10):
        for _, _, options, letter in stream.make_clip(i, 16, 112, copies=1, balanced=True).mc:
            words = stream.option_text(options, letter)
            assert enc(chain_answer(words, letter)) == enc(words + ".") + enc(" " + letter), (words, letter)
    for family, _, continuations in chain_questions(tok, 6, (0, 13, 0), 16):
        assert family in g.FAMILIES and len(continuations) == 4
        for letter, (words, answer) in zip(g.LETTERS, continuations, strict=True):
            assert tok.decode(words).endswith(".") and tok.decode(answer).strip().startswith(letter)


def test_option_rows_give_each_options_words_after_the_video_and_score_its_letter():
    """Kind ``options``: per question, four rows (one per option) whose prompt ends with that option's words and
    whose scored answer is its letter; the right option's row is the chain row's tokens, split at the letter."""
    tok = zm.build_tokenizer(0)
    clip = stream.make_clip(3, 16, 112, copies=1, balanced=True)
    texts = Texts(tok, clip, ("chain", "options"))
    chain = [r for r in texts.rows if r[0] == "chain"]
    options = [r for r in texts.rows if r[0] == "options"]
    assert len(options) == 4 * len(clip.mc) == 4 * len(chain)
    fours = [options[i : i + 4] for i in range(0, len(options), 4)]
    for (family, _, opts, answer), row, four in zip(clip.mc, chain, fours, strict=True):
        for letter, (_, fam, prompt, scored) in zip(g.LETTERS, four, strict=True):
            assert fam == family and tok.decode(scored).strip().startswith(letter)
            assert tok.decode(prompt).endswith(stream.option_text(opts, letter) + ".")
        right = four[g.LETTERS.index(answer)]
        assert right[2] + right[3] == row[2] + row[3]


def test_chain_questions_share_their_prompts_and_lose_nothing():
    """Left-padded question chunks whose four continuations branch off one KV cache give the plain forward's loss
    and gradients over every prompt + continuation row."""
    tok = zm.build_tokenizer(0)
    net = zm.build_model(tok, 0)
    bb = InternVL3(net, tok, source="mini (test)", system_prompt=None)
    questions = chain_questions(tok, 7, (0, 14, 0), 16)
    loss, acc = chain_questions_loss(bb, questions, chunk=3)
    rows = [("chain", f, p + w, a) for f, p, conts in questions for w, a in conts]
    assert_plain_forward(net, tok, rows, loss)
    assert 0.0 <= acc <= 1.0


def test_chain_resumes_exactly_and_answers_through_the_pipeline(tmp_path):
    tok = zm.build_tokenizer(0)
    cfg = ChainConfig(steps=4, texts=3, clips=1, copies=1, frames=16, warmup_steps=1, checkpoint_every=0,
                      eval_every=0, clip_every=2, part=1, video_options=True)

    def run(out, stops):
        torch.manual_seed(0)
        net = zm.build_model(tok, 0)
        bb = InternVL3(net, tok, source="mini (test)", system_prompt=None)
        for stop in stops:
            rec = train_chain(replace(cfg, out=str(out)), bb, progress=False, log=lambda m: None, stop_after=stop)
        return bb, rec

    (whole, rec), (parts, rec2) = run(tmp_path / "a", [None]), run(tmp_path / "b", [1, None])
    assert rec2["finished"] and [h["step"] for h in rec2["history"]] == [1, 2, 3, 4]
    assert {"chain_text", "chain", "describe", "open", "chain_letter_acc", "options", "options_acc"} <= set(
        rec["history"][-1])
    assert [("describe" in h) for h in rec["history"]] == [False, True, False, True]  # clips on every 2nd step
    for (k, a), (_, b) in zip(whole.model.state_dict().items(), parts.model.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    acc = evaluate_generate(whole, 16, 1, max_new_tokens=4)
    assert set(acc) == {*g.FAMILIES, "overall"} and 0.0 <= acc["overall"] <= 1.0
