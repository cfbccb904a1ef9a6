"""The InternVL3 formula set: InternViT (class token, layer scale, optional QK norm) + pixel shuffle + MLP projector,
read from transformers' ``InternVLConfig`` (``models/internvl``). The LLM's formulas are in :mod:`.llm`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from liteframe_bench.cost.roofline import Op, linear
from liteframe_bench.errors import SpecError


@dataclass(frozen=True)
class Geometry:
    """The numbers the formulas need, read from an ``InternVLConfig``."""

    image: int
    patch: int
    channels: int
    grid: int  # g = image / patch
    C: int
    mlp_v: int  # I in the formulas
    layers_v: int
    heads_v: int
    attn_bias_v: bool
    qk_norm_v: bool
    norm_v: str
    final_norm_v: bool
    abs_pos_v: bool
    mask_token_v: bool
    ratio: float  # downsample_ratio r
    D: int
    L: int
    h: int
    kv: int
    dh: int
    F: int
    V: int
    max_pos: int
    tied: bool

    @property
    def S(self) -> int:
        return self.grid * self.grid + 1

    @property
    def shuffle(self) -> int:
        """Tokens merged by the pixel shuffle (4 at r = 0.5)."""
        return round(1 / self.ratio**2)

    @property
    def proj_grid(self) -> int:
        return round(self.grid * self.ratio)

    @property
    def tokens_per_tile(self) -> int:
        return self.proj_grid**2


def geometry(cfg: Any) -> Geometry:
    """The formulas' numbers of an ``InternVLConfig`` (the frame side comes from its vision config)."""
    if not hasattr(cfg.vision_config, "image_size"):
        raise SpecError(f"the cost model has no formulas for model_type {getattr(cfg, 'model_type', None)!r}; "
                        "allowed: internvl, qwen2_5_vl")
    v, t = cfg.vision_config, cfg.text_config
    size = lambda x: x[0] if isinstance(x, (list, tuple)) else x
    image, patch = size(v.image_size), size(v.patch_size)
    if image % patch:
        raise SpecError(f"image_size {image} is not a multiple of patch_size {patch}")
    g = image // patch
    r = cfg.downsample_ratio
    if abs(g * r - round(g * r)) > 1e-9:
        raise SpecError(f"the {g}x{g} patch grid does not shuffle by downsample_ratio={r}")
    heads = t.num_attention_heads
    return Geometry(
        image=image,
        patch=patch,
        channels=v.num_channels,
        grid=g,
        C=v.hidden_size,
        mlp_v=v.intermediate_size,
        layers_v=v.num_hidden_layers,
        heads_v=v.num_attention_heads,
        attn_bias_v=bool(v.attention_bias),
        qk_norm_v=bool(v.use_qk_norm),
        norm_v=v.norm_type,
        final_norm_v=not v.use_mean_pooling,
        abs_pos_v=bool(v.use_absolute_position_embeddings),
        mask_token_v=bool(v.use_mask_token),
        ratio=r,
        D=t.hidden_size,
        L=t.num_hidden_layers,
        h=heads,
        kv=t.num_key_value_heads,
        dh=getattr(t, "head_dim", None) or t.hidden_size // heads,
        F=t.intermediate_size,
        V=t.vocab_size,
        max_pos=t.max_position_embeddings,
        tied=bool(getattr(cfg, "tie_word_embeddings", False) or getattr(t, "tie_word_embeddings", False)),
    )


def norm_params(kind: str, width: int) -> int:
    return 2 * width if kind == "layer_norm" else width


def vision_ops(geo: Geometry, images: int, b: float = 2) -> list[Op]:
    """InternViT over ``images`` tiles of ``image x image`` px: patch conv then ``layers_v`` layers on ``S`` tokens."""
    n, g, C, Im, S, p = images, geo.grid, geo.C, geo.mlp_v, geo.S, geo.patch
    cin = geo.channels * p * p
    conv_f = 2 * n * g * g * C * cin
    emb_w = cin * C + C + C + (C if geo.mask_token_v else 0) + (S * C if geo.abs_pos_v else 0)  # conv, cls, pos
    embed = Op("patch_embed", conv_f, conv_f, b * emb_w, b * n * (geo.channels * geo.image**2 + S * C))
    M = n * S
    norm = norm_params(geo.norm_v, C)
    qk_norm = 2 * C if geo.qk_norm_v else 0
    per_layer = [
        linear("qkv", M, C, 3 * C, b, geo.attn_bias_v, extra_weights=norm + qk_norm),  # + layernorm_before
        Op("attention", 4 * n * S * S * C, 4 * n * S * S * C, 0, b * 4 * M * C),
        linear("attn_out", M, C, C, b, True, extra_weights=C),  # + lambda_1 (layer scale)
        linear("mlp_fc1", M, C, Im, b, True, extra_weights=norm),  # + layernorm_after
        linear("mlp_fc2", M, Im, C, b, True, extra_weights=C),  # + lambda_2
    ]
    ops = [embed] + [o.scaled(geo.layers_v) for o in per_layer]
    if geo.final_norm_v:
        ops.append(Op("final_norm", 0, 0, b * 2 * C, 0))
    return ops


def project_ops(geo: Geometry, tokens: int, b: float = 2, shuffled: int | None = None) -> list[Op]:
    """Pixel shuffle + LayerNorm(4C) + Linear(4C->D) + GELU + Linear(D->D) on ``tokens`` post-shuffle tokens;
    ``shuffled``: post-shuffle tokens the pixel shuffle makes when more than the MLP takes (a reducer at mlp)."""
    Cin = geo.C * geo.shuffle
    return [
        Op("pixel_shuffle", 0, 0, 0, b * 2 * (tokens if shuffled is None else shuffled) * Cin),
        linear("linear_1", tokens, Cin, geo.D, b, True, extra_weights=2 * Cin),  # + layer_norm (weight, bias)
        linear("linear_2", tokens, geo.D, geo.D, b, True),
    ]
