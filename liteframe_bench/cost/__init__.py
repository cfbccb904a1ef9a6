"""The analytic cost model: FLOPs, bytes moved and a roofline latency bound per stage of a Video LLM run.

Where things are: :mod:`.internvl` (InternViT + pixel shuffle + MLP projector) and :mod:`.qwen` (Qwen2.5-VL's
ViT, class-token substitute and merger) are the two families' formula sets, :mod:`.llm` the Qwen2 LLM both use,
:mod:`.roofline` the GPUs, op groups and roofline, :mod:`.estimate` one cell (``estimate``, ``stage_flops``) and
:mod:`.report` ``lfbench cost``'s grid and table. Everything public is importable from this package.

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

from liteframe_bench.cost import internvl, llm, qwen
from liteframe_bench.cost.estimate import (
    DEFAULT_FIXED_TEXT_TOKENS,
    FRAME_TEXT_BASE,
    LLM_SIDE,
    STAGES,
    VISION_SIDE,
    check_positive,
    estimate,
    frame_labels,
    frame_text,
    geometry,
    model_geometry,
    parse_method,
    project_ops,
    reduce_ops,
    resolve_model,
    stage_flops,
    vision_gflops_per_frame,
    vision_ops,
    weight_elements,
)
from liteframe_bench.cost.internvl import Geometry
from liteframe_bench.cost.llm import decode_step_ops, generate_ops, lm_head_op, prefill_ops
from liteframe_bench.cost.qwen import IMAGE_SIZE as QWEN_IMAGE_SIZE
from liteframe_bench.cost.qwen import VIDEO_TEXT as QWEN_VIDEO_TEXT
from liteframe_bench.cost.qwen import QwenGeometry, received_attention_op
from liteframe_bench.cost.qwen import geometry as qwen_geometry
from liteframe_bench.cost.qwen import vision_ops as qwen_vision_ops
from liteframe_bench.cost.report import render, report
from liteframe_bench.cost.roofline import GPUS, GPUSpec, Op, bound, get_gpu, linear, merge, roofline

__all__ = [
    "DEFAULT_FIXED_TEXT_TOKENS",
    "FRAME_TEXT_BASE",
    "GPUS",
    "GPUSpec",
    "Geometry",
    "LLM_SIDE",
    "Op",
    "QWEN_IMAGE_SIZE",
    "QWEN_VIDEO_TEXT",
    "QwenGeometry",
    "STAGES",
    "VISION_SIDE",
    "bound",
    "check_positive",
    "decode_step_ops",
    "estimate",
    "frame_labels",
    "frame_text",
    "generate_ops",
    "geometry",
    "get_gpu",
    "internvl",
    "linear",
    "llm",
    "lm_head_op",
    "merge",
    "model_geometry",
    "parse_method",
    "prefill_ops",
    "project_ops",
    "qwen",
    "qwen_geometry",
    "qwen_vision_ops",
    "received_attention_op",
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
