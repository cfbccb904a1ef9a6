"""``baseline``: InternVL3 as published, every visual token to the LLM."""

from dataclasses import dataclass

from liteframe_bench import register_method
from liteframe_bench.pipeline import VideoLLM


@register_method("baseline")
@dataclass
class Baseline(VideoLLM):
    """InternVL3 as published: 256 tokens per 448 px frame, no reduction (also the host of any reducer spec)."""

    reference = "InternVL3 (Zhu et al., 2025, arXiv:2504.10479); transformers InternVLForConditionalGeneration"
