"""Accuracy-mode reuse of a video's prompt prefix: the same answers as prefilling every prompt whole."""

import torch

from liteframe_bench.backends.internvl import InternVL3
from liteframe_bench.pipeline import PrefixCache, build_method
from liteframe_bench.testing import moving_square_video

QUESTIONS = [
    "What colour is the square?\nA. red\nB. blue\nC. green\nD. grey\nAnswer with the option's letter.",
    "Where does the square move?",
    "How many squares are there? Answer with a number.",
]


def test_shared_prefix_gives_the_same_answers_and_logits(tmp_path):
    bb = InternVL3.load("tiny")
    video = tmp_path / "v.mp4"
    moving_square_video(video, 12, size=112)
    for spec in ("baseline", "wap"):
        method = build_method(spec, bb)
        tokens = method.encode(str(video), 8)
        prefix = PrefixCache()
        for q in QUESTIONS * 2:  # the second round runs entirely on the kept cache
            whole = method.generate(tokens, q, max_new_tokens=6)
            shared = method.generate(tokens, q, max_new_tokens=6, prefix=prefix)
            assert shared.token_ids == whole.token_ids and shared.prompt_tokens == whole.prompt_tokens
        assert prefix.cache is not None and prefix.cache.get_seq_length() == prefix.length

    # the logits after the shared prefix equal those of the whole prompt (to float rounding)
    method = build_method("baseline", bb)
    tokens = method.encode(str(video), 8)
    ids = bb.build_prompt(QUESTIONS[0], tokens.groups)
    with torch.inference_mode():
        full, _ = bb.prefill(bb.embed(ids, tokens.embeds))
        prefix = PrefixCache()
        assert prefix.matches(bb, tokens, ids)
        part = bb.decode_step(ids[:, prefix.length :], prefix.cache)
    torch.testing.assert_close(part, full, rtol=1e-4, atol=1e-5)


def test_a_prompt_that_does_not_start_with_the_prefix_is_prefilled_whole(tmp_path):
    bb = InternVL3.load("tiny")
    video = tmp_path / "v.mp4"
    moving_square_video(video, 8, size=112)
    method = build_method("baseline", bb)
    tokens = method.encode(str(video), 4)
    prefix = PrefixCache()
    other = bb.build_prompt("x", [("Video", tokens.num_tokens)])  # another layout of the same tokens
    assert not prefix.matches(bb, tokens, other)
    assert prefix.cache is None
