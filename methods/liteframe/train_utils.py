"""Shared machinery of the LiteFrame training stages (CTD, LMA): schedule, data order, precision, checkpoints.

Checkpoints never pickle. A checkpoint folder ``<out>/checkpoints/step-XXXXXXXX/`` holds

* the stage's weight files, all safetensors (CTD: ``student/``; LMA: ``student/``, ``adapter/``, and
  ``projector.safetensors`` when the projector trains);
* ``optimizer.safetensors``: every tensor of the optimizer's state dict, flattened to ``state.<param>.<key>``,
  plus the RNG states as uint8 tensors (``rng.torch``, ``rng.cuda.<i>``);
* ``state.json`` (written last: a folder without it is incomplete and ignored): step, config, scheduler
  position, seed, the optimizer's param groups and non-tensor state, loss history.

The data order is a pure function of (seed, sample counter) (:func:`sample_order`) and the learning rate a pure
function of the step (:func:`lr_at`), so a resumed run replays exactly what the uninterrupted run would have.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from liteframe_bench.errors import SpecError
from liteframe_bench.reduction import require

STATE_FILE = "state.json"
OPTIMIZER_FILE = "optimizer.safetensors"
CHECKPOINTS = "checkpoints"
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".webm")


# ----------------------------------------------------------------------------------------------------------
# Validation (``require`` is the framework's: one message format for every SpecError)


#: Backbone families the LiteFrame student fits: it is trained to reproduce InternViT's class-token grid at the
#: ViT's own resolution and feeds InternVL's pixel-shuffle projector, frame by frame (temporal stride 4 in frames).
STUDENT_FAMILIES = ("internvl",)


def require_student_family(backbone: Any, what: str) -> None:
    """SpecError unless ``backbone`` is a family the LiteFrame student was built for (:data:`STUDENT_FAMILIES`)."""
    family = getattr(backbone, "family", None)
    if family not in STUDENT_FAMILIES:
        raise SpecError(
            f"{what}: the LiteFrame student is defined on InternVL3's geometry (an InternViT grid with a class "
            f"token, one frame per encoder step, the pixel-shuffle projector); backbone family {family!r} "
            f"({getattr(backbone, 'source', '?')}) differs (e.g. Qwen2.5-VL: no class token, 2-frame temporal "
            f"patches, a 2x2 merger); allowed families: {', '.join(STUDENT_FAMILIES)}"
        )


def check_int(name: str, value: Any, minimum: int) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    require(ok, name, value, f"an integer >= {minimum}")


def check_float(name: str, value: Any, minimum: float = 0.0, *, strict: bool = False, maximum: float | None = None):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > minimum if strict else value >= minimum) and (maximum is None or value <= maximum)
    bound = f"{'>' if strict else '>='} {minimum:g}" + (f" and <= {maximum:g}" if maximum is not None else "")
    require(ok, name, value, f"a number {bound}")


def resolve_device(device: str) -> torch.device:
    """``auto`` = the first CUDA device if there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise SpecError(f"device={device!r} is invalid; allowed: auto, cpu, cuda, cuda:N") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(f"device={device!r} is invalid: no CUDA device here; allowed: auto, cpu")
    return dev


def autocast_for(precision: str, device: torch.device):
    """``auto``: bf16 autocast on CUDA, none on CPU; ``bf16``: bf16 autocast anywhere; ``fp32``: none."""
    use = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if not use:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


# ----------------------------------------------------------------------------------------------------------
# Schedule and data order


def lr_at(step: int, base_lr: float, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warm-up to ``base_lr`` over ``warmup_steps``,
    then cosine decay to ``min_lr_ratio * base_lr`` at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return base_lr * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's learning rate to ``lr`` times the group's ``lr_scale`` (1 if absent)."""
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)


def sample_order(n: int, seed: int, start: int, count: int) -> list[int]:
    """Items ``start .. start+count-1`` of an endless stream of seeded epochs over ``n`` items.

    Epoch ``e`` is a permutation drawn from ``seed`` and ``e``, so the stream depends on nothing but (seed, n):
    a resumed run continues it exactly.
    """
    out: list[int] = []
    pos = start
    while len(out) < count:
        epoch, offset = divmod(pos, n)
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        perm = torch.randperm(n, generator=g).tolist()
        take = perm[offset : offset + count - len(out)]
        out.extend(take)
        pos += len(take)
    return out


def find_videos(folder: str | os.PathLike, field: str = "videos") -> list[Path]:
    """Every video file (``*.mp4``, ``*.mkv``, ``*.avi``, ``*.webm``) under ``folder``, recursively, sorted."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise SpecError(
            f"{field}={str(folder)!r} is not a folder; expected a folder of videos ({', '.join(VIDEO_SUFFIXES)})"
        )
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if not found:
        raise SpecError(
            f"{field}={str(folder)!r} holds no videos; expected files ending in {', '.join(VIDEO_SUFFIXES)}"
        )
    return found


def pad_frames(px: Tensor, stride: int, dim: int = 0) -> Tensor:
    """Repeat the last frame along ``dim`` until the count is a multiple of ``stride`` (what the student does)."""
    T = px.shape[dim]
    extra = (-T) % stride
    if not extra:
        return px
    last = px.narrow(dim, T - 1, 1)
    return torch.cat([px, *([last] * extra)], dim=dim)


def param_groups(named: Iterable[tuple[str, torch.nn.Parameter]], weight_decay: float, lr_scale: float = 1.0):
    """AdamW groups: weight decay on matrices/kernels (ndim >= 2), none on biases, norms and scalars."""
    decay, no_decay = [], []
    for _, p in named:
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay, "lr_scale": lr_scale},
        {"params": no_decay, "weight_decay": 0.0, "lr_scale": lr_scale},
    ]
    return [g for g in groups if g["params"]]


# ----------------------------------------------------------------------------------------------------------
# Config records


def config_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-able dict of a (nested) dataclass config."""
    raw = asdict(cfg) if is_dataclass(cfg) else dict(cfg)
    return json.loads(json.dumps(raw, default=str))


def config_mismatch(saved: dict[str, Any], cfg: Any, fixed: Sequence[str]) -> list[str]:
    """The ``fixed`` fields whose value in ``cfg`` differs from the checkpoint's ``saved`` config."""
    now = config_dict(cfg)
    return [
        f"{k} ({saved.get(k)!r} in the checkpoint, {now.get(k)!r} now)" for k in fixed if saved.get(k) != now.get(k)
    ]


def dataclass_names(cls) -> list[str]:
    return [f.name for f in fields(cls)]


# ----------------------------------------------------------------------------------------------------------
# Optimizer state and RNG as flat tensors + JSON


def optimizer_to_flat(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """(tensors, meta): the optimizer's state dict with every tensor under ``state.<param>.<key>``."""
    sd = optimizer.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for key, val in st.items():
            if isinstance(val, Tensor):
                tensors[f"state.{pid}.{key}"] = val.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(pid), {})[key] = val
    groups = json.loads(json.dumps(sd["param_groups"], default=lambda v: list(v) if isinstance(v, tuple) else str(v)))
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_flat(optimizer: torch.optim.Optimizer, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """Inverse of :func:`optimizer_to_flat` (the optimizer must have the same parameter layout)."""
    state: dict[int, dict[str, Any]] = {}
    for name, t in tensors.items():
        if not name.startswith("state."):
            continue
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = t
    for pid, vals in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(vals)
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def rng_to_flat() -> dict[str, Tensor]:
    out = {"rng.torch": torch.get_rng_state().clone()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            out[f"rng.cuda.{i}"] = s.clone()
    return out


def rng_from_flat(tensors: dict[str, Tensor]) -> None:
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"].to(torch.uint8))
    cuda = sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    if cuda and torch.cuda.is_available():
        states = [tensors[k].to(torch.uint8) for k in cuda]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)


# ----------------------------------------------------------------------------------------------------------
# Checkpoint folders


def checkpoint_dir(out: str | os.PathLike, step: int) -> Path:
    return Path(out) / CHECKPOINTS / f"step-{step:08d}"


def latest_checkpoint(out: str | os.PathLike) -> Path | None:
    """The complete checkpoint (``state.json`` present) with the highest step under ``<out>/checkpoints``."""
    root = Path(out) / CHECKPOINTS
    if not root.is_dir():
        return None
    done = [p for p in root.glob("step-*") if (p / STATE_FILE).is_file() and p.name[5:].isdigit()]
    return max(done, key=lambda p: int(p.name[5:]), default=None)


def write_checkpoint(out: str | os.PathLike, step: int, write_weights, optimizer, state: dict[str, Any], keep: int = 2):
    """Write ``<out>/checkpoints/step-<step>/`` atomically; ``write_weights(folder)`` writes the weight files.

    The folder is written under a temporary name and renamed, with ``state.json`` last; older checkpoints beyond
    the newest ``keep`` are removed (``keep <= 0`` keeps all).
    """
    from safetensors.torch import save_file

    final = checkpoint_dir(out, step)
    tmp = final.with_name(final.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write_weights(tmp)
    tensors, meta = optimizer_to_flat(optimizer)
    tensors.update(rng_to_flat())
    save_file(tensors, str(tmp / OPTIMIZER_FILE))
    record = {**state, "step": step, "optimizer": meta, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    (tmp / STATE_FILE).write_text(json.dumps(record, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    if keep > 0:
        root = final.parent
        done = sorted((p for p in root.glob("step-*") if p.name[5:].isdigit()), key=lambda p: int(p.name[5:]))
        for old in done[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def read_checkpoint(folder: Path, optimizer) -> dict[str, Any]:
    """Restore the optimizer and RNG states from ``folder``; returns its ``state.json`` record."""
    from safetensors.torch import load_file

    record = json.loads((folder / STATE_FILE).read_text())
    tensors = load_file(str(folder / OPTIMIZER_FILE))
    optimizer_from_flat(optimizer, tensors, record["optimizer"])
    rng_from_flat(tensors)
    return record


def save_tensors(tensors: dict[str, Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """safetensors of detached, contiguous CPU copies (atomic: written to a temporary file, then renamed)."""
    from safetensors.torch import save_file

    clean = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    save_file(clean, str(tmp), metadata=metadata)
    tmp.replace(path)


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    tmp.replace(path)


def check_training_fields(cfg) -> None:
    """Validate the optimisation, schedule and checkpointing fields CTDConfig and LMAConfig share (SpecError)."""
    check_int("steps", cfg.steps, 1)
    check_int("batch_size", cfg.batch_size, 1)
    check_int("grad_accum", cfg.grad_accum, 1)
    check_float("lr", cfg.lr, 0.0, strict=True)
    check_float("weight_decay", cfg.weight_decay, 0.0)
    check_int("warmup_steps", cfg.warmup_steps, 0)
    require(cfg.schedule in ("cosine", "constant"), "schedule", cfg.schedule, "cosine, constant")
    check_float("min_lr_ratio", cfg.min_lr_ratio, 0.0, maximum=1.0)
    check_float("grad_clip", cfg.grad_clip, 0.0)
    require(cfg.precision in ("auto", "bf16", "fp32"), "precision", cfg.precision, "auto, bf16, fp32")
    require(isinstance(cfg.device, str), "device", cfg.device, "auto, cpu, cuda, cuda:N")
    check_int("seed", cfg.seed, 0)
    check_int("checkpoint_every", cfg.checkpoint_every, 0)
    check_int("keep_checkpoints", cfg.keep_checkpoints, 0)
    for name in ("resume", "cache_clips"):
        require(isinstance(getattr(cfg, name), bool), name, getattr(cfg, name), "true, false")
    check_int("workers", cfg.workers, 0)
