"""Named InternVL3 configurations: the published sizes (for counting on the ``meta`` device) and ``tiny``.

The published sizes pair InternViT-300M-448px-V2.5 (transformers' ``InternVLVisionConfig`` defaults) with a
Qwen2.5 LLM; the numbers below are Qwen2.5's published configs with InternVL3's resized vocabulary (151,674).
When lfbench loads real weights from a local folder it uses that folder's ``config.json`` instead, so a
preset only has to be right for FLOP/parameter counting and the analytic cost model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import InternVLConfig, InternVLForConditionalGeneration

from liteframe_bench.errors import SpecError

VOCAB = 151_674
IMAGE_TOKEN_ID = 151_667  # <IMG_CONTEXT> in InternVL3's tokenizer
TINY_VOCAB = 105  # the tiny character tokenizer's size (backends.internvl.tiny_tokenizer): every id decodes


@dataclass(frozen=True)
class Preset:
    name: str
    hf_id: str
    llm: dict[str, Any]
    vision: dict[str, Any] = field(default_factory=dict)
    top: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def _qwen2(hidden: int, layers: int, heads: int, kv: int, inter: int, tie: bool) -> dict[str, Any]:
    return {
        "model_type": "qwen2",
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "intermediate_size": inter,
        "vocab_size": VOCAB,
        "max_position_embeddings": 32_768,
        "rope_theta": 1_000_000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": tie,
    }


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "internvl3-1b",
            "OpenGVLab/InternVL3-1B-hf",
            _qwen2(896, 24, 14, 2, 4864, True),
            top={"tie_word_embeddings": True},
            note="InternViT-300M + Qwen2.5-0.5B",
        ),
        Preset(
            "internvl3-2b",
            "OpenGVLab/InternVL3-2B-hf",
            _qwen2(1536, 28, 12, 2, 8960, True),
            top={"tie_word_embeddings": True},
            note="InternViT-300M + Qwen2.5-1.5B",
        ),
        Preset(
            "internvl3-8b",
            "OpenGVLab/InternVL3-8B-hf",
            _qwen2(3584, 28, 28, 4, 18944, False),
            top={"tie_word_embeddings": False},
            note="InternViT-300M + Qwen2.5-7B",
        ),
        Preset(
            "tiny",
            "(random, built locally)",
            {
                "model_type": "qwen2",
                "hidden_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "num_key_value_heads": 1,
                "intermediate_size": 128,
                "vocab_size": TINY_VOCAB,
                "max_position_embeddings": 32_768,
                "rope_theta": 10_000.0,
                "tie_word_embeddings": False,
            },
            vision={
                "hidden_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 64,
                "image_size": [112, 112],
                "patch_size": [14, 14],
            },
            top={"tie_word_embeddings": False, "image_seq_length": 16},
            note="1-layer random model for tests: 112 px frames, 8x8 patches -> 16 tokens per frame",
        ),
    )
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise SpecError(f"unknown model preset {name!r}; allowed: {', '.join(PRESETS)} or a local model folder")
    return PRESETS[name]


def build_config(name: str, **overrides: Any) -> InternVLConfig:
    """The InternVLConfig of a preset (``overrides`` replace top-level fields, e.g. ``image_token_id``)."""
    p = get_preset(name)
    kwargs = {"text_config": dict(p.llm), "vision_config": dict(p.vision), **p.top, **overrides}
    cfg = InternVLConfig(**kwargs)
    cfg._attn_implementation = "sdpa"
    return cfg


def meta_model(name_or_config: str | InternVLConfig) -> InternVLForConditionalGeneration:
    """The full model on the ``meta`` device: shapes and parameter counts with no memory and no weights."""
    cfg = build_config(name_or_config) if isinstance(name_or_config, str) else name_or_config
    with torch.device("meta"):
        return InternVLForConditionalGeneration(cfg)


def parameter_counts(model: InternVLForConditionalGeneration) -> dict[str, int]:
    """Parameters by part: vision encoder, projector, LLM (without lm_head), lm_head (0 when tied)."""
    count = lambda m: sum(p.numel() for p in m.parameters())
    lm_head = model.lm_head.weight
    tied = lm_head is model.model.language_model.get_input_embeddings().weight
    out = {
        "vision": count(model.model.vision_tower),
        "projector": count(model.model.multi_modal_projector),
        "llm": count(model.model.language_model),
        "lm_head": 0 if tied else lm_head.numel(),
    }
    out["total"] = sum(out.values())
    return out
