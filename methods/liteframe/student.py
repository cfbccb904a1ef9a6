"""The LiteFrame student: a compact spatio-temporal ViT that outputs the teacher's compressed token grid.

Architecture (paper, sections 4.1 and 5.1; defaults = ViT-B/14 at 448 px)
-------------------------------------------------------------------------
``pixel_values [B, T, 3, S, S]`` (ImageNet-normalised, like InternVL's processor)

1. **Pad** ``T`` up to a multiple of the total temporal stride (4 by default) by repeating the last frame;
   :attr:`StudentOutput.padded_frames` records how many frames were added.
2. **Patch embedding**: ``Conv2d(3, width, patch, stride=patch)`` per frame -> ``[B, T, g, g, width]``
   (``g = S / patch`` = 32), plus a **learned spatial position embedding** ``[g, g, width]`` (shared by all
   frames). There is no CLS token and no temporal position embedding: frame order reaches the network only
   through the zero-padded temporal convolutions, so any frame count runs.
3. ``depth`` **layers**, each (in this order):

   - a standard pre-norm ViT block applied per frame (frames folded into the batch):
     ``x = x + Attn(LN(x)); x = x + MLP(LN(x))`` (SDPA attention, GELU MLP, biases everywhere, LN eps 1e-6);
   - a **depth-wise 1D temporal convolution**, as a pre-norm residual branch
     ``x = x + DWConv1d_T(LN(x))`` (kernel ``temporal_kernel``, zero "same" padding, spatial positions folded
     into the batch), run only while the current temporal length is above 1 (the module exists in every
     layer listed in ``temporal_after``, default all; it is skipped at run time when ``T == 1``);
   - after the blocks listed in ``downsample_after`` (1-based), a **depth-wise strided spatio-temporal
     convolution** that shrinks the grid, also a normed branch beside a parameter-free shortcut:
     ``x = AvgPool3d_s(x) + DWConv3d_s(LN(x))`` with kernel = stride = ``s`` (non-overlapping windows, so a
     stride must divide the grid exactly).

   The convolution weights and biases of the temporal and downsampling branches start at **zero**, so at
   initialisation the student is a frame-wise ViT followed by average pooling: image-pretrained ViT-B weights
   can be loaded into the blocks without being disturbed, and distillation learns the temporal mixing.
4. Final ``LN(width)`` and ``Linear(width -> out_width)`` into the teacher's width (1024 for InternViT-300M),
   output ``[B, T', H', W', out_width]``.

**Assumption (stated, not from the paper):** our copy of the paper omits the strides of the two downsampling
convolutions (after blocks 4 and 8). We default to ``(t, h, w) = (2, 2, 2)`` then ``(2, 1, 1)``, so a 448 px
clip of ``T`` frames ends as a ``T/4 x 16 x 16`` grid: the teacher's ViT grid (32 x 32 per frame) after 16x
WAP ``(4, 2, 2)``. Projected to 1024 channels, that grid feeds InternVL's pixel-shuffle projector unchanged
(frozen-LLM mode). Strides, their positions, depth, width, heads and where temporal convolutions go are all
configurable in :class:`StudentConfig`.

At the default config the student has **87,149,824** parameters (paper: 87M; teacher InternViT-300M:
303,938,560) and costs 83.39 GFLOP per 448 px frame (any multiple of 4 frames; teacher: 723.59), ratio 0.115.

Weights are saved as safetensors plus ``config.json`` (:func:`save_student` / :func:`load_student`); never
pickle.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from liteframe_bench.errors import SpecError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "liteframe-student/1"


# ------------------------------------------------------------------------------------------------ config


@dataclass
class StudentConfig:
    """Hyper-parameters of :class:`LiteFrameStudent`; defaults are the paper's ViT-B/14 student at 448 px.

    ``downsample_after`` are 1-based block indices, each followed by a depth-wise strided convolution with the
    matching ``(t, h, w)`` entry of ``downsample_strides`` (kernel = stride). The paper's strides are missing
    from our copy: ``(2, 2, 2)`` then ``(2, 1, 1)`` is our assumption (output ``T/4 x 16 x 16``, the teacher's
    grid after 16x WAP). ``temporal_after``: blocks followed by a depth-wise temporal convolution (``None`` =
    every block; it only runs while the temporal length is above 1). ``out_width``: the teacher's width.
    """

    image_size: int = 448
    patch_size: int = 14
    width: int = 768
    depth: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    temporal_kernel: int = 3
    downsample_after: tuple[int, ...] = (4, 8)
    downsample_strides: tuple[tuple[int, int, int], ...] = ((2, 2, 2), (2, 1, 1))
    out_width: int = 1024
    temporal_after: tuple[int, ...] | None = None
    norm_eps: float = 1e-6
    in_channels: int = 3

    def __post_init__(self) -> None:
        self.downsample_after = _int_tuple("downsample_after", self.downsample_after)
        try:
            self.downsample_strides = tuple(tuple(s) for s in self.downsample_strides)
        except TypeError:
            raise SpecError(
                f"StudentConfig.downsample_strides={self.downsample_strides!r}; allowed: a sequence of (t, h, w) "
                "triples of positive integers, e.g. ((2, 2, 2), (2, 1, 1))"
            ) from None
        if self.temporal_after is not None:
            self.temporal_after = _int_tuple("temporal_after", self.temporal_after)
        self._validate()

    # -------------------------------------------------------------------------------------- validation

    def _validate(self) -> None:
        for name in (
            "image_size",
            "patch_size",
            "width",
            "depth",
            "heads",
            "temporal_kernel",
            "out_width",
            "in_channels",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SpecError(f"StudentConfig.{name}={v!r}; allowed: a positive integer")
        if self.image_size % self.patch_size:
            raise SpecError(
                f"StudentConfig.image_size={self.image_size} is not divisible by patch_size={self.patch_size}; "
                "allowed: a multiple of the patch size (448 with patch 14 -> 32x32 patches)"
            )
        if self.width % self.heads:
            raise SpecError(
                f"StudentConfig.heads={self.heads} does not divide width={self.width}; allowed: a divisor of width"
            )
        if (
            not isinstance(self.mlp_ratio, (int, float))
            or isinstance(self.mlp_ratio, bool)
            or self.mlp_ratio <= 0
            or self.mlp_width < 1
        ):
            raise SpecError(f"StudentConfig.mlp_ratio={self.mlp_ratio!r}; allowed: a positive number")
        if self.temporal_kernel % 2 == 0:
            raise SpecError(
                f"StudentConfig.temporal_kernel={self.temporal_kernel}; allowed: an odd positive integer "
                "('same' zero padding keeps the temporal length)"
            )
        if not isinstance(self.norm_eps, (int, float)) or not self.norm_eps > 0:
            raise SpecError(f"StudentConfig.norm_eps={self.norm_eps!r}; allowed: a positive number")
        da, ds = self.downsample_after, self.downsample_strides
        if len(da) != len(ds):
            raise SpecError(
                f"StudentConfig.downsample_after={da} has {len(da)} entries but downsample_strides={ds} has "
                f"{len(ds)}; allowed: one (t, h, w) stride per downsampling block"
            )
        if any(b < 1 or b > self.depth for b in da) or list(da) != sorted(set(da)):
            raise SpecError(
                f"StudentConfig.downsample_after={da}; allowed: strictly increasing 1-based block indices in "
                f"1..depth={self.depth}"
            )
        g = h = w = self.grid
        for i, s in enumerate(ds):
            if len(s) != 3 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in s):
                raise SpecError(
                    f"StudentConfig.downsample_strides[{i}]={s!r}; allowed: a (t, h, w) triple of positive integers"
                )
            if h % s[1] or w % s[2]:
                raise SpecError(
                    f"StudentConfig.downsample_strides[{i}]={s} does not divide the {h}x{w} token grid there "
                    f"(image_size {self.image_size} / patch {self.patch_size} = {g}, after the earlier strides); "
                    "allowed: spatial strides that divide the grid exactly"
                )
            h, w = h // s[1], w // s[2]
        if self.temporal_after is not None:
            ta = self.temporal_after
            if any(b < 1 or b > self.depth for b in ta) or len(set(ta)) != len(ta):
                raise SpecError(
                    f"StudentConfig.temporal_after={ta}; allowed: distinct 1-based block indices in "
                    f"1..depth={self.depth}, or None for every block"
                )

    # ------------------------------------------------------------------------------------ derived sizes

    @property
    def grid(self) -> int:
        """Patches per side of a frame (32 at 448 px, patch 14)."""
        return self.image_size // self.patch_size

    @property
    def mlp_width(self) -> int:
        return int(self.width * self.mlp_ratio)

    @property
    def temporal_stride(self) -> int:
        return math.prod(s[0] for s in self.downsample_strides)

    @property
    def output_hw(self) -> tuple[int, int]:
        h = w = self.grid
        for _, sh, sw in self.downsample_strides:
            h, w = h // sh, w // sw
        return h, w

    def temporal_blocks(self) -> tuple[int, ...]:
        """1-based blocks that carry a temporal convolution (run only while T > 1)."""
        return tuple(range(1, self.depth + 1)) if self.temporal_after is None else tuple(sorted(self.temporal_after))

    # ---------------------------------------------------------------------------------------- (de)serialise

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["downsample_after"] = list(self.downsample_after)
        d["downsample_strides"] = [list(s) for s in self.downsample_strides]
        if self.temporal_after is not None:
            d["temporal_after"] = list(self.temporal_after)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StudentConfig:
        known = {f.name for f in fields(cls) if not f.name.startswith("_")}
        unknown = sorted(set(d) - known - {"format"})
        if unknown:
            raise SpecError(f"StudentConfig: unknown field(s) {unknown}; allowed: {sorted(known)}")
        return cls(**{k: v for k, v in d.items() if k in known})

    @classmethod
    def tiny(cls) -> StudentConfig:
        """For tests: matches the tiny teacher (112 px, patch 14 -> 8x8 grid, width 32).

        6 layers of width 32 (2 heads), default strides after blocks 2 and 4: output ``T/4 x 4 x 4 x 32``.
        With 4 input frames, blocks 5-6 run at T = 1 (no temporal convolution there).
        """
        return cls(image_size=112, patch_size=14, width=32, depth=6, heads=2, downsample_after=(2, 4), out_width=32)


def _int_tuple(name: str, value: Any) -> tuple[int, ...]:
    try:
        out = tuple(value)
    except TypeError:
        raise SpecError(f"StudentConfig.{name}={value!r}; allowed: a sequence of positive integers") from None
    if any(isinstance(v, bool) or not isinstance(v, int) for v in out):
        raise SpecError(f"StudentConfig.{name}={value!r}; allowed: a sequence of positive integers")
    return out


# ------------------------------------------------------------------------------------------------ modules


class Attention(nn.Module):
    """Multi-head self-attention over the sequence dimension of ``[N, L, C]`` with torch's SDPA."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        N, L, C = x.shape
        q, k, v = self.qkv(x).reshape(N, L, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v)  # [N, heads, L, d]
        return self.proj(y.transpose(1, 2).reshape(N, L, C))


class Mlp(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm ViT block on ``[N, L, C]``: ``x + Attn(LN(x))`` then ``x + MLP(LN(x))``."""

    def __init__(self, width: int, heads: int, mlp_width: int, eps: float = 1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=eps)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=eps)
        self.mlp = Mlp(width, mlp_width)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TemporalConv(nn.Module):
    """``x + DWConv1d_T(LN(x))`` on ``[B, T, H, W, C]``: depth-wise over time, spatial positions in the batch."""

    def __init__(self, width: int, kernel: int = 3, eps: float = 1e-6):
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=eps)
        self.conv = nn.Conv1d(width, width, kernel, padding=kernel // 2, groups=width)
        nn.init.zeros_(self.conv.weight)  # identity at init (see the module docstring)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + temporal_conv(self.norm(x), self.conv)


def temporal_conv(x: Tensor, conv: nn.Conv1d) -> Tensor:
    """Apply ``conv`` (a ``Conv1d`` over time) to every spatial position of ``x [B, T, H, W, C]``.

    Mathematically ``conv`` on ``[B*H*W, C, T]`` (positions in the batch); computed as a ``(k, 1)`` 2D
    convolution on the channels-last view ``[B, C, T, H*W]`` of ``x``, which needs no transposing copy (on CPU
    about 6x faster than permuting to ``[B*H*W, C, T]``) and returns ``[B, T, H, W, C]`` contiguous.
    """
    B, T, H, W, C = x.shape
    y = x.reshape(B, T, H * W, C).permute(0, 3, 1, 2)  # [B, C, T, HW], channels-last strides
    k = conv.kernel_size[0]
    y = F.conv2d(y, conv.weight.unsqueeze(-1), conv.bias, padding=(k // 2, 0), groups=conv.groups)
    return y.permute(0, 2, 3, 1).reshape(B, T, H, W, -1)


class Downsample(nn.Module):
    """``AvgPool3d_s(x) + DWConv3d_s(LN(x))`` on ``[B, T, H, W, C]`` with kernel = stride = ``s = (t, h, w)``."""

    def __init__(self, width: int, stride: tuple[int, int, int], eps: float = 1e-6):
        super().__init__()
        self.stride = tuple(stride)
        self.norm = nn.LayerNorm(width, eps=eps)
        self.conv = nn.Conv3d(width, width, self.stride, stride=self.stride, groups=width)
        nn.init.zeros_(self.conv.weight)  # average pooling at init
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        xc = x.permute(0, 4, 1, 2, 3)  # [B, C, T, H, W]
        y = F.avg_pool3d(xc, self.stride, self.stride) + self.conv(self.norm(x).permute(0, 4, 1, 2, 3))
        return y.permute(0, 2, 3, 4, 1).contiguous()


class StudentLayer(nn.Module):
    """One layer: spatial ViT block per frame, optional temporal convolution (while T > 1), optional downsampling."""

    def __init__(self, cfg: StudentConfig, temporal: bool, stride: tuple[int, int, int] | None):
        super().__init__()
        self.spatial = Block(cfg.width, cfg.heads, cfg.mlp_width, cfg.norm_eps)
        self.temporal = TemporalConv(cfg.width, cfg.temporal_kernel, cfg.norm_eps) if temporal else None
        self.downsample = Downsample(cfg.width, stride, cfg.norm_eps) if stride is not None else None

    def forward(self, x: Tensor) -> Tensor:
        B, T, H, W, C = x.shape
        x = self.spatial(x.reshape(B * T, H * W, C)).reshape(B, T, H, W, C)
        if self.temporal is not None and T > 1:
            x = self.temporal(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return x


@dataclass
class StudentOutput:
    grid: Tensor  # [B, T', H', W', out_width]
    padded_frames: int  # frames added by repeating the last one (0 if T was divisible by the temporal stride)


class LiteFrameStudent(nn.Module):
    """The LiteFrame student encoder; see the module docstring for the architecture and its assumptions."""

    def __init__(self, cfg: StudentConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or StudentConfig()
        g = cfg.grid
        self.patch_embed = nn.Conv2d(cfg.in_channels, cfg.width, cfg.patch_size, stride=cfg.patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(g, g, cfg.width))
        strides = dict(zip(cfg.downsample_after, cfg.downsample_strides, strict=True))
        temporal = set(cfg.temporal_blocks())
        self.layers = nn.ModuleList(StudentLayer(cfg, i in temporal, strides.get(i)) for i in range(1, cfg.depth + 1))
        self.norm = nn.LayerNorm(cfg.width, eps=cfg.norm_eps)
        self.proj = nn.Linear(cfg.width, cfg.out_width)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """ViT-style init: truncated normal (std 0.02) linears and position embedding, zero biases, unit LN;
        temporal/downsampling convolutions zero (identity / average pooling at init)."""
        if self.pos_embed.is_meta:
            return
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.patch_embed.weight
        nn.init.trunc_normal_(w.view(w.shape[0], -1), std=math.sqrt(1.0 / w[0].numel()))
        nn.init.zeros_(self.patch_embed.bias)

    # ------------------------------------------------------------------------------------------- shapes

    def temporal_stride(self) -> int:
        """Product of the temporal strides (4 by default): frames are padded to a multiple of it."""
        return self.cfg.temporal_stride

    def padded_frames(self, frames: int) -> int:
        """Frames added by repeating the last one so ``frames`` divides by :meth:`temporal_stride`."""
        return -frames % self.temporal_stride()

    def output_grid(self, frames: int) -> tuple[int, int, int]:
        """``(T', H', W')`` of the output for ``frames`` input frames (after padding)."""
        if frames < 1:
            raise ValueError(f"frames={frames}; allowed: a positive integer")
        return (frames + self.padded_frames(frames)) // self.temporal_stride(), *self.cfg.output_hw

    def temporal_conv_active(self, frames: int) -> list[bool]:
        """Per layer: does its temporal convolution run for a clip of ``frames`` frames (present and T > 1)?"""
        T = frames + self.padded_frames(frames)
        active = []
        for layer in self.layers:
            active.append(layer.temporal is not None and T > 1)
            if layer.downsample is not None:
                T //= layer.downsample.stride[0]
        return active

    # ------------------------------------------------------------------------------------------ forward

    def forward(self, pixel_values: Tensor) -> StudentOutput:
        """``pixel_values [B, T, C, S, S]`` (ImageNet-normalised) -> :class:`StudentOutput`."""
        cfg = self.cfg
        if (
            pixel_values.dim() != 5
            or pixel_values.shape[2] != cfg.in_channels
            or tuple(pixel_values.shape[-2:]) != (cfg.image_size, cfg.image_size)
        ):
            raise ValueError(
                f"pixel_values of shape {tuple(pixel_values.shape)}; expected [B, T, {cfg.in_channels}, "
                f"{cfg.image_size}, {cfg.image_size}]"
            )
        B, T = pixel_values.shape[:2]
        pad = self.padded_frames(T)
        if pad:
            last = pixel_values[:, -1:]
            pixel_values = torch.cat([pixel_values, last.expand(B, pad, *last.shape[2:])], dim=1)
            T += pad
        x = self.patch_embed(pixel_values.flatten(0, 1))  # [B*T, C, g, g]
        x = x.permute(0, 2, 3, 1) + self.pos_embed  # [B*T, g, g, C]
        x = x.reshape(B, T, *x.shape[1:])
        for layer in self.layers:
            x = layer(x)
        return StudentOutput(grid=self.proj(self.norm(x)), padded_frames=pad)


# ------------------------------------------------------------------------------------------ save / load


def save_student(model: LiteFrameStudent, folder: str | Path) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``folder`` (created); returns the folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": FORMAT})
    (folder / CONFIG_NAME).write_text(json.dumps({"format": FORMAT, **model.cfg.to_json()}, indent=2) + "\n")
    return folder


def load_student(
    folder: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> LiteFrameStudent:
    """Rebuild a student from ``config.json`` and load ``model.safetensors`` (strict key and shape match)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg_path, w_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found; a saved student folder holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    cfg = StudentConfig.from_json(json.loads(cfg_path.read_text()))
    with torch.device("meta"):
        model = LiteFrameStudent(cfg)
    model.load_state_dict(load_file(str(w_path), device=str(device)), strict=True, assign=True)
    if dtype is not None:
        model = model.to(dtype=dtype)
    return model.eval()


# ------------------------------------------------------------------------------------------ accounting


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def student_flops(cfg: StudentConfig | None = None, frames: int = 8, batch: int = 1) -> int:
    """FLOPs of one forward over ``batch`` clips of ``frames`` frames, counted on the ``meta`` device with
    :func:`liteframe_bench.stages.flop_counter` (matmuls, convolutions, SDPA; norms and adds not counted)."""
    from liteframe_bench.stages import flop_counter

    cfg = cfg or StudentConfig()
    with torch.device("meta"):
        model = LiteFrameStudent(cfg)
        x = torch.empty(batch, frames, cfg.in_channels, cfg.image_size, cfg.image_size)
    with flop_counter() as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()


__all__ = [
    "LiteFrameStudent",
    "StudentConfig",
    "StudentOutput",
    "count_parameters",
    "load_student",
    "save_student",
    "student_flops",
    "temporal_conv",
]
