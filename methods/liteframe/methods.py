"""Methods ``liteframe-ctd`` and ``liteframe``: the LiteFrame student as the InternVL3 backbone's vision encoder.

InternVL3 only (``train_utils.STUDENT_FAMILIES``): on another family (Qwen2.5-VL) binding raises a SpecError that
names what differs (class token, temporal patches, merger).

The student replaces InternViT *and* the post-hoc reducer: it outputs the compressed grid [T/4, 16, 16, 1024]
(the teacher's ViT grid after 16x WAP), which goes through the teacher's pixel shuffle + projector into the
LLM. Stages: ``vision`` = the student, ``project`` = pixel shuffle + projector (no ``reduce``).

- ``liteframe-ctd``: the student after Compressed Token Distillation; frozen LLM, the teacher's projector
  (LiteFrame Sec. 5.2.2: the fair comparison with training-free post-hoc reducers).
- ``liteframe``: the student after Language Model Adaptation, with its LoRA adapter (and projector, if LMA
  trained one). The adapter is attached unmerged and switched on only inside this method's ``generate``, so
  other methods sharing the backbone in the same run keep the published LLM.

``checkpoint=random`` builds an untrained student sized for the backbone: for latency only (its answers are
meaningless). Checkpoints are safetensors folders written by ``lfbench train ctd`` / ``lfbench train lma``.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor

from liteframe_bench import register_method
from liteframe_bench.errors import SpecError
from liteframe_bench.pipeline import VideoLLM, _Tokens
from liteframe_bench.stages import StageClock

REFERENCE = "LiteFrame paper (Sec. 4, 5.2); lfbench's own implementation (no public code)"


def _random_student(backbone):
    from liteframe_bench.methods.liteframe.student import LiteFrameStudent, StudentConfig

    tiny = (
        backbone.image_size == StudentConfig.tiny().image_size
        and backbone.vision_width == StudentConfig.tiny().out_width
    )
    cfg = (
        StudentConfig.tiny() if tiny else StudentConfig(image_size=backbone.image_size, out_width=backbone.vision_width)
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return LiteFrameStudent(cfg)


@dataclass
class _StudentMethod(VideoLLM):
    """Shared encode path of the two LiteFrame methods (not registered itself)."""

    checkpoint: str | None = field(
        default=None,
        metadata={
            "help": "out folder of lfbench train ctd|lma, or 'random' (untrained: latency only); "
            "default: the zoo's student of the mini model",
            "locator": True,  # results and figures name the method without its folder (checkpoint=random kept)
            "keywords": ("random",),
        },
    )
    reference = REFERENCE
    #: The zoo checkpoint used when ``checkpoint`` is not given and the backbone is the zoo's ``mini`` model.
    zoo_checkpoint: ClassVar[str] = ""

    def _checkpoint_folder(self, backbone) -> str:
        """``checkpoint``, or the zoo's student of the backbone (only the zoo's own ``mini`` has one)."""
        if self.checkpoint is not None:
            return self.checkpoint
        if getattr(backbone, "zoo_name", None) == "mini":
            from liteframe_bench import zoo

            return str(zoo.path(self.zoo_checkpoint))
        raise SpecError(
            f"method {type(self).name!r} needs checkpoint=DIR (an out folder of lfbench train) or "
            "checkpoint=random (an untrained student, for latency only); only --model mini has a default "
            "(the zoo's trained student)"
        )

    def load_student(self, backbone):
        raise NotImplementedError

    def bind(self, backbone, reducer=None, at=None, tiles=(1, 1)):
        if reducer is not None:
            raise SpecError(f"method {type(self).name!r} compresses inside its encoder; it takes no reducer")
        from liteframe_bench.methods.liteframe.train_utils import require_student_family

        require_student_family(backbone, f"method {type(self).name!r}")
        super().bind(backbone, tiles=tiles)
        self.folder = self._checkpoint_folder(backbone)
        student = _random_student(backbone) if self.folder == "random" else self.load_student(backbone)
        cfg = student.cfg
        if cfg.image_size != backbone.image_size or cfg.out_width != backbone.vision_width:
            raise SpecError(
                f"student (image {cfg.image_size}, out width {cfg.out_width}) does not fit the backbone (image "
                f"{backbone.image_size}, vision width {backbone.vision_width})"
            )
        h, w = cfg.output_hw
        if h % backbone.shuffle or w % backbone.shuffle:
            raise SpecError(f"student output grid {h}x{w} is not divisible by the pixel shuffle ({backbone.shuffle})")
        self.student = student.to(device=backbone.device, dtype=backbone.dtype).eval()
        return self

    @property
    def ordered(self) -> bool:
        return True

    def visual_tokens(self, px: Tensor, clock: StageClock) -> _Tokens:
        """[tiles, T, 3, S, S] -> student grid [tiles, T', h, w, C] -> projected tokens with (t, y, x) positions."""
        bb, s = self.backbone, self.backbone.shuffle
        n_tiles = px.shape[0]
        with clock.stage("vision"):
            grid = self.student(px.to(device=bb.device, dtype=bb.dtype)).grid
        Tn, h, w = grid.shape[1:4]
        with clock.stage("project"):
            proj = self.project(grid.flatten(0, 1)).unflatten(0, (n_tiles, Tn))  # [tiles, T', h/s, w/s, D]
        stride = self.student.temporal_stride()
        t, y, x = torch.meshgrid(torch.arange(Tn) * stride, torch.arange(h // s), torch.arange(w // s), indexing="ij")
        pos = torch.stack([t, y, x], -1).reshape(1, -1, 3).expand(n_tiles, -1, -1).to(proj.device)
        n = pos.shape[1]
        size = torch.full((n_tiles, n), stride * s * s, dtype=torch.long, device=proj.device)
        return _Tokens(proj.reshape(n_tiles, n, -1), pos, size, None)

    def project(self, grid: Tensor) -> Tensor:
        return self.backbone.project(grid)


@register_method("liteframe-ctd")
@dataclass
class LiteFrameCTD(_StudentMethod):
    """LiteFrame student after CTD in place of InternViT + WAP: frozen LLM, the teacher's projector."""

    zoo_checkpoint = "mini-ctd"

    def load_student(self, backbone):
        from liteframe_bench.methods.liteframe.student import load_student

        folder = Path(self.folder)
        folder = folder / "student" if (folder / "student" / "config.json").is_file() else folder
        if not (folder / "config.json").is_file():
            raise SpecError(
                f"checkpoint={self.folder!r}: no student/config.json or config.json there "
                "(expected an out folder of lfbench train ctd)"
            )
        return load_student(folder)


@register_method("liteframe")
@dataclass
class LiteFrame(_StudentMethod):
    """LiteFrame after LMA: the adapted student, LoRA on the LLM (enabled only for this method), its projector."""

    zoo_checkpoint = "mini-lma"

    def load_student(self, backbone):
        import copy

        from peft import PeftModel
        from safetensors.torch import load_file

        from liteframe_bench.methods.liteframe import lma
        from liteframe_bench.methods.liteframe.student import load_student

        folder = Path(self.folder)
        for need in (folder / lma.STUDENT_DIR / "config.json", folder / lma.ADAPTER_DIR / "adapter_config.json"):
            if not need.is_file():
                raise SpecError(
                    f"checkpoint={self.folder!r}: {need.relative_to(folder)} missing (expected an "
                    "out folder of lfbench train lma)"
                )
        inner = backbone.model.model
        self._peft = PeftModel.from_pretrained(
            inner.language_model, str(folder / lma.ADAPTER_DIR), adapter_name=f"liteframe-{id(self)}"
        )
        self._peft.disable_adapter_layers()  # the shared backbone stays the published LLM outside this method
        self._projector = None
        if (folder / lma.PROJECTOR_FILE).is_file():
            self._projector = copy.deepcopy(inner.multi_modal_projector)
            dtype = next(self._projector.parameters()).dtype
            self._projector.load_state_dict(
                {k: v.to(dtype) for k, v in load_file(str(folder / lma.PROJECTOR_FILE)).items()}
            )
        return load_student(folder / lma.STUDENT_DIR)

    @contextmanager
    def _adapter(self):
        peft = getattr(self, "_peft", None)
        if peft is None:
            yield
            return
        peft.enable_adapter_layers()
        try:
            yield
        finally:
            peft.disable_adapter_layers()

    def project(self, grid: Tensor) -> Tensor:
        if getattr(self, "_projector", None) is None:
            return self.backbone.project(grid)
        return self._projector(self.backbone.shuffle_grid(grid))

    def generate(self, tokens, prompt, max_new_tokens=16, **kwargs):
        with self._adapter():
            return super().generate(tokens, prompt, max_new_tokens, **kwargs)
