"""Qwen2.5-VL through transformers' own ``Qwen2_5_VLForConditionalGeneration``, split into timeable stages.

Every tensor op runs in transformers' modules (no vendored model code); the references below are
``transformers/models/qwen2_5_vl/modeling_qwen2_5_vl.py`` and ``transformers/vision_utils.py`` of transformers 5.24.

How its vision side maps onto the pipeline (and differs from InternVL3):

- **Temporal patches.** The patch embedding is a Conv3d over 2 frames x 14 x 14 px, so one encoder step is a pair
  of frames: ``temporal_patch = 2``; a clip of odd length is padded with its last frame (as
  ``Qwen2VLVideoProcessor.patchify`` does). Frames are flattened into patches by that same ``patchify`` (called,
  not copied), in its order: temporal patch, 2x2 merge block (row-major), patch inside the block.
- **Window attention.** Most ViT layers attend inside 112 px windows, the ``fullatt_block_indexes`` layers inside a
  whole temporal patch; the tower permutes its sequence window by window (``get_vision_window_index``) and returns
  ``last_hidden_state`` in that order. :meth:`Qwen25VL.vision` undoes the permutation and returns the usual
  ``[steps, h, w, C]`` raster grid, so reducers see the same geometry as on InternVL. The tower's forward also runs
  the merger; during :meth:`Qwen25VL.vision` the merger is swapped for an identity, so it runs once, in ``project``.
- **2x2 merger instead of the pixel shuffle.** ``Qwen2_5_VLPatchMerger``: RMSNorm per patch (``ln_q``), the 4 patches
  of a 2x2 block concatenated in (row, col) order, then Linear(4C, 4C) + GELU + Linear(4C, D).
  :meth:`shuffle_grid` = ``ln_q`` + the concatenation, :meth:`mlp` = the MLP, so ``at=mlp`` reducers see one 4C row
  per LLM token exactly as on InternVL.
- **No class token.** ``cls_attn`` (needed by wap, prumerge, visionzip, fastvid) is substituted by the attention each
  patch *receives* in the last ViT layer, averaged over every query of its temporal patch and per head, given as its
  log (``log mean_q softmax_k(q.k / sqrt(d))``), so a softmax over a step's patches returns that distribution exactly
  (VisionZip, Yang et al. 2024, arXiv:2412.04467, Sec. 3.2, scores tokens by the attention they receive when the
  encoder has no class token, e.g. SigLIP). It uses the rotated queries and keys the layer attends with, over the
  whole temporal patch (the layer's own span in the published sizes, whose last layer is a full-attention one).
  ``cls_self`` is None (no class-to-class logit). ``frame_global`` (FastVID) is the mean of the step's final patch
  features. ``keys`` are the last layer's keys before the rotary embedding (content only).
- **M-RoPE.** LLM positions are 3D (t, h, w sections of the rotary dimensions). Transformers computes them from the
  prompt ids in ``Qwen2_5_VLModel.get_rope_index``; after a reducer the prompt holds fewer video tokens, so
  :meth:`position_ids` places each kept token at its *source's* position, taken from transformers' own
  ``get_vision_position_ids`` for the full grid, and numbers the text as ``get_rope_index`` does (text after the video
  continues from ``start + max(h, w) / 2``, the 5.24 rule). Decoding continues from the largest position + 1, as
  ``rope_deltas`` do in ``generate``. Temporal positions are spaced by ``tokens_per_second * second_per_grid``, with
  ``second_per_grid = 2 x`` the interval between sampled frames when the clip comes from a file
  (``VisualTokens.frame_interval_s``; the processor's ``temporal_patch_size / fps``), else 1 s (transformers' default).

Deviations from Qwen's own preprocessing: frames are resized to a fixed square (``image_size``, 448 px for the
published sizes: 1024 patches, 256 LLM tokens per frame pair) with InternVL's antialiased bicubic instead of Qwen's
aspect-keeping ``smart_resize`` under a pixel budget, so every family sees the same pixels; the ImageNet-normalised
frames are re-normalised to CLIP's mean/std (``OPENAI_CLIP_MEAN/STD``, the video processor's), an exact affine map.

Sources: ``tiny-qwen`` (seeded random, real config classes, character tokenizer), ``random:<preset>`` (the published
3B/7B sizes with random weights, for latency; on the ``meta`` device for counting), a local
``Qwen/Qwen2.5-VL-*-Instruct`` folder (real weights and tokenizer, never downloaded).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from liteframe_bench.backbone import Backbone, VisionOutput, register_backbone, resolve_dtype
from liteframe_bench.errors import SpecError
from liteframe_bench.presets import Preset

#: The chat template's default system prompt of Qwen2.5-VL-*-Instruct.
QWEN_SYSTEM = "You are a helpful assistant."
VISION_START, VISION_END, VIDEO_PAD, IMAGE_PAD = "<|vision_start|>", "<|vision_end|>", "<|video_pad|>", "<|image_pad|>"
TINY_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", VISION_START, VISION_END, VIDEO_PAD, IMAGE_PAD]
TINY_VOCAB = len(TINY_SPECIALS) + 99  # + printable characters + <unk> (backends.tiny.char_tokenizer)
#: Side of the square frames lfbench feeds the published sizes (see the module docstring).
IMAGE_SIZE = 448


def _vision(**kw) -> dict:
    """Qwen2.5-VL's 3B/7B vision tower (``Qwen/Qwen2.5-VL-7B-Instruct`` config.json), every field explicit:
    transformers' ``Qwen2_5_VLVisionConfig`` defaults differ (hidden_size 3584)."""
    return {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "hidden_act": "silu",
        "in_channels": 3,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2,
        **kw,
    }


def _text(hidden: int, layers: int, heads: int, kv: int, inter: int, vocab: int, tie: bool, mrope=(16, 24, 24),
          theta: float = 1_000_000.0, max_pos: int = 128_000) -> dict:
    return {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "intermediate_size": inter,
        "vocab_size": vocab,
        "max_position_embeddings": max_pos,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": tie,
        "rope_parameters": {"rope_type": "default", "rope_theta": theta, "mrope_section": list(mrope)},
    }


_IDS = {"image_token_id": 151_655, "video_token_id": 151_656, "vision_start_token_id": 151_652,
        "vision_end_token_id": 151_653}

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "qwen2.5-vl-3b",
            "Qwen/Qwen2.5-VL-3B-Instruct",
            _text(2048, 36, 16, 2, 11008, 151_936, True),
            vision=_vision(out_hidden_size=2048),
            top={"tie_word_embeddings": True, **_IDS},
            note="Qwen2.5-VL ViT (675 M) + Qwen2.5-3B",
        ),
        Preset(
            "qwen2.5-vl-7b",
            "Qwen/Qwen2.5-VL-7B-Instruct",
            _text(3584, 28, 28, 4, 18944, 152_064, False),
            vision=_vision(out_hidden_size=3584),
            top={"tie_word_embeddings": False, **_IDS},
            note="Qwen2.5-VL ViT (675 M) + Qwen2.5-7B",
        ),
        Preset(
            "tiny-qwen",
            "(random, built locally)",
            {**_text(64, 1, 2, 1, 128, TINY_VOCAB, False, mrope=(4, 6, 6), theta=10_000.0, max_pos=32_768),
             "bos_token_id": None, "eos_token_id": None},  # as InternVL's tiny: generate() never stops early
            vision=_vision(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                           window_size=56, fullatt_block_indexes=[1]),
            top={"tie_word_embeddings": False},
            note="random model for tests: 112 px frames, 8x8 patches, 2x2 windows of 2x2 merge blocks, a window "
            "layer then a full-attention layer; 16 LLM tokens per frame pair",
        ),
    )
}
#: Frame side per preset (Qwen2.5-VL has no fixed input size; lfbench fixes one, see the module docstring).
IMAGE_SIZES = {"tiny-qwen": 112}


def build_config(name: str, **overrides):
    """The ``Qwen2_5_VLConfig`` of a preset (``overrides`` replace top-level fields, e.g. token ids)."""
    from transformers import Qwen2_5_VLConfig

    if name not in PRESETS:
        raise SpecError(f"unknown Qwen2.5-VL preset {name!r}; allowed: {', '.join(PRESETS)}")
    p = PRESETS[name]
    cfg = Qwen2_5_VLConfig(text_config=dict(p.llm), vision_config=dict(p.vision), **{**p.top, **overrides})
    cfg._attn_implementation = "sdpa"
    return cfg


def meta_model(name_or_config):
    """The full model on the ``meta`` device: shapes and parameter counts with no memory and no weights."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    cfg = build_config(name_or_config) if isinstance(name_or_config, str) else name_or_config
    with torch.device("meta"):
        return Qwen2_5_VLForConditionalGeneration(cfg)


def parameter_counts(model) -> dict[str, int]:
    """Parameters by part: vision encoder (without the merger), merger, LLM (without lm_head), lm_head (0 if tied)."""
    count = lambda m: sum(p.numel() for p in m.parameters())
    visual = model.model.visual
    lm_head = model.lm_head.weight
    tied = lm_head is model.model.language_model.get_input_embeddings().weight
    out = {
        "vision": count(visual) - count(visual.merger),
        "projector": count(visual.merger),
        "llm": count(model.model.language_model),
        "lm_head": 0 if tied else lm_head.numel(),
    }
    out["total"] = sum(out.values())
    return out


def tiny_tokenizer():
    """A character-level fast tokenizer with Qwen2.5-VL's special tokens (no files, no download)."""
    from liteframe_bench.backends.tiny import char_tokenizer

    return char_tokenizer(TINY_SPECIALS)


def _mrope_cache(config):
    """A ``DynamicCache`` that also keeps the 3D positions [3, L] of the tokens it holds (for decoding)."""
    from transformers import DynamicCache

    class MRopeCache(DynamicCache):
        positions: Tensor

        def crop(self, tokens_to_remove: int) -> None:
            super().crop(tokens_to_remove)
            self.positions = self.positions[:, : self.get_seq_length()]

    return MRopeCache(config=config)


@register_backbone("qwen2.5-vl")
class Qwen25VL(Backbone):
    """A loaded Qwen2.5-VL model and tokenizer, with the stages a method composes (see the module docstring)."""

    model_types = ("qwen2_5_vl",)
    keywords = ("tiny-qwen",)
    tiny = "tiny-qwen"
    temporal_patch = 2
    cls_attn_source = (
        "substitute (no class token): log of the attention each patch receives in the last ViT layer, averaged over "
        "the queries of its temporal patch, per head (VisionZip's score for encoders without a class token)"
    )
    frame_global_source = "substitute (no class token): the mean of the temporal patch's final patch features"

    def __init__(self, model, tokenizer, *, source: str, system_prompt: str | None, image_size: int = IMAGE_SIZE):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.source = source
        self.system_prompt = system_prompt
        cfg = model.config
        self.config = cfg
        v = cfg.vision_config
        self.temporal_patch = int(v.temporal_patch_size)
        self.patch_size = int(v.patch_size)
        self.shuffle = int(v.spatial_merge_size)
        if image_size % (self.patch_size * self.shuffle):
            raise SpecError(f"image_size={image_size} is invalid; allowed: a multiple of "
                            f"{self.patch_size * self.shuffle} (patch {self.patch_size} x merge {self.shuffle})")
        self.image_size = int(image_size)
        self.grid_side = self.image_size // self.patch_size
        self.vision_width = int(v.hidden_size)
        self.llm_width = int(cfg.text_config.hidden_size)
        # lfbench scatters video frames as Qwen's processor does: <|video_pad|> placeholders, video_grid_thw
        self.image_token_id = int(cfg.video_token_id)
        self.vision_start_id = int(cfg.vision_start_token_id)
        self.vision_end_id = int(cfg.vision_end_token_id)
        self.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
        from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

        self._patchify = Qwen2VLVideoProcessor.patchify  # transformers' own flattening (uses no processor state)

    # ------------------------------------------------------------------------------------------- loading

    @classmethod
    def presets(cls) -> dict:
        return dict(PRESETS)

    @classmethod
    def frame_side(cls, name: str) -> int | None:
        return IMAGE_SIZES.get(name)

    @classmethod
    def preset_config(cls, name: str):
        return build_config(name)

    @classmethod
    def load(cls, model: str = "tiny-qwen", device: str = "cpu", dtype: str | torch.dtype = "auto",
             seed: int = 0) -> Qwen25VL:
        """``tiny-qwen`` (seeded random), ``random:<preset>`` (3B/7B with random weights, latency only; text is
        tokenised per character), or a local ``Qwen2.5-VL-*-Instruct`` folder."""
        from transformers import Qwen2_5_VLForConditionalGeneration

        dev = torch.device(device)
        dt = resolve_dtype(dtype, dev)
        if model == "tiny-qwen" or model.startswith("random:"):
            preset = model.removeprefix("random:")
            if preset not in PRESETS:
                raise SpecError(f"model {model!r}: unknown preset {preset!r}; allowed: "
                                f"tiny-qwen, random:{', random:'.join(PRESETS)}")
            tok = tiny_tokenizer()
            ids = {
                "image_token_id": tok.convert_tokens_to_ids(IMAGE_PAD),
                "video_token_id": tok.convert_tokens_to_ids(VIDEO_PAD),
                "vision_start_token_id": tok.convert_tokens_to_ids(VISION_START),
                "vision_end_token_id": tok.convert_tokens_to_ids(VISION_END),
            }
            cfg = build_config(preset, **ids)
            with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
                torch.manual_seed(seed)
                default = torch.get_default_dtype()
                torch.set_default_dtype(dt)  # build real sizes directly in the target dtype, on the device
                try:
                    with dev:
                        net = Qwen2_5_VLForConditionalGeneration(cfg)
                finally:
                    torch.set_default_dtype(default)
            net.generation_config.pad_token_id = tok.pad_token_id
            source = f"{preset} (random weights, seed {seed}; character tokenizer)"
            return cls(net.to(device=dev, dtype=dt), tok, source=source, system_prompt=None,
                       image_size=IMAGE_SIZES.get(preset, IMAGE_SIZE))
        path = Path(model).expanduser()
        if not (path / "config.json").is_file():
            raise SpecError(f"model {model!r}: not a Qwen2.5-VL folder (no config.json); allowed: tiny-qwen, "
                            f"random:<preset> ({', '.join(PRESETS)}) or a local Qwen2.5-VL-*-Instruct folder")
        from transformers import AutoTokenizer

        net = Qwen2_5_VLForConditionalGeneration.from_pretrained(path, dtype=dt, attn_implementation="sdpa")
        tok = AutoTokenizer.from_pretrained(path)
        return cls(net.to(dev), tok, source=str(path.resolve()), system_prompt=QWEN_SYSTEM)

    @property
    def max_context(self) -> int:
        return int(self.config.text_config.max_position_embeddings)

    # -------------------------------------------------------------------------------------------- vision

    def _clip_normalise(self, px: Tensor) -> Tensor:
        """ImageNet-normalised frames (lfbench's decoder) -> CLIP-normalised (Qwen's video processor)."""
        from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

        from liteframe_bench.video import IMAGENET_MEAN, IMAGENET_STD

        t = lambda v: torch.tensor(v, dtype=torch.float32, device=px.device).view(1, 3, 1, 1)
        raw = px.float() * t(IMAGENET_STD) + t(IMAGENET_MEAN)
        return (raw - t(OPENAI_CLIP_MEAN)) / t(OPENAI_CLIP_STD)

    def patchify(self, pixel_values: Tensor) -> tuple[Tensor, Tensor]:
        """[N, 3, S, S] CLIP-normalised frames (N a multiple of ``temporal_patch``) -> (flat patches
        [N/2 * (S/14)^2, 3*2*14*14], video_grid_thw [[N/2, S/14, S/14]]), by ``Qwen2VLVideoProcessor.patchify``."""
        n, c, h, w = pixel_values.shape
        if n % self.temporal_patch or h != w or h % (self.patch_size * self.shuffle):
            raise SpecError(f"frames of shape {tuple(pixel_values.shape)}: expected [N, 3, S, S] with N a multiple of "
                            f"{self.temporal_patch} and S a multiple of {self.patch_size * self.shuffle}")
        flat, gt, gh, gw = self._patchify(None, pixel_values.unsqueeze(0), self.patch_size, self.shuffle,
                                          self.temporal_patch)
        return flat[0], torch.tensor([[gt, gh, gw]], device=pixel_values.device)

    def _window_order(self, grid_thw: Tensor) -> Tensor:
        """The tower's window permutation of merge blocks (``vision_utils.get_vision_window_index``)."""
        from transformers.vision_utils import get_vision_window_index

        v = self.config.vision_config
        index, _ = get_vision_window_index(grid_thw, v.spatial_merge_size, v.window_size, v.patch_size)
        return index.to(grid_thw.device)

    def _raster(self, seq: Tensor, window_index: Tensor, grid_thw: Tensor) -> Tensor:
        """[L, ...] in the tower's window order -> [t, h, w, ...] raster grid."""
        m = self.shuffle
        gt, gh, gw = (int(x) for x in grid_thw[0])
        units = seq.reshape(-1, m * m, *seq.shape[1:])[torch.argsort(window_index)]  # processor order
        return (
            units.reshape(gt, gh // m, gw // m, m, m, *seq.shape[1:])
            .transpose(2, 3)
            .reshape(gt, gh, gw, *seq.shape[1:])
        )

    def vision(self, pixel_values: Tensor, need: frozenset[str] | set[str] = frozenset()) -> VisionOutput:
        """[N, 3, S, S] frames -> [N/2, S/14, S/14, C] grid (+ the substitutes for ``need``, module docstring)."""
        from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb_vision

        tower = self.model.model.visual
        flat, grid_thw = self.patchify(self._clip_normalise(pixel_values.to(self.device)))
        block = tower.blocks[-1]
        captured: dict = {}
        hooks = []
        if need & {"cls_attn", "keys"}:
            hooks.append(block.attn.qkv.register_forward_hook(lambda m, i, o: captured.__setitem__("qkv", o)))
            hooks.append(block.attn.register_forward_pre_hook(
                lambda m, a, kw: captured.__setitem__("rope", kw["position_embeddings"]), with_kwargs=True))
        merger, tower.merger = tower.merger, torch.nn.Identity()  # the merger runs in the project stage, not here
        try:
            hidden = tower(flat.to(self.dtype), grid_thw=grid_thw).last_hidden_state  # [L, C], window order
        finally:
            tower.merger = merger
            for h in hooks:
                h.remove()
        order = self._window_order(grid_thw)
        out = VisionOutput(grid=self._raster(hidden, order, grid_thw))
        if "qkv" in captured:
            heads = block.attn.num_heads
            q, k, _ = captured["qkv"].reshape(hidden.shape[0], 3, heads, -1).permute(1, 0, 2, 3).unbind(0)
            if "keys" in need:
                out.keys = self._raster(k.flatten(1), order, grid_thw)
            if "cls_attn" in need:
                cos, sin = captured["rope"]
                q, k = apply_rotary_pos_emb_vision(q, k, cos, sin)
                q, k = self._raster(q, order, grid_thw), self._raster(k, order, grid_thw)  # [t, h, w, heads, d]
                out.cls_attn = self._received_attention(q, k, block.attn.scaling)
        if "frame_global" in need:
            out.cls_out = out.grid.mean(dim=(1, 2))
        return out

    @staticmethod
    def _received_attention(q: Tensor, k: Tensor, scale: float, chunk_bytes: float = 2**28) -> Tensor:
        """log of the mean attention each patch receives within its step, per head: [t, heads, h, w]."""
        t, h, w, heads, d = q.shape
        n = h * w
        q = q.reshape(t, n, heads, d).transpose(1, 2).float()
        k = k.reshape(t, n, heads, d).transpose(1, 2).float()
        step = max(1, int(chunk_bytes // (4 * heads * n * n)))
        parts = []
        for i in range(0, t, step):
            p = torch.softmax(q[i : i + step] @ k[i : i + step].transpose(-1, -2) * scale, dim=-1)
            parts.append(p.mean(dim=2).clamp_min(torch.finfo(torch.float32).tiny).log())
        return torch.cat(parts).reshape(t, heads, h, w)

    def shuffle_grid(self, grid: Tensor) -> Tensor:
        """The merger's ``ln_q`` per patch, then each 2x2 block's patches concatenated in (row, col) order:
        [N, h, w, C] -> [N, h/2, w/2, 4C], one row per LLM token as ``Qwen2_5_VLPatchMerger.forward`` views it."""
        m = self.shuffle
        n, h, w, c = grid.shape
        x = self.model.model.visual.merger.ln_q(grid)
        return x.reshape(n, h // m, m, w // m, m, c).transpose(2, 3).reshape(n, h // m, w // m, m * m * c)

    def mlp(self, tokens: Tensor) -> Tensor:
        """The merger's MLP, token-wise: [..., 4C] -> [..., D]."""
        return self.model.model.visual.merger.mlp(tokens)

    # -------------------------------------------------------------------------------------------- prompt

    def build_prompt(self, question: str | None, frames: list[tuple[str, int]]) -> Tensor:
        """Token ids [1, L] of Qwen2.5-VL's chat template with one video: ``<|vision_start|>`` + one
        ``<|video_pad|>`` per visual token + ``<|vision_end|>`` + question (the labels of ``frames`` are not
        written: positions, not text, tell Qwen2.5-VL where and when each token is)."""
        n = sum(c for _, c in frames)
        text = f"<|im_start|>system\n{self.system_prompt}<|im_end|>\n" if self.system_prompt else ""
        text += f"<|im_start|>user\n{VISION_START}{VIDEO_PAD * n}{VISION_END}"
        if question is not None:
            text += f"{question}<|im_end|>\n<|im_start|>assistant\n"
        ids = self.tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
        return ids.to(self.device)

    def second_per_grid(self, tokens) -> float:
        """Seconds per temporal patch: ``temporal_patch x`` the sampled-frame interval, else 1 (transformers'
        default when ``second_per_grid_ts`` is not given)."""
        dt = getattr(tokens, "frame_interval_s", None)
        return self.temporal_patch * dt if dt else 1.0

    def position_ids(self, input_ids: Tensor, tokens) -> Tensor:
        """[3, 1, L] M-RoPE positions: text 0.. up to the video, each visual token at its source's (t, h, w)
        position of the full grid (``get_vision_position_ids``), text after it from ``start + max(H', W')``."""
        ids = input_ids[0]
        slots = (ids == self.image_token_id).nonzero().flatten()
        if slots.numel() != tokens.num_tokens:
            raise ValueError(f"prompt has {slots.numel()} visual placeholder slots for {tokens.num_tokens} tokens")
        if bool((tokens.tile != 0).any()):
            raise SpecError("tiles: Qwen2.5-VL positions need one clip per prompt; allowed: tiles=1x1")
        L, dev = ids.shape[0], ids.device
        pos = torch.arange(L, device=dev).view(1, L).repeat(3, 1)
        if slots.numel() == 0:
            return pos.unsqueeze(1)
        start, end = int(slots[0]), int(slots[-1]) + 1
        if end - start != slots.numel():
            raise ValueError("the visual placeholders must be contiguous (one video block)")
        T, H, W = tokens.grid
        m = self.shuffle
        interval = self.config.vision_config.tokens_per_second * self.second_per_grid(tokens)
        full = self.model.model.get_vision_position_ids(
            start, torch.tensor([T, H * m, W * m]), 1, m, interval, device=dev
        )  # [3, T*H*W] in raster order
        p = tokens.pos.to(dev)
        pos[:, start:end] = full[:, (p[:, 0] * H + p[:, 1]) * W + p[:, 2]]
        after = start + max(H, W)  # get_rope_index (transformers 5.24): current_pos += max(h, w) // merge
        pos[:, end:] = torch.arange(after, after + L - end, device=dev)
        return pos.unsqueeze(1)

    # ------------------------------------------------------------------------------------------ generate

    def prefill(self, embeds: Tensor, position_ids: Tensor | None = None):
        """Run the LLM over the whole prompt at ``position_ids`` [3, 1, L] (1D positions if None); returns (logits
        of the last position [1, V], a KV cache that remembers the positions)."""
        if position_ids is None:
            position_ids = torch.arange(embeds.shape[1], device=embeds.device).view(1, 1, -1).expand(3, 1, -1)
        cache = _mrope_cache(self.model.config.text_config)
        out = self.model(inputs_embeds=embeds, position_ids=position_ids, cache=cache, use_cache=True,
                         logits_to_keep=1)
        cache.positions = position_ids[:, 0]
        return out.logits[:, -1], cache

    def _step(self, ids: Tensor, cache, first: Tensor) -> Tensor:
        pos = (first + torch.arange(ids.shape[1], device=ids.device)).view(1, 1, -1).expand(3, 1, -1)
        out = self.model(input_ids=ids, position_ids=pos, cache=cache, use_cache=True, logits_to_keep=1)
        cache.positions = torch.cat([cache.positions, pos[:, 0]], dim=1)
        return out.logits[:, -1]

    def decode_step(self, token: Tensor, cache) -> Tensor:
        """Generated tokens continue from the largest position so far + 1 (``rope_deltas`` in generate)."""
        return self._step(token, cache, cache.positions.max() + 1)

    def extend(self, ids: Tensor, cache) -> Tensor:
        """More prompt text continues from the last token's position + 1 (as ``get_rope_index`` numbers text)."""
        return self._step(ids, cache, cache.positions[:, -1].max() + 1)


__all__ = ["PRESETS", "Qwen25VL", "build_config", "meta_model", "parameter_counts", "tiny_tokenizer"]
