"""The built-in Video LLM backbones, each registered with :func:`liteframe_bench.backbone.register_backbone`.

- ``internvl``: InternVL3 through transformers' ``InternVLForConditionalGeneration``.
- ``qwen2.5-vl``: Qwen2.5-VL through transformers' ``Qwen2_5_VLForConditionalGeneration``.
"""

from liteframe_bench.backends import internvl, qwen  # noqa: F401
