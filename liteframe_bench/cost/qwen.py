"""The Qwen2.5-VL formula set: the ViT on 2-frame temporal patches with window and full attention, the
class-token substitute, the 2x2 patch merger, read from transformers' ``Qwen2_5_VLConfig``
(``models/qwen2_5_vl``). The LLM's formulas are in :mod:`.llm`; conventions in :mod:`liteframe_bench.cost`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from liteframe_bench.cost.roofline import Op, linear
from liteframe_bench.errors import SpecError

#: Qwen2.5-VL's video block around its visual tokens: ``<|vision_start|>`` and ``<|vision_end|>``.
VIDEO_TEXT = 2
#: The frame side lfbench feeds Qwen2.5-VL's published sizes (``backends.qwen.IMAGE_SIZE``).
IMAGE_SIZE = 448


@dataclass(frozen=True)
class QwenGeometry:
    """The numbers the Qwen2.5-VL formulas need, read from a ``Qwen2_5_VLConfig`` and lfbench's frame side.

    The LLM fields (``D`` .. ``tied``) mean what they mean in :class:`Geometry` (a Qwen2 LLM in both families).
    """

    image: int
    patch: int
    channels: int
    grid: int  # g = image / patch, patches per side of one frame pair
    C: int
    mlp_v: int  # I: the gated MLP's width
    layers_v: int
    heads_v: int
    temporal: int  # frames per temporal patch (2)
    merge: int  # spatial merge side (2)
    window: int  # merge blocks per window side (window_size / merge / patch)
    full_layers: int  # layers attending over the whole temporal patch (fullatt_block_indexes)
    ratio: float  # 1 / merge, as Geometry's downsample ratio
    D: int
    L: int
    h: int
    kv: int
    dh: int
    F: int
    V: int
    max_pos: int
    tied: bool
    family: str = "qwen2.5-vl"

    @property
    def S(self) -> int:
        """ViT tokens per temporal patch (no class token)."""
        return self.grid * self.grid

    @property
    def shuffle(self) -> int:
        return self.merge * self.merge

    @property
    def proj_grid(self) -> int:
        return self.grid // self.merge

    @property
    def tokens_per_tile(self) -> int:
        """LLM tokens per temporal patch (2 frames)."""
        return self.proj_grid**2

    def steps(self, frames: int) -> int:
        """Temporal patches of a clip (padded with its last frame to an even length, as the processor does)."""
        return -(-frames // self.temporal)

    def window_sq_sum(self) -> int:
        """sum over one temporal patch's attention windows of (patches in the window)^2, transformers'
        ``get_vision_window_index``: windows of ``window x window`` merge blocks, the last row/column of windows
        cut short where the merged grid does not divide (16 * sum_i a_i^2 * sum_j b_j^2 for block counts a, b)."""
        G, w = self.proj_grid, self.window
        sides = [w] * (G // w) + ([G % w] if G % w else [])
        sq = sum(a * a for a in sides)
        return self.shuffle**2 * sq * sq


def geometry(cfg: Any, image_size: int = IMAGE_SIZE) -> QwenGeometry:
    """The formulas' numbers of a ``Qwen2_5_VLConfig`` at the frame side lfbench feeds it."""
    v, t = cfg.vision_config, cfg.text_config
    p, m = int(v.patch_size), int(v.spatial_merge_size)
    if image_size % (p * m):
        raise SpecError(f"image_size {image_size} is invalid for Qwen2.5-VL; allowed: a multiple of {p * m}")
    heads = t.num_attention_heads
    return QwenGeometry(
        image=image_size,
        patch=p,
        channels=int(v.in_channels),
        grid=image_size // p,
        C=v.hidden_size,
        mlp_v=v.intermediate_size,
        layers_v=v.depth,
        heads_v=v.num_heads,
        temporal=int(v.temporal_patch_size),
        merge=m,
        window=v.window_size // m // p,
        full_layers=len(set(v.fullatt_block_indexes) & set(range(v.depth))),
        ratio=1 / m,
        D=t.hidden_size,
        L=t.num_hidden_layers,
        h=heads,
        kv=t.num_key_value_heads,
        dh=getattr(t, "head_dim", None) or t.hidden_size // heads,
        F=t.intermediate_size,
        V=t.vocab_size,
        max_pos=t.max_position_embeddings,
        tied=bool(getattr(cfg, "tie_word_embeddings", False)),
    )


def vision_ops(geo: QwenGeometry, steps: int, b: float = 2) -> list[Op]:
    """Qwen2.5-VL's ViT over ``steps`` temporal patches of 2 frames (``modeling_qwen2_5_vl``, transformers 5.24).

    Conv3d patch embedding (no bias) ``2 M C (3 * 2 * p^2)`` on ``M = steps * g^2`` patches; per layer: RMSNorm +
    qkv Linear(C, 3C) with bias, attention, proj Linear(C, C), RMSNorm + gated SiLU MLP (gate, up: C -> I; down:
    I -> C; all with bias). Attention (``4 len^2 C`` per segment: FlopCounterMode's SDPA count, once per
    ``cu_seqlens`` chunk): ``full_layers`` layers over each temporal patch (``4 S^2 C`` each), the other layers
    over each window (``4 C`` x :meth:`QwenGeometry.window_sq_sum`). The 2D rotary embedding is elementwise."""
    n, g, C, Im, p = steps, geo.grid, geo.C, geo.mlp_v, geo.patch
    M = n * g * g
    cin = geo.channels * geo.temporal * p * p
    conv = 2 * M * C * cin
    embed = Op("patch_embed", conv, conv, b * cin * C, b * (M * cin + M * C))
    full = 4 * n * geo.S**2 * C
    window = 4 * n * geo.window_sq_sum() * C
    io = b * 4 * M * C
    lw = geo.layers_v - geo.full_layers
    ops = [
        embed,
        linear("qkv", M, C, 3 * C, b, True, extra_weights=C).scaled(geo.layers_v),  # + norm1
        Op("attention_full", full * geo.full_layers, full * geo.full_layers, 0, io * geo.full_layers),
        Op("attention_window", window * lw, window * lw, 0, io * lw),
        linear("attn_out", M, C, C, b, True).scaled(geo.layers_v),
        linear("mlp_gate_up", M, C, 2 * Im, b, True, extra_weights=C).scaled(geo.layers_v),  # + norm2
        linear("mlp_down", M, Im, C, b, True).scaled(geo.layers_v),
    ]
    return ops


def received_attention_op(geo: QwenGeometry, steps: int, b: float = 2) -> Op:
    """The class-token substitute (``backends.qwen``): the last layer's q.k^T over each temporal patch, ``2 S^2 C``
    per step (the softmax and the mean over queries are elementwise/reductions, not counted), read q and k."""
    f = 2 * steps * geo.S**2 * geo.C
    return Op("received_attention", f, f, 0, b * 2 * steps * geo.S * geo.C)


def project_ops(geo: QwenGeometry, tokens: int, b: float = 2, shuffled: int | None = None) -> list[Op]:
    """Qwen2.5-VL's ``Qwen2_5_VLPatchMerger`` on ``tokens`` merged tokens (``shuffled``: merged tokens made when
    more than the MLP takes, a reducer at mlp): RMSNorm(C) per patch, the 2x2 concatenation (counted as one read
    and one write, like the pixel shuffle), Linear(4C -> 4C) + GELU + Linear(4C -> D), both with bias."""
    Cin = geo.C * geo.shuffle
    return [
        Op("merge", 0, 0, b * geo.C, b * 2 * (tokens if shuffled is None else shuffled) * Cin),  # + ln_q
        linear("linear_1", tokens, Cin, Cin, b, True),
        linear("linear_2", tokens, Cin, geo.D, b, True),
    ]
