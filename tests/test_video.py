"""liteframe_bench.video: probe, InternVL frame choice, decode + preprocess, errors, writer.

Every video is generated in tmp_path. Frame i of the "barcode" videos shows i in binary as 8 vertical
black/white bars, which survive lossy coding, so the decoded frames' indices can be read back from pixels.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.transforms.v2 import functional as TF

from liteframe_bench.errors import LfbenchError
from liteframe_bench.video import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VideoClip,
    VideoError,
    decoder_name,
    load_video,
    preprocess,
    probe,
    sample_indices,
    write_video,
)

MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)
BITS = 8
T = 40  # frames in the barcode videos
H, W = 64, 128  # bars 16 px wide


def barcode_frames(n: int = T, h: int = H, w: int = W) -> np.ndarray:
    frames = np.zeros((n, h, w, 3), np.uint8)
    bar = w // BITS
    for i in range(n):
        for b in range(BITS):
            if (i >> b) & 1:
                frames[i, :, b * bar : (b + 1) * bar] = 255
    return frames


def read_barcodes(pixel_values: torch.Tensor) -> list[int]:
    """[N, 3, S, S'] normalised -> the index each frame shows (bar centres, thresholded at mid-grey)."""
    x = pixel_values * STD + MEAN
    bar = x.shape[-1] // BITS
    out = []
    for frame in x:
        v = 0
        for b in range(BITS):
            centre = frame[:, :, b * bar + bar // 4 : (b + 1) * bar - bar // 4]
            v |= int(centre.mean().item() > 0.5) << b
        out.append(v)
    return out


def has_encoder(codec: str) -> bool:
    try:
        av.Codec(codec, "w")
        return True
    except Exception:
        return False


@pytest.fixture(scope="module")
def barcode_mp4(tmp_path_factory) -> str:
    return str(write_video(tmp_path_factory.mktemp("v") / "barcode.mp4", barcode_frames()))


# ---------------------------------------------------------------------------------------------------------
# sample_indices


def internvl_get_index(num_total: int, num_segments: int) -> list[int]:
    """Transcription of InternVL's get_index(bound=None, fps, max_frame=len-1, first_idx=0, num_segments)."""
    start, end = -100000, 100000
    fps = 30.0
    max_frame = num_total - 1
    start_idx = max(0, round(start * fps))
    end_idx = min(round(end * fps), max_frame)
    seg_size = float(end_idx - start_idx) / num_segments
    return [int(start_idx + (seg_size / 2) + np.round(seg_size * idx)) for idx in range(num_segments)]


@pytest.mark.parametrize(
    "total,n,expected",
    [
        (100, 8, [6, 18, 31, 43, 56, 68, 80, 93]),  # seg 12.375; round(49.5) = 50 (half to even)
        (9, 4, [1, 3, 5, 7]),  # seg 2
        (5, 4, [0, 1, 2, 3]),  # seg 1: the last frame is never chosen
        (6, 2, [1, 3]),  # seg 2.5: round(2.5) = 2 (half to even), not 3
        (3, 8, [0, 0, 0, 1, 1, 1, 2, 2]),  # more frames asked than exist: repetition
        (1, 3, [0, 0, 0]),
        (8, 8, [0, 1, 2, 3, 4, 4, 5, 6]),  # N == total still repeats (span is total - 1)
        (1000, 1, [499]),
    ],
)
def test_sample_indices_hand_computed(total, n, expected):
    assert sample_indices(total, n) == expected
    assert internvl_get_index(total, n) == expected


@settings(max_examples=300, deadline=None)
@given(total=st.integers(1, 5000), n=st.integers(1, 600))
def test_sample_indices_properties(total, n):
    idx = sample_indices(total, n)
    assert idx == internvl_get_index(total, n)
    assert len(idx) == n
    assert all(0 <= i <= total - 1 for i in idx)
    assert all(a <= b for a, b in zip(idx, idx[1:], strict=False))
    seg = (total - 1) / n
    assert all(abs(i - (seg / 2 + seg * k)) < 1.5 for k, i in enumerate(idx))  # segment midpoints
    distinct = len(set(idx)) == n
    assert distinct == (n <= total - 1 or (total == 1 and n == 1))


@pytest.mark.parametrize("total,n", [(0, 4), (10, 0), (10, -1), (10.0, 4), (10, True)])
def test_sample_indices_rejects_bad_sizes(total, n):
    with pytest.raises(ValueError):
        sample_indices(total, n)


# ---------------------------------------------------------------------------------------------------------
# decode: the right frames


CODECS = [
    ("mpeg4", "mp4"),
    ("mpeg4", "mkv"),  # no declared frame count: probe counts packets
    pytest.param(
        "libx264", "mp4", marks=pytest.mark.skipif(not has_encoder("libx264"), reason="no libx264")
    ),  # B-frames: decode order != presentation order
]


@pytest.mark.parametrize("codec,ext", CODECS)
@pytest.mark.parametrize("n", [12, 50])
def test_load_video_returns_the_sampled_frames(tmp_path, codec, ext, n):
    path = write_video(tmp_path / f"bars.{ext}", barcode_frames(), fps=8, codec=codec)
    clip = load_video(path, n, image_size=64)
    assert clip.indices == sample_indices(T, n)
    assert read_barcodes(clip.pixel_values[0]) == clip.indices
    assert clip.distinct_frames == len(set(clip.indices))
    if n > T:
        assert clip.distinct_frames < n  # repetition
    assert clip.frames == n
    assert clip.info.num_frames == T


def test_frame_width_without_aligned_rows(tmp_path):
    """88 px wide RGB rows (264 bytes) are not SIMD-aligned: the decoder's line padding must not shear frames."""
    path = write_video(tmp_path / "narrow.mp4", barcode_frames(T, 50, 88))
    clip = load_video(path, 10, image_size=88)
    assert read_barcodes(clip.pixel_values[0]) == clip.indices == sample_indices(T, 10)


def test_clip_shapes_dtype_and_fields(barcode_mp4):
    clip = load_video(barcode_mp4, 5, image_size=56)
    assert isinstance(clip, VideoClip)
    assert clip.pixel_values.shape == (1, 5, 3, 56, 56)
    assert clip.pixel_values.dtype == torch.float32
    assert clip.pixel_values.is_contiguous()
    assert clip.tiles == (1, 1) and clip.image_size == 56 and clip.frames == 5
    assert clip.distinct_frames == 5
    assert 0 < clip.decode_s < 30
    assert clip.info.width == W and clip.info.height == H
    assert "pyav" in decoder_name()


def test_white_frame_normalisation(tmp_path):
    path = write_video(tmp_path / "white.mp4", np.full((4, 32, 48, 3), 255, np.uint8))
    x = load_video(path, 2, image_size=32).pixel_values
    expected = (1 - MEAN.flatten()) / STD.flatten()
    per_channel = x.mean(dim=(0, 1, 3, 4))
    torch.testing.assert_close(per_channel, expected, atol=0.03, rtol=0)
    assert (x - expected.view(1, 1, 3, 1, 1)).abs().max() < 0.1


def test_preprocess_matches_internvl_pil_transform():
    """Our tensor resize + normalise against the original build_transform on a PIL image."""
    torchvision_t = pytest.importorskip("torchvision.transforms")
    from PIL import Image
    from torchvision.transforms.functional import InterpolationMode

    ref_t = torchvision_t.Compose(
        [
            torchvision_t.Resize((96, 96), interpolation=InterpolationMode.BICUBIC),
            torchvision_t.ToTensor(),
            torchvision_t.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    rng = np.random.default_rng(0)
    for h, w in [(72, 130), (300, 200), (50, 50)]:  # down- and up-scaling
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ours = preprocess(img[None], image_size=96)[0, 0]
        ref = ref_t(Image.fromarray(img))
        diff = (ours - ref).abs() * STD  # back in [0, 1] units
        assert diff.max() <= 2.5 / 255
        assert diff.mean() <= 0.05 / 255


def test_tiles_are_row_major_and_stitch_to_the_2s_resize(tmp_path):
    s = 32
    frame = np.zeros((96, 128, 3), np.uint8)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]  # TL, TR, BL, BR
    for k, c in enumerate(colours):
        r, q = divmod(k, 2)
        frame[r * 48 : (r + 1) * 48, q * 64 : (q + 1) * 64] = c
    path = write_video(tmp_path / "quad.mp4", np.stack([frame] * 6))
    tiled = load_video(path, 3, image_size=s, tiles=(2, 2))
    assert tiled.pixel_values.shape == (4, 3, 3, s, s) and tiled.tiles == (2, 2)
    for k, c in enumerate(colours):
        centre = (tiled.pixel_values[k, :, :, 8:24, 8:24] * STD + MEAN).mean(dim=(0, 2, 3))
        torch.testing.assert_close(centre, torch.tensor(c, dtype=torch.float32) / 255, atol=0.08, rtol=0)
    whole = load_video(path, 3, image_size=2 * s).pixel_values[0]  # [N, 3, 2S, 2S]
    p = tiled.pixel_values
    stitched = torch.cat([torch.cat([p[0], p[1]], dim=-1), torch.cat([p[2], p[3]], dim=-1)], dim=-2)
    torch.testing.assert_close(stitched, whole, atol=0, rtol=0)
    # a non-square layout: (rows, cols) = (1, 2) resizes to (S, 2S): tile 0 = left half, tile 1 = right half
    wide = load_video(path, 2, image_size=s, tiles=(1, 2))
    assert wide.pixel_values.shape == (2, 2, 3, s, s)
    for k, (top, bottom) in enumerate([(colours[0], colours[2]), (colours[1], colours[3])]):
        px = wide.pixel_values[k] * STD + MEAN
        for rows, c in [(slice(2, 12), top), (slice(20, 30), bottom)]:
            got = px[:, :, rows, 8:24].mean(dim=(0, 2, 3))
            torch.testing.assert_close(got, torch.tensor(c, dtype=torch.float32) / 255, atol=0.08, rtol=0)


def test_preprocess_tiles_equal_crops_of_the_full_resize():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (3, 50, 70, 3), dtype=np.uint8)
    s = 16
    for rows, cols in [(2, 2), (1, 3), (3, 2)]:
        tiled = preprocess(frames, image_size=s, tiles=(rows, cols))
        assert tiled.shape == (rows * cols, 3, 3, s, s)
        big = torch.from_numpy(frames).permute(0, 3, 1, 2)  # the same uint8 resize: this checks the layout
        big = TF.resize(big, [rows * s, cols * s], interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
        big = (big.float() / 255 - MEAN) / STD
        for k in range(rows * cols):
            r, c = divmod(k, cols)
            crop = big[:, :, r * s : (r + 1) * s, c * s : (c + 1) * s]
            torch.testing.assert_close(tiled[k], crop, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------------------------------
# probe


def test_probe_counts_frames(tmp_path):
    mp4 = write_video(tmp_path / "a.mp4", barcode_frames(24), fps=12)
    info = probe(mp4)
    assert (info.num_frames, info.frames_from) == (24, "metadata")
    assert info.fps == pytest.approx(12.0)
    assert info.duration_s == pytest.approx(2.0, abs=0.1)
    assert (info.width, info.height, info.codec) == (W, H, "mpeg4")
    assert info.path == mp4
    mkv = write_video(tmp_path / "a.mkv", barcode_frames(17), fps=Fraction(30000, 1001))
    info = probe(mkv)
    assert (info.num_frames, info.frames_from) == (17, "demux")
    assert info.fps == pytest.approx(29.97, abs=0.01)


def test_write_video_requires_even_sizes(tmp_path):
    with pytest.raises(VideoError, match="even H and W"):
        write_video(tmp_path / "odd.mp4", np.zeros((2, 33, 64, 3), np.uint8))
    with pytest.raises(VideoError, match="uint8"):
        write_video(tmp_path / "f.mp4", np.zeros((2, 32, 64, 3), np.float32))


# ---------------------------------------------------------------------------------------------------------
# errors


def assert_video_error(path, reason: str, fn=load_video, *args, **kwargs):
    with pytest.raises(VideoError) as ei:
        fn(path, *args, **kwargs)
    msg = str(ei.value)
    assert str(path) in msg, msg
    assert reason in msg, msg
    assert msg.startswith(f"video {path}: ") and "; expected" in msg, msg
    assert isinstance(ei.value, (LfbenchError, ValueError))
    return msg


def junk_stream(path, good: int, junk: int) -> None:
    """An MPEG-4 stream of ``good`` real frames followed by ``junk`` packets the decoder rejects."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=8)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.options = {"bf": "0"}
        c.start_encoding()
        for img in barcode_frames(good):
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
        for k in range(junk):
            p = av.Packet(bytes(range(256)) * 4)
            p.stream, p.time_base, p.pts, p.dts = s, Fraction(1, 8), good + k, good + k
            p.is_keyframe = k == 0
            c.mux(p)


def test_error_missing_path(tmp_path):
    assert_video_error(tmp_path / "nope.mp4", "no such file", load_video, 4)
    assert_video_error(tmp_path / "nope.mp4", "no such file", probe)


def test_error_directory(tmp_path):
    assert_video_error(tmp_path, "is a directory", load_video, 4)


def test_error_empty_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    assert_video_error(p, "empty", load_video, 4)


def test_error_text_file(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 50)
    assert_video_error(p, "not a video or corrupt", load_video, 4)


def test_error_truncated_mp4(tmp_path, barcode_mp4):
    data = open(barcode_mp4, "rb").read()
    p = tmp_path / "half.mp4"  # index (moov) at the end: cut away
    p.write_bytes(data[: len(data) // 2])
    assert_video_error(p, "corrupt/truncated", load_video, 4)


def test_error_truncated_faststart_mp4(tmp_path):
    """Index at the front survives the cut: the container declares 40 frames, about half decode."""
    full = write_video(tmp_path / "fs.mp4", barcode_frames(), container_options={"movflags": "faststart"})
    data = full.read_bytes()
    p = tmp_path / "fs_half.mp4"
    p.write_bytes(data[: len(data) // 2])
    assert probe(p).num_frames == T
    msg = assert_video_error(p, "truncated or corrupt", load_video, 16, image_size=32)
    assert "declares 40 frames" in msg


def test_error_no_video_stream(tmp_path):
    p = tmp_path / "audio.wav"
    with av.open(str(p), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for pkt in s.encode(frame):
            c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    msg = assert_video_error(p, "no video stream", load_video, 4)
    assert "audio" in msg
    assert_video_error(p, "no video stream", probe)


def test_error_zero_decodable_frames(tmp_path):
    p = tmp_path / "junk.mkv"
    junk_stream(p, good=0, junk=3)
    assert probe(p).num_frames == 3  # packets exist
    assert_video_error(p, "no decodable frames", load_video, 2)


def test_small_frame_count_shortfall_resamples(tmp_path):
    """Declared 42 frames, 40 decode (2 bad packets at the end): within the slack, indices over the real 40."""
    p = tmp_path / "short.mp4"
    junk_stream(p, good=T, junk=2)
    assert probe(p).num_frames == T + 2
    assert load_video(p, 8, image_size=64).info.frames_from == "metadata"  # never reaches the bad packets
    clip = load_video(p, 41, image_size=64)  # last index 40 would be a bad packet
    assert clip.info.frames_from == "decode" and clip.info.num_frames == T
    assert clip.indices == sample_indices(T, 41)
    assert read_barcodes(clip.pixel_values[0]) == clip.indices
    p3 = tmp_path / "short3.mp4"
    junk_stream(p3, good=T, junk=3)  # 3 missing > slack of 2
    assert_video_error(p3, "declares 43 frames but only 40 decode", load_video, 42, image_size=32)


@pytest.mark.parametrize("n", [0, -2, 1.5, True])
def test_error_bad_num_frames(barcode_mp4, n):
    assert_video_error(barcode_mp4, "bad num_frames", load_video, n)


@pytest.mark.parametrize("tiles", [(0, 1), (2,), (2, 2, 1), "2x2", (1.0, 2), None])
def test_error_bad_tiles(barcode_mp4, tiles):
    assert_video_error(barcode_mp4, "bad tiles", load_video, 2, tiles=tiles)


@pytest.mark.parametrize("size", [0, -448, 44.8, None])
def test_error_bad_image_size(barcode_mp4, size):
    assert_video_error(barcode_mp4, "bad image_size", load_video, 2, image_size=size)
