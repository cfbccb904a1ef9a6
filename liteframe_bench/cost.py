"""The analytic cost model: FLOPs, bytes moved and a roofline latency bound per stage of a Video LLM run.

One place for the formulas behind ``lfbench cost``, for any InternVL-style ``InternVLConfig`` (InternViT +
pixel shuffle + MLP projector + Qwen2 LLM, as in transformers' ``models/internvl`` and ``models/qwen2``) or
``Qwen2_5_VLConfig`` (below), and any method: ``baseline`` (no reducer) or a reducer spec such as ``wap:ratio=16``.
Models are named as ``--model`` names them (presets, ``random:<preset>``, ``tiny``/``tiny-qwen``, folders), resolved
through :func:`liteframe_bench.backbone.model_config`.

Qwen2.5-VL (:class:`QwenGeometry`; ``transformers/models/qwen2_5_vl``, 5.24)
---------------------------------------------------------------------------
Frames go in pairs (temporal patches; an odd clip is padded with its last frame): ``T' = ceil(frames / 2)`` steps of
``g^2`` patches (1024 at 448 px, no class token), which is also the ``T`` a reducer sees. ``vision``: Conv3d patch
embedding ``2 M C (3 * 2 * p^2)`` (``M = T' g^2``), per layer qkv/proj linears with bias, a gated SiLU MLP
(``2 M 3 C I``) and attention ``4 len^2 C`` per attention segment: each temporal patch in the ``fullatt_block_indexes``
layers, each 112 px window (4x4 merge blocks, cut at the grid's edge) in the others (:func:`qwen_vision_ops`);
reducers that need ``cls_attn`` add the substitute's q.k^T over each temporal patch, ``2 T' S^2 C``
(:func:`received_attention_op`). ``project``: the 2x2 merger, RMSNorm then Linear(4C, 4C) + GELU + Linear(4C, D) on
the merged tokens (256 per step at 448 px). Text: one ``<|vision_start|>``/``<|vision_end|>`` pair
(:data:`QWEN_VIDEO_TEXT`) instead of per-frame labels, as 3D positions (M-RoPE, elementwise: not counted) carry time.
The LLM formulas are the Qwen2 ones below. Checked against FlopCounterMode on the tiny model's whole pipeline and the
real-size 7B tower on the meta device (``tests/test_cost_qwen.py``).

Stages, in the order they run
-----------------------------
``vision`` -> (``reduce`` if the reducer sits at ``vit``) -> ``project`` -> (``reduce`` if at ``proj``)
-> ``prefill`` -> ``generate``; a reducer at ``mlp`` runs inside ``project``, between the pixel shuffle
(on every token) and the MLP (on the kept tokens). ``n = frames * tiles`` images of ``s x s`` pixels, patch ``p``,
``g = s / p`` patches a side, ``S = g^2 + 1`` tokens per image (CLS included, 1025 at 448 px), ViT width
``C``, MLP width ``I``, ``L_v`` layers; pixel-shuffle ratio ``r`` (0.5); LLM width ``D``, ``L`` layers,
``h`` query heads, ``kv`` key/value heads, head size ``dh``, MLP width ``F``, vocabulary ``V``.
``b`` = bytes per element (``dtype_bytes``, 2 for bf16), used for weights and activations alike.

- ``vision``  patch conv ``2 n g^2 C (3 p^2)``; per layer and image: q/k/v/out projections ``2 S 4C^2``,
  attention ``4 S^2 C`` (QK^T and PV, all heads, not causal), MLP ``2 S 2CI``; times ``L_v`` layers and
  ``n`` images. Per 448 px image for InternViT-300M: 1.23 + 619.08 + 103.28 GFLOP.
- ``reduce``  the reducer's own work on ``N_in`` tokens of width ``W`` (``vit``: ``n g^2`` x C, CLS dropped;
  ``mlp``: ``n (g r)^2`` x 4C; ``proj``: ``n (g r)^2`` x D): FLOPs ``2 N_in W`` (one multiply-add per input
  element: a weighted sum/average; similarity matrices of matching reducers such as ToMe are NOT counted);
  bytes read the input grid and the auxiliary inputs the reducer declares, at the ViT grid (``cls_attn`` n*heads_v*g^2,
  ``keys`` n*g^2*C, ``frame_global`` n*C), and write the ``N_out`` output tokens. Reducers are
  bandwidth-bound; extracting the auxiliary signals from the ViT is not counted.
- ``project`` pixel shuffle (a permute: no FLOPs; one read and one write of its input, although
  transformers' implementation copies twice) then LayerNorm(4C) + Linear(4C->D) + GELU + Linear(D->D) on
  the ``N_p`` tokens entering it: ``2 N_p (4C D + D^2)``.
- ``prefill`` the LLM over the whole prompt of ``P`` tokens (visual + text): per layer q/k/v projections
  ``2 P D (h + 2kv) dh`` (GQA), o ``2 P h dh D``, gated MLP ``2 P 3 D F``, causal attention (below),
  then the final norm and the lm_head on ONE position (``logits_to_keep=1``): ``2 D V``.
- ``generate`` ``new_tokens - 1`` decode steps (the first new token comes from the prefill's logits), each
  with a KV cache of ``c = P + i`` tokens (i = 0..steps-1): the same linears with one token, attention of
  one query over ``c + 1`` keys ``4 h dh (c + 1)`` per layer, and the lm_head ``2 D V``.

FLOP conventions (those of ``torch.utils.flop_counter.FlopCounterMode``, so the cross-check is exact)
----------------------------------------------------------------------------------------------------
- A matmul of [M, K] x [K, N] is ``2 M N K`` FLOPs; a bias add is not counted (addmm = mm).
- A convolution is ``2 * batch * prod(out spatial) * C_out * C_in * prod(kernel)``; bias not counted.
- Scaled-dot-product attention is ``4 * B * h_q * S_q * S_k * dh``: QK^T plus PV with GQA's key/value heads
  broadcast to the query heads, softmax not counted, and the causal mask ignored (the full square).
- Elementwise work (norms, GELU/SiLU, softmax, RoPE, residual adds, layer scale) is not counted: it is well
  under 1% of the matmul FLOPs here and FlopCounterMode does not count it either.
- Causal attention: every stage carries ``flops`` (the FlopCounterMode number: the full ``P x P`` square) and
  ``flops_useful`` (causal-aware: query ``i`` attends to ``i + 1`` keys, ``4 h dh P (P + 1) / 2``, about
  half). **The roofline uses ``flops_useful``**, as a causal flash-attention kernel skips masked blocks.
  For non-causal work the two are equal.

Bytes conventions (a lower bound on HBM traffic)
------------------------------------------------
Per op group: weights read once per stage pass (for ``generate``: once per decode step), each matmul's input
read once and output written once, attention as one fused flash kernel (reads Q, K, V once, writes O; no
score matrix in memory), elementwise ops fused into their neighbours (no bytes of their own), KV-cache writes
counted in ``prefill`` and ``generate`` and the whole cache (``L x 2 x kv x dh x c x b``) read by every decode
step. The embedding lookup reads and writes ``P x D`` elements. Weights counted this way add up exactly to
``presets.parameter_counts`` (less the unused rows of the embedding table).

Roofline
--------
``predicted_s`` of a stage is the sum over its op groups of ``max(flops_useful / peak, bytes / bandwidth)``
(per op group, not per stage: an op group is either compute- or memory-bound; summing the per-group maxima
is still a lower bound and is tighter than one max per stage). ``compute_s`` and ``memory_s`` are the two
stage-level terms and ``bound`` names the larger. Peaks are the datasheet's dense bf16 tensor-core numbers
(no sparsity) and memory bandwidths (:data:`GPUS`); no kernel reaches them, so every ``predicted_s`` is a
**lower bound** on latency, not a forecast. ``dtype_bytes`` changes the bytes only: the compute peak is
always the bf16 one.

Token accounting (as ``pipeline.VideoLLM.encode``/``generate`` build the prompt)
--------------------------------------------------------------------------------
``baseline``: ``(s / p)^2 r^2`` tokens per tile (256 at 448 px). A reducer spec (optionally with
``at=vit|mlp|proj``) is built with ``registry.create``; it sees the ``tiles`` of a frame as its batch, each a
``frames x g x g`` grid. At ``vit`` it keeps ``target_tokens(frames, g, g)`` per tile of the ``[frames, g, g, C]``
patch grid and the projector sees that times ``r^2`` (pixel shuffle); at ``mlp`` and ``proj`` it keeps
``target_tokens(frames, g r, g r)`` of the pixel-shuffled (``mlp``, before the MLP) or projected tokens.
A method that declares ``cost_geometry`` (``lowres``) is the baseline on the geometry it returns: ``lowres``
feeds the ViT images of side ``s' < s`` (a multiple of ``p / r``), so the ViT runs on ``(s'/p)^2 + 1`` tokens per
image (its FLOPs fall with the square of the side, attention's with the fourth power) and the projector and the
LLM get ``(s'/p)^2 r^2`` tokens per tile; the resize of the decoded frames and the bicubic interpolation of the
position embeddings are elementwise (not counted), and the position table is counted at its interpolated size.
Text: each ``label: <img>`` ... ``</img>\\n`` group costs ``frame_text_tokens`` (default ``6 + digits(label)``:
``Frame``, one token per digit, ``:``, `` ``, ``<img>``, ``</img>``, ``\\n`` in the Qwen2 tokenizer); there is
one ``Frame{t+1}`` group per frame that keeps tokens (every ``bt``-th frame after a ``bt``-frame block reducer at
``vit``) or one ``Video`` group for an unordered reducer. The chat template plus the question cost
``fixed_text_tokens`` (default :data:`DEFAULT_FIXED_TEXT_TOKENS`). A frame count the reducer cannot serve (e.g. 6
frames for a 4-frame block) gives a cell with an ``error`` string, not an exception. ``fits_context`` is false,
with a reason, when prompt + ``new_tokens`` exceeds the LLM's ``max_position_embeddings`` (the pipeline's ContextError).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from liteframe_bench.errors import ReducerError, SpecError
from liteframe_bench.stages import LLM_SIDE, VISION_SIDE
from liteframe_bench.stages import MODELLED_STAGES as STAGES

#: Chat template with InternVL's default system prompt (``backends.internvl.INTERNVL_SYSTEM``, ~50 tokens with
#: the ``<|im_start|>``/``<|im_end|>`` markers) + a multiple-choice question with four options and an answer
#: instruction (~80 tokens). An estimate: pass the real count when known.
DEFAULT_FIXED_TEXT_TOKENS = 128
#: Tokens of ``Frame{i}: <img>`` + ``</img>\n`` besides the digits of ``i``.
FRAME_TEXT_BASE = 6
#: Qwen2.5-VL's video block around its visual tokens: ``<|vision_start|>`` and ``<|vision_end|>``.
QWEN_VIDEO_TEXT = 2
#: The frame side lfbench feeds Qwen2.5-VL's published sizes (``backends.qwen.IMAGE_SIZE``).
QWEN_IMAGE_SIZE = 448


# ------------------------------------------------------------------------------------------------- GPUs


@dataclass(frozen=True)
class GPUSpec:
    """A GPU for the roofline: dense bf16 tensor-core peak (FLOP/s, no sparsity) and memory bandwidth (B/s)."""

    name: str
    label: str
    peak_flops: float
    bandwidth: float
    memory_bytes: float
    source: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


#: Datasheet numbers. NVIDIA quotes tensor-core throughput "with sparsity"; the dense number is half of it.
GPUS: dict[str, GPUSpec] = {
    g.name: g
    for g in (
        GPUSpec(
            "h100",
            "NVIDIA H100 SXM5 80GB",
            989.4e12,
            3.35e12,
            80e9,
            "NVIDIA H100 Tensor Core GPU datasheet: BF16 1,979 TFLOPS with sparsity (989.4 dense), HBM3 3.35 TB/s",
        ),
        GPUSpec(
            "h100-pcie",
            "NVIDIA H100 PCIe 80GB",
            756.5e12,
            2.0e12,
            80e9,
            "NVIDIA H100 Tensor Core GPU datasheet: BF16 1,513 TFLOPS with sparsity (756.5 dense), HBM2e 2.0 TB/s",
        ),
        GPUSpec(
            "h200",
            "NVIDIA H200 SXM 141GB",
            989.4e12,
            4.8e12,
            141e9,
            "NVIDIA H200 Tensor Core GPU datasheet: BF16 1,979 TFLOPS with sparsity (989.4 dense), HBM3e 4.8 TB/s",
        ),
        GPUSpec(
            "a100",
            "NVIDIA A100 SXM4 80GB",
            312e12,
            2.039e12,
            80e9,
            "NVIDIA A100 Tensor Core GPU datasheet: BF16 312 TFLOPS dense (624 with sparsity), HBM2e 2,039 GB/s",
        ),
        GPUSpec(
            "a100-40gb",
            "NVIDIA A100 SXM4 40GB",
            312e12,
            1.555e12,
            40e9,
            "NVIDIA A100 Tensor Core GPU datasheet: BF16 312 TFLOPS dense (624 with sparsity), HBM2 1,555 GB/s",
        ),
        GPUSpec(
            "l40s",
            "NVIDIA L40S 48GB",
            362.05e12,
            864e9,
            48e9,
            "NVIDIA L40S datasheet: BF16 362.05 TFLOPS dense (733 with sparsity), GDDR6 864 GB/s",
        ),
    )
}


def get_gpu(gpu: str | GPUSpec) -> GPUSpec:
    """A :class:`GPUSpec` by name (case-insensitive) or the spec itself; :class:`SpecError` listing names."""
    if isinstance(gpu, GPUSpec):
        return gpu
    key = str(gpu).strip().lower()
    if key not in GPUS:
        raise SpecError(f"unknown GPU {gpu!r} for the roofline; allowed: {', '.join(GPUS)}")
    return GPUS[key]


# ------------------------------------------------------------------------------------------------- ops


@dataclass
class Op:
    """One op group: FLOPs (FlopCounterMode convention), causal-aware FLOPs, weight and activation bytes."""

    name: str
    flops: float = 0
    flops_useful: float = 0
    weight_bytes: float = 0
    act_bytes: float = 0

    @property
    def bytes(self) -> float:
        return self.weight_bytes + self.act_bytes

    def scaled(self, k: float) -> Op:
        return Op(self.name, self.flops * k, self.flops_useful * k, self.weight_bytes * k, self.act_bytes * k)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "flops": self.flops,
            "flops_useful": self.flops_useful,
            "weight_bytes": self.weight_bytes,
            "act_bytes": self.act_bytes,
            "bytes": self.bytes,
        }


def linear(name: str, m: float, k: int, n: int, b: float, bias: bool, extra_weights: int = 0) -> Op:
    """``m`` tokens through Linear(k -> n): ``2 m k n`` FLOPs; weights (+ bias, + ``extra_weights`` such as a
    norm fused in front) read once, input read and output written once."""
    f = 2 * m * k * n
    return Op(name, f, f, b * (k * n + (n if bias else 0) + extra_weights), b * m * (k + n))


def merge(ops: Sequence[Op], name: str | None = None) -> Op:
    out = Op(name or ops[0].name)
    for o in ops:
        out.flops += o.flops
        out.flops_useful += o.flops_useful
        out.weight_bytes += o.weight_bytes
        out.act_bytes += o.act_bytes
    return out


def roofline(ops: Sequence[Op], gpu: str | GPUSpec) -> dict[str, Any]:
    """Lower-bound time of op groups: ``sum(max(flops_useful / peak, bytes / bandwidth))``.

    ``compute_s`` / ``memory_s`` are the stage totals of the two terms; ``bound`` is the larger one's name
    (None when there is no work).
    """
    g = get_gpu(gpu)
    compute = sum(o.flops_useful for o in ops) / g.peak_flops
    memory = sum(o.bytes for o in ops) / g.bandwidth
    predicted = sum(max(o.flops_useful / g.peak_flops, o.bytes / g.bandwidth) for o in ops)
    return {"predicted_s": predicted, "compute_s": compute, "memory_s": memory, "bound": _bound(compute, memory)}


def _bound(compute_s: float, memory_s: float) -> str | None:
    """``compute`` or ``memory``, whichever term is larger; None for a stage with no work."""
    if compute_s == memory_s == 0:
        return None
    return "compute" if compute_s >= memory_s else "memory"


# --------------------------------------------------------------------------------------- model geometry


@dataclass(frozen=True)
class Geometry:
    """The numbers the formulas need, read from an ``InternVLConfig``."""

    image: int
    patch: int
    channels: int
    grid: int  # g = image / patch
    C: int
    mlp_v: int  # I in the formulas
    layers_v: int
    heads_v: int
    attn_bias_v: bool
    qk_norm_v: bool
    norm_v: str
    final_norm_v: bool
    abs_pos_v: bool
    mask_token_v: bool
    ratio: float  # downsample_ratio r
    D: int
    L: int
    h: int
    kv: int
    dh: int
    F: int
    V: int
    max_pos: int
    tied: bool

    @property
    def S(self) -> int:
        return self.grid * self.grid + 1

    @property
    def shuffle(self) -> int:
        """Tokens merged by the pixel shuffle (4 at r = 0.5)."""
        return round(1 / self.ratio**2)

    @property
    def proj_grid(self) -> int:
        return round(self.grid * self.ratio)

    @property
    def tokens_per_tile(self) -> int:
        return self.proj_grid**2


@dataclass(frozen=True)
class QwenGeometry:
    """The numbers the Qwen2.5-VL formulas need, read from a ``Qwen2_5_VLConfig`` and lfbench's frame side.

    The LLM fields (``D`` .. ``tied``) mean what they mean in :class:`Geometry` (a Qwen2 LLM in both families).
    """

    image: int
    patch: int
    channels: int
    grid: int  # g = image / patch, patches per side of one frame pair
    C: int
    mlp_v: int  # I: the gated MLP's width
    layers_v: int
    heads_v: int
    temporal: int  # frames per temporal patch (2)
    merge: int  # spatial merge side (2)
    window: int  # merge blocks per window side (window_size / merge / patch)
    full_layers: int  # layers attending over the whole temporal patch (fullatt_block_indexes)
    ratio: float  # 1 / merge, as Geometry's downsample ratio
    D: int
    L: int
    h: int
    kv: int
    dh: int
    F: int
    V: int
    max_pos: int
    tied: bool
    family: str = "qwen2.5-vl"

    @property
    def S(self) -> int:
        """ViT tokens per temporal patch (no class token)."""
        return self.grid * self.grid

    @property
    def shuffle(self) -> int:
        return self.merge * self.merge

    @property
    def proj_grid(self) -> int:
        return self.grid // self.merge

    @property
    def tokens_per_tile(self) -> int:
        """LLM tokens per temporal patch (2 frames)."""
        return self.proj_grid**2

    def steps(self, frames: int) -> int:
        """Temporal patches of a clip (padded with its last frame to an even length, as the processor does)."""
        return -(-frames // self.temporal)

    def window_sq_sum(self) -> int:
        """sum over one temporal patch's attention windows of (patches in the window)^2, transformers'
        ``get_vision_window_index``: windows of ``window x window`` merge blocks, the last row/column of windows
        cut short where the merged grid does not divide (16 * sum_i a_i^2 * sum_j b_j^2 for block counts a, b)."""
        G, w = self.proj_grid, self.window
        sides = [w] * (G // w) + ([G % w] if G % w else [])
        sq = sum(a * a for a in sides)
        return self.shuffle**2 * sq * sq


def geometry(cfg: Any, image_size: int | None = None) -> Geometry | QwenGeometry:
    """The formulas' numbers of a config: :class:`Geometry` for InternVL, :class:`QwenGeometry` for Qwen2.5-VL
    (``image_size``: the frame side lfbench feeds it, 448 unless given; InternVL's comes from its config)."""
    if getattr(cfg, "model_type", None) == "qwen2_5_vl":
        return qwen_geometry(cfg, image_size or QWEN_IMAGE_SIZE)
    if not hasattr(cfg.vision_config, "image_size"):
        raise SpecError(f"the cost model has no formulas for model_type {getattr(cfg, 'model_type', None)!r}; "
                        "allowed: internvl, qwen2_5_vl")
    v, t = cfg.vision_config, cfg.text_config
    size = lambda x: x[0] if isinstance(x, (list, tuple)) else x
    image, patch = size(v.image_size), size(v.patch_size)
    if image % patch:
        raise SpecError(f"image_size {image} is not a multiple of patch_size {patch}")
    g = image // patch
    r = cfg.downsample_ratio
    if abs(g * r - round(g * r)) > 1e-9:
        raise SpecError(f"the {g}x{g} patch grid does not shuffle by downsample_ratio={r}")
    heads = t.num_attention_heads
    return Geometry(
        image=image,
        patch=patch,
        channels=v.num_channels,
        grid=g,
        C=v.hidden_size,
        mlp_v=v.intermediate_size,
        layers_v=v.num_hidden_layers,
        heads_v=v.num_attention_heads,
        attn_bias_v=bool(v.attention_bias),
        qk_norm_v=bool(v.use_qk_norm),
        norm_v=v.norm_type,
        final_norm_v=not v.use_mean_pooling,
        abs_pos_v=bool(v.use_absolute_position_embeddings),
        mask_token_v=bool(v.use_mask_token),
        ratio=r,
        D=t.hidden_size,
        L=t.num_hidden_layers,
        h=heads,
        kv=t.num_key_value_heads,
        dh=getattr(t, "head_dim", None) or t.hidden_size // heads,
        F=t.intermediate_size,
        V=t.vocab_size,
        max_pos=t.max_position_embeddings,
        tied=bool(getattr(cfg, "tie_word_embeddings", False) or getattr(t, "tie_word_embeddings", False)),
    )


def qwen_geometry(cfg: Any, image_size: int = 448) -> QwenGeometry:
    v, t = cfg.vision_config, cfg.text_config
    p, m = int(v.patch_size), int(v.spatial_merge_size)
    if image_size % (p * m):
        raise SpecError(f"image_size {image_size} is invalid for Qwen2.5-VL; allowed: a multiple of {p * m}")
    heads = t.num_attention_heads
    return QwenGeometry(
        image=image_size,
        patch=p,
        channels=int(v.in_channels),
        grid=image_size // p,
        C=v.hidden_size,
        mlp_v=v.intermediate_size,
        layers_v=v.depth,
        heads_v=v.num_heads,
        temporal=int(v.temporal_patch_size),
        merge=m,
        window=v.window_size // m // p,
        full_layers=len(set(v.fullatt_block_indexes) & set(range(v.depth))),
        ratio=1 / m,
        D=t.hidden_size,
        L=t.num_hidden_layers,
        h=heads,
        kv=t.num_key_value_heads,
        dh=getattr(t, "head_dim", None) or t.hidden_size // heads,
        F=t.intermediate_size,
        V=t.vocab_size,
        max_pos=t.max_position_embeddings,
        tied=bool(getattr(cfg, "tie_word_embeddings", False)),
    )


def _norm_params(kind: str, width: int) -> int:
    return 2 * width if kind == "layer_norm" else width


# ------------------------------------------------------------------------------------ per-stage formulas


def vision_ops(geo: Geometry | QwenGeometry, images: int, b: float = 2) -> list[Op]:
    """InternViT over ``images`` tiles of ``image x image`` px: patch conv then ``layers_v`` layers on ``S`` tokens
    (Qwen2.5-VL: :func:`qwen_vision_ops` over the temporal patches of ``images`` frames)."""
    if isinstance(geo, QwenGeometry):
        return qwen_vision_ops(geo, geo.steps(images), b)
    n, g, C, Im, S, p = images, geo.grid, geo.C, geo.mlp_v, geo.S, geo.patch
    cin = geo.channels * p * p
    conv_f = 2 * n * g * g * C * cin
    emb_w = cin * C + C + C + (C if geo.mask_token_v else 0) + (S * C if geo.abs_pos_v else 0)  # conv, cls, pos
    embed = Op("patch_embed", conv_f, conv_f, b * emb_w, b * n * (geo.channels * geo.image**2 + S * C))
    M = n * S
    norm = _norm_params(geo.norm_v, C)
    qk_norm = 2 * C if geo.qk_norm_v else 0
    per_layer = [
        linear("qkv", M, C, 3 * C, b, geo.attn_bias_v, extra_weights=norm + qk_norm),  # + layernorm_before
        Op("attention", 4 * n * S * S * C, 4 * n * S * S * C, 0, b * 4 * M * C),
        linear("attn_out", M, C, C, b, True, extra_weights=C),  # + lambda_1 (layer scale)
        linear("mlp_fc1", M, C, Im, b, True, extra_weights=norm),  # + layernorm_after
        linear("mlp_fc2", M, Im, C, b, True, extra_weights=C),  # + lambda_2
    ]
    ops = [embed] + [o.scaled(geo.layers_v) for o in per_layer]
    if geo.final_norm_v:
        ops.append(Op("final_norm", 0, 0, b * 2 * C, 0))
    return ops


def qwen_vision_ops(geo: QwenGeometry, steps: int, b: float = 2) -> list[Op]:
    """Qwen2.5-VL's ViT over ``steps`` temporal patches of 2 frames (``modeling_qwen2_5_vl``, transformers 5.24).

    Conv3d patch embedding (no bias) ``2 M C (3 * 2 * p^2)`` on ``M = steps * g^2`` patches; per layer: RMSNorm +
    qkv Linear(C, 3C) with bias, attention, proj Linear(C, C), RMSNorm + gated SiLU MLP (gate, up: C -> I; down:
    I -> C; all with bias). Attention (``4 len^2 C`` per segment: FlopCounterMode's SDPA count, once per
    ``cu_seqlens`` chunk): ``full_layers`` layers over each temporal patch (``4 S^2 C`` each), the other layers
    over each window (``4 C`` x :meth:`QwenGeometry.window_sq_sum`). The 2D rotary embedding is elementwise."""
    n, g, C, Im, p = steps, geo.grid, geo.C, geo.mlp_v, geo.patch
    M = n * g * g
    cin = geo.channels * geo.temporal * p * p
    conv = 2 * M * C * cin
    embed = Op("patch_embed", conv, conv, b * cin * C, b * (M * cin + M * C))
    full = 4 * n * geo.S**2 * C
    window = 4 * n * geo.window_sq_sum() * C
    io = b * 4 * M * C
    lw = geo.layers_v - geo.full_layers
    ops = [
        embed,
        linear("qkv", M, C, 3 * C, b, True, extra_weights=C).scaled(geo.layers_v),  # + norm1
        Op("attention_full", full * geo.full_layers, full * geo.full_layers, 0, io * geo.full_layers),
        Op("attention_window", window * lw, window * lw, 0, io * lw),
        linear("attn_out", M, C, C, b, True).scaled(geo.layers_v),
        linear("mlp_gate_up", M, C, 2 * Im, b, True, extra_weights=C).scaled(geo.layers_v),  # + norm2
        linear("mlp_down", M, Im, C, b, True).scaled(geo.layers_v),
    ]
    return ops


def received_attention_op(geo: QwenGeometry, steps: int, b: float = 2) -> Op:
    """The class-token substitute (``backends.qwen``): the last layer's q.k^T over each temporal patch, ``2 S^2 C``
    per step (the softmax and the mean over queries are elementwise/reductions, not counted), read q and k."""
    f = 2 * steps * geo.S**2 * geo.C
    return Op("received_attention", f, f, 0, b * 2 * steps * geo.S * geo.C)


def project_ops(geo: Geometry | QwenGeometry, tokens: int, b: float = 2, shuffled: int | None = None) -> list[Op]:
    """Pixel shuffle + LayerNorm(4C) + Linear(4C->D) + GELU + Linear(D->D) on ``tokens`` post-shuffle tokens;
    ``shuffled``: post-shuffle tokens the pixel shuffle makes when more than the MLP takes (a reducer at mlp).

    Qwen2.5-VL's ``Qwen2_5_VLPatchMerger``: RMSNorm(C) per patch, the 2x2 concatenation (counted as one read and
    one write, like the pixel shuffle), Linear(4C -> 4C) + GELU + Linear(4C -> D), both with bias."""
    Cin = geo.C * geo.shuffle
    if isinstance(geo, QwenGeometry):
        return [
            Op("merge", 0, 0, b * geo.C, b * 2 * (tokens if shuffled is None else shuffled) * Cin),  # + ln_q
            linear("linear_1", tokens, Cin, Cin, b, True),
            linear("linear_2", tokens, Cin, geo.D, b, True),
        ]
    return [
        Op("pixel_shuffle", 0, 0, 0, b * 2 * (tokens if shuffled is None else shuffled) * Cin),
        linear("linear_1", tokens, Cin, geo.D, b, True, extra_weights=2 * Cin),  # + layer_norm (weight, bias)
        linear("linear_2", tokens, geo.D, geo.D, b, True),
    ]


def reduce_ops(
    reducer: Any, images: int, H: int, W: int, width: int, tokens_out: int, geo: Geometry, b: float = 2
) -> list[Op]:
    """The reducer on an ``images x H x W x width`` grid: ``2 N_in width`` FLOPs, bytes in + aux + out."""
    n_in = images * H * W
    needs = set(getattr(reducer, "needs", ()))
    aux, gg = 0, geo.grid**2  # auxiliary inputs are read at the ViT grid (pooled to the proj grid on the fly)
    if "cls_attn" in needs:
        aux += images * geo.heads_v * gg
    if "keys" in needs:
        aux += images * gg * geo.C
    if "frame_global" in needs:
        aux += images * geo.C
    f = 2 * n_in * width
    return [Op("reduce", f, f, 0, b * (n_in * width + aux + tokens_out * width))]


def _llm_layer_linears(geo: Geometry, m: float, b: float) -> list[Op]:
    D, h, kv, dh, F = geo.D, geo.h, geo.kv, geo.dh, geo.F
    return [
        linear("qkv", m, D, (h + 2 * kv) * dh, b, True, extra_weights=D),  # + input_layernorm
        linear("o_proj", m, h * dh, D, b, False),
        linear("mlp_gate_up", m, D, 2 * F, b, False, extra_weights=D),  # + post_attention_layernorm
        linear("mlp_down", m, F, D, b, False),
    ]


def lm_head_op(geo: Geometry, b: float) -> Op:
    """Final RMSNorm + lm_head on one position (``logits_to_keep=1``); logits written in ``b`` bytes."""
    f = 2 * geo.D * geo.V
    return Op("lm_head", f, f, b * (geo.D * geo.V + geo.D), b * (geo.D + geo.V))


def prefill_ops(geo: Geometry, P: int, b: float = 2) -> list[Op]:
    """The LLM over a prompt of ``P`` tokens with an empty cache; logits of the last position only."""
    h, kv, dh, L = geo.h, geo.kv, geo.dh, geo.L
    lin = _llm_layer_linears(geo, P, b)
    attn = Op(
        "attention",
        4 * h * dh * P * P,  # FlopCounterMode: the full square
        2 * h * dh * P * (P + 1),  # causal: query i sees i + 1 keys
        0,
        b * (2 * P * h * dh + 2 * P * kv * dh + 2 * P * kv * dh),  # Q in, O out, K/V in, K/V written to the cache
    )
    per_layer = [lin[0], attn, *lin[1:]]
    return [Op("embed", 0, 0, 0, b * 2 * P * geo.D)] + [o.scaled(L) for o in per_layer] + [lm_head_op(geo, b)]


def decode_step_ops(geo: Geometry, cache: int, b: float = 2) -> list[Op]:
    """One decode step: one new token attending to ``cache + 1`` keys; all weights and the cache read once."""
    h, kv, dh, L = geo.h, geo.kv, geo.dh, geo.L
    keys = cache + 1
    lin = _llm_layer_linears(geo, 1, b)
    f = 4 * h * dh * keys
    attn = Op("attention", f, f, 0, b * (2 * h * dh + 2 * kv * dh * keys + 2 * kv * dh))  # q/o, cache read, write
    layers = [o.scaled(L) for o in [lin[0], attn, *lin[1:]]]
    return [Op("embed", 0, 0, 0, b * 2 * geo.D), *layers, lm_head_op(geo, b)]


def generate_ops(geo: Geometry, P: int, new_tokens: int, b: float = 2) -> tuple[list[Op], list[list[Op]]]:
    """``max(new_tokens - 1, 0)`` decode steps after a prompt of ``P``: the summed op groups and the steps."""
    steps = [decode_step_ops(geo, P + i, b) for i in range(max(new_tokens - 1, 0))]
    if not steps:
        return [], []
    summed = [merge([s[k] for s in steps]) for k in range(len(steps[0]))]
    return summed, steps


def weight_elements(geo: Geometry) -> dict[str, int]:
    """Parameter counts implied by the formulas (for checking against ``presets.parameter_counts``)."""
    ops = {"vision": vision_ops(geo, 0, 1), "projector": project_ops(geo, 0, 1)}
    out = {k: round(sum(o.weight_bytes for o in v)) for k, v in ops.items()}
    pre = prefill_ops(geo, 0, 1)
    layers = round(sum(o.weight_bytes for o in pre if o.name != "lm_head"))
    out["llm"] = layers + geo.D + geo.V * geo.D  # + final norm + embedding table
    out["lm_head"] = 0 if geo.tied else geo.V * geo.D
    return out


# ---------------------------------------------------------------------------------- model and tokens


def resolve_model(model: Any) -> tuple[str, Any]:
    """``(name, config)`` from a preset name (``internvl3-8b``, ``qwen2.5-vl-7b``, ...), ``random:<preset>``, a
    family keyword (``tiny``, ``tiny-qwen``), a local model folder, a config, or a loaded backbone."""
    name, cfg, _ = _model(model)
    return name, cfg


def _model(model: Any) -> tuple[str, Any, Geometry | QwenGeometry]:
    """``(name, config, geometry)``; the frame side of a Qwen2.5-VL model comes from its backbone or preset."""
    from liteframe_bench.backbone import Backbone, model_config

    if isinstance(model, Backbone):
        return model.source, model.config, geometry(model.config, getattr(model, "image_size", None))
    if isinstance(model, (Geometry, QwenGeometry)):
        return "custom", None, model
    name, cfg, _ = model_config(model)
    size = None
    if isinstance(model, str) and getattr(cfg, "model_type", None) == "qwen2_5_vl":
        from liteframe_bench.backends.qwen import IMAGE_SIZES

        size = IMAGE_SIZES.get(name)
    return name, cfg, geometry(cfg, size)


def frame_labels(frames: int, step: int = 1, ordered: bool = True) -> list[str]:
    """The ``label: <img>...</img>`` groups of the prompt, as the pipeline builds them.

    One ``Frame{t+1}`` per input frame that keeps tokens: every frame for the baseline and ``proj`` reducers,
    every ``step``-th frame for a block reducer at ``vit`` (its tokens sit at their block's first frame), and
    a single ``Video`` group for a reducer whose output is not in frame order (``ordered = False``).
    """
    if not ordered:
        return ["Video"]
    return [f"Frame{t + 1}" for t in range(0, frames, step)]


def frame_text(labels: Sequence[str], frame_text_tokens: int | None) -> int:
    """Text tokens of the per-group wrappers: ``frame_text_tokens`` each, or ``6 + digits`` of the label
    (``Frame``/``Video``, one token per digit, ``:``, `` ``, ``<img>``, ``</img>``, ``\\n``)."""
    if frame_text_tokens is not None:
        return len(labels) * frame_text_tokens
    return sum(FRAME_TEXT_BASE + sum(ch.isdigit() for ch in lab) for lab in labels)


def _method(method: str, at: str | None = None) -> tuple[str, Any, str | None, Any]:
    """``(spec, reducer or None, insertion point or None, geometry method or None)`` from ``baseline``, a reducer
    spec, or a registered method that declares ``cost_geometry(geometry) -> Geometry`` (it changes what the
    backbone computes, e.g. ``lowres`` runs the ViT on smaller images, and is otherwise the baseline).

    As ``pipeline.build_method``: a reducer spec may carry ``at=vit|mlp|proj`` (else the reducer's
    ``default_at``); the ``at`` argument wins over both. SpecError for an unknown spec, another method, an
    invalid ``at``, or a reducer without a regular-grid output placed at ``vit``.
    """
    from liteframe_bench import registry

    if not isinstance(method, str) or not method.strip():
        raise SpecError(f"method {method!r} is empty; expected baseline or a reducer spec such as wap:ratio=16")
    ms = registry.parse_method_spec(method)
    if ms.name == "baseline" and not ms.params and ms.at is None:
        return "baseline", None, None, None
    entry = ms.entry
    if entry.kind == "method" and hasattr(entry.cls, "cost_geometry") and ms.at is None:
        return method.strip(), None, None, registry.create(ms.base)
    if entry.kind != "reducer":
        raise SpecError(
            "the cost model takes baseline, a reducer spec (optionally with at=vit|mlp|proj) or a method that "
            f"declares its geometry (lowres); {ms.name!r} is a {entry.kind} without one"
        )
    reducer = registry.create(ms.base)
    return method.strip(), reducer, ms.insertion_point(reducer, at), None


# ------------------------------------------------------------------------------------------- estimate


def _check_positive(name: str, value: Any, integer: bool = True, zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (value >= 0 if zero else value > 0) and (not integer or float(value).is_integer())
    if not ok:
        kind = "integer" if integer else "number"
        raise SpecError(f"{name}={value!r} is invalid; allowed: a {'non-negative' if zero else 'positive'} {kind}")


def estimate(
    model: Any,
    method: str,
    frames: int,
    *,
    gpu: str | GPUSpec | None = None,
    dtype_bytes: float = 2,
    tiles: int = 1,
    frame_text_tokens: int | None = None,
    fixed_text_tokens: int = DEFAULT_FIXED_TEXT_TOKENS,
    new_tokens: int = 16,
    at: str | None = None,
    ops: bool = True,
    prompt_tokens: int | None = None,
) -> dict[str, Any]:
    """Cost of one (model, method, frames) cell: per-stage FLOPs, bytes and (with ``gpu``) roofline seconds.

    ``model``: preset name, local model folder or ``InternVLConfig``. ``method``: ``baseline`` or a reducer
    spec (``at=`` inside it or the ``at`` argument overrides the reducer's ``default_at``). ``tiles``: tiles per
    frame (thumbnail included); a reducer sees them as its batch, each a ``frames x g x g`` grid.
    ``frame_text_tokens``/``fixed_text_tokens``: see the module docstring. ``new_tokens``: generated tokens
    (``new_tokens - 1`` decode steps). ``prompt_tokens``: the prompt's real length when known (a measured run),
    instead of visual + the estimated text. A reducer that cannot serve ``frames`` returns the cell with an
    ``error`` string; invalid arguments raise :class:`SpecError`.
    """
    _check_positive("frames", frames)
    _check_positive("tiles", tiles)
    _check_positive("dtype_bytes", dtype_bytes, integer=False)
    _check_positive("new_tokens", new_tokens, zero=True)
    _check_positive("fixed_text_tokens", fixed_text_tokens, zero=True)
    if frame_text_tokens is not None:
        _check_positive("frame_text_tokens", frame_text_tokens, zero=True)
    if prompt_tokens is not None:
        _check_positive("prompt_tokens", prompt_tokens)
    frames, tiles, new_tokens = int(frames), int(tiles), int(new_tokens)
    name, _, geo = _model(model)
    qwen = isinstance(geo, QwenGeometry)
    if qwen and tiles != 1:
        raise SpecError(f"tiles={tiles} is invalid for Qwen2.5-VL (one clip per prompt); allowed: 1")
    spec, reducer, where, host = _method(method, at)
    if host is not None:
        geo = host.cost_geometry(geo)
    g_spec = get_gpu(gpu) if gpu is not None else None
    b = dtype_bytes
    n = frames * tiles
    steps = geo.steps(frames) if qwen else frames  # encoder time steps: what a reducer sees as T
    cell: dict[str, Any] = {
        "model": name,
        "method": spec,
        "frames": frames,
        "tiles": tiles,
        "at": where,
        "gpu": g_spec.name if g_spec else None,
    }

    g, pg, sh, side = geo.grid, geo.proj_grid, geo.shuffle, round(1 / geo.ratio)
    before = steps * tiles * geo.tokens_per_tile
    stage_ops: dict[str, list[Op]] = {"vision": vision_ops(geo, n, b)}
    if qwen and reducer is not None and "cls_attn" in getattr(reducer, "needs", ()):
        stage_ops["vision"].append(received_attention_op(geo, steps, b))
    step, ordered = 1, True
    try:
        if reducer is None:
            visual, proj_in = before, before
            order = ["vision", "project", "prefill", "generate"]
            stage_ops["reduce"] = []
        elif where == "vit":  # the reducer sees [tiles, frames, g, g, C]; tiles are its batch
            out = reducer.target_tokens(steps, g, g)
            if hasattr(reducer, "block_for"):
                bt, bh, bw = reducer.block_for(steps, g, g)
                step = bt
                if (g // bh) % side or (g // bw) % side:
                    raise ReducerError(
                        f"{spec} at vit leaves a {g // bh}x{g // bw} grid per frame; the pixel "
                        f"shuffle needs sides divisible by {side}"
                    )
            if out % sh:
                raise ReducerError(f"{spec} at vit keeps {out} tokens, not a multiple of the pixel shuffle's {sh}")
            proj_in = visual = tiles * out // sh
            stage_ops["reduce"] = reduce_ops(reducer, steps * tiles, g, g, geo.C, tiles * out, geo, b)
            order = ["vision", "reduce", "project", "prefill", "generate"]
        elif where == "mlp":  # pixel shuffle on every token, the reducer on [pg, pg, 4C], the MLP on what it keeps
            visual = proj_in = tiles * reducer.target_tokens(steps, pg, pg)
            stage_ops["reduce"] = reduce_ops(reducer, steps * tiles, pg, pg, geo.C * geo.shuffle, visual, geo, b)
            order = ["vision", "project", "reduce", "project", "prefill", "generate"]
        else:
            visual = tiles * reducer.target_tokens(steps, pg, pg)
            proj_in = before
            stage_ops["reduce"] = reduce_ops(reducer, steps * tiles, pg, pg, geo.D, visual, geo, b)
            order = ["vision", "project", "reduce", "prefill", "generate"]
        if reducer is not None:
            ordered = bool(getattr(reducer, "ordered", True))
    except ReducerError as e:
        cell["error"] = str(e)
        return cell

    labels = ["Video"] if qwen else frame_labels(frames, step, ordered)
    # Qwen2.5-VL's one video block: <|vision_start|> ... <|vision_end|> (positions, not labels, carry time)
    text = (QWEN_VIDEO_TEXT if qwen else frame_text(labels, frame_text_tokens)) + fixed_text_tokens
    if prompt_tokens is not None:
        if prompt_tokens < visual:
            raise SpecError(f"prompt_tokens={prompt_tokens} is fewer than the {visual} visual tokens of {spec}")
        text = int(prompt_tokens) - visual
    P = visual + text
    stage_ops["project"] = project_ops(geo, proj_in, b, shuffled=before if where == "mlp" else None)
    stage_ops["prefill"] = prefill_ops(geo, P, b)
    stage_ops["generate"], steps = generate_ops(geo, P, new_tokens, b)

    end = P + new_tokens
    fits = end <= geo.max_pos
    cell["tokens"] = {
        "vit_per_image": geo.S,
        "before_reduction": before,
        "projector_in": proj_in,
        "visual": visual,
        "visual_per_frame": visual / frames,
        "text": text,
        "text_groups": len(labels),
        "prompt": P,
        "new_tokens": new_tokens,
        "decode_steps": len(steps),
        "context_end": end,
    }
    cell["order"] = order
    cell["max_position_embeddings"] = geo.max_pos
    cell["fits_context"] = fits
    cell["context_reason"] = (
        None
        if fits
        else (
            f"prompt {P} tokens ({visual} visual + {text} text) + {new_tokens} new = {end} > the LLM's "
            f"max_position_embeddings {geo.max_pos}"
        )
    )
    weights = sum(o.weight_bytes for s in ("vision", "project") for o in stage_ops[s])
    weights += sum(o.weight_bytes for o in stage_ops["prefill"]) + b * geo.V * geo.D * (0 if geo.tied else 1)
    kv_cache = b * geo.L * 2 * geo.kv * geo.dh * end
    cell["memory"] = {
        "weights_bytes": weights,
        "kv_cache_bytes": kv_cache,
        "lower_bound_bytes": weights + kv_cache,
        "fits_memory": None if g_spec is None else weights + kv_cache <= g_spec.memory_bytes,
    }

    stages: dict[str, Any] = {}
    for s in STAGES:
        o = stage_ops[s]
        st = {
            "flops": sum(x.flops for x in o),
            "flops_useful": sum(x.flops_useful for x in o),
            "bytes": sum(x.bytes for x in o),
            "weight_bytes": sum(x.weight_bytes for x in o),
        }
        if g_spec is not None:
            if s == "generate":
                parts = [roofline(one, g_spec) for one in steps]
                st |= {
                    "predicted_s": sum(p["predicted_s"] for p in parts),
                    "compute_s": sum(p["compute_s"] for p in parts),
                    "memory_s": sum(p["memory_s"] for p in parts),
                }
                st["bound"] = _bound(st["compute_s"], st["memory_s"])
                st["per_token_s"] = st["predicted_s"] / len(steps) if steps else 0.0
            else:
                st |= roofline(o, g_spec)
        if ops:
            st["ops"] = [x.to_json() for x in o]
        stages[s] = st
    cell["stages"] = stages
    tot = {k: sum(stages[s][k] for s in STAGES) for k in ("flops", "flops_useful", "bytes")}
    key = "predicted_s" if g_spec is not None else "flops_useful"
    if g_spec is not None:
        tot["predicted_s"] = sum(stages[s]["predicted_s"] for s in STAGES)
    cell["totals"] = tot
    vis = sum(stages[s][key] for s in VISION_SIDE)
    llm = sum(stages[s][key] for s in LLM_SIDE)
    cell["share"] = {"by": key, "vision_side": vis / (vis + llm), "llm": llm / (vis + llm)}
    return cell


def stage_flops(model: Any, method: str, frames: int, **kw: Any) -> tuple[dict[str, float] | None, str | None]:
    """``({stage: flops}, None)`` for one cell in the FlopCounterMode convention (what the profiler's ``--flops``
    counts), or ``(None, reason)`` when the cost model cannot model it (a method it does not know, a frame count
    the reducer cannot serve). ``kw`` as :func:`estimate` (``prompt_tokens``, ``new_tokens``, ``tiles``)."""
    try:
        cell = estimate(model, method, frames, ops=False, **kw)
    except SpecError as e:
        return None, str(e)
    if "error" in cell:
        return None, cell["error"]
    return {s: float(cell["stages"][s]["flops"]) for s in STAGES}, None


def vision_gflops_per_frame(model: Any = "internvl3-8b") -> float:
    """ViT + projector GFLOPs for one frame (one tile) of the baseline: 737.7 for InternVL3 at 448 px (Qwen2.5-VL:
    half of a temporal patch of two frames)."""
    _, _, geo = _model(model)
    frames = geo.temporal if isinstance(geo, QwenGeometry) else 1
    ops = vision_ops(geo, frames) + project_ops(geo, geo.tokens_per_tile)
    return sum(o.flops for o in ops) / 1e9 / frames


# --------------------------------------------------------------------------------------- report/render


def report(
    model: Any,
    methods: Sequence[str],
    frames: Sequence[int],
    gpu: str | GPUSpec | None = None,
    *,
    dtype_bytes: float = 2,
    tiles: int = 1,
    frame_text_tokens: int | None = None,
    fixed_text_tokens: int = DEFAULT_FIXED_TEXT_TOKENS,
    new_tokens: int = 16,
    ops: bool = False,
) -> dict[str, Any]:
    """Every (method, frames) cell for one model and GPU as a JSON-ready dict (bad specs fail fast)."""
    if not methods or not frames:
        raise SpecError("report needs at least one method and one frame count")
    for m in methods:
        _method(m)  # fail fast on a bad spec before computing anything
    g_spec = get_gpu(gpu) if gpu is not None else None
    name, cfg, geo = _model(model)
    kw = dict(
        gpu=g_spec,
        dtype_bytes=dtype_bytes,
        tiles=tiles,
        frame_text_tokens=frame_text_tokens,
        fixed_text_tokens=fixed_text_tokens,
        new_tokens=new_tokens,
        ops=ops,
    )
    cells = [estimate(geo, m, f, **kw) | {"model": name} for m in methods for f in frames]
    return {
        "benchmark": "cost",
        "model": {"name": name, "family": getattr(geo, "family", "internvl"), "geometry": asdict(geo),
                  "vision_gflops_per_frame": vision_gflops_per_frame(geo)},
        "gpu": g_spec.to_json() if g_spec else None,
        "settings": {
            "dtype_bytes": dtype_bytes,
            "tiles": tiles,
            "frame_text_tokens": frame_text_tokens
            if frame_text_tokens is not None
            else f"{FRAME_TEXT_BASE} + digits(i)",
            "fixed_text_tokens": fixed_text_tokens,
            "new_tokens": new_tokens,
        },
        "conventions": {
            "flops": "FlopCounterMode: 2*M*N*K per matmul, conv 2*out*Cin*k^2, sdpa 4*B*h*Sq*Sk*d (full square); "
            "elementwise ops not counted",
            "flops_useful": "causal attention counted as the lower triangle (i+1 keys for query i); "
            "used by the roofline",
            "bytes": "lower bound: weights once per pass (per decode step for generate), matmul inputs/outputs once, "
            "fused flash attention, elementwise ops fused, KV cache read by every decode step",
            "predicted_s": "lower bound: sum over op groups of max(flops_useful/peak_bf16_dense, bytes/bandwidth)",
            "generate": "new_tokens - 1 decode steps (the first token comes from prefill)",
        },
        "cells": cells,
    }


def _fmt_s(s: float) -> str:
    ms = s * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:,.0f}"


def render(rep: dict[str, Any], console: Any = None) -> None:
    """Print a report as a rich table: one row per cell, one column per stage, totals and vision share.

    With a GPU the stages are roofline milliseconds (lower bounds), else causal-aware GFLOPs. Cells that
    cannot run are listed under the table with their reason.
    """
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if console.width < 130:
        console.width = 130
    gpu = rep.get("gpu")
    unit = "ms (lower bound)" if gpu else "GFLOP (causal-aware)"
    title = f"lfbench cost: {rep['model']['name']}"
    title += (
        (f" on {gpu['label']} (bf16 {gpu['peak_flops'] / 1e12:.0f} TFLOP/s dense, {gpu['bandwidth'] / 1e12:.2f} TB/s)")
        if gpu
        else " (FLOPs only; give a GPU for latency)"
    )
    caption = (
        f"stages in {unit}; generate = {max(rep['settings']['new_tokens'] - 1, 0)} decode steps; "
        f"ViT+projector {rep['model']['vision_gflops_per_frame']:.1f} GFLOP per frame; "
        f"vision side = vision+reduce+project share of the total"
    )
    table = Table(title=title, caption=caption)
    for col in ("method", "frames", "visual/frame", "prompt", *STAGES, "total", "vision side", "context"):
        table.add_column(col, justify="left" if col in ("method", "context") else "right", no_wrap=col == "method")
    notes = []
    for c in rep["cells"]:
        if "error" in c:
            notes.append(f"[{len(notes) + 1}] {c['method']} @ {c['frames']} frames: {c['error']}")
            dashes = ["—"] * (len(STAGES) + 4)
            table.add_row(c["method"], str(c["frames"]), *dashes, f"[red]cannot run [{len(notes)}][/red]")
            continue
        st, t = c["stages"], c["tokens"]
        if gpu:
            vals = [_fmt_s(st[s]["predicted_s"]) for s in STAGES]
            total = _fmt_s(c["totals"]["predicted_s"])
        else:
            vals = [f"{st[s]['flops_useful'] / 1e9:,.1f}" for s in STAGES]
            total = f"{c['totals']['flops_useful'] / 1e9:,.1f}"
        ctx = "ok" if c["fits_context"] else f"[red]> {c['max_position_embeddings']:,}[/red]"
        table.add_row(
            c["method"],
            str(c["frames"]),
            f"{t['visual_per_frame']:g}",
            f"{t['prompt']:,}",
            *vals,
            total,
            f"{c['share']['vision_side']:.0%}",
            ctx,
        )
    console.print(table)
    for n in notes:
        console.print(n, style="red", highlight=False)


__all__ = [
    "DEFAULT_FIXED_TEXT_TOKENS",
    "GPUS",
    "GPUSpec",
    "Op",
    "STAGES",
    "decode_step_ops",
    "estimate",
    "frame_text",
    "generate_ops",
    "geometry",
    "get_gpu",
    "prefill_ops",
    "project_ops",
    "reduce_ops",
    "render",
    "report",
    "resolve_model",
    "roofline",
    "stage_flops",
    "vision_gflops_per_frame",
    "vision_ops",
    "weight_elements",
]
