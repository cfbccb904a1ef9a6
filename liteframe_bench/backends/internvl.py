"""InternVL3 through transformers' ``InternVLForConditionalGeneration``, split into timeable stages.

The backbone exposes the pieces a method composes: the vision tower (with the last layer's CLS-query logits
and keys captured by forward hooks on its q/k projections, so attention itself stays SDPA), InternVL's pixel
shuffle + MLP projector, InternVL's video prompt (``Frame{i}: <img>...</img>`` per frame), and a manual
prefill / greedy decode over ``inputs_embeds`` with one ``<IMG_CONTEXT>`` id per visual token. It never
vendors model code: every tensor op below runs in transformers' own modules.

Sources:
- ``mini`` (the default): the zoo's trained mini InternVL3 (:mod:`liteframe_bench.zoo`), shipped in the package.
- ``tiny``: a seeded random 1-layer model from the real config classes and a character-level tokenizer built
  with the ``tokenizers`` library (tests).
- a local folder in the ``OpenGVLab/InternVL3-*-hf`` layout: real weights and tokenizer, never downloaded.
- the published sizes (``internvl3-1b/2b/8b``) exist only on the ``meta`` device for counting; asking to run
  one without a folder is an error that says so.
"""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import torch
from torch import Tensor

from liteframe_bench.backbone import Backbone, VisionOutput, register_backbone, resolve_dtype
from liteframe_bench.errors import SpecError
from liteframe_bench.presets import PRESETS, build_config

__all__ = ["IMG_CONTEXT", "InternVL3", "VisionOutput", "resolve_dtype", "tiny_tokenizer"]

#: InternVL3's default system prompt (chat template of the original remote-code model).
INTERNVL_SYSTEM = (
    "你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。"
)
IMG_START, IMG_END, IMG_CONTEXT = "<img>", "</img>", "<IMG_CONTEXT>"
TINY_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", IMG_START, IMG_END, IMG_CONTEXT]


def tiny_tokenizer():
    """A character-level fast tokenizer with InternVL's special tokens (no files, no download)."""
    from liteframe_bench.backends.tiny import char_tokenizer

    return char_tokenizer(TINY_SPECIALS)


@register_backbone("internvl")
class InternVL3(Backbone):
    """A loaded InternVL3 model and tokenizer, with the stages a method composes."""

    model_types = ("internvl",)
    keywords = ("mini", "tiny")
    tiny = "tiny"
    cls_attn_source = "the class token: the last ViT layer's q_cls.k_i / sqrt(d) per head (forward hooks)"
    frame_global_source = "the class token's output of the feature layer"

    def __init__(self, model, tokenizer, *, source: str, system_prompt: str | None, zoo_name: str | None = None):
        self.model = model.eval()
        self.zoo_name = zoo_name  # "mini" for the zoo's trained model: its LiteFrame students are the defaults
        self.tokenizer = tokenizer
        self.source = source
        self.system_prompt = system_prompt
        cfg = model.config
        self.config = cfg
        self.image_token_id = cfg.image_token_id
        self.image_size = int(cfg.vision_config.image_size[0])
        self.patch_size = int(cfg.vision_config.patch_size[0])
        self.grid_side = self.image_size // self.patch_size
        self.shuffle = int(round(1 / cfg.downsample_ratio))
        self.vision_width = cfg.vision_config.hidden_size
        self.llm_width = cfg.text_config.hidden_size
        self.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
        self._cache_kw = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        layer = cfg.vision_feature_layer
        if not isinstance(layer, int):
            raise SpecError(f"vision_feature_layer={layer!r} is not supported; allowed: one layer index")
        self._hook_layer = model.model.vision_tower.encoder.layer[layer]

    # ------------------------------------------------------------------------------------------- loading

    @classmethod
    def load(
        cls, model: str = "tiny", device: str = "cpu", dtype: str | torch.dtype = "auto", seed: int = 0
    ) -> InternVL3:
        """``mini`` (the zoo's trained model, see :mod:`liteframe_bench.zoo`), ``tiny`` (seeded random),
        ``random:<preset>`` (a published size with random weights, for latency only; its text is tokenised per
        character, so text-token counts run a little high), or a local folder with InternVL3-*-hf weights."""
        from transformers import InternVLForConditionalGeneration

        dev = torch.device(device)
        dt = resolve_dtype(dtype, dev)
        if model == "mini":
            from liteframe_bench import zoo

            net, tok = zoo.load_mini(dev, dt)
            sha = zoo.card("mini").get("files", {}).get("model.safetensors", "unknown")[:12]
            source = f"mini (lfbench zoo, weights sha256 {sha}; card: lfbench zoo ls)"
            return cls(net, tok, source=source, system_prompt=None, zoo_name="mini")
        if model == "tiny" or model.startswith("random:"):
            preset = "tiny" if model == "tiny" else model.removeprefix("random:")
            if preset not in PRESETS:
                raise SpecError(
                    f"model {model!r}: unknown preset {preset!r}; allowed: random:{', random:'.join(PRESETS)}"
                )
            tok = tiny_tokenizer()
            cfg = build_config(preset, image_token_id=tok.convert_tokens_to_ids(IMG_CONTEXT))
            with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
                torch.manual_seed(seed)
                default = torch.get_default_dtype()
                torch.set_default_dtype(dt)  # build real sizes directly in the target dtype, on the device
                try:
                    with dev:
                        net = InternVLForConditionalGeneration(cfg)
                finally:
                    torch.set_default_dtype(default)
            net.generation_config.pad_token_id = tok.pad_token_id
            source = f"{preset} (random weights, seed {seed}; character tokenizer)"
            return cls(net.to(device=dev, dtype=dt), tok, source=source, system_prompt=None)
        path = Path(model).expanduser()
        if model in PRESETS and not path.exists():
            raise SpecError(
                f"model {model!r} is a size preset for counting on the meta device (lfbench cost); to run it, "
                f"point --model at a local folder with {PRESETS[model].hf_id} weights, or use --model tiny"
            )
        if not path.is_dir():
            raise SpecError(f"model {model!r}: no such folder; allowed: mini, tiny, random:<preset>, or a local "
                            "InternVL3-*-hf folder")
        if not (path / "config.json").is_file():
            raise SpecError(f"model folder {path} has no config.json; expected the OpenGVLab/InternVL3-*-hf layout")
        arch = json.loads((path / "config.json").read_text()).get("model_type")
        if arch != "internvl":
            raise SpecError(
                f"model folder {path}: config.json model_type is {arch!r}; expected 'internvl' (the -hf conversion, "
                "e.g. OpenGVLab/InternVL3-8B-hf, not the remote-code checkpoint)"
            )
        from transformers import AutoTokenizer

        net = InternVLForConditionalGeneration.from_pretrained(path, dtype=dt, attn_implementation="sdpa")
        tok = AutoTokenizer.from_pretrained(path)
        return cls(net.to(dev), tok, source=str(path.resolve()), system_prompt=INTERNVL_SYSTEM)

    @classmethod
    def presets(cls) -> dict:
        return dict(PRESETS)

    @classmethod
    def preset_config(cls, name: str):
        if name == "mini":
            from transformers import InternVLConfig

            from liteframe_bench import zoo

            return InternVLConfig.from_dict(json.loads((zoo.path("mini") / "config.json").read_text()))
        return build_config(name)

    # -------------------------------------------------------------------------------------------- vision

    def vision(self, pixel_values: Tensor, need: frozenset[str] | set[str] = frozenset()) -> VisionOutput:
        """Run the vision tower on [N, 3, S, S] images; capture what ``need`` asks for (see VisionOutput)."""
        tower = self.model.model.vision_tower
        attn = self._hook_layer.attention
        captured: dict[str, Tensor] = {}
        hooks = []
        if need & {"cls_attn", "keys"}:
            hooks.append(attn.k_proj.register_forward_hook(lambda m, i, o: captured.__setitem__("k", o)))
        if "cls_attn" in need:
            hooks.append(attn.q_proj.register_forward_hook(lambda m, i, o: captured.__setitem__("q", o[:, :1])))
        try:
            hidden = tower(pixel_values=pixel_values.to(device=self.device, dtype=self.dtype)).last_hidden_state
        finally:
            for h in hooks:
                h.remove()
        n, side = hidden.shape[0], math.isqrt(hidden.shape[1] - 1)  # the configured grid, or lowres's smaller one
        out = VisionOutput(grid=hidden[:, 1:].reshape(n, side, side, -1))
        if "k" in captured:
            k = attn.k_norm(captured["k"])
            if "keys" in need:
                out.keys = k[:, 1:].reshape(n, side, side, -1)
            if "cls_attn" in need:
                heads, hd = attn.num_heads, attn.head_dim
                q = attn.q_norm(captured["q"]).reshape(n, 1, heads, hd)
                logits = torch.einsum("nqhd,nkhd->nhk", q, k.reshape(n, -1, heads, hd)) * attn.scale
                out.cls_attn = logits[:, :, 1:].reshape(n, heads, side, side)
                out.cls_self = logits[:, :, 0]
        if "frame_global" in need:
            out.cls_out = hidden[:, 0]
        return out

    def shuffle_grid(self, grid: Tensor) -> Tensor:
        """InternVL's pixel shuffle: [N, h, w, C] -> [N, h/2, w/2, 4C], the MLP projector's input."""
        return self.model.model.pixel_shuffle(grid, scale_factor=self.config.downsample_ratio)

    def mlp(self, tokens: Tensor) -> Tensor:
        """InternVL's MLP projector, token-wise: [..., 4C] -> [..., D]."""
        return self.model.model.multi_modal_projector(tokens)

    # -------------------------------------------------------------------------------------------- prompt

    def build_prompt(self, question: str | None, frames: list[tuple[str, int]]) -> Tensor:
        """Token ids [1, L] of InternVL's video prompt: per frame ``{label}: <img>`` + n context ids + ``</img>\\n``.

        ``frames`` lists (label, number of visual tokens) in the order the visual tokens will be scattered.
        ``question=None``: only the part before the question (system, user header, frames), for prefix reuse.
        """
        body = "".join(f"{label}: {IMG_START}{IMG_CONTEXT * n}{IMG_END}\n" for label, n in frames)
        text = ""
        if self.system_prompt:
            text += f"<|im_start|>system\n{self.system_prompt}<|im_end|>\n"
        text += f"<|im_start|>user\n{body}"
        if question is not None:
            text += f"{question}<|im_end|>\n<|im_start|>assistant\n"
        ids = self.tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
        return ids.to(self.device)

    # ------------------------------------------------------------------------------------------ generate

    def prefill(self, embeds: Tensor, position_ids: Tensor | None = None):
        """Run the LLM over the whole prompt; returns (logits of the last position [1, V], KV cache)."""
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config.text_config)
        kw = {} if position_ids is None else {"position_ids": position_ids}
        out = self.model(inputs_embeds=embeds, use_cache=True, logits_to_keep=1, **{self._cache_kw: cache}, **kw)
        return out.logits[:, -1], cache

    def decode_step(self, token: Tensor, cache) -> Tensor:
        """One greedy decode step from ``token`` [1, 1] (or k tokens [1, k] continuing the cache, e.g. a question
        after a shared prefix); returns the next logits [1, V]."""
        out = self.model(input_ids=token, use_cache=True, logits_to_keep=1, **{self._cache_kw: cache})
        return out.logits[:, -1]
