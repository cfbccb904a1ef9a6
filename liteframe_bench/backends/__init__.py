"""Video LLM backbones. ``internvl`` wraps transformers' InternVLForConditionalGeneration (InternVL3)."""
