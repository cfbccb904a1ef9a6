"""The ``mini`` InternVL3: transformers' own classes at a size that trains on 2 CPU cores, and its tokenizer.

Architecture (``mini_config``): InternViT-style vision tower (4 layers, width 128, 4 heads) on 224 px frames
cut into 28 px patches (an 8x8 grid, so each projected token covers 56x56 px after InternVL's 2x2 pixel shuffle:
16 tokens per frame, like the ``tiny`` preset), InternVL's projector, and a 4-layer Qwen2 LLM (width 256, 8
heads, 4 KV heads; input embeddings tied to the output head, as in the small Qwen2.5 models). Patches of 28 px
instead of InternViT's 14 keep the grid (and so every token count) of a 112 px model while the small corner
objects of the synth suite stay several pixels wide.

Tokenizer (``build_tokenizer``): a byte-level BPE (``tokenizers``) trained on text the synth generator writes
(prompts, questions, options, descriptions, InternVL's frame labels), digits split one by one so frame labels of
any number are covered, and InternVL's special tokens. Any text encodes (bytes); synth prompts take about
4x fewer tokens than with the character tokenizer of ``tiny``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>"]
VOCAB_SIZE = 640

#: The mini model's configuration (InternVLConfig keyword arguments; vocab and image token id filled in).
VISION = {
    "hidden_size": 128,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "intermediate_size": 512,
    "image_size": [224, 224],
    "patch_size": [28, 28],
}
TEXT = {
    "model_type": "qwen2",
    "hidden_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "intermediate_size": 768,
    "max_position_embeddings": 32_768,
    "rope_theta": 10_000.0,
    "tie_word_embeddings": True,
}


def mini_config(tokenizer):
    """The InternVLConfig of the mini model for ``tokenizer`` (its vocabulary size and ``<IMG_CONTEXT>`` id)."""
    from transformers import InternVLConfig

    text = dict(TEXT, vocab_size=len(tokenizer))
    cfg = InternVLConfig(
        vision_config=dict(VISION),
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"),
        image_seq_length=16,
        tie_word_embeddings=True,
    )
    cfg._attn_implementation = "sdpa"
    return cfg


def tokenizer_corpus(seed: int = 0, scenes: int = 400) -> list[str]:
    """Text the mini model will read and write: synth prompts and answers of training scenes, descriptions and
    frame labels (never the eval split)."""
    from liteframe_bench.suites.synth import generator as g
    from liteframe_bench.suites.synth.utils import DEFAULT_POST_PROMPT, OPTION_PROMPT
    from liteframe_bench.zoo import stream

    rng = np.random.default_rng([seed, 99])
    texts = [OPTION_PROMPT, DEFAULT_POST_PROMPT, stream.DESCRIBE, stream.OPEN_POST]
    texts += [f"Frame{i}: <img></img>\n" for i in range(1, 513)]
    texts += ["<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n"] * 50
    for i in range(scenes):
        scene, plan = stream.make_train_scene(rng, i)
        for _, question, options, answer in stream.mc_questions(rng, scene, plan, copies=1):
            texts.append(f"{OPTION_PROMPT}\n{question}\n" + "\n".join(options) + f"{DEFAULT_POST_PROMPT}\n{answer}")
            texts.append(f"{question}\n{stream.OPEN_POST}\n" + stream.option_text(options, answer))
        texts.append(stream.describe(scene, list(range(scene.num_frames))))
    texts += [" ".join(g.OBJECT_COLOURS), " ".join(g.BACKGROUND_COLOURS), " ".join(g.SHAPES), " ".join(g.CORNERS)]
    return texts


def build_tokenizer(seed: int = 0):
    """Train the byte-level BPE on :func:`tokenizer_corpus` (deterministic; about a second)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(tokenizer_corpus(seed), trainer=trainer)
    return wrap_tokenizer(tok)


def wrap_tokenizer(tok):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIALS,
    )


def save_tokenizer(tokenizer, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.backend_tokenizer.save(str(folder / "tokenizer.json"))


def load_tokenizer(folder: Path):
    from tokenizers import Tokenizer

    return wrap_tokenizer(Tokenizer.from_file(str(folder / "tokenizer.json")))


def build_model(tokenizer, seed: int = 0):
    """A freshly initialised mini InternVLForConditionalGeneration (float32, CPU)."""
    import torch
    from transformers import InternVLForConditionalGeneration

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = InternVLForConditionalGeneration(mini_config(tokenizer))
    net.generation_config.pad_token_id = tokenizer.pad_token_id
    return net


def _tied(model) -> bool:
    return model.lm_head.weight is model.get_input_embeddings().weight


def state_to_save(model) -> dict:
    """The state dict without the output head when it is tied to the input embeddings (safetensors refuses shared
    tensors); :func:`load_state` re-ties it."""
    state = model.state_dict()
    if _tied(model):
        state.pop("lm_head.weight", None)
    return {k: v.contiguous() for k, v in state.items()}


def load_state(model, state: dict, where: str = "state dict") -> None:
    """Load ``state`` (float32 or float16) into ``model`` strictly, allowing only a tied head to be absent."""
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    allowed = {"lm_head.weight"} if _tied(model) else set()
    if set(missing) - allowed or unexpected:
        raise ValueError(f"{where}: missing {sorted(set(missing) - allowed)[:3]}, unexpected {sorted(unexpected)[:3]}")


def config_json(model) -> dict:
    return json.loads(model.config.to_json_string())
