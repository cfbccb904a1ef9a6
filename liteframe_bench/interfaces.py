"""The public interfaces: token grids, reducers, methods and what they return.

A *reducer* is a pure tensor function over a batch of spatio-temporal token grids. A *method* is what the
harness runs: ``encode(video) -> VisualTokens`` then ``generate(tokens, prompt, ...) -> Generation``.
Built-in and third-party implementations subclass these and register with
:func:`liteframe_bench.register_reducer` / :func:`liteframe_bench.register_method`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from liteframe_bench.errors import ReducerError

#: Auxiliary signals a reducer may declare in ``Reducer.needs``.
AUX_INPUTS = ("cls_attn", "keys", "frame_global")

#: Where a reducer is applied, in data-flow order: ``vit`` = the ViT patch grid before the pixel shuffle (the
#: projector still runs afterwards, so the output must be a regular grid); ``mlp`` = the pixel-shuffled features
#: the projector's MLP takes (s*s*C wide, one per projected token; the MLP then runs on the kept tokens only);
#: ``proj`` = the projected tokens the LLM receives.
INSERTION_POINTS = ("vit", "mlp", "proj")

#: How a reducer forms CLS attention from the encoder's heads (``Reducer.cls_heads``): ``each`` = one softmax per
#: head (combined after the softmax, if at all); ``joint`` = one softmax over full-width logits q.k / sqrt(C),
#: i.e. sum_h l_h / sqrt(heads), as when q and k are not split into heads.
CLS_HEADS = ("each", "joint")


@dataclass
class TokenGrid:
    """A batch of spatio-temporal token grids plus the auxiliary signals reducers may declare.

    x:            [B, T, H, W, C] tokens.
    cls_attn:     [B, T, heads, H, W] attention *logits* of each frame's class token to every patch token,
                  per head (q_cls . k_i / sqrt(head_dim)), before any softmax. On a grid coarser than the
                  encoder's (``mlp``, ``proj``) a token's logit is that of its group's attention mass, log sum_i
                  exp(l_i) over the patches it holds, so a softmax gives the group's mass exactly; the harness
                  then combines the heads first for a reducer with ``cls_heads = "joint"`` (heads = 1).
    cls_self:     [B, T, heads] the class token's logit to itself (same heads as ``cls_attn``), for a softmax
                  over [CLS, patches] as in a ViT; None when the encoder has no class-token column to give.
    keys:         [B, T, H, W, Ck] keys of the encoder's last attention layer, heads concatenated.
    frame_global: [B, T, Cg] one global feature per frame (e.g. the class token's output).
    """

    x: Tensor
    cls_attn: Tensor | None = None
    keys: Tensor | None = None
    frame_global: Tensor | None = None
    cls_self: Tensor | None = None

    def __post_init__(self) -> None:
        if self.x.ndim != 5:
            raise ReducerError(f"TokenGrid.x must be [B, T, H, W, C], got shape {tuple(self.x.shape)}")
        B, T, H, W, _ = self.x.shape
        expect = {
            "cls_attn": (lambda s: len(s) == 5 and (s[0], s[1], s[3], s[4]) == (B, T, H, W), "[B, T, heads, H, W]"),
            "keys": (lambda s: len(s) == 5 and tuple(s[:4]) == (B, T, H, W), "[B, T, H, W, Ck]"),
            "frame_global": (lambda s: len(s) == 3 and tuple(s[:2]) == (B, T), "[B, T, Cg]"),
        }
        for name, (ok, form) in expect.items():
            t = getattr(self, name)
            if t is not None and not ok(t.shape):
                raise ReducerError(
                    f"TokenGrid.{name} has shape {tuple(t.shape)}; expected {form} with "
                    f"B={B}, T={T}, H={H}, W={W} (from x)"
                )
        if self.cls_self is not None:
            heads = None if self.cls_attn is None else self.cls_attn.shape[2]
            s = tuple(self.cls_self.shape)
            if len(s) != 3 or s[:2] != (B, T) or (heads is not None and s[2] != heads):
                raise ReducerError(
                    f"TokenGrid.cls_self has shape {s}; expected [B, T, heads] with B={B}, T={T} (from x)"
                    + (f" and heads={heads} (from cls_attn)" if heads is not None else "")
                )

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        B, T, H, W, C = self.x.shape
        return B, T, H, W, C

    def positions(self) -> Tensor:
        """[T, H, W, 3] int64 (t, y, x) coordinates of every grid cell, on x's device."""
        _, T, H, W, _ = self.x.shape
        return grid_positions(T, H, W, self.x.device)


def grid_positions(T: int, H: int, W: int, device: torch.device | str = "cpu") -> Tensor:
    """[T, H, W, 3] int64 (t, y, x) coordinates of a T x H x W grid."""
    axes = [torch.arange(n, device=device) for n in (T, H, W)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


@dataclass
class ReducedTokens:
    """What a reducer returns.

    x:       [B, N, C] kept (possibly merged) tokens.
    pos:     [B, N, 3] int64 (t, y, x) in the input grid of each token's representative source token
             (for a pooled block: its first cell; for a merge: the destination; for a pruned set: itself).
    size:    [B, N] int64 number of source tokens that contributed to each token.
    lengths: [B] int64 valid tokens per sample when the count varies across the batch (rows past a
             sample's length are padding); None when all N are valid.
    grid:    (T', H', W') when x is a regular grid in raster order (``x.view(B, T', H', W', C)``), else None.
    """

    x: Tensor
    pos: Tensor
    size: Tensor
    lengths: Tensor | None = None
    grid: tuple[int, int, int] | None = None

    @property
    def num_tokens(self) -> list[int]:
        """Valid tokens per sample."""
        if self.lengths is None:
            return [self.x.shape[1]] * self.x.shape[0]
        return [int(n) for n in self.lengths.tolist()]

    def as_grid(self) -> Tensor:
        """The tokens as a [B, T', H', W', C] grid; only for structured outputs."""
        if self.grid is None:
            raise ReducerError("these tokens are not a regular grid (grid=None); they cannot be reshaped")
        return self.x.view(self.x.shape[0], *self.grid, self.x.shape[-1])


class Reducer(abc.ABC):
    """Post-hoc visual-token reduction over a spatio-temporal grid.

    Subclasses are dataclasses whose fields are their parameters (validated in ``__post_init__`` with
    :class:`liteframe_bench.errors.SpecError`). Class attributes declare the contract:

    needs:      auxiliary inputs required from :class:`TokenGrid` (subset of ``AUX_INPUTS``).
    structured: the output is a regular grid (``ReducedTokens.grid`` set), so it may run at ``vit``.
    ordered:    output positions are strictly ascending in raster (t, y, x) order.
    exact:      the output count always equals :meth:`target_tokens`; otherwise it is an upper bound and
                the produced count is reported through ``ReducedTokens.lengths`` / ``num_tokens``.
    default_at: where the reducer is applied by default (one of ``INSERTION_POINTS``).
    cls_heads:  how its CLS attention combines the encoder's heads (one of ``CLS_HEADS``): the harness pools
                the logits onto a coarser grid after combining them this way, so each token's attention is its
                group's mass under the reducer's own softmax.
    reference:  the paper and repo@commit it follows.
    """

    name: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset()
    structured: ClassVar[bool] = False
    ordered: ClassVar[bool] = True
    exact: ClassVar[bool] = True
    default_at: ClassVar[str] = "proj"
    cls_heads: ClassVar[str] = "each"
    reference: ClassVar[str] = ""

    @abc.abstractmethod
    def target_tokens(self, T: int, H: int, W: int) -> int:
        """Tokens per sample this reducer produces (or at most produces) from a T x H x W grid.

        Raises :class:`ReducerError` naming the parameter when the target is impossible for this grid.
        """

    @abc.abstractmethod
    def reduce(self, grid: TokenGrid, generator: torch.Generator | None = None) -> ReducedTokens:
        """Reduce a validated grid. Called through ``__call__``, which checks inputs first."""

    def __call__(self, grid: TokenGrid, generator: torch.Generator | None = None) -> ReducedTokens:
        missing = [n for n in sorted(self.needs) if getattr(grid, n) is None]
        if missing:
            raise ReducerError(
                f"reducer {self.name!r} needs {', '.join(missing)} in its TokenGrid "
                f"(declared needs: {sorted(self.needs)})"
            )
        _, T, H, W, _ = grid.shape
        self.target_tokens(T, H, W)
        return self.reduce(grid, generator)


@dataclass
class VisualTokens:
    """Visual tokens ready for the LLM, one per image-context slot, and how they were made.

    embeds:          [N, D] tokens at the LLM's width, in prompt order.
    pos:             [N, 3] int64 (t, y, x) of each token's representative source in the projected token grid
                     (encoder time step: the frame, or the temporal patch of ``temporal_patch`` frames; then the
                     h/2 x w/2 grid the LLM sees per step). Backbones with 3D positions (M-RoPE) place each token
                     at its source's position from these.
    size:            [N] int64 projected-grid tokens merged into each token.
    tile:            [N] int64 tile of each token (0 when frames are not tiled).
    groups:          (label, count) per prompt block, e.g. ("Frame1", 16): the prompt gets one
                     ``label: <img>...</img>`` block per entry, the counts summing to N.
    frames:          frames sampled from the video.
    distinct_frames: distinct frames among them (fewer when the video is shorter than asked).
    tokens_before:   tokens the LLM would get without reduction.
    timings:         seconds per stage that ran (``decode``, ``vision``, ``reduce``, ``project``) when the method
                     timed itself; empty when the caller passed its own StageClock (read that instead).
    frame_interval_s: seconds of video between sampled frames (duration / frames) when the source is a file
                     (time-aware positions, Qwen2.5-VL's ``second_per_grid_ts``); None for decoded clips.
    grid:            (T', H', W') of the projected token grid ``pos`` indexes (steps, rows, columns per tile).
    """

    embeds: Tensor
    pos: Tensor
    size: Tensor
    tile: Tensor
    groups: list[tuple[str, int]]
    frames: int
    distinct_frames: int
    tokens_before: int
    timings: dict[str, float] = field(default_factory=dict)
    frame_interval_s: float | None = None
    grid: tuple[int, int, int] | None = None

    @property
    def num_tokens(self) -> int:
        return int(self.embeds.shape[0])


@dataclass
class Generation:
    """An answer and its token counts; ``timings`` holds ``prefill`` and ``generate`` seconds (empty when the caller
    passed its own StageClock)."""

    text: str
    prompt_tokens: int
    new_tokens: int
    token_ids: list[int] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class Method(abc.ABC):
    """A Video LLM configuration the harness can run: backbone + encoder + optional reducer."""

    name: ClassVar[str] = ""
    reference: ClassVar[str] = ""

    @abc.abstractmethod
    def encode(self, video: Any, frames: int | None = None) -> VisualTokens:
        """Decode ``frames`` frames of ``video`` (a path, or an already decoded clip), encode and (optionally)
        reduce them into LLM-ready visual tokens."""

    @abc.abstractmethod
    def generate(self, tokens: VisualTokens, prompt: str, max_new_tokens: int) -> Generation:
        """Answer ``prompt`` about the video behind ``tokens``."""
