"""Training the mini InternVL3 teacher from scratch on the synth training stream (2 CPU cores).

One step = ``clips`` clips; for each clip the vision tower, projector and the LLM's prefill over the frames run
once, the KV cache is repeated for every text that follows (the clip's multiple-choice questions, the same
questions open-ended, the description) and all of them are scored in one batched forward. Losses, on answer
tokens only (and the closing ``<|im_end|>``):

- ``describe``: language modelling of the clip's description (grounding: every attribute named in words);
- ``open``: the answer text of each question asked without options;
- ``mc``: the letter of each multiple-choice question in the suite's own prompt;
- ``hint``: the same with the answer's text added to the question, which trains the binding of an answer to its
  option's letter on its own.

The weights of the three follow a schedule by step (:func:`loss_weights`): grounding first, multiple choice
faded in, as two-stage VLM training does. AdamW, warm-up + cosine, safetensors checkpoints with exact resume
(the stream is indexed by step, so a resumed run sees the same clips).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from liteframe_bench.methods.liteframe import train_utils as tu
from liteframe_bench.suites.synth import generator as g
from liteframe_bench.suites.synth.utils import doc_to_text
from liteframe_bench.zoo import model as zm
from liteframe_bench.zoo import stream

IGNORE = -100


@dataclass
class TeacherConfig:
    out: str = "runs/zoo/teacher"
    steps: int = 1500
    frames: int = 16
    clips: int = 2  # clips per optimizer step
    copies: int = 1  # multiple-choice questions per family per clip
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    vision_steps: int = 150  # first steps: only the word loss on visual tokens (no LLM), vision_clips per step
    vision_clips: int = 8
    ground_steps: int = 300  # step at which multiple choice starts to fade in (grounding only before)
    fade_steps: int = 200
    word_weight: float = 1.0
    short_steps: int = 300  # after vision_steps: clips cut to short_frames frames and their single-frame questions
    short_frames: int = 2
    short_clips: int = 8
    oracle_until: int = 500  # the LLM reads oracle tokens on every clip until here ...
    oracle_fade: int = 500  # ... then on a share of clips falling linearly to 0 over these steps
    bind_from: int = 700  # from here: hint rows (the answer's text in the question) and bind_copies questions,
    bind_copies: int = 2
    hint_texts: int = 48  # ... and this many text-only hint questions per step (no video: the binding alone)
    seed: int = 0
    checkpoint_every: int = 100
    eval_every: int = 100
    eval_clips: int = 40


def loss_weights(cfg: TeacherConfig, step: int) -> dict[str, float]:
    """The curriculum: the word loss on visual tokens throughout; after ``vision_steps`` the grounding texts
    (describe, open) at full weight; mc from 0 to 1 over ``fade_steps`` after ``ground_steps``."""
    if step < cfg.vision_steps:
        return {"words": cfg.word_weight, "describe": 0.0, "open": 0.0, "mc": 0.0, "hint": 0.0}
    ramp = min(1.0, max(0.0, (step - cfg.ground_steps) / max(cfg.fade_steps, 1)))
    hint = 1.0 if step >= cfg.bind_from else 0.0
    return {"words": cfg.word_weight, "describe": 1.0, "open": 1.0, "mc": ramp, "hint": hint}


def mc_text(question: str, options: list[str]) -> str:
    """The suite's own multiple-choice prompt."""
    return doc_to_text({"question": question, "options": options})


def chain_answer(text: str, letter: str) -> str:
    """A multiple-choice answer in words, then its option's letter (``"grey. C"``; lmms-eval's letter extraction
    reads the final letter)."""
    return f"{text}. {letter}"


def suffix_text(prompt: str) -> str:
    return f"{prompt}<|im_end|>\n<|im_start|>assistant\n"


class Texts:
    """The texts that follow one clip's frames: (kind, family, prompt suffix ids, answer ids)."""

    def __init__(self, tok, clip: stream.Clip, kinds=("describe", "open", "mc")):
        enc = lambda s: tok(s, add_special_tokens=False).input_ids
        end = enc("<|im_end|>")
        self.rows: list[tuple[str, str, list[int], list[int]]] = []
        if "describe" in kinds:
            self.rows.append(("describe", "", enc(suffix_text(stream.DESCRIBE)), enc(clip.description) + end))
        if "open" in kinds:
            done = set()
            for family, q, opts, ans in clip.mc:
                if family not in done:
                    done.add(family)
                    text = enc(stream.option_text(opts, ans))
                    self.rows.append(("open", family, enc(suffix_text(f"{q}\n{stream.OPEN_POST}")), text + end))
        if "mc" in kinds:
            for family, q, opts, ans in clip.mc:
                self.rows.append(("mc", family, enc(suffix_text(mc_text(q, opts))), enc(ans) + end))
        if "chain" in kinds:  # answer in words, then the letter (the binding then reads the model's own words)
            for family, q, opts, ans in clip.mc:
                answer = enc(chain_answer(stream.option_text(opts, ans), ans)) + end
                self.rows.append(("chain", family, enc(suffix_text(mc_text(q, opts))), answer))
        if "options" in kinds:  # every option's words given after the video, only its letter scored: the letter
            for family, q, opts, _ in clip.mc:  # follows the words even where the video shows another option
                prompt = enc(suffix_text(mc_text(q, opts)))
                for words, letter in option_continuations(tok, opts):
                    self.rows.append(("options", family, prompt + words, letter))
        if "hint" in kinds:  # the binding alone: the answer's text is given, the model finds its option's letter
            for family, q, opts, ans in clip.mc:
                q = f"{q} (The answer is: {stream.option_text(opts, ans)}.)"
                self.rows.append(("hint", family, enc(suffix_text(mc_text(q, opts))), enc(ans) + end))

    @staticmethod
    def pad(rows, pad: int):
        """Right-padded (ids, labels) of rows; labels are -100 except on the answer tokens."""
        L = max(len(p) + len(a) for _, _, p, a in rows)
        ids = torch.full((len(rows), L), pad, dtype=torch.long)
        labels = torch.full((len(rows), L), IGNORE, dtype=torch.long)
        for b, (_, _, p, a) in enumerate(rows):
            ids[b, : len(p) + len(a)] = torch.tensor(p + a)
            labels[b, len(p) : len(p) + len(a)] = torch.tensor(a)
        return ids, labels


def _branch(cache, n: int, config):
    """A cache of ``n`` rows that all continue the one-row ``cache`` (views: no copy, gradients flow back)."""
    from transformers import DynamicCache

    data = [(layer.keys.expand(n, -1, -1, -1), layer.values.expand(n, -1, -1, -1)) for layer in cache.layers]
    return DynamicCache(ddp_cache_data=data, config=config)


class WordIds:
    """Token ids of the words the visual tokens are taught to resemble (first token of ``" " + word``)."""

    def __init__(self, tok):
        first = lambda w: tok(" " + w, add_special_tokens=False).input_ids[0]
        self.colours = sorted(set(g.OBJECT_COLOURS) | set(g.BACKGROUND_COLOURS))
        self.ids = {
            "role": torch.tensor([first(w) for w in stream.ROLES]),
            "colour": torch.tensor([first(w) for w in self.colours]),
            "shape": torch.tensor([first(w) for w in g.SHAPES]),
        }
        for name, ids in self.ids.items():
            if len(set(ids.tolist())) != len(ids):
                raise ValueError(f"the tokenizer gives two {name} words the same first token: {ids.tolist()}")

    def targets(self, labels: dict) -> dict[str, torch.Tensor]:
        colour = [self.colours.index(c) for c in labels["colour"].reshape(-1).tolist()]
        shape = [g.SHAPES.index(s) if s else IGNORE for s in labels["shape"].reshape(-1).tolist()]
        return {"role": torch.as_tensor(labels["role"].reshape(-1)), "colour": torch.tensor(colour),
                "shape": torch.tensor(shape)}


def oracle_tokens(lm, labels: dict, words: WordIds) -> torch.Tensor:
    """Ideal visual tokens [N, D]: for each cell, the sum of the input embeddings of its role, colour and shape
    words (detached). The LLM first learns to read these (the curriculum's oracle phase) while the vision tower
    learns to produce them; then the real tokens take over."""
    E = lm.get_input_embeddings().weight.detach()
    out = 0
    for name, target in words.targets(labels).items():
        ids = words.ids[name].to(E.device)
        t = target.to(E.device)
        out = out + torch.where((t != IGNORE)[:, None], E[ids[t.clamp_min(0)]], torch.zeros_like(E[:1]))
    cells = labels["role"].shape[-2] * labels["role"].shape[-1]
    where = _cell_codes(cells, E.shape[1]).to(E.device) * E.norm(dim=1).mean()
    return out + where.repeat(out.shape[0] // cells, 1)


def _cell_codes(cells: int, width: int) -> torch.Tensor:
    """A fixed unit vector per cell of a frame (seeded): where a token sits, for the oracle tokens."""
    g = torch.Generator().manual_seed(1234)
    codes = torch.randn(cells, width, generator=g)
    return codes / codes.norm(dim=1, keepdim=True)


def word_loss(lm, tokens: torch.Tensor, labels: dict, words: WordIds):
    """Grounding of the visual tokens in the LLM's own vocabulary: each projected token [N, D] is scored against
    the input embeddings of the role, colour and shape words (tied to the output head), cross-entropy against
    what lies under it. Returns (loss, {role/colour/shape accuracy})."""
    E = lm.get_input_embeddings().weight
    total, acc = 0.0, {}
    for name, target in words.targets(labels).items():
        target = target.to(tokens.device)
        logits = tokens @ E[words.ids[name].to(tokens.device)].T
        total = total + F.cross_entropy(logits.float(), target, ignore_index=IGNORE)
        keep = target != IGNORE
        acc[name] = float((logits.argmax(-1)[keep] == target[keep]).float().mean()) if keep.any() else float("nan")
    oracle = oracle_tokens(lm, labels, words)
    total = total + F.mse_loss(tokens.float(), oracle) / oracle.pow(2).mean().clamp_min(1e-8)
    return total, acc


def clip_forward(bb, clip: stream.Clip, texts: Texts, visual=None, words: WordIds | None = None,
                 oracle: bool = False):
    """Per-row token losses and letter predictions for one clip: ({kind: [losses]}, mc rows' (family, hit)).

    ``bb``: an :class:`~liteframe_bench.backends.internvl.InternVL3` wrapper (modules in train or eval mode as
    the caller set them). ``visual``: ``(tokens [N, D], groups)`` to use instead of the backbone's vision tower
    and projector (e.g. a student's); ``groups`` are the prompt's (label, tokens) pairs.
    The frames are prefilled once; each kind of text continues the prefix's KV cache as one batch. With ``words``
    and the clip's token labels, ``out["words"]`` holds :func:`word_loss` and ``out["word_acc"]`` its accuracies;
    ``oracle`` then feeds the LLM :func:`oracle_tokens` instead of the vision tower's.
    """
    from transformers import DynamicCache

    model, tok = bb.model, bb.tokenizer
    lm = model.model.language_model
    out: dict = {"describe": [], "open": [], "mc": [], "hint": [], "chain": [], "options": []}
    hits = []
    if visual is None:
        px = clip.pixel_values.to(bb.device)
        tokens = bb.project(bb.vision(px).grid).flatten(0, 2)
        groups = [(f"Frame{i + 1}", tokens.shape[0] // px.shape[0]) for i in range(px.shape[0])]
        if words is not None and clip.labels is not None:
            out["words"], out["word_acc"] = word_loss(lm, tokens, clip.labels, words)
            if oracle:  # the LLM reads the ideal tokens; the vision tower learns from the word loss alone
                tokens = oracle_tokens(lm, clip.labels, words)
    else:
        tokens, groups = visual
    if not texts.rows:
        return out, hits
    prefix = bb.build_prompt(None, groups)  # the prompt before the question, as the pipeline builds it
    cache = DynamicCache(config=model.config.text_config)
    kw = bb._cache_kw
    lm(inputs_embeds=bb.embed(prefix, tokens), use_cache=True, **{kw: cache})
    letters = torch.tensor([tok.convert_tokens_to_ids(L) for L in g.LETTERS], device=bb.device)
    options = []
    for kind in ("describe", "open", "mc", "hint", "chain", "options"):
        rows = [r for r in texts.rows if r[0] == kind]
        if not rows:
            continue
        ids, labels = Texts.pad(rows, tok.pad_token_id)
        ids, labels = ids.to(bb.device), labels.to(bb.device)
        branch = _branch(cache, ids.shape[0], model.config.text_config)
        hidden = lm(inputs_embeds=lm.get_input_embeddings()(ids), use_cache=True, **{kw: branch}).last_hidden_state
        logits = model.lm_head(hidden[:, :-1])  # position j predicts token j + 1 (answers never start a row)
        target = labels[:, 1:]
        losses = F.cross_entropy(logits.transpose(1, 2).float(), target.clamp_min(0), reduction="none")
        keep = target != IGNORE
        for b, (_, family, p, a) in enumerate(rows):
            out[kind].append(losses[b][keep[b]].mean())
            if kind == "mc":
                pred = int(logits[b, len(p) - 1, letters].argmax())
                hits.append((family, g.LETTERS[pred] == tok.decode(a[:1])))
            elif kind == "chain":  # the letter right, given the true words before it
                n = letter_tokens(tok, a)
                span = slice(len(p) + len(a) - 2 - n, len(p) + len(a) - 2)
                right = logits[b, span].argmax(-1) == ids[b, span.start + 1 : span.stop + 1]
                hits.append((family, bool(right.all())))
            elif kind == "options":  # the letter's tokens (all but <|im_end|>) argmax-right after the option's words
                span = slice(len(p) - 1, len(p) + len(a) - 2)
                right = logits[b, span].argmax(-1) == ids[b, span.start + 1 : span.stop + 1]
                options.append(bool(right.all()))
    if options:
        out["options_acc"] = sum(options) / len(options)
    return out, hits


def letter_tokens(tok, answer_ids: list[int]) -> int:
    """How many tokens the final ``" X"`` of a :func:`chain_answer` (ids, closing ``<|im_end|>`` last) takes."""
    letter = tok.decode(answer_ids[:-1]).strip()[-1]
    return len(tok(" " + letter, add_special_tokens=False).input_ids)


def _accuracy(per: dict[str, list[bool]]) -> dict[str, float]:
    """Accuracy per family (families with questions) and ``overall`` from per-family hit lists."""
    acc = {f: sum(v) / len(v) for f, v in per.items() if v}
    acc["overall"] = sum(sum(v) for v in per.values()) / max(1, sum(len(v) for v in per.values()))
    return acc


def letter_ids_ok(tok) -> bool:
    return all(len(tok(L, add_special_tokens=False).input_ids) == 1 for L in g.LETTERS)


def evaluate_stream(bb, cfg: TeacherConfig, clips: int, seed: int = 1, visual_fn=None) -> dict[str, float]:
    """Multiple-choice accuracy per family on ``clips`` held-out stream clips (seed ``seed``; never trained on)."""
    per: dict[str, list[bool]] = {f: [] for f in g.FAMILIES}
    was = bb.model.training
    bb.model.eval()
    with torch.no_grad():
        for i in range(clips):
            clip = stream.make_clip(i, cfg.frames, bb.image_size, seed=seed, copies=1)
            _, hits = clip_forward(bb, clip, Texts(bb.tokenizer, clip, kinds=("mc",)), visual_fn and visual_fn(clip))
            for family, hit in hits:
                per[family].append(hit)
    bb.model.train(was)
    return _accuracy(per)


def shorten(clip: stream.Clip, frames: int) -> stream.Clip:
    """The first ``frames`` frames of a clip with what they show: description, token labels, and the questions
    that a single frame answers (families ``global`` and ``detail``)."""
    idx = clip.indices[:frames]
    labels = None if clip.labels is None else {k: v[:frames] for k, v in clip.labels.items()}
    mc = [q for q in clip.mc if q[0] in ("global", "detail")]
    return stream.Clip(clip.index, clip.pixel_values[:frames], clip.scene, idx, mc, stream.describe(clip.scene, idx),
                       labels)


def phase(cfg: TeacherConfig, step: int) -> str:
    if step < cfg.vision_steps:
        return "vision"
    return "short" if step < cfg.vision_steps + cfg.short_steps else "full"


def oracle_share(cfg: TeacherConfig, step: int) -> float:
    return min(1.0, max(0.0, 1.0 - (step - cfg.oracle_until) / max(cfg.oracle_fade, 1)))


def clips_per_step(cfg: TeacherConfig, step: int) -> int:
    return {"vision": cfg.vision_clips, "short": cfg.short_clips, "full": cfg.clips}[phase(cfg, step)]


def hint_rows(tok, n: int, key: tuple, frames: int) -> list:
    """``n`` text-only hint rows (kind, family, prompt ids, answer ids): multiple-choice questions about training
    scenes (never rendered) with the answer's text in the question, in the suite's prompt after the user turn's
    opening. ``key`` seeds the scenes (stream seed first: never the eval split)."""
    import numpy as np

    enc = lambda s: tok(s, add_special_tokens=False).input_ids
    end = enc("<|im_end|>")
    rows = []
    rng = np.random.default_rng([stream.TRAIN_SEED, *key])
    while len(rows) < n:
        scene, plan = stream.make_train_scene(rng, int(key[-1]), frames)
        for family, q, opts, ans in stream.mc_questions(rng, scene, plan, copies=1):
            q = f"{q} (The answer is: {stream.option_text(opts, ans)}.)"
            rows.append(("hint", family, enc("<|im_start|>user\n" + suffix_text(mc_text(q, opts))), enc(ans) + end))
    return rows[:n]


def chain_questions(tok, n: int, key: tuple, frames: int) -> list:
    """``n`` text-only questions for the answering stage: (family, prompt ids, four continuations), a continuation
    per option: its words (given) and then its letter and ``<|im_end|>`` (scored). Every option, not only the right
    one: without the video any option's words are a valid given, and the four share the question's forward."""
    import numpy as np

    out = []
    rng = np.random.default_rng([stream.TRAIN_SEED, *key])
    while len(out) < n:
        scene, plan = stream.make_train_scene(rng, int(key[-1]), frames, balanced=True)
        for family, q, opts, _ in stream.mc_questions(rng, scene, plan, copies=1):
            out.append((family, *chain_question(tok, q, opts)))
    return out[:n]


def chain_question(tok, question: str, options: list[str]) -> tuple[list[int], list]:
    """One text-only question of :func:`chain_questions`: its prompt ids and :func:`option_continuations`."""
    prompt = tok("<|im_start|>user\n" + suffix_text(mc_text(question, options)), add_special_tokens=False).input_ids
    return prompt, option_continuations(tok, options)


def option_continuations(tok, options: list[str]) -> list[tuple[list[int], list[int]]]:
    """Per option (``"C. grey"``), in letter order, a :func:`chain_answer` split where its letter starts: (the
    words ids, ``"grey."``; the letter + ``<|im_end|>`` ids, ``" C<|im_end|>"``)."""
    enc = lambda s: tok(s, add_special_tokens=False).input_ids
    end = enc("<|im_end|>")
    return [(enc(stream.option_text(options, L) + "."), enc(" " + L) + end) for L in g.LETTERS]


def chain_questions_loss(bb, questions: list, chunk: int = 16) -> tuple[torch.Tensor, float]:
    """Mean loss of the letter tokens (and ``<|im_end|>``) of every continuation of :func:`chain_questions`, and
    the share of continuations whose letter is argmax-right. The common instruction runs once; each chunk of
    questions runs left-padded (masked) on its cache, and each question's four continuations continue its KV cache
    (so a question's long prompt is computed once for four examples). Equals a plain forward of every
    prompt + continuation row (tested)."""
    from transformers import DynamicCache

    tok, model = bb.tokenizer, bb.model
    lm, kw, config = model.model.language_model, bb._cache_kw, model.config.text_config
    embed = lm.get_input_embeddings()
    lead, first = 0, questions[0][1]
    while lead < len(first) - 1 and all(len(q[1]) > lead + 1 and q[1][lead] == first[lead] for q in questions):
        lead += 1
    head = DynamicCache(config=config)
    lm(inputs_embeds=embed(torch.tensor([first[:lead]], device=bb.device)), use_cache=True, **{kw: head})
    order = sorted(questions, key=lambda q: len(q[1]))
    total, count, hits, seen = 0.0, 0, 0, 0
    for i in range(0, len(order), chunk):
        part = order[i : i + chunk]
        B, Lq = len(part), max(len(q[1]) - lead for q in part)
        ids = torch.full((B, Lq), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((B, lead + Lq), dtype=torch.long)
        mask[:, :lead] = 1
        pos = torch.full((B, Lq), lead, dtype=torch.long)
        for b, (_, p, _) in enumerate(part):
            n = len(p) - lead
            ids[b, Lq - n :] = torch.tensor(p[lead:])
            mask[b, lead + Lq - n :] = 1
            pos[b, Lq - n :] = torch.arange(lead, lead + n)
        cache = _branch(head, B, config)
        lm(inputs_embeds=embed(ids.to(bb.device)), attention_mask=mask.to(bb.device), position_ids=pos.to(bb.device),
           use_cache=True, **{kw: cache})
        k = len(part[0][2])
        data = [(layer.keys.repeat_interleave(k, 0), layer.values.repeat_interleave(k, 0)) for layer in cache.layers]
        cache = DynamicCache(ddp_cache_data=data, config=config)
        conts = [c for _, _, cs in part for c in cs]
        Lc = max(len(w) + len(a) for w, a in conts)
        cids = torch.full((B * k, Lc), tok.pad_token_id, dtype=torch.long)
        labels = torch.full((B * k, Lc), IGNORE, dtype=torch.long)
        for r, (w, a) in enumerate(conts):
            cids[r, : len(w) + len(a)] = torch.tensor(w + a)
            labels[r, len(w) : len(w) + len(a)] = torch.tensor(a)
        start = torch.tensor([len(p) for _, p, _ in part]).repeat_interleave(k)
        cpos = start[:, None] + torch.arange(Lc)[None]
        cmask = torch.cat([mask.repeat_interleave(k, 0), torch.ones((B * k, Lc), dtype=torch.long)], dim=1)
        cids, labels = cids.to(bb.device), labels.to(bb.device)
        hidden = lm(inputs_embeds=embed(cids), attention_mask=cmask.to(bb.device), position_ids=cpos.to(bb.device),
                    use_cache=True, **{kw: cache}).last_hidden_state
        logits = model.lm_head(hidden[:, :-1])
        target = labels[:, 1:]
        keep = target != IGNORE
        total = total + F.cross_entropy(logits[keep].float(), target[keep], reduction="sum")
        count += int(keep.sum())
        pred = logits.argmax(-1)
        for r, (w, a) in enumerate(conts):  # the letter's tokens (all but the closing <|im_end|>) argmax-right
            span = slice(len(w) - 1, len(w) + len(a) - 2)
            hits += int(bool((pred[r, span] == cids[r, span.start + 1 : span.stop + 1]).all()))
            seen += 1
    return total / count, hits / seen


def text_rows_loss(bb, rows: list, chunk: int = 16) -> tuple[torch.Tensor, float]:
    """Mean answer-token loss and letter accuracy of text-only rows. The rows' common leading tokens (the suite's
    instruction) run once and their KV cache is shared; the rest runs in length-sorted chunks (less padding)."""
    from transformers import DynamicCache

    tok, model = bb.tokenizer, bb.model
    lm = model.model.language_model
    lead = 0
    first = rows[0][2]
    while lead < len(first) - 1 and all(len(r[2]) > lead + 1 and r[2][lead] == first[lead] for r in rows):
        lead += 1
    cache = DynamicCache(config=model.config.text_config)
    kw = bb._cache_kw
    head = torch.tensor([first[:lead]], device=bb.device)
    lm(inputs_embeds=lm.get_input_embeddings()(head), use_cache=True, **{kw: cache})
    letters = torch.tensor([tok.convert_tokens_to_ids(L) for L in g.LETTERS], device=bb.device)
    rest = sorted(((k, f, p[lead:], a) for k, f, p, a in rows), key=lambda r: len(r[2]) + len(r[3]))
    total, count, hits = 0.0, 0, 0
    for i in range(0, len(rest), chunk):
        part = rest[i : i + chunk]
        ids, labels = Texts.pad(part, tok.pad_token_id)
        ids, labels = ids.to(bb.device), labels.to(bb.device)
        branch = _branch(cache, ids.shape[0], model.config.text_config)
        hidden = lm(inputs_embeds=lm.get_input_embeddings()(ids), use_cache=True, **{kw: branch}).last_hidden_state
        logits = model.lm_head(hidden[:, :-1])
        target = labels[:, 1:]
        keep = target != IGNORE
        total = total + F.cross_entropy(logits[keep].float(), target[keep], reduction="sum")
        count += int(keep.sum())
        for b, (_, _, p, a) in enumerate(part):
            hits += int(g.LETTERS[int(logits[b, len(p) - 1, letters].argmax())] == tok.decode(a[:1]))
    return total / count, hits / len(rows)


def text_hint_loss(bb, cfg: TeacherConfig, step: int) -> torch.Tensor:
    """Letter loss of ``cfg.hint_texts`` multiple-choice questions with their answer's text in the question and no
    video (scenes of their own stream seed, never rendered): reading options and binding an answer to its letter."""
    rows = hint_rows(bb.tokenizer, cfg.hint_texts, (cfg.seed, 11, step), cfg.frames)
    return text_rows_loss(bb, rows)[0]


def _clip_index(cfg: TeacherConfig, step: int, c: int) -> int:
    """Stream index of clip ``c`` of ``step``: every clip of the run is a new one, the same on a resumed run."""
    v, s = cfg.vision_steps, cfg.short_steps
    before = (min(step, v) * cfg.vision_clips + min(max(0, step - v), s) * cfg.short_clips
              + max(0, step - v - s) * cfg.clips)
    return before + c


class _Run:
    """The resumable part of a training run of ``model`` under ``cfg.out``: AdamW, the newest checkpoint (weights,
    optimizer, RNG, history) restored, atomic checkpoints with the run's wall time so far."""

    def __init__(self, cfg, model, stage: str, log):
        from safetensors.torch import load_file

        self.cfg, self.model, self.stage, self.log = cfg, model, stage, log
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.opt = torch.optim.AdamW(tu.param_groups(model.named_parameters(), cfg.weight_decay), lr=cfg.lr)
        self.start, self.history, self.evals, self.before = 0, [], [], 0.0
        self.ckpt = tu.latest_checkpoint(self.out)
        if self.ckpt is not None:
            zm.load_state(model, load_file(str(self.ckpt / "model.safetensors")), str(self.ckpt))
            rec = tu.read_checkpoint(self.ckpt, self.opt)
            self.start, self.history, self.evals = int(rec["step"]), rec["history"], rec["evals"]
            self.before = float(rec.get("train_seconds", 0.0))
            log(f"resumed from {self.ckpt} (step {self.start})")
        self.t0 = time.perf_counter()

    def seconds(self) -> float:
        return self.before + time.perf_counter() - self.t0

    def add_eval(self, step: int, acc: dict) -> None:
        self.evals.append({"step": step, "seconds": round(time.perf_counter() - self.t0, 1), **acc})
        self.log(json.dumps(self.evals[-1]))

    def finish(self, start: int, stop: int, bar) -> dict:
        """Close the bar, checkpoint the last step (unless nothing ran and a checkpoint exists); the run's record."""
        bar.close()
        if stop > start or self.ckpt is None:
            self.save(stop)
        return {"config": asdict(self.cfg), "history": self.history, "evals": self.evals,
                "seconds": time.perf_counter() - self.t0, "train_seconds": self.seconds(),
                "finished": stop >= self.cfg.steps, "steps": stop}

    def record(self, step: int, rec: dict, bar, progress: bool) -> int:
        """Append step ``step``'s numbers to the history, show them (bar, or a log line of 10-step means without
        one); returns the number of steps done."""
        self.history.append({"step": step + 1, **{k: round(v, 4) for k, v in rec.items()}})
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in rec.items()})
        done = step + 1
        if not progress and done % 10 == 0:
            recent = self.history[-10:]
            keys = dict.fromkeys(k for h in recent for k in h if k != "step")  # a key may skip steps (clip_every)
            means = {k: round(sum(v) / len(v), 3) for k in keys if (v := [h[k] for h in recent if k in h])}
            self.log(json.dumps({"step": done, "s": round(time.perf_counter() - self.t0, 1), **means}))
        return done

    def save(self, step: int) -> None:
        from safetensors.torch import save_file

        state = {"config": asdict(self.cfg), "history": self.history, "evals": self.evals, "stage": self.stage,
                 "train_seconds": self.seconds()}
        weights = lambda d: save_file(zm.state_to_save(self.model), str(d / "model.safetensors"))
        tu.write_checkpoint(self.out, step, weights, self.opt, state, keep=2)


def kind_means(losses: dict) -> dict[str, torch.Tensor]:
    """Each text kind's mean row loss from :func:`clip_forward`'s per-row losses (kinds without rows and the clip's
    float accuracies left out); a clip's loss is their sum."""
    return {kind: torch.stack(value).mean() for kind, value in losses.items() if isinstance(value, list) and value}


def _backward_clip(losses: dict, rec: dict, clips: int) -> None:
    """Backpropagate one clip's share of the step: the sum of :func:`kind_means`, / ``clips``; the kinds' values
    are added to ``rec`` (as means over the step's clips)."""
    means = kind_means(losses)
    for kind, value in losses.items():
        if isinstance(value, float):  # a clip's accuracy (e.g. ``options_acc``): logged, not trained
            rec[kind] = rec.get(kind, 0.0) + value / clips
        elif kind in means:
            rec[kind] = rec.get(kind, 0.0) + float(means[kind].detach()) / clips
    (sum(means.values(), 0.0) / clips).backward()


def train_teacher(cfg: TeacherConfig, bb, progress: bool = True, log=print, stop_after: int | None = None) -> dict:
    """Train ``bb`` (a mini InternVL3 wrapper) in place; checkpoints under ``cfg.out``; returns the record.

    Resumes from the newest checkpoint in ``cfg.out`` (weights, optimizer, RNG, history). ``stop_after``: end this
    run after that step (checkpointed), the schedule still spanning ``cfg.steps``.
    """
    from tqdm.auto import tqdm

    model = bb.model
    assert letter_ids_ok(bb.tokenizer)
    run = _Run(cfg, model, "teacher", log)
    opt, start, save = run.opt, run.start, run.save
    model.train()
    bar = tqdm(total=cfg.steps, initial=start, disable=not progress, desc="teacher", unit="step", dynamic_ncols=True)

    stop = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    words = WordIds(bb.tokenizer)
    grid = bb.grid_side // bb.shuffle
    for step in range(start, stop):
        w = loss_weights(cfg, step)
        tu.set_lr(opt, tu.lr_at(step, cfg.lr, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio))
        opt.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        hits = []
        kinds = tuple(k for k, v in w.items() if v > 0 and k != "words")
        n_clips = clips_per_step(cfg, step)
        for c in range(n_clips):
            copies = cfg.bind_copies if step >= cfg.bind_from else cfg.copies
            clip = stream.make_clip(_clip_index(cfg, step, c), cfg.frames, bb.image_size, seed=cfg.seed,
                                    copies=copies, grid=grid)
            if phase(cfg, step) == "short":
                clip = shorten(clip, cfg.short_frames)
            use_oracle = (c + 0.5) / n_clips < oracle_share(cfg, step)  # deterministic share of the step's clips
            losses, h = clip_forward(bb, clip, Texts(bb.tokenizer, clip, kinds), words=words, oracle=use_oracle)
            hits += h
            total = 0.0
            for kind, value in losses.items():
                if kind == "word_acc":
                    for k, v in value.items():
                        sums[f"{k}_acc"] = sums.get(f"{k}_acc", 0.0) + v / n_clips
                    continue
                if isinstance(value, list):
                    if not value:
                        continue
                    value = torch.stack(value).mean()
                total = total + w[kind] * value
                sums[kind] = sums.get(kind, 0.0) + float(value.detach()) / n_clips
            (total / n_clips).backward()
        if w["hint"] > 0 and cfg.hint_texts:
            loss = text_hint_loss(bb, cfg, step)
            (w["hint"] * loss).backward()
            sums["hint_text"] = float(loss.detach())
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sums["mc_acc"] = sum(h for _, h in hits) / len(hits) if hits else float("nan")
        done = run.record(step, sums, bar, progress)
        if cfg.eval_every and done % cfg.eval_every == 0:
            run.add_eval(done, evaluate_stream(bb, cfg, cfg.eval_clips))
        if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done != stop:
            save(done)
    return run.finish(start, stop, bar)


@dataclass
class BindConfig:
    """The binding stage, after the teacher: reading the options and answering with the right letter.

    The teacher's LLM learns to ground what it sees in words (its open answers beat chance) but not to pick the
    option that says it: a letter loss alone gives a 4-layer LLM trained from scratch too little signal. This
    stage first trains the binding on its own, on text (``texts`` multiple-choice questions per step that state
    their answer, no video: cheap, so many per step), then from ``video_from`` on clips as well: their
    multiple-choice questions with and without the stated answer, their open questions and description (so the
    grounding is kept). Fresh AdamW (the stage starts from the teacher's exported weights)."""

    out: str = "runs/zoo/bind"
    steps: int = 850
    lr: float = 5e-4
    weight_decay: float = 0.05
    warmup_steps: int = 20
    min_lr_ratio: float = 0.3
    texts: int = 128  # 32 per step learnt ~3x slower per second than 64 (measured): the binding signal is faint
    video_from: int = 650
    clips: int = 2
    video_texts: int = 64
    copies: int = 2
    frames: int = 16
    seed: int = 0
    first_clip: int = 1_000_000  # stream index of the stage's first clip (past every teacher clip)
    checkpoint_every: int = 50
    eval_every: int = 100
    eval_clips: int = 20


def train_bind(cfg: BindConfig, bb, progress: bool = True, log=print, stop_after: int | None = None) -> dict:
    """Train ``bb`` in place (see :class:`BindConfig`); checkpoints under ``cfg.out`` with exact resume."""
    from tqdm.auto import tqdm

    model = bb.model
    run = _Run(cfg, model, "bind", log)
    opt, start, save = run.opt, run.start, run.save
    model.train()
    stop = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    bar = tqdm(total=cfg.steps, initial=start, disable=not progress, desc="bind", unit="step", dynamic_ncols=True)

    grid = bb.grid_side // bb.shuffle
    for step in range(start, stop):
        tu.set_lr(opt, tu.lr_at(step, cfg.lr, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio))
        opt.zero_grad(set_to_none=True)
        video = step >= cfg.video_from
        rows = hint_rows(bb.tokenizer, cfg.video_texts if video else cfg.texts, (cfg.seed, 12, step), cfg.frames)
        loss, acc = text_rows_loss(bb, rows)
        loss.backward()
        rec = {"hint_text": float(loss.detach()), "hint_text_acc": acc}
        if video:
            hits = []
            for c in range(cfg.clips):
                index = cfg.first_clip + (step - cfg.video_from) * cfg.clips + c
                clip = stream.make_clip(index, cfg.frames, bb.image_size, seed=cfg.seed, copies=cfg.copies, grid=grid)
                texts = Texts(bb.tokenizer, clip, ("describe", "open", "mc", "hint"))
                losses, h = clip_forward(bb, clip, texts)
                hits += h
                _backward_clip(losses, rec, cfg.clips)
            rec["mc_acc"] = sum(h for _, h in hits) / len(hits)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        done = run.record(step, rec, bar, progress)
        if cfg.eval_every and done % cfg.eval_every == 0 and (video or done == cfg.video_from):
            run.add_eval(done, evaluate_stream(bb, TeacherConfig(frames=cfg.frames), cfg.eval_clips))
        if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done != stop:
            save(done)
    return run.finish(start, stop, bar)


@dataclass
class ChainConfig:
    """The answering stage, after binding: multiple choice answered in words, then the letter (``"grey. C"``).

    After the binding stage the teacher names what it sees (open answers) and finds the option that states a
    given answer (text), but does not join the two inside one forward pass: its multiple-choice letters stay at
    chance. Here the answer's words come first, so the letter is read from the model's own words, the step the
    binding stage trained. Each step: ``texts`` text-only questions, each option's words given in turn and its
    letter the only loss (:func:`chain_questions`), and (on every ``clip_every``-th step) ``clips`` clips with their
    description, open questions and chain answers (a loss on words and letter). ``part`` numbers the passes of a
    recipe that runs the stage more than once, so each pass draws new text questions; a pass's clips are the stream's
    ``first_clip + (part * steps + step) * clips + c``, new for passes of equal length (the recipe's shorter last
    pass, ``part=3`` with 400 steps, repeats half of the clips of pass ``part=1`` (200 of 400), with its option rows
    added; kept so that ``zoo train`` draws the data the shipped ``mini`` was trained on). ``video_options`` adds,
    after each clip, every option's words in turn with its letter the only loss (kind ``options``): the text-only
    lookup, now with the video in context, where the letter must follow the words even when the video shows
    another option.
    Every scene here has its count answer drawn uniformly from 1-5, as in the eval split (the teacher's and the
    binding stage's short scenes make 1 the answer of most count questions). Fresh AdamW."""

    out: str = "runs/zoo/chain"
    steps: int = 1000
    lr: float = 5e-4
    weight_decay: float = 0.05
    warmup_steps: int = 20
    min_lr_ratio: float = 0.3
    texts: int = 64  # text-only questions per step, each with its four options' continuations (256 letters)
    clips: int = 2
    copies: int = 2
    frames: int = 16
    seed: int = 0
    first_clip: int = 2_000_000  # stream index of the stage's first clip (past every earlier stage's)
    checkpoint_every: int = 50
    eval_every: int = 100
    eval_clips: int = 20
    clip_every: int = 1  # clips on every n-th step only (the others text only)
    part: int = 0  # which pass of the recipe's stage this run is (fresh schedule and optimizer; new text questions)
    video_options: bool = False  # with the clips, also every option's words then its letter (kind "options")


def evaluate_generate(bb, frames: int, clips: int, seed: int = 1, max_new_tokens: int = 24) -> dict[str, float]:
    """Multiple-choice accuracy per family on ``clips`` held-out balanced stream clips, answered by greedy
    generation through the pipeline (``baseline``, prompt-prefix cache) and scored by lmms-eval's letter
    extraction, as the synth suite scores: the real answering path without the mp4 round trip."""
    from liteframe_bench.pipeline import build_method
    from liteframe_bench.video import VideoClip

    method = build_method("baseline", bb)
    per: dict[str, list[bool]] = {f: [] for f in g.FAMILIES}
    was = bb.model.training
    bb.model.eval()
    for i in range(clips):
        clip = stream.make_clip(i, frames, bb.image_size, seed=seed, copies=1, balanced=True)
        video = VideoClip(clip.pixel_values[None], clip.indices, len(set(clip.indices)), None, (1, 1),
                          bb.image_size, 0.0)
        for (family, *_), hit in zip(clip.mc, answer_mc(method, video, clip.mc, max_new_tokens), strict=True):
            per[family].append(hit)
    bb.model.train(was)
    return _accuracy(per)


def answer_mc(method, video, questions: list, max_new_tokens: int = 24) -> list[bool]:
    """Whether each (family, question, options, answer letter) of ``questions`` on ``video`` is answered right:
    the video encoded once, greedy generation with the suite's prompt (prompt-prefix cache), the letter read by
    lmms-eval's extraction, as the synth suite scores."""
    from lmms_eval.tasks._task_utils.mcq_extract import extract_mcq_answer

    from liteframe_bench.pipeline import PrefixCache

    tokens, prefix = method.encode(video), PrefixCache()
    return [extract_mcq_answer(method.generate(tokens, mc_text(q, opts), max_new_tokens, prefix=prefix).text,
                               list(g.LETTERS)) == ans for _, q, opts, ans in questions]


def train_chain(cfg: ChainConfig, bb, progress: bool = True, log=print, stop_after: int | None = None) -> dict:
    """Train ``bb`` in place (see :class:`ChainConfig`); checkpoints under ``cfg.out`` with exact resume."""
    from tqdm.auto import tqdm

    model = bb.model
    run = _Run(cfg, model, "chain", log)
    opt, start, save = run.opt, run.start, run.save
    model.train()
    stop = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    bar = tqdm(total=cfg.steps, initial=start, disable=not progress, desc="chain", unit="step", dynamic_ncols=True)
    for step in range(start, stop):
        tu.set_lr(opt, tu.lr_at(step, cfg.lr, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio))
        opt.zero_grad(set_to_none=True)
        rec = {}
        if cfg.texts:
            key = (cfg.seed, 13, step) if cfg.part == 0 else (cfg.seed, 13, cfg.part, step)
            questions = chain_questions(bb.tokenizer, cfg.texts, key, cfg.frames)
            loss, acc = chain_questions_loss(bb, questions)
            loss.backward()
            rec |= {"chain_text": float(loss.detach()), "chain_text_acc": acc}
        hits = []
        for c in range(cfg.clips if step % cfg.clip_every == cfg.clip_every - 1 else 0):
            index = cfg.first_clip + (cfg.part * cfg.steps + step) * cfg.clips + c
            clip = stream.make_clip(index, cfg.frames, bb.image_size, seed=cfg.seed, copies=cfg.copies, balanced=True)
            kinds = ("describe", "open", "chain") + (("options",) if cfg.video_options else ())
            losses, h = clip_forward(bb, clip, Texts(bb.tokenizer, clip, kinds))
            hits += h
            _backward_clip(losses, rec, cfg.clips)
        if hits:
            rec["chain_letter_acc"] = sum(h for _, h in hits) / len(hits)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        done = run.record(step, rec, bar, progress)
        if cfg.eval_every and done % cfg.eval_every == 0:
            run.add_eval(done, evaluate_generate(bb, cfg.frames, cfg.eval_clips))
        if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done != stop:
            save(done)
    return run.finish(start, stop, bar)
