"""``baseline``: the backbone as published, every visual token to the LLM."""

from dataclasses import dataclass

from liteframe_bench import register_method
from liteframe_bench.pipeline import VideoLLM


@register_method("baseline")
@dataclass
class Baseline(VideoLLM):
    """The backbone as published, no reduction (also the host of any reducer spec).

    InternVL3: 256 tokens per 448 px frame; Qwen2.5-VL: 256 per pair of 448 px frames."""

    reference = (
        "InternVL3 (Zhu et al., 2025, arXiv:2504.10479), transformers InternVLForConditionalGeneration; Qwen2.5-VL "
        "(Bai et al., 2025, arXiv:2502.13923), transformers Qwen2_5_VLForConditionalGeneration"
    )
