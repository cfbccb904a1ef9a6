"""Compressed Token Distillation: real learning on generated videos, exact resume, the teacher-target cache,
config errors. Tiny teacher (InternVL3 "tiny": 112 px, 8x8 ViT grid, width 32) and StudentConfig.tiny()."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from liteframe_bench import TokenGrid, create
from liteframe_bench.backends.internvl import InternVL3
from liteframe_bench.errors import SpecError
from liteframe_bench.methods.liteframe import train_utils as tu
from liteframe_bench.methods.liteframe.ctd import CTDConfig, train_ctd
from liteframe_bench.methods.liteframe.student import StudentConfig, load_student
from liteframe_bench.video import load_video, write_video

FRAMES = 8


def blocks_video(path, frames: int, size: int, seed: int):
    """A seeded video: a 4x4 mosaic of random colours with a square sliding over it (videos differ a lot)."""
    rng = np.random.default_rng(seed)
    img = np.kron(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), np.ones((size // 4, size // 4, 1), np.uint8))
    video = np.repeat(img[None], frames, 0)
    side, colour = size // 4, rng.integers(0, 256, 3, dtype=np.uint8)
    for t in range(frames):
        x = (t * 5 + seed * 13) % (size - side)
        video[t, 10 : 10 + side, x : x + side] = colour
    return write_video(path, video, fps=8)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("ctd_videos")
    (root / "sub").mkdir()
    for i in range(4):
        blocks_video(root / ("sub" if i == 3 else "") / f"clip{i}.{'mkv' if i == 2 else 'mp4'}", 12, 112, i)
    (root / "notes.txt").write_text("not a video")
    return root


@pytest.fixture(scope="module")
def teacher():
    return InternVL3.load("tiny")


class CountingTeacher:
    """The teacher with its vision calls counted (frames encoded)."""

    def __init__(self, teacher):
        self.inner, self.frames = teacher, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def vision(self, pixel_values, need=frozenset()):
        self.frames += pixel_values.shape[0]
        return self.inner.vision(pixel_values, need)


def cfg(folder, out, **kw) -> CTDConfig:
    base = dict(
        videos=str(folder),
        out=str(out),
        frames=FRAMES,
        student="tiny",
        batch_size=2,
        lr=3e-3,
        weight_decay=0.0,
        warmup_steps=5,
        checkpoint_every=0,
        cache_clips=True,
    )
    return CTDConfig(**{**base, **kw})


def test_ctd_learns_the_wap_targets(videos, teacher, tmp_path):
    counted = CountingTeacher(teacher)
    out = tmp_path / "run"
    res = train_ctd(cfg(videos, out, steps=40), progress=False, teacher=counted)
    losses = res["losses"]
    assert len(losses) == 40 and res["steps"] == 40 and res["finished"]
    targets = torch.stack([load_file(str(f))["target"] for f in sorted((out / "targets").rglob("*.safetensors"))])
    assert targets.shape == (4, 2, 4, 4, 32)  # 4 videos, 8 frames / 4, 8x8 grid / 2, teacher width
    # better than the best clip-independent guess (the per-position mean target), not just below the start
    mean_guess = float(((targets - targets.mean(0)) ** 2).mean())
    final = float(np.mean(losses[-5:]))
    assert final < 0.25 * losses[0], (losses[0], final)
    assert final < 0.25 * mean_guess, (mean_guess, final)
    # the cache: each clip went through the teacher once (epoch 1), then was read back (epochs 2..20)
    assert counted.frames == 4 * FRAMES and res["teacher_clips"] == 4 and res["cache_hits"] == 40 * 2 - 4
    # outputs: the student (safetensors) loads back; the record holds the history
    st = load_student(out / "student")
    assert (out / "student" / "model.safetensors").is_file() and st.cfg == StudentConfig.tiny()
    record = json.loads((out / "ctd.json").read_text())
    assert record["target_shape"] == [2, 4, 4, 32] and record["losses"] == losses
    assert res["steps_per_s"] > 0 and res["clips_per_s"] > 0


def test_targets_are_wap_of_the_teacher_on_padded_frames(videos, teacher, tmp_path):
    """frames=6 is padded to 8 by repeating the last frame, as the student does; the cached target equals
    wap:ratio=16 applied to the teacher's grid and CLS logits."""
    out = tmp_path / "run"
    train_ctd(cfg(videos, out, frames=6, steps=1, batch_size=4), progress=False, teacher=teacher)
    video = sorted(videos.glob("*.mp4"))[0]
    px = tu.pad_frames(load_video(video, 6, image_size=112).pixel_values[0], 4)
    assert px.shape[0] == 8 and torch.equal(px[6], px[5]) and torch.equal(px[7], px[5])
    with torch.no_grad():
        vis = teacher.vision(px, need={"cls_attn"})
        want = create("wap:ratio=16")(TokenGrid(vis.grid[None], cls_attn=vis.cls_attn[None])).as_grid()[0]
    got = [load_file(str(f)) for f in (out / "targets").rglob("*.safetensors")]
    assert len(got) == 4
    match = [g["target"] for g in got if torch.allclose(g["target"], want, atol=1e-5)]
    assert len(match) == 1 and want.shape == (2, 4, 4, 32)


def test_resume_continues_exactly(videos, teacher, tmp_path):
    kw = dict(steps=8, grad_accum=2, warmup_steps=2, weight_decay=0.05)
    straight = train_ctd(cfg(videos, tmp_path / "a", **kw), progress=False, teacher=teacher)
    half = train_ctd(cfg(videos, tmp_path / "b", **kw), progress=False, teacher=teacher, stop_after=4)
    assert half["steps"] == 4 and not half["finished"] and half["student"] is None
    ckpt = tmp_path / "b" / "checkpoints" / "step-00000004"
    state = json.loads((ckpt / "state.json").read_text())
    assert state["step"] == 4 and state["scheduler"]["step"] == 4 and len(state["losses"]) == 4
    opt = load_file(str(ckpt / "optimizer.safetensors"))
    assert any(k.endswith(".exp_avg_sq") for k in opt) and "rng.torch" in opt
    assert not [p for p in (tmp_path / "b").rglob("*") if p.suffix in (".pt", ".pth", ".bin", ".pkl")]
    rest = train_ctd(cfg(videos, tmp_path / "b", **kw), progress=False, teacher=teacher)
    assert rest["start_step"] == 4 and rest["finished"]
    np.testing.assert_allclose(rest["losses"], straight["losses"], rtol=1e-5, atol=1e-7)
    a = load_file(str(tmp_path / "a" / "student" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "student" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
    # init: a new run starts from a saved student (a vanishing lr leaves it as it was)
    train_ctd(
        cfg(videos, tmp_path / "c", steps=1, lr=1e-12, warmup_steps=0, init=str(tmp_path / "a" / "student")),
        progress=False,
        teacher=teacher,
    )
    c = load_file(str(tmp_path / "c" / "student" / "model.safetensors"))
    for k in a:
        torch.testing.assert_close(c[k], a[k], rtol=1e-5, atol=1e-6, msg=k)
    # a finished run resumed again does nothing; a changed optimisation setting refuses to resume
    again = train_ctd(cfg(videos, tmp_path / "b", **kw), progress=False, teacher=teacher)
    assert again["start_step"] == 8 and again["teacher_clips"] == 0
    with pytest.raises(SpecError, match="cannot resume.*lr"):
        train_ctd(cfg(videos, tmp_path / "b", **{**kw, "lr": 1e-3}), progress=False, teacher=teacher)
    with pytest.raises(SpecError, match="out=.*resume"):
        train_ctd(cfg(videos, tmp_path / "b", **kw, resume=False), progress=False, teacher=teacher)


def test_target_cache_keys_and_reuse(videos, teacher, tmp_path):
    cache = tmp_path / "cache"
    counted = CountingTeacher(teacher)
    train_ctd(cfg(videos, tmp_path / "a", steps=2, cache_dir=str(cache)), progress=False, teacher=counted)
    assert counted.frames == 4 * FRAMES  # 4 clips in 2 steps of 2, all new
    counted.frames = 0
    res = train_ctd(cfg(videos, tmp_path / "b", steps=2, cache_dir=str(cache)), progress=False, teacher=counted)
    assert counted.frames == 0 and res["cache_hits"] == 4  # another run shares the cache
    # a touched video, another frame count or another wap spec are other keys
    victim = sorted(videos.glob("*.mp4"))[0]
    st = victim.stat()
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    try:
        res = train_ctd(cfg(videos, tmp_path / "c", steps=2, cache_dir=str(cache)), progress=False, teacher=counted)
        assert res["teacher_clips"] == 1 and res["cache_hits"] == 3
    finally:
        os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    res = train_ctd(
        cfg(videos, tmp_path / "d", steps=2, cache_dir=str(cache), wap="wap:ratio=16,heads=weights"),
        progress=False,
        teacher=counted,
    )
    assert res["teacher_clips"] == 4
    res = train_ctd(cfg(videos, tmp_path / "e", steps=2, cache_targets=False), progress=False, teacher=counted)
    assert res["teacher_clips"] == 4 and res["cache_hits"] == 0 and not (tmp_path / "e" / "targets").exists()


@pytest.mark.parametrize(
    "field, value",
    [
        ("frames", 0),
        ("steps", 0),
        ("batch_size", 0),
        ("grad_accum", 0),
        ("lr", -1.0),
        ("weight_decay", -0.1),
        ("warmup_steps", -1),
        ("schedule", "linear"),
        ("precision", "fp8"),
        ("wap", "tome:ratio=16"),
        ("wap", "wap:ratio=3"),
        ("student", "huge"),
        ("videos", ""),
        ("checkpoint_every", -1),
        ("cache_targets", "yes"),
        ("init", "/nonexistent/student"),
    ],
)
def test_config_errors_name_the_field(field, value, videos, tmp_path):
    with pytest.raises(SpecError, match=field):
        cfg(videos, tmp_path, **{field: value})


def test_run_errors(videos, teacher, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.txt").write_text("x")
    with pytest.raises(SpecError, match="videos=.*no videos"):
        train_ctd(cfg(tmp_path / "empty", tmp_path / "o"), progress=False, teacher=teacher)
    with pytest.raises(SpecError, match="videos=.*not a folder"):
        train_ctd(cfg(tmp_path / "missing", tmp_path / "o"), progress=False, teacher=teacher)
    with pytest.raises(SpecError, match="student output grid"):  # a 448 px student against the 112 px teacher
        train_ctd(cfg(videos, tmp_path / "o", student="default"), progress=False, teacher=teacher)
    with pytest.raises(SpecError, match="stop_after"):
        train_ctd(cfg(videos, tmp_path / "o"), progress=False, teacher=teacher, stop_after=0)


def test_schedule_and_data_order():
    lrs = [tu.lr_at(s, 1.0, 4, 20) for s in range(20)]
    assert lrs[:4] == [0.25, 0.5, 0.75, 1.0]
    assert lrs[4] == 1.0 and all(a > b for a, b in zip(lrs[4:], lrs[5:], strict=False)) and lrs[-1] < 0.02
    assert tu.lr_at(20, 1.0, 4, 20, min_lr_ratio=0.1) == pytest.approx(0.1)
    whole = tu.sample_order(5, 3, 0, 23)
    assert whole == tu.sample_order(5, 3, 0, 7) + tu.sample_order(5, 3, 7, 16)
    assert all(sorted(whole[i : i + 5]) == list(range(5)) for i in range(0, 20, 5))
    assert whole[:5] != whole[5:10] or whole[5:10] != whole[10:15]
