"""Compressed Token Distillation (CTD, LiteFrame paper Sec. 4.2): the student learns to predict WAP(teacher).

For each clip X (``frames`` frames sampled with InternVL's midpoint sampler, the last frame repeated up to a
multiple of the student's temporal stride), the frozen teacher ViT gives dense features F [T, h, w, C] and its
last layer's CLS-query logits; the target is ``WAP(F)`` [T/4, h/2, w/2, C] (the ``wap`` reducer, 16x by default)
and the loss is ``MSE(student(X), WAP(F))``. AdamW, linear warm-up + cosine decay, gradient accumulation,
bf16 autocast on CUDA, safetensors checkpoints with exact resume, and an optional on-disk cache of the teacher's
targets (one safetensors file per clip) so the teacher runs once per clip.

Layout of ``out``::

    student/                      final student (save_student: safetensors + config.json)
    ctd.json                      record: config, loss history, speed, machine
    checkpoints/step-XXXXXXXX/    student/, optimizer.safetensors (+ RNG), state.json (see train_utils)
    targets/                      the teacher-target cache (unless cache_dir says elsewhere)
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from liteframe_bench.errors import SpecError
from liteframe_bench.methods.liteframe import train_utils as tu
from liteframe_bench.methods.liteframe.student import LiteFrameStudent, StudentConfig, load_student, save_student

#: Config fields that must match a checkpoint's for a resume (the rest may change between runs).
RESUME_FIXED = (
    "videos",
    "frames",
    "student",
    "init",
    "teacher",
    "teacher_seed",
    "wap",
    "batch_size",
    "grad_accum",
    "lr",
    "weight_decay",
    "warmup_steps",
    "schedule",
    "min_lr_ratio",
    "grad_clip",
    "seed",
    "precision",
)


def student_config(value: Any) -> StudentConfig:
    """``"default"`` | ``"tiny"`` | a StudentConfig | a dict of its fields (e.g. from a JSON record)."""
    if isinstance(value, StudentConfig):
        return value
    if value == "default":
        return StudentConfig()
    if value == "tiny":
        return StudentConfig.tiny()
    if isinstance(value, dict):
        try:
            return StudentConfig.from_json(value)
        except (TypeError, ValueError) as e:
            raise SpecError(
                f"student={value!r} is invalid ({e}); allowed: default, tiny, or StudentConfig fields"
            ) from e
    raise SpecError(f"student={value!r} is invalid; allowed: default, tiny, a StudentConfig or a dict of its fields")


@dataclass
class CTDConfig:
    """Compressed Token Distillation run. ``steps`` counts optimizer steps of ``batch_size * grad_accum`` clips."""

    videos: str = field(
        default="",
        metadata={"help": "folder of videos (*.mp4/*.mkv/*.avi/*.webm, recursive), or synth-stream (scenes rendered "
                  "on the fly from the zoo's training seeds)"},
    )
    out: str = field(default="runs/ctd", metadata={"help": "output folder (student, checkpoints, record)"})
    frames: int = field(default=16, metadata={"help": "frames per clip (InternVL midpoint sampler)"})
    student: Any = field(default="default", metadata={"help": "student config: default, tiny or a StudentConfig"})
    init: str | None = field(
        default=None, metadata={"help": "start from this saved student folder (its config replaces student)"}
    )
    teacher: str = field(default="tiny", metadata={"help": "InternVL3 model: tiny, random:<preset>, folder"})
    teacher_seed: int = field(default=0, metadata={"help": "seed of a random (tiny / random:) teacher"})
    wap: str = field(default="wap:ratio=16", metadata={"help": "reducer spec that makes the targets"})
    steps: int = field(default=1000, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=8, metadata={"help": "clips per micro-batch"})
    grad_accum: int = field(default=1, metadata={"help": "micro-batches per optimizer step"})
    lr: float = field(default=5e-4, metadata={"help": "peak learning rate (AdamW)"})
    weight_decay: float = field(default=0.05, metadata={"help": "AdamW weight decay (matrices only)"})
    warmup_steps: int = field(default=100, metadata={"help": "linear warm-up steps"})
    schedule: str = field(default="cosine", metadata={"help": "after warm-up: cosine or constant"})
    min_lr_ratio: float = field(default=0.0, metadata={"help": "cosine floor as a fraction of lr"})
    grad_clip: float = field(default=1.0, metadata={"help": "max gradient norm (0 = off)"})
    precision: str = field(default="auto", metadata={"help": "auto (bf16 autocast on CUDA), bf16, fp32"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:N"})
    seed: int = field(default=0, metadata={"help": "student init and data order"})
    checkpoint_every: int = field(default=500, metadata={"help": "checkpoint every N steps (0 = at the end only)"})
    keep_checkpoints: int = field(default=2, metadata={"help": "newest checkpoints kept (0 = all)"})
    resume: bool = field(default=True, metadata={"help": "continue from the newest checkpoint in out"})
    cache_targets: bool = field(default=True, metadata={"help": "cache teacher targets on disk"})
    cache_dir: str | None = field(default=None, metadata={"help": "target cache folder (default <out>/targets)"})
    cache_clips: bool = field(default=False, metadata={"help": "keep decoded clips in RAM (small video sets)"})
    workers: int = field(default=0, metadata={"help": "DataLoader worker processes decoding videos"})

    def __post_init__(self) -> None:
        tu.require(
            isinstance(self.videos, (str, os.PathLike)) and str(self.videos) != "",
            "videos",
            self.videos,
            "a folder of videos",
        )
        self.videos = str(self.videos)
        tu.require(isinstance(self.out, (str, os.PathLike)) and str(self.out) != "", "out", self.out, "a folder path")
        self.out = str(self.out)
        tu.check_int("frames", self.frames, 1)
        if self.init is not None:
            cfg_file = Path(self.init).expanduser() / "config.json"
            tu.require(cfg_file.is_file(), "init", self.init, "a saved student folder (save_student)")
            self.init = str(self.init)
            self.student = json.loads(cfg_file.read_text())
        self.student = student_config(self.student)
        tu.require(
            isinstance(self.teacher, str) and self.teacher != "",
            "teacher",
            self.teacher,
            "tiny, random:<preset> or a local InternVL3-*-hf folder",
        )
        tu.check_int("teacher_seed", self.teacher_seed, 0)
        tu.require(
            isinstance(self.wap, str) and self.wap.split(":")[0].strip() == "wap",
            "wap",
            self.wap,
            "a wap reducer spec, e.g. wap:ratio=16",
        )
        from liteframe_bench import registry

        try:
            registry.create(self.wap)
        except SpecError as e:
            raise SpecError(f"wap={self.wap!r} is invalid: {e}") from e
        tu.check_training_fields(self)
        tu.require(isinstance(self.cache_targets, bool), "cache_targets", self.cache_targets, "true, false")


# ----------------------------------------------------------------------------------------------------------
# Teacher targets


class TargetMaker:
    """Frozen teacher ViT + WAP: clips [B, T, 3, S, S] (already padded) -> targets [B, T', h', w', C]."""

    def __init__(self, teacher, wap_spec: str, teacher_id: str):
        from liteframe_bench import registry

        self.teacher = teacher
        self.wap = registry.create(wap_spec)
        self.wap_spec = registry.canonical_spec(self.wap)
        self.teacher_id = teacher_id
        self.calls = 0  # clips the teacher has encoded

    def target_shape(self, frames: int) -> tuple[int, int, int, int]:
        side = self.teacher.grid_side
        bt, bh, bw = self.wap.block_for(frames, side, side)
        return frames // bt, side // bh, side // bw, self.teacher.vision_width

    @torch.no_grad()
    def __call__(self, px: Tensor) -> Tensor:
        from liteframe_bench import TokenGrid

        B, T = px.shape[:2]
        vis = self.teacher.vision(px.flatten(0, 1), need={"cls_attn"})
        grid = TokenGrid(vis.grid.unflatten(0, (B, T)), cls_attn=vis.cls_attn.unflatten(0, (B, T)))
        self.calls += B
        return self.wap(grid).as_grid()


class TargetCache:
    """Teacher targets on disk, one safetensors file per clip, keyed by (video path + mtime + size, frames,
    temporal padding, teacher id, teacher image size, wap spec)."""

    def __init__(self, folder: Path, frames: int, stride: int, teacher_id: str, image_size: int, wap_spec: str):
        self.folder = Path(folder)
        self.parts = {
            "frames": frames,
            "pad_to": stride,
            "teacher": teacher_id,
            "image_size": image_size,
            "wap": wap_spec,
        }

    def key(self, path: Path) -> str:
        st = path.stat()
        ident = {"video": str(path.resolve()), "mtime_ns": st.st_mtime_ns, "bytes": st.st_size, **self.parts}
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()

    def file(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.safetensors"

    def get(self, key: str) -> Tensor | None:
        from safetensors.torch import load_file

        f = self.file(key)
        if not f.is_file():
            return None
        try:
            return load_file(str(f))["target"]
        except Exception:  # a damaged entry is recomputed, not fatal
            return None

    def put(self, key: str, target: Tensor, video: Path) -> None:
        f = self.file(key)
        f.parent.mkdir(parents=True, exist_ok=True)
        meta = {k: str(v) for k, v in self.parts.items()} | {"video": str(video)}
        tu.save_tensors({"target": target}, f, metadata=meta)


#: ``videos`` value that trains on the zoo's synth training stream (scenes rendered to tensors, never to mp4).
STREAM = "synth-stream"


class _StreamClips(torch.utils.data.Dataset):
    """Clip ``i`` of the synth training stream (:mod:`liteframe_bench.zoo.stream`, seed ``seed``); no target cache."""

    def __init__(self, frames: int, stride: int, student_size: int, teacher_size: int, seed: int):
        self.frames, self.stride, self.seed = frames, stride, seed
        self.student_size, self.teacher_size = student_size, teacher_size

    def _px(self, i: int, size: int) -> Tensor:
        from liteframe_bench.zoo.stream import make_clip

        return tu.pad_frames(make_clip(i, self.frames, size, seed=self.seed, copies=0).pixel_values, self.stride)

    def __getitem__(self, i: int) -> dict[str, Any]:
        px = self._px(i, self.student_size)
        teacher = px if self.teacher_size == self.student_size else self._px(i, self.teacher_size)
        return {"index": i, "video": f"{STREAM}:{self.seed}:{i}", "student": px, "teacher": teacher, "target": None,
                "key": None}


class _Clips(torch.utils.data.Dataset):
    """Decoded clips of each video (student size, and teacher size when it differs), or the cached target."""

    def __init__(self, videos, frames, stride, student_size, teacher_size, cache: TargetCache | None, keep: bool):
        self.videos, self.frames, self.stride = videos, frames, stride
        self.student_size, self.teacher_size, self.cache = student_size, teacher_size, cache
        self.kept: dict[tuple[int, int], Tensor] | None = {} if keep else None

    def __len__(self) -> int:
        return len(self.videos)

    def _load(self, i: int, size: int) -> Tensor:
        from liteframe_bench.video import load_video

        if self.kept is not None and (i, size) in self.kept:
            return self.kept[i, size]
        px = tu.pad_frames(load_video(self.videos[i], self.frames, image_size=size).pixel_values[0], self.stride)
        if self.kept is not None:
            self.kept[i, size] = px
        return px

    def __getitem__(self, i: int) -> dict[str, Any]:
        path = self.videos[i]
        key = self.cache.key(path) if self.cache else None
        target = self.cache.get(key) if self.cache else None
        px = self._load(i, self.student_size)
        teacher_px = None
        if target is None:
            teacher_px = px if self.teacher_size == self.student_size else self._load(i, self.teacher_size)
        return {"index": i, "video": path, "student": px, "teacher": teacher_px, "target": target, "key": key}


def _collate(items: list[dict]) -> dict[str, Any]:
    return {"student": torch.stack([it["student"] for it in items]), "items": items}


# ----------------------------------------------------------------------------------------------------------
# Training


def load_teacher(cfg: CTDConfig, device: torch.device):
    """The frozen teacher (vision tower only: the LLM and lm_head are dropped to free memory)."""
    from liteframe_bench.backbone import load_backbone

    teacher = load_backbone(cfg.teacher, device=str(device), dtype="auto", seed=cfg.teacher_seed)
    tu.require_student_family(teacher, f"teacher={cfg.teacher!r}")
    teacher.model.model.language_model = None
    teacher.model.lm_head = None
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return teacher


def _teacher_id(cfg: CTDConfig, teacher) -> str:
    dtype = str(teacher.dtype).removeprefix("torch.")
    return f"{cfg.teacher}|seed={cfg.teacher_seed}|{teacher.source}|{dtype}"


def train_ctd(cfg: CTDConfig, progress: bool = True, *, teacher=None, stop_after: int | None = None) -> dict:
    """Distil the student from WAP(teacher); returns the run's summary (loss history, speed, cache use).

    ``teacher``: an already loaded :class:`InternVL3` to use instead of loading ``cfg.teacher`` (only its vision
    tower runs; it is set to eval mode with gradients off; a teacher loaded here also drops its LLM).
    ``stop_after``: end this run after that optimizer step (checkpointing it); the schedule still spans
    ``cfg.steps``, so a later call with ``resume`` continues exactly.
    """
    from tqdm.auto import tqdm

    if stop_after is not None:
        tu.check_int("stop_after", stop_after, 1)
    device = tu.resolve_device(cfg.device)
    videos = None if cfg.videos == STREAM else tu.find_videos(cfg.videos)
    out = Path(cfg.out)
    ckpt = tu.latest_checkpoint(out)
    if ckpt is not None and not cfg.resume:
        raise SpecError(
            f"out={cfg.out!r} already holds checkpoints ({ckpt.name}); allowed: resume=True to continue, "
            "or a new out folder"
        )
    out.mkdir(parents=True, exist_ok=True)

    teacher = teacher if teacher is not None else load_teacher(cfg, device)
    teacher.model.eval().requires_grad_(False)
    maker = TargetMaker(teacher, cfg.wap, _teacher_id(cfg, teacher))

    torch.manual_seed(cfg.seed)
    student = load_student(cfg.init) if cfg.init else LiteFrameStudent(cfg.student)
    stride = student.temporal_stride()
    padded = cfg.frames + (-cfg.frames) % stride
    _check_shapes(cfg, student, maker, padded)
    start, history, record = 0, [], None
    if ckpt is not None:
        record = json.loads((ckpt / tu.STATE_FILE).read_text())
        bad = tu.config_mismatch(record["config"], cfg, RESUME_FIXED)
        if bad:
            raise SpecError(
                f"cannot resume from {ckpt}: " + "; ".join(bad) + ". Allowed: the checkpoint's values, "
                "or a new out folder"
            )
        student = load_student(ckpt / "student")
    student = student.to(device).train()
    optimizer = torch.optim.AdamW(tu.param_groups(student.named_parameters(), cfg.weight_decay), lr=cfg.lr)
    if ckpt is not None:
        record = tu.read_checkpoint(ckpt, optimizer)
        start, history = int(record["step"]), list(record["losses"])
    stop = max(start, min(cfg.steps, stop_after) if stop_after is not None else cfg.steps)

    cache = None
    if cfg.cache_targets and videos is not None:  # a stream never repeats a clip: nothing to cache
        cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else out / "targets"
        cache = TargetCache(cache_dir, cfg.frames, stride, maker.teacher_id, teacher.image_size, maker.wap_spec)
    student_size = int(cfg.student.image_size)
    per_step = cfg.batch_size * cfg.grad_accum
    if videos is None:  # clip k of the stream is the k-th clip the run sees: a resume continues it exactly
        data = _StreamClips(cfg.frames, stride, student_size, teacher.image_size, cfg.seed)
        order = list(range(start * per_step, stop * per_step))
    else:
        data = _Clips(videos, cfg.frames, stride, student_size, teacher.image_size, cache, cfg.cache_clips)
        order = tu.sample_order(len(videos), cfg.seed, start * per_step, max(0, stop - start) * per_step)
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=cfg.batch_size,
        sampler=order,
        num_workers=cfg.workers,
        collate_fn=_collate,
        generator=torch.Generator(),
        persistent_workers=False,
    )

    def save_ckpt(step: int) -> Path:
        state = {
            "config": tu.config_dict(cfg),
            "losses": history,
            "scheduler": {"step": step, "lr": lr},
            "seed": cfg.seed,
            "stage": "ctd",
        }
        return tu.write_checkpoint(
            out, step, lambda d: save_student(student, d / "student"), optimizer, state, keep=cfg.keep_checkpoints
        )

    hits = 0
    lr = tu.lr_at(start, cfg.lr, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio)
    bar = tqdm(total=stop, initial=start, disable=not progress, desc="ctd", unit="step", dynamic_ncols=True)
    t0 = time.perf_counter()
    batches = iter(loader)
    last_ckpt = None
    for step in range(start, stop):
        lr = _lr(cfg, step)
        tu.set_lr(optimizer, lr)
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for _ in range(cfg.grad_accum):
            batch = next(batches)
            targets, h = _targets(batch["items"], maker, cache, device)
            hits += h
            with tu.autocast_for(cfg.precision, device):
                pred = student(batch["student"].to(device, non_blocking=True)).grid
            loss = F.mse_loss(pred.float(), targets)
            (loss / cfg.grad_accum).backward()
            total += float(loss.detach())
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(student.parameters(), cfg.grad_clip)
        optimizer.step()
        history.append(total / cfg.grad_accum)
        done = step + 1
        elapsed = time.perf_counter() - t0
        bar.update(1)
        bar.set_postfix(loss=f"{history[-1]:.4g}", clips_s=f"{(done - start) * per_step / elapsed:.1f}", lr=f"{lr:.2e}")
        if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done != stop:
            last_ckpt = save_ckpt(done)
    bar.close()
    seconds = time.perf_counter() - t0
    ran = stop - start
    if ran > 0 or last_ckpt is None:
        last_ckpt = save_ckpt(stop) if ran > 0 else ckpt
    summary = {
        "stage": "ctd",
        "out": str(out),
        "steps": stop,
        "start_step": start,
        "finished": stop >= cfg.steps,
        "losses": history,
        "first_loss": history[0] if history else None,
        "last_loss": history[-1] if history else None,
        "seconds": seconds,
        "steps_per_s": ran / seconds if ran and seconds > 0 else None,
        "clips_per_s": ran * per_step / seconds if ran and seconds > 0 else None,
        "teacher_clips": maker.calls,
        "cache_hits": hits,
        "checkpoint": str(last_ckpt) if last_ckpt else None,
        "student": None,
    }
    if stop >= cfg.steps:
        save_student(student, out / "student")
        summary["student"] = str(out / "student")
        from liteframe_bench import provenance

        tu.write_json(
            out / "ctd.json",
            {
                **summary,
                "config": tu.config_dict(cfg),
                "target_shape": list(maker.target_shape(padded)),
                "machine": provenance.machine(device),
            },
        )
    return summary


def _lr(cfg: CTDConfig, step: int) -> float:
    if cfg.schedule == "constant":
        return tu.lr_at(step, cfg.lr, cfg.warmup_steps, step + 1, 1.0)
    return tu.lr_at(step, cfg.lr, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio)


def _check_shapes(cfg: CTDConfig, student, maker: TargetMaker, padded: int) -> None:
    from liteframe_bench import ReducerError

    try:
        want = maker.target_shape(padded)
    except ReducerError as e:
        raise SpecError(f"wap={cfg.wap!r} cannot make targets for frames={cfg.frames} (padded to {padded}): {e}") from e
    have = (*student.output_grid(cfg.frames), int(cfg.student.out_width))
    if tuple(have) != tuple(want):
        raise SpecError(
            f"student output grid {have} (T', H', W', width for frames={cfg.frames}) does not match the targets "
            f"{want} of teacher={cfg.teacher!r} under wap={cfg.wap!r}; allowed: a student whose output grid and "
            "out_width equal WAP's on the teacher's ViT grid"
        )


def _targets(items: list[dict], maker: TargetMaker, cache: TargetCache | None, device) -> tuple[Tensor, int]:
    """Targets [B, T', h', w', C] (float32, on ``device``): cached ones, the rest from the teacher (then cached)."""
    got: dict[int, Tensor] = {k: it["target"] for k, it in enumerate(items) if it["target"] is not None}
    for k, it in enumerate(items):  # written since a DataLoader worker looked (prefetch)
        if k not in got and cache is not None and (t := cache.get(it["key"])) is not None:
            got[k] = t
    first: dict[Any, int] = {}  # one teacher pass per distinct clip of the batch
    for k in range(len(items)):
        if k not in got:
            first.setdefault(items[k]["key"] if cache is not None else k, k)
    if first:
        todo = list(first.values())
        fresh = maker(torch.stack([items[k]["teacher"] for k in todo]).to(device))
        for j, k in enumerate(todo):
            got[k] = fresh[j]
            if cache is not None:
                cache.put(items[k]["key"], fresh[j], items[k]["video"])
        for k in range(len(items)):
            if k not in got:
                got[k] = got[first[items[k]["key"]]]
    out = torch.stack([got[k].to(device) for k in range(len(items))]).float()
    return out, len(items) - len(first)
