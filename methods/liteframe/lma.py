"""Language Model Adaptation (LMA, LiteFrame paper Sec. 4.3): LoRA on the LLM + fine-tuning the student.

The student's grid [T', H', W', C] goes through the backbone's own pixel shuffle + MLP projector and enters the
LLM as in the pipeline with a ``vit``-side reducer: one prompt group per temporal slice, labelled
``Frame{t' * stride + 1}`` (Frame1, Frame5, ... for stride 4), each with ``(H'/2) * (W'/2)`` ``<IMG_CONTEXT>``
slots. The loss is the cross-entropy of the answer tokens (the answer and the closing ``<|im_end|>``) given the
prompt; every prompt position (system, question, visual slots, padding) is masked with -100. With
``answers="clip"`` (the zoo's synth stream) an item is a whole clip and its loss is :func:`clip_loss`: every text the
zoo's teacher was trained on after the clip, the sum over kinds of each kind's mean (so the logged loss is that sum).

Layout of ``out``::

    student/                 fine-tuned student (save_student: safetensors + config.json)
    adapter/                 LoRA adapter of the LLM (peft save_pretrained: adapter_model.safetensors + config)
    projector.safetensors    the projector's weights (only with train_projector)
    lma.json                 record: config, loss history, speed, machine
    checkpoints/step-XXXXXXXX/   student/, adapter/, [projector.safetensors], optimizer.safetensors, state.json

:func:`load_lma` applies such a folder to a loaded backbone and returns the student (what the ``liteframe``
method needs).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from liteframe_bench.errors import LfbenchError, SpecError
from liteframe_bench.methods.liteframe import train_utils as tu
from liteframe_bench.methods.liteframe.student import load_student, save_student

IGNORE = -100
ADAPTER_DIR = "adapter"
PROJECTOR_FILE = "projector.safetensors"
STUDENT_DIR = "student"
#: The multiple-choice prompt (lmms-eval's Video-MME wording without subtitles, lfbench's post prompt).
MC_PRE = (
    "Select the best answer to the following multiple-choice question based on the video. "
    "Respond with only the letter (A, B, C, or D) of the correct option."
)
MC_POST = "Answer with the option's letter from the given choices directly."

RESUME_FIXED = (
    "student",
    "data",
    "split",
    "backbone",
    "backbone_seed",
    "frames",
    "lora_rank",
    "lora_alpha",
    "lora_dropout",
    "lora_targets",
    "train_student",
    "train_projector",
    "lr",
    "student_lr_scale",
    "weight_decay",
    "warmup_steps",
    "schedule",
    "min_lr_ratio",
    "grad_clip",
    "batch_size",
    "grad_accum",
    "seed",
    "precision",
)


@dataclass
class LMAConfig:
    """Language Model Adaptation run. ``steps`` counts optimizer steps of ``batch_size * grad_accum`` items."""

    student: str = field(default="", metadata={"help": "student folder (save_student), or a CTD out folder"})
    data: str = field(
        default="synth",
        metadata={"help": "synth[:size] (its train split), a .jsonl of {video, prompt, answer}, or synth-stream "
                  "(scenes rendered on the fly from the zoo's training seeds)"},
    )
    answers: str = field(
        default="letter",
        metadata={"help": "synth-stream questions: letter (multiple choice, answered by the letter), words (multiple "
                  "choice answered in words, then the letter, as the zoo's mini answers), open (asked as synth_open "
                  "asks them, answered in words), or clip (every text the zoo's teacher is trained on after a clip: "
                  "its description, each question open-ended and in words then the letter; the clip prefilled once, "
                  "batch_size clips per step); words, open and clip use the balanced stream (count answers 1-5)"},
    )
    out: str = field(default="runs/lma", metadata={"help": "output folder"})
    backbone: str = field(default="tiny", metadata={"help": "InternVL3 model: tiny, random:<preset>, folder"})
    backbone_seed: int = field(default=0, metadata={"help": "seed of a random (tiny / random:) backbone"})
    split: str = field(default="train", metadata={"help": "suite split for data=synth[:size]"})
    data_root: str | None = field(default=None, metadata={"help": "data root for suites (default $LFBENCH_DATA)"})
    frames: int = field(default=16, metadata={"help": "frames per video"})
    lora_rank: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: float = field(default=32.0, metadata={"help": "LoRA alpha (scale = alpha / rank)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    lora_targets: tuple[str, ...] = field(
        default=("q_proj", "k_proj", "v_proj", "o_proj"), metadata={"help": "LLM linear layers that get LoRA"}
    )
    train_student: bool = field(default=True, metadata={"help": "fine-tune the student"})
    train_projector: bool = field(default=False, metadata={"help": "fine-tune the projector (saved separately)"})
    lr: float = field(default=1e-4, metadata={"help": "peak learning rate (AdamW) of LoRA and projector"})
    student_lr_scale: float = field(default=1.0, metadata={"help": "student lr = lr * this"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (matrices only)"})
    warmup_steps: int = field(default=20, metadata={"help": "linear warm-up steps"})
    schedule: str = field(default="cosine", metadata={"help": "after warm-up: cosine or constant"})
    min_lr_ratio: float = field(default=0.0, metadata={"help": "cosine floor as a fraction of lr"})
    grad_clip: float = field(default=1.0, metadata={"help": "max gradient norm (0 = off)"})
    steps: int = field(default=1000, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=1, metadata={"help": "items per micro-batch (right-padded)"})
    grad_accum: int = field(default=1, metadata={"help": "micro-batches per optimizer step"})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "recompute LLM activations"})
    precision: str = field(default="auto", metadata={"help": "auto (bf16 autocast on CUDA), bf16, fp32"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:N"})
    seed: int = field(default=0, metadata={"help": "LoRA init and data order"})
    checkpoint_every: int = field(default=500, metadata={"help": "checkpoint every N steps (0 = at the end only)"})
    keep_checkpoints: int = field(default=2, metadata={"help": "newest checkpoints kept (0 = all)"})
    resume: bool = field(default=True, metadata={"help": "continue from the newest checkpoint in out"})
    cache_clips: bool = field(default=False, metadata={"help": "keep decoded clips in RAM (small sets)"})
    workers: int = field(default=0, metadata={"help": "DataLoader worker processes decoding videos"})

    def __post_init__(self) -> None:
        tu.require(
            isinstance(self.student, (str, os.PathLike)) and str(self.student) != "",
            "student",
            self.student,
            "a student folder (config.json + model.safetensors) or a CTD out folder",
        )
        self.student = str(self.student)
        tu.require(
            isinstance(self.data, (str, os.PathLike)) and str(self.data) != "",
            "data",
            self.data,
            "synth, synth:<size> or a .jsonl file",
        )
        self.data = str(self.data)
        tu.require(self.answers in ANSWERS, "answers", self.answers, " or ".join(ANSWERS))
        tu.require(self.answers != "clip" or self.data == STREAM, "data", self.data,
                   f"{STREAM} with answers=clip (the clip's texts come from the stream's scenes)")
        tu.require(isinstance(self.out, (str, os.PathLike)) and str(self.out) != "", "out", self.out, "a folder")
        self.out = str(self.out)
        tu.require(
            isinstance(self.backbone, str) and self.backbone != "",
            "backbone",
            self.backbone,
            "tiny, random:<preset> or a local InternVL3-*-hf folder",
        )
        tu.check_int("backbone_seed", self.backbone_seed, 0)
        tu.require(self.split in ("train", "eval"), "split", self.split, "train, eval")
        tu.check_int("frames", self.frames, 1)
        tu.check_int("lora_rank", self.lora_rank, 1)
        tu.check_float("lora_alpha", self.lora_alpha, 0.0, strict=True)
        tu.check_float("lora_dropout", self.lora_dropout, 0.0, maximum=0.99)
        if isinstance(self.lora_targets, str):
            self.lora_targets = tuple(t.strip() for t in self.lora_targets.split(",") if t.strip())
        self.lora_targets = tuple(self.lora_targets)
        tu.require(
            len(self.lora_targets) > 0 and all(isinstance(t, str) and t for t in self.lora_targets),
            "lora_targets",
            self.lora_targets,
            "names of the LLM's linear layers, e.g. q_proj,k_proj,v_proj,o_proj",
        )
        for name in ("train_student", "train_projector", "gradient_checkpointing"):
            tu.require(isinstance(getattr(self, name), bool), name, getattr(self, name), "true, false")
        tu.check_float("student_lr_scale", self.student_lr_scale, 0.0)
        tu.check_training_fields(self)


# ----------------------------------------------------------------------------------------------------------
# Data


def mc_prompt(question: str, options: list[str]) -> str:
    """The multiple-choice prompt of a Video-MME-style item (options already lettered: ``A. ...``)."""
    return "\n".join([MC_PRE, question, *options, MC_POST])


def _normalise(item: dict, base: Path, where: str) -> dict[str, str]:
    if "video" not in item or "answer" not in item:
        raise SpecError(f"{where}: an item needs 'video' and 'answer' (and 'prompt', or 'question' + 'options')")
    if "prompt" in item:
        prompt = str(item["prompt"])
    elif "question" in item and "options" in item:
        prompt = mc_prompt(str(item["question"]), list(item["options"]))
    else:
        raise SpecError(f"{where}: an item needs 'prompt', or 'question' + 'options'")
    video = Path(item["video"]).expanduser()
    video = video if video.is_absolute() else base / video
    if not video.is_file():
        raise SpecError(f"{where}: video {str(video)!r} does not exist")
    return {"video": str(video), "prompt": prompt, "answer": str(item["answer"])}


def load_items(cfg: LMAConfig) -> list[dict[str, str]]:
    """[{video (absolute path), prompt, answer}] from ``cfg.data``: ``synth[:size]`` (generated on first use) or
    a JSONL file (relative video paths are relative to the file's folder)."""
    data = cfg.data
    name, _, size = data.partition(":")
    if name == "synth" and not data.endswith(".jsonl"):
        from liteframe_bench.suites.synth import generator

        size = size or "default"
        try:
            folder = generator.make(size, cfg.data_root, progress=False)
            raw = generator.load(size, cfg.split, cfg.data_root)
        except LfbenchError as e:
            raise SpecError(f"data={data!r}: {e}") from e
        items = [_normalise(it, folder, f"data={data!r}") for it in raw]
    else:
        path = Path(data).expanduser()
        if path.suffix != ".jsonl" or not path.is_file():
            raise SpecError(f"data={data!r} is invalid; allowed: synth, synth:<size>, or an existing .jsonl file")
        items = []
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise SpecError(f"data={data!r}, line {n}: not JSON ({e.msg})") from e
            items.append(_normalise(obj, path.parent, f"data={data!r}, line {n}"))
    if not items:
        raise SpecError(f"data={data!r} holds no items")
    return items


#: ``data`` value that trains on the zoo's synth training stream (scenes rendered to tensors, never to mp4).
STREAM = "synth-stream"


#: ``answers`` values: multiple choice answered by the letter, or in words then the letter
#: (:func:`liteframe_bench.zoo.teacher.chain_answer`), or the question asked open-ended (synth_open), or every text
#: of the clip as the zoo's teacher is trained on them (:data:`CLIP_KINDS`)
ANSWERS = ("letter", "words", "open", "clip")
#: The texts of ``answers="clip"`` (:class:`liteframe_bench.zoo.teacher.Texts` kinds): the description, each
#: question open-ended, each multiple-choice question answered in words then the letter.
CLIP_KINDS = ("describe", "open", "chain")


class _StreamItems(torch.utils.data.Dataset):
    """Item ``i``: clip ``i`` of the synth training stream (seed ``seed``) with one question, the families in turn
    (``i % 5``): multiple choice in the suite's prompt, answered by its letter or (``answers="words"``) by its
    words and then its letter, or (``answers="open"``) asked as ``synth_open`` asks it, answered by the option's
    text; with ``answers="clip"`` the clip itself (``item["clip"]``), all of whose texts are trained
    (:func:`clip_loss`). ``words``, ``open`` and ``clip`` draw from the balanced stream (count answers 1-5, as in
    the eval split)."""

    def __init__(self, frames: int, image_size: int, seed: int, answers: str = "letter"):
        self.frames, self.image_size, self.seed, self.answers = frames, image_size, seed, answers

    def __getitem__(self, i: int) -> dict[str, Any]:
        from liteframe_bench.suites.synth.generator import OPEN_PROMPT
        from liteframe_bench.zoo.stream import make_clip, option_text
        from liteframe_bench.zoo.teacher import chain_answer

        is_open = self.answers == "open"
        clip = make_clip(i, self.frames, self.image_size, seed=self.seed, copies=1, balanced=self.answers != "letter")
        if self.answers == "clip":
            return {"video": f"{STREAM}:{self.seed}:{i}", "clip": clip, "pixel_values": clip.pixel_values}
        family, question, options, answer = clip.mc[i % len(clip.mc)]
        prompt = f"{question}\n{OPEN_PROMPT}" if is_open else mc_prompt(question, options)
        if self.answers != "letter":
            words = option_text(options, answer)
            answer = words if is_open else chain_answer(words, answer)
        return {"video": f"{STREAM}:{self.seed}:{i}", "prompt": prompt, "answer": answer, "family": family,
                "pixel_values": clip.pixel_values}


class _Videos(torch.utils.data.Dataset):
    def __init__(self, items: list[dict], frames: int, image_size: int, keep: bool):
        self.items, self.frames, self.image_size = items, frames, image_size
        self.kept: dict[str, Tensor] | None = {} if keep else None

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        from liteframe_bench.video import load_video

        it = self.items[i]
        px = None if self.kept is None else self.kept.get(it["video"])
        if px is None:
            px = load_video(it["video"], self.frames, image_size=self.image_size).pixel_values[0]
            if self.kept is not None:
                self.kept[it["video"]] = px
        return {**it, "pixel_values": px}


# ----------------------------------------------------------------------------------------------------------
# Batches and the loss


@dataclass
class LMABatch:
    """Right-padded batch: ``labels`` are -100 everywhere except the answer tokens (and their ``<|im_end|>``)."""

    pixel_values: Tensor  # [B, T, 3, S, S]
    input_ids: Tensor  # [B, L]
    labels: Tensor  # [B, L]
    attention_mask: Tensor  # [B, L]
    groups: list[tuple[str, int]]  # the prompt groups (same for every item: same frame count)


def visual_groups(backbone, student, frames: int) -> list[tuple[str, int]]:
    """Prompt groups of a student clip: one per temporal slice t', ``Frame{t' * stride + 1}``, with the number of
    tokens the projector makes of one slice."""
    T, H, W = student.output_grid(frames)
    s = backbone.shuffle
    if H % s or W % s:
        raise SpecError(f"student output grid {H}x{W} is not divisible by the backbone's pixel shuffle ({s})")
    stride = student.temporal_stride()
    return [(f"Frame{t * stride + 1}", (H // s) * (W // s)) for t in range(T)]


def make_batch(backbone, student, examples: list[dict]) -> LMABatch:
    """Tokenise ``examples`` ({pixel_values [T, 3, S, S], prompt, answer}) into an :class:`LMABatch`."""
    T = examples[0]["pixel_values"].shape[0]
    groups = visual_groups(backbone, student, T)
    tok = backbone.tokenizer
    rows, labels = [], []
    for ex in examples:
        if ex["pixel_values"].shape[0] != T:
            raise ValueError("every example of a batch needs the same frame count")
        prompt = backbone.build_prompt(ex["prompt"], groups)[0].cpu()
        answer = tok(ex["answer"] + "<|im_end|>", add_special_tokens=False, return_tensors="pt").input_ids[0]
        rows.append(torch.cat([prompt, answer]))
        labels.append(torch.cat([torch.full_like(prompt, IGNORE), answer]))
    L = max(r.shape[0] for r in rows)
    pad = tok.pad_token_id if tok.pad_token_id is not None else backbone.eos_token_id
    ids = torch.full((len(rows), L), pad, dtype=torch.long)
    lab = torch.full((len(rows), L), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), L), dtype=torch.long)
    for b, (r, lb) in enumerate(zip(rows, labels, strict=True)):
        ids[b, : r.shape[0]], lab[b, : r.shape[0]], mask[b, : r.shape[0]] = r, lb, 1
    px = torch.stack([ex["pixel_values"] for ex in examples])
    return LMABatch(px, ids, lab, mask, groups)


def student_tokens(backbone, student, pixel_values: Tensor) -> Tensor:
    """Visual tokens [B, N, D] in prompt order: student grid -> backbone pixel shuffle + projector."""
    grid = student(pixel_values).grid  # [B, T', H', W', C]
    B, T = grid.shape[:2]
    proj = backbone.project(grid.flatten(0, 1))  # [B*T', H'/s, W'/s, D]
    return proj.reshape(B, -1, proj.shape[-1])


def answer_loss(backbone, student, batch: LMABatch, reduction: str = "mean") -> Tensor:
    """Cross-entropy of the answer tokens given the prompt (visual tokens from ``student``).

    ``reduction="mean"``: mean over all answer tokens of the batch; ``"none"``: per-token losses [n].
    """
    dev = backbone.device
    visual = student_tokens(backbone, student, batch.pixel_values.to(dev))
    ids, labels = batch.input_ids.to(dev), batch.labels.to(dev)
    embeds = backbone.embed(ids, visual.reshape(-1, visual.shape[-1]))
    lm = backbone.model.model.language_model
    hidden = lm(inputs_embeds=embeds, attention_mask=batch.attention_mask.to(dev), use_cache=False).last_hidden_state
    target = labels[:, 1:]
    keep = target != IGNORE
    logits = backbone.model.lm_head(hidden[:, :-1][keep])
    return F.cross_entropy(logits.float(), target[keep], reduction=reduction)


def clip_loss(backbone, student, clip, kinds=CLIP_KINDS) -> tuple[Tensor, dict[str, float]]:
    """``answers="clip"``: the loss of every text of one stream clip (``kinds`` of
    :class:`~liteframe_bench.zoo.teacher.Texts`) read after the student's tokens, the clip's frames prefilled once
    and the KV cache shared by its texts (:func:`~liteframe_bench.zoo.teacher.clip_forward`, the teacher's own
    training step with the student in place of the vision tower): the sum over kinds of each kind's mean row loss,
    and each kind's value (plus ``letter_acc``: the letters argmax-right after the true words)."""
    from liteframe_bench.zoo.teacher import Texts, clip_forward, kind_means

    tokens = student_tokens(backbone, student, clip.pixel_values[None].to(backbone.device))[0]
    groups = visual_groups(backbone, student, clip.pixel_values.shape[0])
    losses, hits = clip_forward(backbone, clip, Texts(backbone.tokenizer, clip, kinds), visual=(tokens, groups))
    per = kind_means(losses)
    logged = {k: float(v.detach()) for k, v in per.items()}
    if hits:
        logged["letter_acc"] = sum(h for _, h in hits) / len(hits)
    return sum(per.values()), logged


# ----------------------------------------------------------------------------------------------------------
# Model setup, saving, loading


def _student_folder(path: str) -> Path:
    p = Path(path).expanduser()
    for cand in (p, p / STUDENT_DIR):
        if (cand / "config.json").is_file() and (cand / "model.safetensors").is_file():
            return cand
    raise SpecError(
        f"student={path!r} is invalid; allowed: a folder with config.json + model.safetensors "
        "(save_student), or a CTD/LMA out folder holding student/"
    )


def add_lora(backbone, cfg: LMAConfig):
    """Inject LoRA into the backbone's LLM in place; returns the peft wrapper (for saving)."""
    from peft import LoraConfig, get_peft_model

    lm = backbone.model.model.language_model
    names = {n.rsplit(".", 1)[-1] for n, m in lm.named_modules() if isinstance(m, torch.nn.Linear)}
    missing = [t for t in cfg.lora_targets if t not in names]
    if missing:
        raise SpecError(f"lora_targets={list(cfg.lora_targets)!r}: {missing} not in the LLM; allowed: {sorted(names)}")
    lcfg = LoraConfig(
        r=cfg.lora_rank,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.lora_targets),
        bias="none",
    )
    return get_peft_model(lm, lcfg)


def _save_weights(folder: Path, student, peft_lm, projector) -> None:
    save_student(student, folder / STUDENT_DIR)
    peft_lm.save_pretrained(str(folder / ADAPTER_DIR), safe_serialization=True)
    if projector is not None:
        tu.save_tensors(dict(projector.state_dict()), folder / PROJECTOR_FILE)


def _load_adapter_weights(peft_lm, folder: Path) -> None:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    sd = load_file(str(folder / ADAPTER_DIR / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(peft_lm, sd)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise LfbenchError(f"adapter in {folder} has unexpected keys {unexpected[:4]}...")


def load_lma(backbone, folder: str | os.PathLike, *, merge: bool = True):
    """Apply an LMA out folder to a loaded backbone: the LoRA adapter on its LLM (merged into the weights unless
    ``merge=False``), the projector if one was trained; returns the fine-tuned student (eval mode, backbone's
    device, float32)."""
    from peft import PeftModel

    folder = Path(folder)
    for need in (folder / STUDENT_DIR / "config.json", folder / ADAPTER_DIR / "adapter_config.json"):
        if not need.is_file():
            raise SpecError(f"{folder} is not an LMA out folder: {need.relative_to(folder)} missing")
    inner = backbone.model.model
    peft_lm = PeftModel.from_pretrained(inner.language_model, str(folder / ADAPTER_DIR))
    if merge:
        inner.language_model = peft_lm.merge_and_unload()
    if (folder / PROJECTOR_FILE).is_file():
        from safetensors.torch import load_file

        proj = inner.multi_modal_projector
        dtype = next(proj.parameters()).dtype
        proj.load_state_dict({k: v.to(dtype) for k, v in load_file(str(folder / PROJECTOR_FILE)).items()})
    backbone.model.eval()
    return load_student(folder / STUDENT_DIR, device=backbone.device).eval()


# ----------------------------------------------------------------------------------------------------------
# Training


def _lr(cfg: LMAConfig, step: int) -> float:
    if cfg.schedule == "constant":
        return tu.lr_at(step, cfg.lr, cfg.warmup_steps, step + 1, 1.0)
    return tu.lr_at(step, cfg.lr, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio)


def load_backbone(cfg: LMAConfig, device: torch.device):
    """The backbone for LMA (its vision tower is dropped: the student replaces it)."""
    from liteframe_bench.backbone import load_backbone as load

    bb = load(cfg.backbone, device=str(device), dtype="auto", seed=cfg.backbone_seed)
    tu.require_student_family(bb, f"backbone={cfg.backbone!r}")
    bb.model.model.vision_tower = None
    return bb


def train_lma(cfg: LMAConfig, progress: bool = True, *, backbone=None, stop_after: int | None = None) -> dict:
    """LoRA on the LLM + the student (+ the projector) on video-text pairs; returns the run's summary.

    ``backbone``: an already loaded :class:`InternVL3` to adapt instead of loading ``cfg.backbone`` (it is modified
    in place: LoRA layers are injected into its LLM). ``stop_after``: end this run after that step (checkpointed);
    a later call with ``resume`` continues.
    """
    from tqdm.auto import tqdm

    if stop_after is not None:
        tu.check_int("stop_after", stop_after, 1)
    device = tu.resolve_device(cfg.device)
    student_dir = _student_folder(cfg.student)
    items = None if cfg.data == STREAM else load_items(cfg)
    out = Path(cfg.out)
    ckpt = tu.latest_checkpoint(out)
    if ckpt is not None and not cfg.resume:
        raise SpecError(
            f"out={cfg.out!r} already holds checkpoints ({ckpt.name}); allowed: resume=True to continue, "
            "or a new out folder"
        )
    if ckpt is not None:
        record = json.loads((ckpt / tu.STATE_FILE).read_text())
        bad = tu.config_mismatch(record["config"], cfg, RESUME_FIXED)
        if bad:
            raise SpecError(
                f"cannot resume from {ckpt}: " + "; ".join(bad) + ". Allowed: the checkpoint's values, "
                "or a new out folder"
            )
    out.mkdir(parents=True, exist_ok=True)

    bb = backbone if backbone is not None else load_backbone(cfg, device)
    bb.model.requires_grad_(False)
    torch.manual_seed(cfg.seed)
    peft_lm = add_lora(bb, cfg)
    student = load_student(ckpt / STUDENT_DIR if ckpt else student_dir, device=device).float()
    student.requires_grad_(cfg.train_student)
    projector = None
    if cfg.train_projector:
        projector = bb.model.model.multi_modal_projector.float().requires_grad_(True)
    if ckpt is not None:
        _load_adapter_weights(peft_lm, ckpt)
        if projector is not None:
            from safetensors.torch import load_file

            projector.load_state_dict(load_file(str(ckpt / PROJECTOR_FILE), device=str(device)))
    if cfg.gradient_checkpointing:
        bb.model.model.language_model.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False}
        )

    groups = tu.param_groups(((n, p) for n, p in peft_lm.named_parameters() if p.requires_grad), cfg.weight_decay)
    if projector is not None:
        groups += tu.param_groups(projector.named_parameters(), cfg.weight_decay)
    if cfg.train_student:
        groups += tu.param_groups(student.named_parameters(), cfg.weight_decay, cfg.student_lr_scale)
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
    start, history = 0, []
    if ckpt is not None:
        record = tu.read_checkpoint(ckpt, optimizer)
        start, history = int(record["step"]), list(record["losses"])
    stop = max(start, min(cfg.steps, stop_after) if stop_after is not None else cfg.steps)

    per_step = cfg.batch_size * cfg.grad_accum
    if items is None:  # item k of the stream is the k-th item the run sees: a resume continues it exactly
        order = list(range(start * per_step, stop * per_step))
        data = _StreamItems(cfg.frames, int(student.cfg.image_size), cfg.seed, cfg.answers)
    else:
        order = tu.sample_order(len(items), cfg.seed, start * per_step, max(0, stop - start) * per_step)
        data = _Videos(items, cfg.frames, int(student.cfg.image_size), cfg.cache_clips)
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=cfg.batch_size,
        sampler=order,
        num_workers=cfg.workers,
        collate_fn=list,
        generator=torch.Generator(),
    )
    trainable = [p for g in optimizer.param_groups for p in g["params"]]

    def save_ckpt(step: int) -> Path:
        state = {
            "config": tu.config_dict(cfg),
            "losses": history,
            "scheduler": {"step": step, "lr": lr},
            "seed": cfg.seed,
            "stage": "lma",
        }
        return tu.write_checkpoint(
            out,
            step,
            lambda d: _save_weights(d, student, peft_lm, projector),
            optimizer,
            state,
            keep=cfg.keep_checkpoints,
        )

    peft_lm.train()
    student.train(cfg.train_student)
    lr = _lr(cfg, start)
    bar = tqdm(total=stop, initial=start, disable=not progress, desc="lma", unit="step", dynamic_ncols=True)
    t0 = time.perf_counter()
    batches = iter(loader)
    last_ckpt = None
    for step in range(start, stop):
        lr = _lr(cfg, step)
        tu.set_lr(optimizer, lr)
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for _ in range(cfg.grad_accum):
            examples = next(batches)
            if cfg.answers == "clip":  # one backward per clip (its texts share the clip's prefill)
                for ex in examples:
                    with tu.autocast_for(cfg.precision, device):
                        loss, _ = clip_loss(bb, student, ex["clip"])
                    (loss / (cfg.grad_accum * len(examples))).backward()
                    total += float(loss.detach()) / len(examples)
                continue
            batch = make_batch(bb, student, examples)
            with tu.autocast_for(cfg.precision, device):
                loss = answer_loss(bb, student, batch)
            (loss / cfg.grad_accum).backward()
            total += float(loss.detach())
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
        optimizer.step()
        history.append(total / cfg.grad_accum)
        done = step + 1
        elapsed = time.perf_counter() - t0
        bar.update(1)
        bar.set_postfix(loss=f"{history[-1]:.4g}", items_s=f"{(done - start) * per_step / elapsed:.2f}", lr=f"{lr:.2e}")
        if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done != stop:
            last_ckpt = save_ckpt(done)
    bar.close()
    seconds = time.perf_counter() - t0
    ran = stop - start
    if ran > 0:
        last_ckpt = save_ckpt(stop)
    elif last_ckpt is None:
        last_ckpt = ckpt
    peft_lm.eval()
    student.eval()
    summary = {
        "stage": "lma",
        "out": str(out),
        "steps": stop,
        "start_step": start,
        "finished": stop >= cfg.steps,
        "items": len(items) if items is not None else f"{STREAM} ({stop * per_step} items)",
        "losses": history,
        "first_loss": history[0] if history else None,
        "last_loss": history[-1] if history else None,
        "seconds": seconds,
        "steps_per_s": ran / seconds if ran and seconds > 0 else None,
        "items_per_s": ran * per_step / seconds if ran and seconds > 0 else None,
        "trainable_params": {
            "lora": sum(p.numel() for p in peft_lm.parameters() if p.requires_grad),
            "student": sum(p.numel() for p in student.parameters()) if cfg.train_student else 0,
            "projector": sum(p.numel() for p in projector.parameters()) if projector is not None else 0,
        },
        "checkpoint": str(last_ckpt) if last_ckpt else None,
    }
    if stop >= cfg.steps:
        _save_weights(out, student, peft_lm, projector)
        from liteframe_bench import provenance

        tu.write_json(
            out / "lma.json",
            {
                **summary,
                "config": tu.config_dict(cfg),
                "student_from": str(student_dir),
                "groups": visual_groups(bb, student, cfg.frames),
                "machine": provenance.machine(device),
            },
        )
    return summary
