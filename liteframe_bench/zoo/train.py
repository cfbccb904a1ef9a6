"""``lfbench zoo train``: the recipe that makes every zoo checkpoint from a seed, on 2 CPU cores.

Stages, each resumable (checkpoints under ``<out>/runs/<stage>``; a finished stage's export is kept and skipped):

1. ``mini`` — tokenizer (byte-level BPE on synth text), then the teacher from scratch
   (:func:`liteframe_bench.zoo.teacher.train_teacher`: grounding, then multiple choice faded in), then the
   binding stage (:func:`liteframe_bench.zoo.teacher.train_bind`: picking the option that states the answer, on
   text, then on clips), then the answering stage (:func:`liteframe_bench.zoo.teacher.train_chain`: multiple
   choice answered in words, then the letter), run in passes: clips on every step, then on every 4th, then a
   pass whose clips also give each option's words after the video and score its letter.
2. ``mini-ctd`` — the LiteFrame student scaled to the teacher, trained by the CTD trainer
   (:func:`liteframe_bench.methods.liteframe.ctd.train_ctd`) on the stream, targets = WAP 16x of the teacher.
3. ``mini-lma`` — LMA (:func:`liteframe_bench.methods.liteframe.lma.train_lma`): LoRA on every linear layer of
   the teacher's LLM, the student and the projector, on every text of each stream clip as the teacher was trained
   on them (``answers="clip"``: the description, each question open-ended, each multiple-choice question answered in
   words, then the letter).
4. Cards: each checkpoint is evaluated through the real path (mp4 files, PyAV, lmms-eval's ``simple_evaluate``
   on the synth suite's eval split) and its ``card.json`` written beside its weights.

``budget_min`` scales every stage's steps by ``budget_min / NOMINAL_MIN`` (at least one step each, and enough for a
stage's clip steps to run): a quick run that exercises everything; the shipped checkpoints are the full recipe
(``budget_min=None``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from liteframe_bench import zoo
from liteframe_bench.zoo.teacher import BindConfig, ChainConfig, TeacherConfig

#: Wall-clock minutes of the full recipe on the 2-core development machine (measured; see the cards).
NOMINAL_MIN = 310.0

STUDENT = {
    "image_size": 224,
    "patch_size": 28,
    "width": 48,
    "depth": 6,
    "heads": 2,
    "downsample_after": (2, 4),
    "downsample_strides": ((2, 2, 2), (2, 1, 1)),
    "out_width": 128,
}


@dataclass
class Recipe:
    seed: int = 0
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    teacher_stop: int | None = 900  # end the teacher here, before its schedule's end (the shipped recipe's budget)
    bind: BindConfig = field(default_factory=BindConfig)  # then the binding stage (text, then video)
    chain: ChainConfig = field(default_factory=ChainConfig)  # then answering in words, then the letter
    # its further passes: each a fresh schedule and AdamW on new data (part 1, 2, ...), clips on every 4th step only
    # (text-only steps raise the letter-of-given-words skill several times faster per second than the mixed steps)
    chain2: ChainConfig = field(default_factory=lambda: ChainConfig(clip_every=4))
    chain2_passes: int = 2
    # then a last pass whose clips also give every option's words after the video and score its letter (the letter
    # learnt with the video in context; clips on every 2nd step)
    chain_options: ChainConfig = field(
        default_factory=lambda: ChainConfig(steps=400, clip_every=2, video_options=True))
    ctd_steps: int = 2000  # MSE 38 -> 4.1 (400 steps: 26.8); then read as well as WAP 16x (31.0% MC against 31.7%)
    ctd_batch: int = 4
    ctd_lr: float = 2e-3
    # LMA on every text of each clip as the teacher was trained (answers="clip"), LoRA on every linear layer of the LLM
    lma_steps: int = 600
    lma_batch: int = 2  # clips per step
    lma_lr: float = 1e-3
    lma_answers: str = "clip"
    lma_rank: int = 16
    lma_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    frames: int = 16
    eval_suite: str = "synth"
    eval_open_suite: str | None = "synth_open"  # the same questions answered in words (card["eval_open"])
    eval_frames: int = 16
    eval_limit: int | None = None

    def scaled(self, budget_min: float | None) -> Recipe:
        if budget_min is None:
            return self
        f = budget_min / NOMINAL_MIN
        n = lambda steps: max(1, round(steps * f))
        t = self.teacher
        phases = ("steps", "vision_steps", "short_steps", "ground_steps", "fade_steps", "oracle_until",
                  "oracle_fade", "warmup_steps", "checkpoint_every")
        teacher = replace(t, eval_every=0, **{k: n(getattr(t, k)) for k in phases})
        stop = None if self.teacher_stop is None else n(self.teacher_stop)
        b = self.bind
        bind = replace(b, eval_every=0, **{k: n(getattr(b, k)) for k in ("steps", "video_from", "warmup_steps",
                                                                        "checkpoint_every")})
        steps = max(2, bind.steps)  # a quick run still reaches the stage's clip steps
        bind = replace(bind, steps=steps, video_from=min(bind.video_from, steps - 1))

        def short(c: ChainConfig) -> ChainConfig:  # a quick run still reaches each pass's clip steps
            c = replace(c, eval_every=0, **{k: n(getattr(c, k)) for k in ("steps", "warmup_steps", "checkpoint_every")})
            return replace(c, steps=max(c.steps, c.clip_every))

        chain, chain2, options = short(self.chain), short(self.chain2), short(self.chain_options)
        return replace(self, teacher=teacher, teacher_stop=stop, bind=bind, chain=chain, chain2=chain2,
                       chain_options=options, ctd_steps=n(self.ctd_steps), lma_steps=n(self.lma_steps))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _save_half(state: dict, path: Path) -> None:
    """float16 safetensors of a state dict (the zoo's storage format; loaded back as the run's dtype)."""
    from safetensors.torch import save_file

    save_file({k: v.detach().to("cpu", torch.float16).contiguous() for k, v in state.items()}, str(path))


def _params(module) -> int:
    return sum(p.numel() for p in module.parameters())


@contextmanager
def _zoo_root(folder: Path):
    """Point :func:`liteframe_bench.zoo.root` at ``folder`` (the zoo being built) for the duration."""
    old = os.environ.get("LFBENCH_ZOO")
    os.environ["LFBENCH_ZOO"] = str(folder)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("LFBENCH_ZOO", None)
        else:
            os.environ["LFBENCH_ZOO"] = old


def _write_card(folder: Path, card: dict) -> None:
    card["files"] = {str(p.relative_to(folder)): _sha256(p) for p in sorted(folder.rglob("*"))
                     if p.is_file() and p.name != zoo.CARD}
    tmp = folder / (zoo.CARD + ".tmp")
    tmp.write_text(json.dumps(card, indent=1, default=str) + "\n")
    tmp.replace(folder / zoo.CARD)


def _base_card(name: str, what: str, recipe: Recipe, command: str, seconds: float) -> dict:
    from liteframe_bench.provenance import machine
    from liteframe_bench.zoo import stream

    return {
        "name": name,
        "what": what,
        "recipe": asdict(recipe),
        "data": {"source": "synth training stream (scenes rendered to tensors, never the eval split)",
                 "stream_seed": stream.TRAIN_SEED, "seed": recipe.seed, "frames": recipe.frames},
        "wall_s": round(seconds, 1),
        "command": command,
        "machine": machine("cpu"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# ------------------------------------------------------------------------------------------------- stages


def train_mini(out: Path, recipe: Recipe, command: str, progress: bool, log) -> None:
    from liteframe_bench.backends.internvl import InternVL3
    from liteframe_bench.presets import parameter_counts
    from liteframe_bench.zoo import model as zm
    from liteframe_bench.zoo.teacher import train_bind, train_chain, train_teacher

    final = out / "mini"
    if (final / zoo.CARD).is_file():
        log(f"mini: done ({final})")
        return
    runs = out / "runs" / "teacher"
    runs.mkdir(parents=True, exist_ok=True)
    tok_file = runs / "tokenizer.json"
    if tok_file.is_file():
        tok = zm.load_tokenizer(runs)
    else:
        tok = zm.build_tokenizer(recipe.seed)
        zm.save_tokenizer(tok, runs)
    net = zm.build_model(tok, recipe.seed)
    bb = InternVL3(net, tok, source="mini (training)", system_prompt=None)
    cfg = replace(recipe.teacher, out=str(runs), seed=recipe.seed, frames=recipe.frames)
    record = train_teacher(cfg, bb, progress=progress, log=log, stop_after=recipe.teacher_stop)
    bind_cfg = replace(recipe.bind, out=str(out / "runs" / "bind"), seed=recipe.seed, frames=recipe.frames)
    bound = train_bind(bind_cfg, bb, progress=progress, log=log)
    chained = []
    passes = [(recipe.chain, 0)] + [(recipe.chain2, part) for part in range(1, recipe.chain2_passes + 1)]
    passes.append((recipe.chain_options, recipe.chain2_passes + 1))
    for chain, part in passes:  # runs/chain, runs/chain2, runs/chain3, runs/chain4
        where = out / "runs" / ("chain" if part == 0 else f"chain{part + 1}")
        chain_cfg = replace(chain, out=str(where), seed=recipe.seed, frames=recipe.frames, part=part)
        chained.append(train_chain(chain_cfg, bb, progress=progress, log=log))
    chain_s = sum(c["train_seconds"] for c in chained)
    final.mkdir(parents=True, exist_ok=True)
    _save_half(zm.state_to_save(net), final / "model.safetensors")
    (final / "config.json").write_text(net.config.to_json_string())
    zm.save_tokenizer(tok, final)
    card = _base_card("mini", "mini InternVL3 (teacher), trained from scratch", recipe, command,
                      record["train_seconds"] + bound["train_seconds"] + chain_s)
    card |= {"config": json.loads(net.config.to_json_string()), "parameters": parameter_counts(net),
             "steps": record["steps"], "schedule_steps": cfg.steps, "bind_steps": bound["steps"],
             "chain_steps": [c["steps"] for c in chained],
             "training": {"evals_on_stream": record["evals"],
                          "last": record["history"][-1] if record["history"] else None,
                          "teacher_s": round(record["train_seconds"], 1),
                          "bind_s": round(bound["train_seconds"], 1), "bind_evals_on_stream": bound["evals"],
                          "bind_last": bound["history"][-1] if bound["history"] else None,
                          "chain_s": round(chain_s, 1),
                          "chain_evals_on_stream": [c["evals"] for c in chained],
                          "chain_last": chained[-1]["history"][-1] if chained and chained[-1]["history"] else None}}
    _write_card(final, card)
    log(f"mini: saved to {final}")


def train_mini_ctd(out: Path, recipe: Recipe, command: str, progress: bool, log) -> None:
    from liteframe_bench.backbone import load_backbone
    from liteframe_bench.methods.liteframe.ctd import STREAM, CTDConfig, train_ctd
    from liteframe_bench.methods.liteframe.student import load_student, save_student

    final = out / "mini-ctd"
    if (final / zoo.CARD).is_file():
        log(f"mini-ctd: done ({final})")
        return
    t0 = time.perf_counter()
    with _zoo_root(out):
        teacher = load_backbone("mini", dtype="float32")
    cfg = CTDConfig(videos=STREAM, out=str(out / "runs" / "ctd"), frames=recipe.frames, student=dict(STUDENT),
                    teacher="mini", steps=recipe.ctd_steps, batch_size=recipe.ctd_batch, lr=recipe.ctd_lr,
                    warmup_steps=max(1, recipe.ctd_steps // 20), seed=recipe.seed, device="cpu",
                    checkpoint_every=max(1, recipe.ctd_steps // 4), cache_targets=False)
    res = train_ctd(cfg, progress=progress, teacher=teacher)
    student = load_student(res["student"])
    save_student(student, final)
    _save_half(student.state_dict(), final / "model.safetensors")
    card = _base_card("mini-ctd", "LiteFrame student of mini after Compressed Token Distillation (WAP 16x targets)",
                      recipe, command, time.perf_counter() - t0)
    card |= {"config": asdict(student.cfg), "parameters": {"student": _params(student)}, "steps": cfg.steps,
             "training": {"first_loss": res["first_loss"], "last_loss": res["last_loss"]}}
    _write_card(final, card)
    log(f"mini-ctd: saved to {final}")


def train_mini_lma(out: Path, recipe: Recipe, command: str, progress: bool, log) -> None:
    from liteframe_bench.backbone import load_backbone
    from liteframe_bench.methods.liteframe import lma

    final = out / "mini-lma"
    if (final / zoo.CARD).is_file():
        log(f"mini-lma: done ({final})")
        return
    t0 = time.perf_counter()
    with _zoo_root(out):
        bb = load_backbone("mini", dtype="float32")
    bb.model.model.vision_tower = None
    cfg = lma.LMAConfig(
        student=str(out / "mini-ctd"), data=lma.STREAM, out=str(out / "runs" / "lma"), backbone="mini",
        frames=recipe.frames, train_projector=True, lr=recipe.lma_lr, steps=recipe.lma_steps,
        batch_size=recipe.lma_batch, warmup_steps=max(1, recipe.lma_steps // 20), min_lr_ratio=0.1, seed=recipe.seed,
        device="cpu", checkpoint_every=max(1, recipe.lma_steps // 4), lora_rank=recipe.lma_rank,
        lora_alpha=2.0 * recipe.lma_rank, lora_targets=tuple(recipe.lma_targets), answers=recipe.lma_answers,
    )
    res = lma.train_lma(cfg, progress=progress, backbone=bb)
    src = Path(cfg.out)
    final.mkdir(parents=True, exist_ok=True)
    import shutil

    for part in (lma.STUDENT_DIR, lma.ADAPTER_DIR):
        shutil.rmtree(final / part, ignore_errors=True)
        shutil.copytree(src / part, final / part, ignore=shutil.ignore_patterns("README.md"))  # peft's stub card
    shutil.copy2(src / lma.PROJECTOR_FILE, final / lma.PROJECTOR_FILE)
    from safetensors.torch import load_file

    for f in [final / lma.STUDENT_DIR / "model.safetensors", final / lma.PROJECTOR_FILE,
              *sorted((final / lma.ADAPTER_DIR).glob("*.safetensors"))]:
        _save_half(load_file(str(f)), f)
    card = _base_card("mini-lma", "LiteFrame student of mini after LMA (LoRA on the LLM, student, projector)",
                      recipe, command, time.perf_counter() - t0)
    card |= {"config": {k: v for k, v in asdict(cfg).items() if k not in ("out", "student")},
             "parameters": res["trainable_params"], "steps": cfg.steps,
             "training": {"first_loss": res["first_loss"], "last_loss": res["last_loss"]}}
    _write_card(final, card)
    log(f"mini-lma: saved to {final}")


# ----------------------------------------------------------------------------------------------- evaluation


def family_accuracy(samples_file: Path) -> dict:
    """Accuracy per synth question family from lmms-eval's per-sample rows (``*.lmms_samples.jsonl``) of ``synth``
    (multiple choice: the scorer's parsed letter against the answer) or ``synth_open`` (its 0/1 score)."""
    per: dict[str, list[int]] = {}
    for line in samples_file.read_text().splitlines():
        row = json.loads(line)
        if "synth_open_score" in row:
            hit = int(float(row["synth_open_score"]) == 1.0)
        else:
            rec = row["synth_score"]
            hit = int(rec["pred_answer"] == rec["answer"])
        per.setdefault(row["doc"]["family"], []).append(hit)
    out = {f: {"accuracy": sum(v) / len(v), "questions": len(v)} for f, v in sorted(per.items())}
    n = sum(len(v) for v in per.values())
    out["overall"] = {"accuracy": sum(sum(v) for v in per.values()) / n if n else 0.0, "questions": n}
    return out


EVAL_METHODS = {"mini": "baseline", "mini-ctd": "liteframe-ctd", "mini-lma": "liteframe"}


def evaluate_zoo(out: Path, recipe: Recipe, log, names=zoo.NAMES) -> dict:
    """Evaluate each checkpoint through lmms-eval on the synth eval split; the numbers go into the cards."""
    from liteframe_bench.backbone import load_backbone
    from liteframe_bench.evaluate import run_eval

    results = {}
    with _zoo_root(out):
        bb = load_backbone("mini", dtype="float32")
        for name in names:
            card_file = out / name / zoo.CARD
            card = json.loads(card_file.read_text())
            method = EVAL_METHODS[name]
            for key, suite in (("eval", recipe.eval_suite), ("eval_open", recipe.eval_open_suite)):
                if suite is None:
                    continue
                t0 = time.perf_counter()
                where = out / "eval" / name / suite
                summary = run_eval([method], [recipe.eval_frames], [suite], backbone=bb, limit=recipe.eval_limit,
                                   out=where, max_new_tokens=24)
                acc = family_accuracy(where / f"{method}_f{recipe.eval_frames}.lmms_samples.jsonl")
                card[key] = {"suite": suite, "split": "eval", "frames": recipe.eval_frames, "method": method,
                             "path": "mp4 -> PyAV -> lmms-eval simple_evaluate", "families": acc,
                             "lmms_eval": summary["runs"][0]["results"], "wall_s": round(time.perf_counter() - t0, 1)}
            acc = card["eval"]["families"]
            card["summary"] = (f"{acc['overall']['accuracy']:.1%} multiple choice on synth eval at "
                               f"{recipe.eval_frames} frames ({acc['overall']['questions']} questions; chance 25%)")
            if "eval_open" in card:
                card["summary"] += f", {card['eval_open']['families']['overall']['accuracy']:.1%} open-ended"
            _write_card(out / name, card)
            log(f"{name}: {card['summary']}")
            results[name] = acc
    return results


def train_zoo(out: str | os.PathLike = "runs/zoo", budget_min: float | None = None, *, seed: int = 0,
              progress: bool = True, evaluate: bool = True, eval_suite: str | None = None,
              eval_limit: int | None = None, log=None) -> dict:
    """Make (or finish) every zoo checkpoint under ``out``; returns {name: card}.

    ``eval_suite`` / ``eval_limit`` override the recipe's card evaluation (tests use ``synth_tiny``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log = log or (lambda msg: print(f"[lfbench zoo] {msg}", file=sys.stderr, flush=True))
    recipe = Recipe(seed=seed).scaled(budget_min)
    if eval_suite is not None or eval_limit is not None:
        recipe = replace(recipe, eval_suite=eval_suite or recipe.eval_suite, eval_limit=eval_limit,
                         eval_open_suite=None if eval_suite else recipe.eval_open_suite)
    command = "lfbench zoo train --out DIR" + (f" --budget-min {budget_min:g}" if budget_min else "") + \
        (f" --seed {seed}" if seed else "")
    t0 = time.perf_counter()
    train_mini(out, recipe, command, progress, log)
    train_mini_ctd(out, recipe, command, progress, log)
    train_mini_lma(out, recipe, command, progress, log)
    if evaluate:
        todo = [n for n in zoo.NAMES if "eval" not in json.loads((out / n / zoo.CARD).read_text())]
        if todo:
            evaluate_zoo(out, recipe, log, todo)
    log(f"zoo complete under {out} in {time.perf_counter() - t0:.0f} s")
    return {n: json.loads((out / n / zoo.CARD).read_text()) for n in zoo.NAMES}
