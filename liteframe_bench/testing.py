"""Random inputs for reducers: used by the tests, the conformance suite and ``lfbench bench reducers``."""

from __future__ import annotations

import torch

from liteframe_bench.interfaces import TokenGrid


def random_grid(
    B: int = 1,
    T: int = 8,
    H: int = 16,
    W: int = 16,
    C: int = 64,
    *,
    heads: int = 4,
    key_dim: int | None = None,
    global_dim: int | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    aux: bool = True,
    cls_self: bool = False,
) -> TokenGrid:
    """A seeded random :class:`TokenGrid` with every auxiliary input filled (``aux=False`` leaves them out).

    CLS logits are drawn with a few strongly attended tokens per frame, like a real ViT's last layer;
    ``cls_self=True`` adds the class token's logit to itself (drawn last, so the other inputs do not change).
    """
    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).to(device=device, dtype=dtype)

    x = rand(B, T, H, W, C)
    if not aux:
        return TokenGrid(x)
    logits = torch.randn(B, T, heads, H, W, generator=g)
    spikes = (torch.rand(B, T, 1, H, W, generator=g) > 0.97).float() * 6.0
    cls_attn = (logits + spikes).to(device=device, dtype=dtype)
    keys, frame_global = rand(B, T, H, W, key_dim or C), rand(B, T, global_dim or C)
    own = (torch.randn(B, T, heads, generator=g) + 2.0).to(device=device, dtype=dtype) if cls_self else None
    return TokenGrid(x, cls_attn=cls_attn, keys=keys, frame_global=frame_global, cls_self=own)


def constant_grid(
    B: int = 1,
    T: int = 8,
    H: int = 16,
    W: int = 16,
    C: int = 64,
    *,
    heads: int = 4,
    value: float = 0.5,
    dtype: torch.dtype = torch.float32,
) -> TokenGrid:
    """Every token, key, logit and global feature the same constant (degenerate input)."""
    full = lambda *s: torch.full(s, value, dtype=dtype)
    return TokenGrid(
        full(B, T, H, W, C), cls_attn=full(B, T, heads, H, W), keys=full(B, T, H, W, C), frame_global=full(B, T, C)
    )


def moving_square_video(path, frames: int, size: int = 224, fps: int = 8, seed: int = 0):
    """Write a seeded video of a coloured square moving over a gradient (cheap to encode and decode)."""
    import numpy as np

    from liteframe_bench.video import write_video

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    background = np.stack([xx * 255 // size, yy * 255 // size, np.full_like(xx, 96)], -1).astype(np.uint8)
    video = np.repeat(background[None], frames, axis=0)
    side = max(4, size // 6) // 2 * 2
    colour = rng.integers(0, 256, 3, dtype=np.uint8)
    for t in range(frames):
        x = (t * 7) % (size - side)
        y = (t * 3) % (size - side)
        video[t, y : y + side, x : x + side] = colour
    return write_video(path, video, fps=fps)
