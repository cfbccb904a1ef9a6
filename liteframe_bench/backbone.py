"""The backbone seam: what a Video LLM family gives the pipeline, and the one way a model spec becomes one.

A *backbone* wraps one transformers model class (never vendored code) and exposes the stages a method composes::

    frames [N, 3, S, S] --vision--> ViT grid [N / temporal_patch, h, w, C] (+ the auxiliary signals asked for)
      --shuffle_grid--> [.., h/s, w/s, s*s*C] --mlp--> [.., h/s, w/s, D]      (project = mlp . shuffle_grid)
      build_prompt(question, groups) -> ids with one visual placeholder per kept token
      embed(ids, visual) + position_ids(ids, tokens) --prefill--> (logits, cache) --decode_step--> ...

Families register with :func:`register_backbone`; :func:`load_backbone` turns any model spec (``mini``, ``tiny``,
``tiny-qwen``, ``random:<preset>``, a local folder) into a loaded backbone by asking each family which specs it
owns and which ``model_type`` of a folder's ``config.json`` it reads. Every command loads its model through
:func:`load_backbone`; nothing else needs to know a family's class.

The built-in families live in :mod:`liteframe_bench.backends`; a plugin registers another one through the
``lfbench.methods`` entry-point group or ``--plugins DIR`` like a method or reducer.
"""

from __future__ import annotations

import abc
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from liteframe_bench.errors import SpecError


@dataclass
class VisionOutput:
    """What the vision tower gives a method, per encoder time step (a frame, or a temporal patch of frames).

    grid:     [N, h, w, C] patch features of the feature layer, class token dropped.
    cls_attn: [N, heads, h, w] per-head attention logits of each frame's "global" query to every patch (if asked):
              the class token's q_cls.k_i/sqrt(d) where the encoder has one; otherwise the backbone's documented
              substitute (:attr:`Backbone.cls_attn_source`).
    cls_self: [N, heads] the class token's logit to itself (with cls_attn; None without a class token).
    keys:     [N, h, w, C] the last layer's keys, heads concatenated (if asked).
    cls_out:  [N, C] a per-frame global feature (if asked): the class token's output, or a substitute.
    """

    grid: Tensor
    cls_attn: Tensor | None = None
    keys: Tensor | None = None
    cls_out: Tensor | None = None
    cls_self: Tensor | None = None


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """``auto`` (bf16 on CUDA, fp32 elsewhere), ``float32``, ``bfloat16``, ``float16`` or a torch dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    allowed = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in allowed:
        raise SpecError(f"dtype={dtype!r} is invalid; allowed: auto, {', '.join(allowed)}")
    return allowed[dtype]


class Backbone(abc.ABC):
    """A loaded Video LLM (model + tokenizer) split into the stages the pipeline times.

    Class attributes (the family's contract):

    family:          registry name (``internvl``, ``qwen2.5-vl``).
    model_types:     ``config.json`` ``model_type`` values of local folders this family loads.
    keywords:        model specs it owns besides ``random:<preset>`` and folders (e.g. ``tiny``).
    tiny:            the keyword of its seeded random test model (conformance tests run every family on it).
    temporal_patch:  frames per encoder time step (1; 2 for Qwen2.5-VL's 3D patches). A clip whose length is
                     not a multiple is padded with its last frame, as the family's own processor does.
    cls_attn_source: where ``cls_attn`` comes from (the class token, or the substitute and its reference).
    frame_global_source: where ``frame_global`` (``VisionOutput.cls_out``) comes from.

    Instance attributes every backbone sets: ``model``, ``tokenizer``, ``config``, ``source``, ``zoo_name``,
    ``image_size`` (pixels per frame side), ``patch_size``, ``grid_side`` (patches per side at ``image_size``),
    ``shuffle`` (the projector merges ``shuffle x shuffle`` patches into one LLM token), ``vision_width``,
    ``llm_width``, ``image_token_id`` (the visual placeholder id), ``eos_token_id``.
    """

    family: ClassVar[str] = ""
    model_types: ClassVar[tuple[str, ...]] = ()
    keywords: ClassVar[tuple[str, ...]] = ()
    tiny: ClassVar[str] = ""
    temporal_patch: ClassVar[int] = 1
    cls_attn_source: ClassVar[str] = ""
    frame_global_source: ClassVar[str] = ""

    model: Any
    tokenizer: Any
    config: Any
    source: str
    zoo_name: str | None = None
    image_size: int
    patch_size: int
    grid_side: int
    shuffle: int
    vision_width: int
    llm_width: int
    image_token_id: int
    eos_token_id: int

    # ------------------------------------------------------------------------------------------ loading

    @classmethod
    @abc.abstractmethod
    def load(cls, model: str, device: str = "cpu", dtype: str | torch.dtype = "auto", seed: int = 0) -> Backbone:
        """Load ``model`` (one of :meth:`keywords`, ``random:<preset>`` or a local folder) on ``device``."""

    @classmethod
    @abc.abstractmethod
    def presets(cls) -> dict[str, Any]:
        """The published sizes by name (each with ``hf_id`` and ``note``), for counting on the meta device."""

    @classmethod
    @abc.abstractmethod
    def preset_config(cls, name: str) -> Any:
        """The transformers config of a preset (a name in :meth:`presets` or one of :attr:`keywords`)."""

    @classmethod
    def frame_side(cls, name: str) -> int | None:
        """The frame side lfbench feeds the named model when its config does not fix one (None: the family's
        default, or the config's own ``image_size``); the cost model counts at this side."""
        return None

    @classmethod
    def folder_config(cls, path: str | Path) -> Any:
        """The transformers config of a local model folder (its ``config.json``)."""
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(path)

    # ------------------------------------------------------------------------------------------ geometry

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def max_context(self) -> int:
        """The LLM's context length (``max_position_embeddings``)."""
        return int(self.config.text_config.max_position_embeddings)

    def time_steps(self, frames: int) -> int:
        """Encoder time steps of a clip of ``frames`` frames (after padding to ``temporal_patch``)."""
        return math.ceil(frames / self.temporal_patch)

    def tokens_before(self, frames: int, tiles: int = 1) -> int:
        """LLM visual tokens of a clip without reduction."""
        return (self.grid_side // self.shuffle) ** 2 * self.time_steps(frames) * tiles

    def reducer_grid(self, frames: int, at: str) -> tuple[int, int, int]:
        """(T, H, W) of the grid a reducer sees at insertion point ``at`` for a clip of ``frames`` frames."""
        side = self.grid_side if at == "vit" else self.grid_side // self.shuffle
        return self.time_steps(frames), side, side

    def describe(self) -> dict:
        per_step = (self.grid_side // self.shuffle) ** 2
        return {
            "family": self.family,
            "source": self.source,
            "image_size": self.image_size,
            "tokens_per_frame": per_step // self.temporal_patch if per_step % self.temporal_patch == 0 else
            per_step / self.temporal_patch,
            "temporal_patch": self.temporal_patch,
            "vision_width": self.vision_width,
            "llm_width": self.llm_width,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "attn_implementation": self.model.config._attn_implementation,
        }

    # ------------------------------------------------------------------------------------------ stages

    @abc.abstractmethod
    def vision(self, pixel_values: Tensor, need: frozenset[str] | set[str] = frozenset()) -> VisionOutput:
        """Run the vision tower on [N, 3, S, S] frames (``N`` a multiple of ``temporal_patch``); capture what
        ``need`` (a subset of ``cls_attn``, ``keys``, ``frame_global``) asks for. Any side that is a multiple of
        ``patch_size * shuffle`` works (``lowres``)."""

    @abc.abstractmethod
    def shuffle_grid(self, grid: Tensor) -> Tensor:
        """[N, h, w, C] -> [N, h/s, w/s, s*s*C]: the projector's input, one row per LLM token."""

    @abc.abstractmethod
    def mlp(self, tokens: Tensor) -> Tensor:
        """The projector after the merge, token-wise: [..., s*s*C] -> [..., D]."""

    def project(self, grid: Tensor) -> Tensor:
        """[N, h, w, C] -> [N, h/s, w/s, D]."""
        return self.mlp(self.shuffle_grid(grid))

    def pool_aux(self, t: Tensor, how: str) -> Tensor:
        """Map per-patch signals [N, h, w, ...] onto the merged grid [N, h/s, w/s, ...], the groups the projector
        merges. ``how="logsumexp"`` turns attention logits into the logit of the group's total attention;
        ``how="mean"`` averages (keys)."""
        s = self.shuffle
        n, h, w = t.shape[:3]
        g = (
            t.reshape(n, h // s, s, w // s, s, *t.shape[3:])
            .transpose(2, 3)
            .reshape(n, h // s, w // s, s * s, *t.shape[3:])
        )
        return g.logsumexp(dim=3) if how == "logsumexp" else g.mean(dim=3)

    @abc.abstractmethod
    def build_prompt(self, question: str | None, frames: list[tuple[str, int]]) -> Tensor:
        """Token ids [1, L] of the family's video prompt with one ``image_token_id`` per visual token.

        ``frames`` lists (label, number of visual tokens) in the order the tokens will be scattered;
        ``question=None``: only the part before the question, for prefix reuse.
        """

    def embed(self, input_ids: Tensor, visual: Tensor) -> Tensor:
        """Text embeddings with the visual tokens [N, D] scattered into the N placeholder positions."""
        embeds = self.model.get_input_embeddings()(input_ids)
        mask = input_ids == self.image_token_id
        n_slots = int(mask.sum())
        if n_slots != visual.shape[0]:
            raise ValueError(f"prompt has {n_slots} visual placeholder slots for {visual.shape[0]} visual tokens")
        return embeds.masked_scatter(mask.unsqueeze(-1), visual.to(embeds.dtype))

    def position_ids(self, input_ids: Tensor, tokens: Any) -> Tensor | None:
        """Position ids of the prompt for :meth:`prefill`, from each visual token's (t, y, x) source in
        ``tokens`` (:class:`~liteframe_bench.interfaces.VisualTokens`); None when the LLM's positions are the
        plain 0..L-1 (1D RoPE)."""
        return None

    @abc.abstractmethod
    def prefill(self, embeds: Tensor, position_ids: Tensor | None = None):
        """Run the LLM over the whole prompt; returns (logits of the last position [1, V], KV cache)."""

    @abc.abstractmethod
    def decode_step(self, token: Tensor, cache) -> Tensor:
        """One greedy decode step from the generated ``token`` [1, 1]; returns the next logits [1, V]."""

    def extend(self, ids: Tensor, cache) -> Tensor:
        """Append more prompt tokens [1, k] to the cache (a question after a shared prefix); returns the last
        logits [1, V]. Equal to :meth:`decode_step` where positions are 1D."""
        return self.decode_step(ids, cache)


# ---------------------------------------------------------------------------------------------- registry

_FAMILIES: dict[str, type[Backbone]] = {}
_builtins_loaded = False


def register_backbone(family: str):
    """Class decorator: register a :class:`Backbone` subclass as ``family``."""

    def deco(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, Backbone)):
            raise TypeError(f"@register_backbone({family!r}) must decorate a subclass of Backbone")
        old = _FAMILIES.get(family)
        if old is not None and old is not cls and old.__qualname__ != cls.__qualname__:
            raise SpecError(f"backbone family {family!r} is already registered by {old.__module__}.{old.__qualname__}")
        owned = {k for other in _FAMILIES.values() if other.family != family for k in other.keywords}
        clash = owned & set(cls.keywords)
        if clash:
            raise SpecError(f"backbone {family!r}: model names {sorted(clash)} are already owned by another family")
        cls.family = family
        _FAMILIES[family] = cls
        return cls

    return deco


#: The modules that register the built-in families. Loaded by name, as a plugin's are, so the import arrows go one
#: way: ``backends`` import this module (the interface they implement), never the other way round.
BUILTIN_BACKENDS = ("liteframe_bench.backends.internvl", "liteframe_bench.backends.qwen")


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        import importlib

        from liteframe_bench import registry

        for module in BUILTIN_BACKENDS:
            importlib.import_module(module)

        registry.load_plugins()  # plugin backbones register like methods and reducers


def backbones() -> list[type[Backbone]]:
    """Every registered backbone family, sorted by name."""
    _load_builtins()
    return [_FAMILIES[k] for k in sorted(_FAMILIES)]


def get_backbone(family: str) -> type[Backbone]:
    _load_builtins()
    if family not in _FAMILIES:
        raise SpecError(f"unknown backbone family {family!r}; registered: {', '.join(sorted(_FAMILIES))}")
    return _FAMILIES[family]


def allowed_models() -> str:
    """The model specs every family accepts, for error messages and ``--model`` help."""
    fams = backbones()
    names = [k for c in fams for k in c.keywords]
    presets = [f"random:{p}" for c in fams for p in c.presets()]
    types = [t for c in fams for t in c.model_types]
    return f"{', '.join(names + presets)}, or a local model folder (config.json model_type {' or '.join(types)})"


def family_of(model: str) -> tuple[type[Backbone], str]:
    """(family class, kind) for a model spec, kind one of ``keyword``, ``random``, ``preset``, ``folder``.

    ``preset`` (a published size given without ``random:``) names counting-only models: :func:`load_backbone`
    refuses them, the cost model takes them. SpecError naming every allowed spec otherwise.
    """
    fams = backbones()
    if not isinstance(model, str) or not model.strip():
        raise SpecError(f"model {model!r} is empty; allowed: {allowed_models()}")
    for cls in fams:
        if model in cls.keywords:
            return cls, "keyword"
    path = Path(model).expanduser()
    name = model.removeprefix("random:")
    for cls in fams:
        if name in cls.presets():
            if model.startswith("random:"):
                return cls, "random"
            if not path.exists():
                return cls, "preset"
    if model.startswith("random:"):
        raise SpecError(f"model {model!r}: unknown preset {name!r}; allowed: {allowed_models()}")
    if not path.is_dir():
        raise SpecError(f"model {model!r}: no such folder; allowed: {allowed_models()}")
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        types = " or ".join(t for c in fams for t in c.model_types)
        raise SpecError(f"model folder {path} has no config.json; expected a transformers model folder ({types})")
    arch = json.loads(cfg_file.read_text()).get("model_type")
    for cls in fams:
        if arch in cls.model_types:
            return cls, "folder"
    allowed = ", ".join(f"{t!r} ({c.family})" for c in fams for t in c.model_types)
    raise SpecError(
        f"model folder {path}: config.json model_type is {arch!r}; allowed: {allowed} (InternVL3: the -hf "
        "conversion, e.g. OpenGVLab/InternVL3-8B-hf, not the remote-code checkpoint; Qwen2.5-VL: a "
        "Qwen/Qwen2.5-VL-*-Instruct folder)"
    )


def load_backbone(model: str, device: str = "cpu", dtype: str | torch.dtype = "auto", seed: int = 0) -> Backbone:
    """The backbone for ``model``: a family keyword (``mini``, ``tiny``, ``tiny-qwen``), ``random:<preset>`` (a
    published size with random weights, for latency), or a local model folder (its ``config.json`` names the
    family). ``seed`` seeds random weights."""
    cls, kind = family_of(model)
    if kind == "preset":
        raise SpecError(
            f"model {model!r} is a size preset for counting on the meta device (lfbench cost); to run it, point "
            f"--model at a local folder with {cls.presets()[model].hf_id} weights, use random:{model} (random "
            "weights, latency only), or a tiny model"
        )
    return cls.load(model, device=device, dtype=dtype, seed=seed)


def model_config(model: Any) -> tuple[str, Any, type[Backbone]]:
    """(name, transformers config, family) of a preset name, ``random:<preset>``, keyword, local folder, or an
    already built config (its ``model_type`` names the family): what the cost model counts."""
    fams = backbones()
    if isinstance(model, str):
        cls, kind = family_of(model)
        if kind == "folder":
            return model, cls.folder_config(model), cls
        name = model.removeprefix("random:")
        return name, cls.preset_config(name), cls
    mt = getattr(model, "model_type", None)
    for cls in fams:
        if mt in cls.model_types:
            return getattr(model, "name_or_path", "") or "custom", model, cls
    raise SpecError(f"model must be a model spec ({allowed_models()}) or a config of model_type "
                    f"{' or '.join(t for c in fams for t in c.model_types)}; got {type(model).__name__} {mt!r}")


__all__ = [
    "Backbone",
    "VisionOutput",
    "allowed_models",
    "backbones",
    "family_of",
    "get_backbone",
    "load_backbone",
    "model_config",
    "register_backbone",
    "resolve_dtype",
]
