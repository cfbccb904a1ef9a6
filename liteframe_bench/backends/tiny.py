"""A character-level tokenizer for the tiny random models (no files, no download): every printable character is
one token, the family's special tokens are one token each."""

from __future__ import annotations

import string


def char_tokenizer(specials: list[str], eos: str = "<|im_end|>", pad: str = "<|endoftext|>"):
    """A fast tokenizer with ``specials`` first (ids 0..), then the printable characters, then ``<unk>``."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = [c for c in string.printable if c not in "\x0b\x0c"]
    vocab = {t: i for i, t in enumerate([*specials, *chars, "<unk>"])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=eos, pad_token=pad, unk_token="<unk>", additional_special_tokens=specials
    )
