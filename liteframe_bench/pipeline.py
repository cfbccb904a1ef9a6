"""A Video LLM method as a composition: a backbone (:mod:`liteframe_bench.backbone`) + optional reducer at ``vit``,
``mlp`` or ``proj``.

``build_method(spec, backbone)`` turns any spec into a runnable method: a registered method name
(``baseline``) or a reducer spec (``wap:ratio=16``, ``tome:ratio=16,at=proj``), which means baseline + that
reducer at its default insertion point (``at=`` overrides it).

Data flow (each arrow a profiler stage)::

    video --decode--> frames [tiles, T, 3, S, S] --vision--> ViT grid [tiles, T', h, w, C] (+ CLS logits, keys)
      at=vit:  --reduce--> regular grid --project--> merge (pixel shuffle / 2x2 merger) + MLP --> tokens
      at=mlp:  --project--> merged [tiles, T', h/2, w/2, 4C] --reduce--> --project--> MLP --> tokens
      at=proj: --project--> [tiles, T', h/2, w/2, D] --reduce--> tokens
      --prefill--> LLM over the prompt (inputs_embeds, positions from each token's (t, y, x) source)
      --generate--> greedy tokens

``T' = T / temporal_patch`` encoder time steps (T for InternVL3; T/2 for Qwen2.5-VL's 3D patches, the clip padded
with its last frame to an even length as Qwen's processor does).

At ``mlp`` and ``proj`` the CLS logits are pooled onto the shuffled grid after the heads are combined as the
reducer's softmax combines them (``Reducer.cls_heads``), so each token's attention is its 2x2 group's mass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from liteframe_bench import registry
from liteframe_bench.errors import ContextError, SpecError
from liteframe_bench.interfaces import Generation, Method, Reducer, TokenGrid, VisualTokens
from liteframe_bench.reduction import joint_logits
from liteframe_bench.stages import StageClock


class VideoLLM(Method):
    """Shared encode/generate of every backbone-based method; subclasses are registered dataclasses."""

    reducer: Reducer | None = None
    at: str | None = None
    backbone: Any = None
    tiles: tuple[int, int] = (1, 1)

    def bind(self, backbone, reducer: Reducer | None = None, at: str | None = None, tiles: tuple[int, int] = (1, 1)):
        """Attach the backbone (and a reducer at an insertion point); returns self."""
        if reducer is not None:
            at = at or reducer.default_at
            registry.check_insertion_point(reducer, at)
        self.backbone, self.reducer, self.at, self.tiles = backbone, reducer, at, tiles
        return self

    @property
    def spec(self) -> str:
        """The method's identity in results and figures: its canonical spec without checkpoint folders."""
        return self._canonical(identity=True)

    @property
    def full_spec(self) -> str:
        """The canonical spec that rebuilds this method, checkpoint folders included."""
        return self._canonical(identity=False)

    def _canonical(self, identity: bool) -> str:
        if self.reducer is None:
            return registry.canonical_spec(self, identity=identity)
        s = registry.canonical_spec(self.reducer)
        return s if self.at == self.reducer.default_at else f"{s}{',' if ':' in s else ':'}at={self.at}"

    # ------------------------------------------------------------------------------------------ encode

    def encode(self, video, frames: int | None = None, *, clock: StageClock | None = None) -> VisualTokens:
        from liteframe_bench import video as vio

        bb = self.backbone
        if bb is None:
            raise SpecError(f"method {self.spec!r} has no backbone: call build_method(spec, backbone)")
        own_clock = clock is None  # a caller's clock is read by the caller (one synchronise per run)
        clock = clock or StageClock(bb.device)
        if isinstance(video, (str, os.PathLike)):  # else: an already decoded clip (no decode stage)
            if frames is None:
                raise SpecError("frames is required when encoding a video file")
            with clock.stage("decode"):
                video = vio.load_video(video, frames, image_size=bb.image_size, tiles=self.tiles)
        px = video.pixel_values  # [tiles, T, 3, S, S]
        n_tiles, T = px.shape[:2]
        if T % bb.temporal_patch:  # the family's processor pads the clip with its last frame
            pad = bb.temporal_patch - T % bb.temporal_patch
            px = torch.cat([px, px[:, -1:].expand(-1, pad, -1, -1, -1)], dim=1)
        with torch.inference_mode():
            out = self.visual_tokens(px, clock)
            embeds, pos, size, tile = _flatten_tiles(out)
            if self.ordered:  # prompt order: by frame, then tile, keeping each tile's own order
                key = pos[:, 0] * n_tiles + tile
                order = torch.sort(key, stable=True).indices
                embeds, pos, size, tile = embeds[order], pos[order], size[order], tile[order]
                t_vals, counts = torch.unique_consecutive(pos[:, 0], return_counts=True)
                groups = [(f"Frame{int(t) + 1}", int(c)) for t, c in zip(t_vals.tolist(), counts.tolist(), strict=True)]
            else:
                groups = [("Video", int(embeds.shape[0]))]
        timings = clock.results() if own_clock else {}
        before = bb.tokens_before(T, n_tiles)
        info = getattr(video, "info", None)
        interval = info.duration_s / T if info is not None and getattr(info, "duration_s", 0) > 0 else None
        return VisualTokens(
            embeds, pos, size, tile, groups, T, video.distinct_frames, before, timings, frame_interval_s=interval,
            grid=self.token_grid(T),
        )

    def token_grid(self, frames: int) -> tuple[int, int, int]:
        """(T', H', W') of the projected token grid that ``VisualTokens.pos`` indexes for a clip of ``frames``."""
        bb = self.backbone
        side = bb.grid_side // bb.shuffle
        return bb.time_steps(frames), side, side

    @property
    def ordered(self) -> bool:
        """Whether the visual tokens come in (t, y, x) order, so the prompt can label them frame by frame."""
        return self.reducer is None or self.reducer.ordered

    def visual_tokens(self, px: Tensor, clock: StageClock):
        """The ``vision``, ``reduce`` and ``project`` stages: [tiles, T, 3, S, S] -> per-tile LLM tokens.

        Returns an object with ``x`` [tiles, N, D], ``pos`` [tiles, N, 3] (t, y, x in the projected grid),
        ``size`` [tiles, N], ``lengths`` and ``num_tokens`` (a ReducedTokens or equivalent). Methods with another
        encoder override this and keep everything else.
        """
        bb = self.backbone
        n_tiles = px.shape[0]
        red, need = self.reducer, frozenset(self.reducer.needs) if self.reducer else frozenset()
        with clock.stage("vision"):
            vis = bb.vision(px.flatten(0, 1), need)
        T = vis.grid.shape[0] // n_tiles  # encoder time steps per tile
        s = bb.shuffle
        aux = lambda t: None if t is None else t.unflatten(0, (n_tiles, T))
        if red is None:
            with clock.stage("project"):
                tokens = bb.project(vis.grid).unflatten(0, (n_tiles, T))  # [tiles, T, h/s, w/s, D]
            return registry.create("identity")(TokenGrid(tokens))
        if self.at == "vit":
            with clock.stage("reduce"):
                grid = TokenGrid(
                    vis.grid.unflatten(0, (n_tiles, T)),
                    cls_attn=aux(vis.cls_attn),
                    keys=aux(vis.keys),
                    frame_global=aux(vis.cls_out),
                    cls_self=aux(vis.cls_self),
                )
                reduced = red(grid)
                g = reduced.as_grid()  # [tiles, T', h', w', C]
            Tn, hn, wn = g.shape[1:4]
            if hn % s or wn % s:
                raise SpecError(
                    f"reducer {red.name!r} at vit left a {hn}x{wn} grid; the pixel shuffle needs sides divisible by {s}"
                )
            with clock.stage("project"):
                proj = bb.project(g.flatten(0, 1)).unflatten(0, (n_tiles, Tn))
            # each projected token stands for an s x s group of reduced cells: report the group's first cell
            rpos = reduced.pos.view(n_tiles, Tn, hn, wn, 3)[:, :, ::s, ::s]
            rsize = reduced.size.view(n_tiles, Tn, hn, wn).unflatten(2, (hn // s, s)).unflatten(4, (wn // s, s))
            n = proj.shape[1] * proj.shape[2] * proj.shape[3]
            return _Tokens(
                proj.reshape(n_tiles, n, -1),
                (rpos // torch.tensor([1, s, s], device=rpos.device)).reshape(n_tiles, n, 3),
                (rsize.sum(dim=(3, 5)) / (s * s)).round().long().reshape(n_tiles, n).clamp_min(1),
                None,
            )
        with clock.stage("project"):
            feats = bb.shuffle_grid(vis.grid) if self.at == "mlp" else bb.project(vis.grid)
        with clock.stage("reduce"):
            cls_attn, cls_self = coarse_cls_logits(bb, red, vis.cls_attn, vis.cls_self)
            keys = None if vis.keys is None else bb.pool_aux(vis.keys, "mean")
            reduced = red(
                TokenGrid(
                    feats.unflatten(0, (n_tiles, T)),
                    cls_attn=aux(cls_attn),
                    keys=aux(keys),
                    frame_global=aux(vis.cls_out),
                    cls_self=aux(cls_self),
                )
            )
        if self.at == "proj":
            return reduced
        with clock.stage("project"):
            x = bb.mlp(reduced.x)
        return _Tokens(x, reduced.pos, reduced.size, reduced.lengths)

    # ---------------------------------------------------------------------------------------- generate

    def generate(
        self,
        tokens: VisualTokens,
        prompt: str,
        max_new_tokens: int = 16,
        *,
        min_new_tokens: int = 0,
        clock: StageClock | None = None,
        prefix: PrefixCache | None = None,
    ) -> Generation:
        """Greedy answer. ``min_new_tokens == max_new_tokens`` fixes the decode length (timing mode).

        ``prefix`` (accuracy mode only): a :class:`PrefixCache` kept with ``tokens``; the part of the prompt before
        the question (chat header, frame labels, visual tokens) is prefilled once and its KV cache reused by every
        question on the same tokens. Timing mode never passes one.
        """
        bb = self.backbone
        own_clock = clock is None
        clock = clock or StageClock(bb.device)
        if max_new_tokens < 1 or not 0 <= min_new_tokens <= max_new_tokens:
            raise SpecError(
                f"max_new_tokens={max_new_tokens}, min_new_tokens={min_new_tokens}; "
                "allowed: 1 <= max and 0 <= min <= max"
            )
        ids = bb.build_prompt(prompt, tokens.groups)
        limit = bb.max_context
        if ids.shape[1] + max_new_tokens > limit:
            raise ContextError(
                f"prompt of {ids.shape[1]} tokens ({tokens.num_tokens} visual) + {max_new_tokens} new tokens exceeds "
                f"the LLM context of {limit} (max_position_embeddings); use fewer frames or a reducer"
            )
        fixed = min_new_tokens == max_new_tokens
        new: list[Tensor] = []
        with torch.inference_mode():
            with clock.stage("prefill"):
                shared = prefix is not None and prefix.matches(bb, tokens, ids)
                if shared:
                    cache, n = prefix.cache, prefix.length
                    logits = bb.extend(ids[:, n:], cache)
                else:
                    logits, cache = bb.prefill(bb.embed(ids, tokens.embeds), bb.position_ids(ids, tokens))
                nxt = logits.argmax(dim=-1, keepdim=True)
            with clock.stage("generate"):
                for i in range(max_new_tokens):
                    if not fixed and i >= min_new_tokens and int(nxt) == bb.eos_token_id:
                        break
                    new.append(nxt)
                    if i + 1 < max_new_tokens:
                        nxt = bb.decode_step(nxt, cache).argmax(dim=-1, keepdim=True)
            if shared:
                prefix.rewind()
        token_ids = torch.cat(new, dim=1)[0].tolist() if new else []
        text = bb.tokenizer.decode(token_ids, skip_special_tokens=True)
        return Generation(text, int(ids.shape[1]), len(token_ids), token_ids, clock.results() if own_clock else {})


class PrefixCache:
    """The KV cache of a prompt's question-independent prefix, for the questions that share one video's tokens.

    Built on first use from the backbone's ``prompt_prefix``; used only when the full prompt's ids start with the
    prefix's ids (so the tokenizer split the two the same way), else the prompt is prefilled whole.
    """

    def __init__(self) -> None:
        self.ids: Tensor | None = None
        self.cache = None
        self.length = 0

    def matches(self, bb, tokens: VisualTokens, ids: Tensor) -> bool:
        if self.ids is None:
            self.ids = bb.build_prompt(None, tokens.groups)
            self.length = int(self.ids.shape[1])
        n = self.length
        if ids.shape[1] <= n or not torch.equal(ids[:, :n], self.ids):
            return False
        if self.cache is None:
            _, self.cache = bb.prefill(bb.embed(self.ids, tokens.embeds), bb.position_ids(self.ids, tokens))
        return True

    def rewind(self) -> None:
        """Drop what a question appended, back to the shared prefix."""
        extra = self.cache.get_seq_length() - self.length
        if extra > 0:
            self.cache.crop(-extra)


@dataclass
class _Tokens:
    x: Tensor
    pos: Tensor
    size: Tensor
    lengths: Tensor | None

    @property
    def num_tokens(self) -> list[int]:
        return [self.x.shape[1]] * self.x.shape[0] if self.lengths is None else self.lengths.tolist()


def coarse_cls_logits(backbone, reducer: Reducer, cls_attn: Tensor | None, cls_self: Tensor | None):
    """CLS logits for the pixel-shuffled grid: ([N, heads', h/s, w/s], [N, heads']) from [N, heads, h, w], [N, heads].

    The heads are combined first as the reducer's softmax combines them (``cls_heads="joint"``: one full-width
    logit, heads' = 1; ``"each"``: kept per head), then each s x s group's logit becomes log sum exp over its
    patches, so a softmax over [CLS, groups] gives each group's attention mass exactly.
    """
    if cls_attn is None:
        return None, None
    if reducer.cls_heads == "joint":
        cls_attn = joint_logits(cls_attn, dim=1)
        cls_self = None if cls_self is None else joint_logits(cls_self, dim=1)
    pooled = backbone.pool_aux(cls_attn.permute(0, 2, 3, 1), "logsumexp").permute(0, 3, 1, 2)
    return pooled, cls_self


def _flatten_tiles(out) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Concatenate each tile's valid tokens: ([N, D], [N, 3], [N], tile [N])."""
    parts = [(out.x[b, :n], out.pos[b, :n], out.size[b, :n]) for b, n in enumerate(out.num_tokens)]
    tile = torch.cat(
        [torch.full((p[0].shape[0],), b, dtype=torch.long, device=p[0].device) for b, p in enumerate(parts)]
    )
    return (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), torch.cat([p[2] for p in parts]), tile)


def parse_tiles(value: Any) -> tuple[int, int]:
    """``"2x2"`` -> (2, 2): fixed tiling of each frame into rows x cols tiles of the model's image size."""
    rows, _, cols = str(value).lower().partition("x")
    if not (rows.isdigit() and cols.isdigit() and int(rows) >= 1 and int(cols) >= 1):
        raise SpecError(f"tiles={value!r} is invalid; allowed: RxC, e.g. 1x1 or 2x2")
    return int(rows), int(cols)


def build_method(spec: str, backbone, *, tiles: tuple[int, int] = (1, 1)) -> VideoLLM:
    """A runnable method from a spec: ``baseline``, or a reducer spec (optionally ``at=vit|mlp|proj``)."""
    ms = registry.parse_method_spec(spec)
    if ms.entry.kind == "method":
        if ms.at is not None:
            raise SpecError(f"method {ms.name!r} has no parameter 'at' (it applies to reducer specs)")
        method = registry.create(ms.base)
        if not isinstance(method, VideoLLM):
            raise SpecError(f"method {ms.name!r} is not a VideoLLM, so it cannot run on a backbone")
        return method.bind(backbone, tiles=tiles)
    return registry.create("baseline").bind(backbone, registry.create(ms.base), ms.at, tiles)
