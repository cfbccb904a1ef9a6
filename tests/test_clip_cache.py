import os

import torch

from liteframe_bench.testing import moving_square_video
from liteframe_bench.video import ClipCache, load_video


def test_cache_hits_equal_fresh_decodes_and_stay_bounded(tmp_path):
    a = moving_square_video(tmp_path / "a.mp4", 12, size=224)
    b = moving_square_video(tmp_path / "b.mp4", 12, size=224, seed=1)
    one_clip = 4 * 3 * 112 * 112 * 4
    cache = ClipCache(max_bytes=one_clip)  # room for one clip
    clip, hit = cache.load(a, 4, image_size=112)
    assert not hit and torch.equal(clip.pixel_values, load_video(a, 4, image_size=112).pixel_values)
    assert cache.load(a, 4, image_size=112) == (clip, True)
    assert not cache.load(a, 8, image_size=112)[1]  # other frame count: another clip
    assert not cache.load(b, 4, image_size=112)[1]
    assert not cache.load(a, 4, image_size=112)[1]  # evicted: only one clip fits
    assert (cache.hits, cache.misses) == (1, 4)
    os.utime(a, ns=(1, 1))  # a changed file is decoded again
    assert not cache.load(a, 4, image_size=112)[1]
