"""Video input: probe a file, pick InternVL's frames, decode them with PyAV and preprocess them like InternVL.

Reference recipe (read, then re-implemented here; no code copied):

* OpenGVLab/InternVL@2410d1dbf208f0e799459aff9376e5747dbf41a2, ``README.md`` (the model-card quick start,
  "video multi-round conversation"): ``get_index`` / ``load_video`` / ``build_transform``;
  the same functions appear in lmms-eval 0.7.3, ``lmms_eval/models/simple/internvl3.py``.
* Frame choice (``get_index`` without ``bound``): ``max_frame = len(video) - 1``,
  ``seg = max_frame / num_segments``, ``index_i = int(seg / 2 + np.round(seg * i))``. Note the two quirks kept
  on purpose so indices match the original exactly: the span is ``num_total - 1`` (not ``num_total``), and
  ``np.round`` rounds halves to even (Python's ``round`` on floats does the same). Consequences: the last
  frame is (almost) never chosen, and asking for ``num_frames >= num_total`` repeats some frames; with
  ``num_frames <= num_total - 1`` all indices are distinct.
* Preprocessing (``build_transform``): RGB, ``Resize((448, 448), BICUBIC)`` on a PIL image (PIL's bicubic,
  a = -0.5, always antialiased), ``ToTensor`` (/255), ``Normalize`` with ImageNet mean/std. Here the resize
  is ``torchvision.transforms.v2.functional.resize`` on the uint8 tensor with ``BICUBIC`` and
  ``antialias=True``, which is torch's PIL-compatible antialiased bicubic (a = -0.5) with uint8 rounding:
  measured against PIL on random images it differs by at most 2/255 on a pixel, ~0.005/255 on average.
* One tile per frame (the original's ``max_num=1``) is the default. ``tiles=(rows, cols)`` is a *fixed*
  tiling (resize to ``(rows*S, cols*S)``, cut row-major), not InternVL's ``dynamic_preprocess``: there is no
  aspect-ratio search and no thumbnail tile.

Decoding is sequential (PyAV, codec threading ``AUTO``): frames are decoded in presentation order, only the
wanted ones are converted to RGB and resized as they arrive, and decoding stops after the last wanted index,
so memory holds at most ``num_frames`` resized frames, never the whole video. Frame ``i`` is the ``i``-th
decoded frame, like decord's ``vr[i]`` in the original.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from liteframe_bench.errors import VideoError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Codec ``write_video`` uses by default: FFmpeg's native MPEG-4 part 2 encoder exists in every FFmpeg build
#: (PyAV wheels included), unlike libx264/libopenh264, which depend on how FFmpeg was built.
DEFAULT_CODEC = "mpeg4"

#: How many frames fewer than the container declares may actually decode before the file counts as truncated:
#: ``max(FRAME_SLACK_MIN, ceil(FRAME_SLACK_FRAC * declared))``. Real files are often off by a frame or two
#: (edit lists, a dropped leading B-frame); a file cut short loses far more.
FRAME_SLACK_MIN = 2
FRAME_SLACK_FRAC = 0.01


def _err(path: str | os.PathLike, reason: str, expected: str) -> VideoError:
    return VideoError(f"video {path}: {reason}; {expected}")


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about its first video stream.

    ``frames_from`` tells where ``num_frames`` came from: ``"metadata"`` (the stream's declared frame count,
    e.g. the MP4 sample table), ``"demux"`` (counted video packets, no decoding: used when the container
    declares no count, e.g. Matroska/WebM), or ``"decode"`` (counted while decoding, after the declared count
    proved slightly too high; see :func:`load_video`).
    """

    path: Path
    num_frames: int
    fps: float
    duration_s: float
    width: int
    height: int
    codec: str
    frames_from: str = "metadata"


@dataclass
class VideoClip:
    """Frames of one video, preprocessed for the vision encoder.

    ``pixel_values``: float32 ``[tiles, N, 3, S, S]`` (``tiles = rows * cols``), ImageNet-normalised.
    ``indices``: the decoded frame index used for each of the N frames (repeats when N exceeds what the video
    holds). ``decode_s``: wall seconds (``time.perf_counter``) for the whole of :func:`load_video`: probe,
    open, decode, RGB conversion, resize, the copy to ``device``, normalisation and tiling (followed by a
    ``torch.cuda.synchronize`` on a CUDA device, so the GPU work is inside the measured time).
    """

    pixel_values: torch.Tensor
    indices: list[int]
    distinct_frames: int
    info: VideoInfo
    tiles: tuple[int, int]
    image_size: int
    decode_s: float

    @property
    def frames(self) -> int:
        """N, the number of sampled frames (repeats included)."""
        return len(self.indices)


def decoder_name() -> str:
    """The decoder for provenance records, e.g. ``"pyav 15.1.0 (libavcodec 61.19.101)"``."""
    lav = av.library_versions.get("libavcodec", ())
    return f"pyav {av.__version__} (libavcodec {'.'.join(map(str, lav))})"


# ----------------------------------------------------------------------------------------------------------
# Probing


def _check_file(path: Path) -> None:
    if not path.exists():
        raise _err(path, "no such file", "expected an existing video file")
    if path.is_dir():
        raise _err(path, "is a directory", "expected a video file")
    if not path.is_file():
        raise _err(path, "is not a regular file", "expected a video file")
    if path.stat().st_size == 0:
        raise _err(path, "file is empty (0 bytes)", "expected a video file (mp4, mkv, webm, avi, ...)")


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r")
    except OSError as e:  # includes av's PermissionError etc. (FFmpegError subclasses that are OSErrors)
        raise _err(path, f"cannot open ({e})", "expected a readable video file") from e
    except av.FFmpegError as e:
        raise _err(path, f"not a video or corrupt/truncated container ({e})", "expected a readable video file") from e
    except UnicodeDecodeError as e:
        raise _err(path, f"cannot open ({e})", "expected a readable video file") from e


def _video_stream(path: Path, container: av.container.InputContainer) -> av.video.stream.VideoStream:
    if not container.streams.video:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "none"
        raise _err(path, f"no video stream (streams: {kinds})", "expected a file with at least one video stream")
    return container.streams.video[0]


def _fps(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    return 0.0


def probe(path: str | os.PathLike) -> VideoInfo:
    """Describe the first video stream of ``path`` without decoding.

    Frame count: the stream's declared count (``stream.frames``) when it is > 0, else the number of non-empty
    video packets found by demuxing the whole file (one packet per frame for the usual codecs; reads the file
    but decodes nothing). Raises :class:`VideoError` for a missing path, a directory, an empty file, a file
    FFmpeg cannot open (not a video, corrupt or truncated container) and a file without a video stream.
    """
    path = Path(path)
    _check_file(path)
    with _open(path) as container:
        stream = _video_stream(path, container)
        num = int(stream.frames or 0)
        source = "metadata"
        if num <= 0:
            source = "demux"
            try:
                num = sum(1 for pkt in container.demux(stream) if pkt.size > 0)
            except av.FFmpegError as e:
                raise _err(path, f"corrupt container while counting frames ({e})", "expected a readable video") from e
        fps = _fps(stream)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = num / fps if fps > 0 else 0.0
        ctx = stream.codec_context
        return VideoInfo(
            path=path,
            num_frames=num,
            fps=fps,
            duration_s=duration,
            width=int(ctx.width or 0),
            height=int(ctx.height or 0),
            codec=ctx.name,
            frames_from=source,
        )


# ----------------------------------------------------------------------------------------------------------
# Frame choice


def sample_indices(num_total: int, num_frames: int) -> list[int]:
    """InternVL's frame indices: ``num_frames`` segment midpoints over the whole video.

    Exactly the original ``get_index(bound=None, fps, max_frame=num_total - 1, first_idx=0, num_segments)``:
    ``seg = (num_total - 1) / num_frames`` and ``index_i = int(seg / 2 + round_half_even(seg * i))``.
    Non-decreasing, within ``[0, num_total - 1]``; distinct when ``num_frames <= num_total - 1``, otherwise some
    indices repeat (sampling with repetition; count the distinct ones with ``len(set(...))``).
    """
    if isinstance(num_total, bool) or not isinstance(num_total, (int, np.integer)) or num_total < 1:
        raise ValueError(f"num_total={num_total!r} must be an int >= 1 (frames in the video)")
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
        raise ValueError(f"num_frames={num_frames!r} must be an int >= 1")
    seg = float(num_total - 1) / num_frames
    # Python's round() on a float is round-half-to-even, the same as np.round(x) (decimals=0) in the original.
    return [int(seg / 2 + round(seg * i)) for i in range(num_frames)]


# ----------------------------------------------------------------------------------------------------------
# Preprocessing


def _check_layout(path, image_size, tiles) -> tuple[int, int]:
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise _err(path, f"bad image_size={image_size!r}", "expected an int >= 1 (448 for InternVL3)")
    if (
        not isinstance(tiles, (tuple, list))
        or len(tiles) != 2
        or any(isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1 for t in tiles)
    ):
        raise _err(path, f"bad tiles={tiles!r}", "expected (rows, cols), two ints >= 1, e.g. (1, 1) or (2, 2)")
    return int(tiles[0]), int(tiles[1])


def _resize_hwc(hwc: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """uint8 ``[..., H, W, 3]`` -> uint8 ``[..., height, width, 3]``, antialiased bicubic like PIL.

    The resize runs on the channels-last view (``permute`` of HWC memory), torch's fast uint8 path; its output
    is channels-last too, so the permute back to HWC is free.
    """
    if tuple(hwc.shape[-3:-1]) == (height, width):
        return hwc
    chw = hwc.movedim(-1, -3)
    out = TF.resize(chw, [height, width], interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
    return out.movedim(-3, -1)


def _normalise(hwc: torch.Tensor, rows: int, cols: int, size: int) -> torch.Tensor:
    """uint8 ``[N, rows*S, cols*S, 3]`` -> float32 ``[rows*cols, N, 3, S, S]``, ImageNet-normalised.

    One strided copy does the uint8 -> float conversion, the HWC -> CHW transpose and the tiling (tile
    ``k = r * cols + c``, row-major); then ``x / 255``, ``- mean``, ``/ std`` in place, in the same order and
    float32 arithmetic as ``ToTensor`` + ``Normalize``. Runs on ``hwc``'s device.
    """
    n = hwc.shape[0]
    out = torch.empty((rows * cols, n, 3, size, size), dtype=torch.float32, device=hwc.device)
    out.view(rows, cols, n, 3, size, size).copy_(hwc.view(n, rows, size, cols, size, 3).permute(1, 3, 0, 5, 2, 4))
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=hwc.device).view(1, 1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=hwc.device).view(1, 1, 3, 1, 1)
    return out.div_(255.0).sub_(mean).div_(std)


def preprocess(
    frames: torch.Tensor | np.ndarray, *, image_size: int = 448, tiles: tuple[int, int] = (1, 1)
) -> torch.Tensor:
    """RGB uint8 frames ``[N, H, W, 3]`` -> float32 ``[rows*cols, N, 3, S, S]`` (what :func:`load_video` does).

    Resize to ``(rows*S, cols*S)`` with antialiased bicubic, scale to [0, 1], normalise with ImageNet
    mean/std, then cut each frame into ``rows x cols`` tiles of ``S x S``, row-major. Runs on the device of
    ``frames`` (a numpy array stays on the CPU).
    """
    rows, cols = _check_layout("<frames>", image_size, tiles)
    t = torch.as_tensor(frames)
    if t.dtype != torch.uint8 or t.ndim != 4 or t.shape[-1] != 3 or t.shape[0] < 1:
        raise ValueError(f"frames must be uint8 [N>=1, H, W, 3], got {tuple(t.shape)} {t.dtype}")
    hwc = _resize_hwc(t, rows * image_size, cols * image_size).contiguous()
    return _normalise(hwc, rows, cols, image_size)


# ----------------------------------------------------------------------------------------------------------
# Decoding


def _decode_wanted(path: Path, wanted: list[int], height: int, width: int, threads: int):
    """Decode sequentially; return (uint8 [len(wanted), height, width, 3], frames decoded, last decoder error).

    ``wanted``: sorted distinct indices; row ``j`` of the buffer holds frame ``wanted[j]`` (rows of frames that
    never came stay unset). Stops after the last wanted index. A packet the decoder rejects is skipped
    (FFmpeg's own behaviour), so a damaged packet loses its frame instead of the whole video; the last such
    error is returned.
    """
    row = {index: j for j, index in enumerate(wanted)}
    last = wanted[-1]
    buf = torch.empty((len(wanted), height, width, 3), dtype=torch.uint8)
    decoded = 0
    error: Exception | None = None
    with _open(path) as container:
        stream = _video_stream(path, container)
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.FFmpegError as e:  # a bad packet: skip it
                    error = e
                    continue
                for frame in frames:
                    j = row.get(decoded)
                    if j is not None:
                        rgb = torch.from_numpy(frame.to_ndarray(format="rgb24"))
                        buf[j].copy_(_resize_hwc(rgb, height, width))
                    decoded += 1
                    if decoded > last:
                        return buf, decoded, error
        except av.FFmpegError as e:  # the demuxer itself failed: the rest of the file is unreadable
            error = e
    return buf, decoded, error


def load_video(
    path: str | os.PathLike,
    num_frames: int,
    *,
    image_size: int = 448,
    tiles: tuple[int, int] = (1, 1),
    device: str | torch.device = "cpu",
    threads: int = 0,
) -> VideoClip:
    """Decode ``num_frames`` frames of ``path`` at InternVL's indices and preprocess them like InternVL.

    ``tiles=(1, 1)``: each frame resized to ``S x S`` (``S = image_size``). ``tiles=(rows, cols)``: each frame
    resized to ``(rows*S, cols*S)`` and cut into ``rows*cols`` tiles, row-major; ``pixel_values[k]`` is the
    clip of tile ``k`` over all frames. ``threads``: decoder threads (0 = FFmpeg's automatic choice).

    Decoding, RGB conversion and resizing run on the CPU (uint8); the uint8 frames then move to ``device``,
    where the float conversion, normalisation and tiling run (a quarter of the bytes to copy, and the float
    work on the GPU when there is one).

    Indices come from :func:`sample_indices` over the probed frame count. If the stream ends early (the
    container declared more frames than decode), by at most ``max(FRAME_SLACK_MIN, 1%)`` frames, the video is
    decoded a second time with indices over the real count (``info.frames_from == "decode"``); a larger
    shortfall is a :class:`VideoError` (truncated/corrupt file), as is a stream with no decodable frame.
    """
    t0 = time.perf_counter()
    path = Path(path)
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
        raise _err(path, f"bad num_frames={num_frames!r}", "expected an int >= 1")
    rows, cols = _check_layout(path, image_size, tiles)
    info = probe(path)
    if info.num_frames < 1:
        raise _err(path, "no frames (the video stream is empty)", "expected at least one decodable frame")

    total = info.num_frames
    for attempt in (0, 1):
        indices = sample_indices(total, int(num_frames))
        wanted = sorted(set(indices))
        buf, decoded, error = _decode_wanted(path, wanted, rows * image_size, cols * image_size, threads)
        if decoded > wanted[-1]:
            break
        why = f" (decoder: {error})" if error is not None else ""
        if decoded == 0:
            raise _err(path, f"no decodable frames{why}", "expected at least one decodable frame")
        slack = max(FRAME_SLACK_MIN, math.ceil(FRAME_SLACK_FRAC * total))
        if attempt == 1 or total - decoded > slack:
            raise _err(
                path,
                f"truncated or corrupt: the stream declares {total} frames but only {decoded} decode{why}",
                f"expected all declared frames (or at most {slack} fewer) to decode",
            )
        total = decoded
        info = VideoInfo(**{**info.__dict__, "num_frames": decoded, "frames_from": "decode"})

    if len(wanted) != len(indices):  # repeated indices share one decoded frame
        row = {index: j for j, index in enumerate(wanted)}
        buf = buf.index_select(0, torch.tensor([row[i] for i in indices]))
    pixel_values = _normalise(buf.to(device), rows, cols, image_size)
    if pixel_values.device.type == "cuda":
        torch.cuda.synchronize(pixel_values.device)
    return VideoClip(
        pixel_values=pixel_values,
        indices=indices,
        distinct_frames=len(wanted),
        info=info,
        tiles=(rows, cols),
        image_size=int(image_size),
        decode_s=time.perf_counter() - t0,
    )


# ----------------------------------------------------------------------------------------------------------
# Writing (tests, synthetic suite)


def write_video(
    path: str | os.PathLike,
    frames: torch.Tensor | np.ndarray,
    fps: int | float | Fraction = 8,
    codec: str = DEFAULT_CODEC,
    *,
    bit_rate: int | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode RGB uint8 ``frames [T, H, W, 3]`` to ``path`` (container from the suffix: .mp4, .mkv, .avi, ...).

    ``T >= 1``; ``H`` and ``W`` must be even (the encoder's yuv420p chroma is subsampled 2x2). The default
    codec ``mpeg4`` is in every FFmpeg build; pass ``"libx264"`` (if your PyAV has it) for H.264 with
    B-frames. ``bit_rate`` defaults to ~0.25 bit per pixel per frame (at least 1 Mbit/s), high enough that
    solid colours and bars survive. ``options`` go to the encoder (e.g. ``{"crf": "18"}`` for libx264),
    ``container_options`` to the muxer (e.g. ``{"movflags": "faststart"}``: MP4 index at the front).
    """
    path = Path(path)
    arr = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        raise _err(path, f"cannot write frames of shape {arr.shape} dtype {arr.dtype}", "expected uint8 [T, H, W, 3]")
    t, h, w, _ = arr.shape
    if t < 1 or h < 2 or w < 2 or h % 2 or w % 2:
        raise _err(path, f"cannot write {t} frames of {w}x{h}", "expected T >= 1 and even H and W (yuv420p)")
    rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
    if rate <= 0:
        raise _err(path, f"bad fps={fps!r}", "expected fps > 0")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with av.open(str(path), mode="w", options=dict(container_options or {})) as container:
            stream = container.add_stream(codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.bit_rate = int(bit_rate or max(1_000_000, 0.25 * w * h * float(rate)))
            if options:
                stream.options = dict(options)
            for img in arr:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    except (av.FFmpegError, ValueError) as e:
        raise _err(
            path, f"cannot encode with codec {codec!r} ({e})", f"expected a codec such as {DEFAULT_CODEC!r}"
        ) from e
    return path


__all__ = [
    "DEFAULT_CODEC",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VideoClip",
    "VideoError",
    "VideoInfo",
    "decoder_name",
    "load_video",
    "preprocess",
    "probe",
    "sample_indices",
    "write_video",
]


class ClipCache:
    """Decoded clips reused across accuracy-mode samples (several questions per video, several methods per
    frame count). Least-recently-used, bounded by bytes. Never used by timed runs: the profiler always decodes.
    """

    def __init__(self, max_bytes: int = 2 * 2**30):
        from collections import OrderedDict

        self.max_bytes = max_bytes
        self._clips: OrderedDict[tuple, VideoClip] = OrderedDict()
        self.hits = self.misses = 0

    def _bytes(self) -> int:
        return sum(c.pixel_values.numel() * c.pixel_values.element_size() for c in self._clips.values())

    def load(self, path: str | os.PathLike, num_frames: int, **kwargs) -> tuple[VideoClip, bool]:
        """(clip, hit): the cached clip for (file, mtime, size, num_frames, options), decoding on a miss."""
        p = Path(path)
        try:
            st = p.stat()
            key = (str(p.resolve()), st.st_mtime_ns, st.st_size, int(num_frames), tuple(sorted(kwargs.items())))
        except OSError:
            key = None  # let load_video raise its clear error
        if key is not None and key in self._clips:
            self._clips.move_to_end(key)
            self.hits += 1
            return self._clips[key], True
        clip = load_video(path, num_frames, **kwargs)
        self.misses += 1
        size = clip.pixel_values.numel() * clip.pixel_values.element_size()
        if key is not None and size <= self.max_bytes:
            self._clips[key] = clip
            while self._bytes() > self.max_bytes:
                self._clips.popitem(last=False)
        return clip, False
