"""``lowres``: InternVL3 on lower-resolution frames, so the vision encoder itself runs on fewer patches.

Every post-hoc reducer runs the full ViT and drops or merges tokens afterwards; this baseline shrinks the input
instead, which cuts the vision FLOPs too (by the square of the side, attention by its fourth power) and gives the
LLM ``(side / 28)^2`` tokens per frame. VTC-Bench found such plain downsampling ahead of many reducers.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from liteframe_bench import register_method, registry
from liteframe_bench.errors import SpecError
from liteframe_bench.interfaces import TokenGrid
from liteframe_bench.pipeline import VideoLLM
from liteframe_bench.reduction import require
from liteframe_bench.stages import StageClock

#: Token compression ratios ``lowres`` offers: squares, so the side shrinks by an integer factor.
RATIOS = (1, 4, 16, 64, 256)

_REF = (
    "VTC-Bench (Liao et al., 'Are We Using the Right Benchmark: An Evaluation Framework for Visual Token "
    "Compression Methods', arXiv:2510.07143; Chenfei-Liao/VTC-Bench@983e443, README 'Run the downsampled "
    "methods'); position-embedding interpolation: transformers' InternVLVisionEmbeddings.interpolate_pos_encoding"
)


def allowed_sides(image_size: int, patch: int, shuffle: int) -> list[int]:
    """Input sides the backbone can take: multiples of ``patch * shuffle`` (an even patch grid for the pixel
    shuffle) up to its own ``image_size``: 28, 56, ..., 448 for InternVL3."""
    step = patch * shuffle
    return list(range(step, image_size + 1, step))


@register_method("lowres")
@dataclass
class LowRes(VideoLLM):
    """InternVL3 on frames resized to fewer pixels: the ViT runs on fewer patches (interpolated position embeddings).

    Algorithm: the decoded frames (one 448 px tile each for InternVL3) are resized to ``side x side`` pixels
    (bicubic with antialiasing, as InternVL's own preprocessing resizes); the InternViT runs on them, its learned
    448 px position embeddings resized to the ``side / 14`` patch grid by transformers' own
    ``InternVLVisionEmbeddings.interpolate_pos_encoding`` (bicubic, class token's kept; the embeddings call it
    whenever the input differs from the configured size); then InternVL's pixel shuffle and projector as
    published. ``side = image_size / sqrt(ratio)`` (``ratio=16``: 448 -> 112 px, 16 tokens per frame instead of
    256, the same count as the 16x reducers) or ``size`` in pixels, which must be a multiple of 28
    (patch 14 x pixel shuffle 2) no larger than the model's image size: 28, 56, ..., 448.

    Deviations from VTC-Bench, which downsamples the original image before Qwen2-VL's native-resolution
    processor: InternVL3 takes fixed-size tiles, so the frame is first decoded at 448 px (as every method here)
    and then resized, a second resampling; the resize runs on normalised pixels, which equals resizing the raw
    pixels (the interpolation weights sum to one) up to uint8 rounding; the ViT sees position embeddings it was
    not trained with at that size (interpolated, not learned). The resize is timed in the ``vision`` stage.

    Other backbones: the same resize, then the backbone's own vision tower (:meth:`Backbone.vision`). Qwen2.5-VL's
    ViT takes any multiple of 28 px natively (2D rotary positions, no table to interpolate), as its processor's
    ``min_pixels``/``max_pixels`` resizing does.
    """

    ratio: float | None = field(
        default=16.0, metadata={"help": f"token compression ratio; one of {list(RATIOS)} (side / sqrt(ratio))"}
    )
    size: int | None = field(
        default=None, metadata={"help": "input side in pixels instead of ratio: a multiple of 28, at most 448"}
    )
    reference = _REF

    def __post_init__(self) -> None:
        if self.size is not None:
            require(isinstance(self.size, int) and self.size >= 1, "size", self.size, "a positive side in pixels")
            return
        require(
            self.ratio is not None and float(self.ratio).is_integer() and int(self.ratio) in RATIOS,
            "ratio",
            self.ratio,
            f"one of {list(RATIOS)} (or give size=PIXELS)",
        )

    def input_side(self, image_size: int, patch: int, shuffle: int) -> int:
        """The side the ViT runs on for a backbone of ``image_size`` px; SpecError naming the allowed values."""
        sides = allowed_sides(image_size, patch, shuffle)
        if self.size is not None:
            side, why = self.size, f"size={self.size}"
        else:
            k = math.isqrt(int(self.ratio))
            side, why = image_size // k, f"ratio={self.ratio:g} ({image_size} px / {k})"
            if image_size % k:
                side = -1
        if side not in sides:
            ratios = [r for r in RATIOS if image_size % math.isqrt(r) == 0 and image_size // math.isqrt(r) in sides]
            raise SpecError(
                f"lowres {why} gives no valid input side for this {image_size} px model; allowed: size in {sides} "
                f"(multiples of patch {patch} x pixel shuffle {shuffle}) or ratio in {ratios}"
            )
        return side

    def bind(self, backbone, reducer=None, at=None, tiles=(1, 1)):
        if reducer is not None:
            raise SpecError("method 'lowres' shrinks the input instead of reducing tokens; it takes no reducer")
        super().bind(backbone, tiles=tiles)
        self.side = self.input_side(backbone.image_size, backbone.patch_size, backbone.shuffle)
        return self

    def visual_tokens(self, px: Tensor, clock: StageClock):
        """[tiles, T, 3, S, S] -> resized to ``side`` -> the backbone's ViT -> merge + projector, all tokens kept."""
        bb = self.backbone
        n_tiles = px.shape[0]
        with clock.stage("vision"):
            images = px.flatten(0, 1).to(device=bb.device, dtype=torch.float32)
            if images.shape[-1] != self.side or images.shape[-2] != self.side:
                images = torch.nn.functional.interpolate(
                    images, size=(self.side, self.side), mode="bicubic", antialias=True, align_corners=False
                )
            grid = bb.vision(images.to(bb.dtype)).grid  # [tiles * T', side/p, side/p, C]
        with clock.stage("project"):
            tokens = bb.project(grid).unflatten(0, (n_tiles, -1))
        return registry.create("identity")(TokenGrid(tokens))

    def token_grid(self, frames: int) -> tuple[int, int, int]:
        bb = self.backbone
        side = self.side // (bb.patch_size * bb.shuffle)
        return bb.time_steps(frames), side, side

    def cost_geometry(self, geo):
        """The cost model's :class:`~liteframe_bench.cost.Geometry` of the ViT input this method feeds."""
        side = self.input_side(geo.image, geo.patch, round(1 / geo.ratio))
        return dataclasses.replace(geo, image=side, grid=side // geo.patch)
