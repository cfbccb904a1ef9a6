"""One (model, method, frames) cell's cost: the family's geometry, the method's tokens and prompt, per-stage op groups
from the family's formulas (:mod:`.internvl`, :mod:`.qwen`, :mod:`.llm`) and their roofline (:mod:`.roofline`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from liteframe_bench.cost import internvl, qwen
from liteframe_bench.cost.internvl import Geometry
from liteframe_bench.cost.llm import generate_ops, prefill_ops
from liteframe_bench.cost.qwen import QwenGeometry
from liteframe_bench.cost.roofline import GPUSpec, Op, bound, get_gpu, roofline
from liteframe_bench.errors import ReducerError, SpecError
from liteframe_bench.stages import LLM_SIDE, VISION_SIDE
from liteframe_bench.stages import MODELLED_STAGES as STAGES

#: Chat template with InternVL's default system prompt (``backends.internvl.INTERNVL_SYSTEM``, ~50 tokens with
#: the ``<|im_start|>``/``<|im_end|>`` markers) + a multiple-choice question with four options and an answer
#: instruction (~80 tokens). An estimate: pass the real count when known.
DEFAULT_FIXED_TEXT_TOKENS = 128
#: Tokens of ``Frame{i}: <img>`` + ``</img>\n`` besides the digits of ``i``.
FRAME_TEXT_BASE = 6


def geometry(cfg: Any, image_size: int | None = None) -> Geometry | QwenGeometry:
    """The formulas' numbers of a config: :class:`Geometry` for InternVL (:mod:`.internvl`), :class:`QwenGeometry`
    for Qwen2.5-VL (:mod:`.qwen`; ``image_size``: the frame side lfbench feeds it, 448 unless given; InternVL's
    comes from its config)."""
    if getattr(cfg, "model_type", None) == "qwen2_5_vl":
        return qwen.geometry(cfg, image_size or qwen.IMAGE_SIZE)
    return internvl.geometry(cfg)


def vision_ops(geo: Geometry | QwenGeometry, images: int, b: float = 2) -> list[Op]:
    """The ViT over ``images`` tiles (InternVL3: :func:`.internvl.vision_ops`) or frames (Qwen2.5-VL:
    :func:`.qwen.vision_ops` over their temporal patches)."""
    if isinstance(geo, QwenGeometry):
        return qwen.vision_ops(geo, geo.steps(images), b)
    return internvl.vision_ops(geo, images, b)


def project_ops(geo: Geometry | QwenGeometry, tokens: int, b: float = 2, shuffled: int | None = None) -> list[Op]:
    """The projector on ``tokens`` merged tokens: InternVL3's pixel shuffle + MLP (:func:`.internvl.project_ops`)
    or Qwen2.5-VL's patch merger (:func:`.qwen.project_ops`)."""
    family = qwen if isinstance(geo, QwenGeometry) else internvl
    return family.project_ops(geo, tokens, b, shuffled)


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


def weight_elements(geo: Geometry) -> dict[str, int]:
    """Parameter counts implied by the formulas (for checking against ``presets.parameter_counts``)."""
    ops = {"vision": vision_ops(geo, 0, 1), "projector": project_ops(geo, 0, 1)}
    out = {k: round(sum(o.weight_bytes for o in v)) for k, v in ops.items()}
    pre = prefill_ops(geo, 0, 1)
    layers = round(sum(o.weight_bytes for o in pre if o.name != "lm_head"))
    out["llm"] = layers + geo.D + geo.V * geo.D  # + final norm + embedding table
    out["lm_head"] = 0 if geo.tied else geo.V * geo.D
    return out


def resolve_model(model: Any) -> tuple[str, Any]:
    """``(name, config)`` from a preset name (``internvl3-8b``, ``qwen2.5-vl-7b``, ...), ``random:<preset>``, a
    family keyword (``tiny``, ``tiny-qwen``), a local model folder, a config, or a loaded backbone."""
    name, cfg, _ = model_geometry(model)
    return name, cfg


def model_geometry(model: Any) -> tuple[str, Any, Geometry | QwenGeometry]:
    """``(name, config, geometry)``; the frame side of a Qwen2.5-VL model comes from its backbone or preset."""
    from liteframe_bench.backbone import Backbone, model_config

    if isinstance(model, Backbone):
        return model.source, model.config, geometry(model.config, getattr(model, "image_size", None))
    if isinstance(model, (Geometry, QwenGeometry)):
        return "custom", None, model
    name, cfg, family = model_config(model)
    return name, cfg, geometry(cfg, family.frame_side(name) if isinstance(model, str) else None)


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


def parse_method(method: str, at: str | None = None) -> tuple[str, Any, str | None, Any]:
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


def check_positive(name: str, value: Any, integer: bool = True, zero: bool = False) -> None:
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
    check_positive("frames", frames)
    check_positive("tiles", tiles)
    check_positive("dtype_bytes", dtype_bytes, integer=False)
    check_positive("new_tokens", new_tokens, zero=True)
    check_positive("fixed_text_tokens", fixed_text_tokens, zero=True)
    if frame_text_tokens is not None:
        check_positive("frame_text_tokens", frame_text_tokens, zero=True)
    if prompt_tokens is not None:
        check_positive("prompt_tokens", prompt_tokens)
    frames, tiles, new_tokens = int(frames), int(tiles), int(new_tokens)
    name, _, geo = model_geometry(model)
    is_qwen = isinstance(geo, QwenGeometry)
    if is_qwen and tiles != 1:
        raise SpecError(f"tiles={tiles} is invalid for Qwen2.5-VL (one clip per prompt); allowed: 1")
    spec, reducer, where, host = parse_method(method, at)
    if host is not None:
        geo = host.cost_geometry(geo)
    g_spec = get_gpu(gpu) if gpu is not None else None
    b = dtype_bytes
    n = frames * tiles
    steps = geo.steps(frames) if is_qwen else frames  # encoder time steps: what a reducer sees as T
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
    if is_qwen and reducer is not None and "cls_attn" in getattr(reducer, "needs", ()):
        stage_ops["vision"].append(qwen.received_attention_op(geo, steps, b))
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

    labels = ["Video"] if is_qwen else frame_labels(frames, step, ordered)
    # Qwen2.5-VL's one video block: <|vision_start|> ... <|vision_end|> (positions, not labels, carry time)
    text = (qwen.VIDEO_TEXT if is_qwen else frame_text(labels, frame_text_tokens)) + fixed_text_tokens
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
                st["bound"] = bound(st["compute_s"], st["memory_s"])
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
    _, _, geo = model_geometry(model)
    frames = geo.temporal if isinstance(geo, QwenGeometry) else 1
    ops = vision_ops(geo, frames) + project_ops(geo, geo.tokens_per_tile)
    return sum(o.flops for o in ops) / 1e9 / frames
