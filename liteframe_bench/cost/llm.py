"""The LLM formula set both families share (a Qwen2 decoder: GQA attention, gated SiLU MLP, RMSNorm, lm_head on
one position): ``prefill`` over the prompt and ``generate``'s decode steps."""

from __future__ import annotations

from typing import Any

from liteframe_bench.cost.roofline import Op, linear, merge

#: Either family's geometry (:class:`.internvl.Geometry`, :class:`.qwen.QwenGeometry`): the LLM fields are the same.
Geometry = Any


def _llm_layer_linears(geo: Geometry, m: float, b: float) -> list[Op]:
    D, h, kv, dh, F = geo.D, geo.h, geo.kv, geo.dh, geo.F
    return [
        linear("qkv", m, D, (h + 2 * kv) * dh, b, True, extra_weights=D),  # + input_layernorm
        linear("o_proj", m, h * dh, D, b, False),
        linear("mlp_gate_up", m, D, 2 * F, b, False, extra_weights=D),  # + post_attention_layernorm
        linear("mlp_down", m, F, D, b, False),
    ]


def lm_head_op(geo: Geometry, b: float) -> Op:
    """Final RMSNorm + lm_head on one position (``logits_to_keep=1``); logits written in ``b`` bytes."""
    f = 2 * geo.D * geo.V
    return Op("lm_head", f, f, b * (geo.D * geo.V + geo.D), b * (geo.D + geo.V))


def prefill_ops(geo: Geometry, P: int, b: float = 2) -> list[Op]:
    """The LLM over a prompt of ``P`` tokens with an empty cache; logits of the last position only."""
    h, kv, dh, L = geo.h, geo.kv, geo.dh, geo.L
    lin = _llm_layer_linears(geo, P, b)
    attn = Op(
        "attention",
        4 * h * dh * P * P,  # FlopCounterMode: the full square
        2 * h * dh * P * (P + 1),  # causal: query i sees i + 1 keys
        0,
        b * (2 * P * h * dh + 2 * P * kv * dh + 2 * P * kv * dh),  # Q in, O out, K/V in, K/V written to the cache
    )
    per_layer = [lin[0], attn, *lin[1:]]
    return [Op("embed", 0, 0, 0, b * 2 * P * geo.D)] + [o.scaled(L) for o in per_layer] + [lm_head_op(geo, b)]


def decode_step_ops(geo: Geometry, cache: int, b: float = 2) -> list[Op]:
    """One decode step: one new token attending to ``cache + 1`` keys; all weights and the cache read once."""
    h, kv, dh, L = geo.h, geo.kv, geo.dh, geo.L
    keys = cache + 1
    lin = _llm_layer_linears(geo, 1, b)
    f = 4 * h * dh * keys
    attn = Op("attention", f, f, 0, b * (2 * h * dh + 2 * kv * dh * keys + 2 * kv * dh))  # q/o, cache read, write
    layers = [o.scaled(L) for o in [lin[0], attn, *lin[1:]]]
    return [Op("embed", 0, 0, 0, b * 2 * geo.D), *layers, lm_head_op(geo, b)]


def generate_ops(geo: Geometry, P: int, new_tokens: int, b: float = 2) -> tuple[list[Op], list[list[Op]]]:
    """``max(new_tokens - 1, 0)`` decode steps after a prompt of ``P``: the summed op groups and the steps."""
    steps = [decode_step_ops(geo, P + i, b) for i in range(max(new_tokens - 1, 0))]
    if not steps:
        return [], []
    summed = [merge([s[k] for s in steps]) for k in range(len(steps[0]))]
    return summed, steps
